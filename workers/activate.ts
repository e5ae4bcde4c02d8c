/*
 * activate: point `current` at a staged version (auto after stage, operator approve, rollback),
 * one activation per server at a time across all processes (Redis mutex, shared with cleanup).
 * A version whose directory cleanup removed is re-staged from its backup tarball first. After the
 * switch the server must answer an MCP handshake through its launcher; if it does not, `current`
 * goes back to the version it came from by itself and the job fails.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import type { JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { Mutex, type LockOptions } from 'redis-semaphore';
import type { Config } from '../shared/config.js';
import { ConflictError, describeError, LockError, MCPError, NotFoundError, type MCPErrorOptions } from '../shared/errors.js';
import type { ServerSettings } from '../shared/inventory.js';
import type { DiskHistory, HistoryEntry, SmokeTestRecord, VersionRecord } from '../shared/layout.js';
import { validateJobData, versionJobId, type ActivateJobData } from '../shared/queues.js';
import { appKey, type QueueSet } from '../shared/redis.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import type { ServerState } from '../shared/state.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { stageVersion } from './stage.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export type { ActivateJobData };

export interface ActivateResult {
  /** `unchanged`: the target already was the current version. */
  outcome: 'activated' | 'unchanged';
  server: string;
  action: ActivateJobData['action'];
  version: string;
  from?: string;
  /** The version directory was re-created from its backup tarball. */
  restaged: boolean;
  /** The post-activation check (absent when smoke tests are disabled or nothing changed). */
  smokeTest?: SmokeTestRecord;
}

/** Default TTL of the per-server lock (ACTIVATION_LOCK_TTL); refreshed while held, so it only matters when a worker dies. */
export const SERVER_LOCK_TIMEOUT_MS = 120_000;
/** How long to wait for another process's activation or cleanup before failing with LockError. */
export const SERVER_LOCK_ACQUIRE_TIMEOUT_MS = 5_000;
/** BullMQ job lock: a re-stage (npm install + smoke test) plus the post-activation check. */
export const ACTIVATE_JOB_LOCK_MS = 180_000;

/**
 * The post-activation check failed and the failure is fully recorded (switched back, state,
 * events, metrics). Final: `activateFailed` must not record it a second time.
 */
export class PostActivationError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('EPOSTACTIVATION', message, { ...options, retryable: false });
  }
}

export function createActivateWorker(context: WorkerContext) {
  return createPipelineWorker('activate', context, execActivateJob, {
    onFinalFailure: activateFailed,
    lockDurationMs: ACTIVATE_JOB_LOCK_MS,
  });
}

/**
 * Add an activate job. Auto activation after stage is idempotent per version (`<server>@<version>`);
 * operator approvals and rollbacks always get a job of their own.
 */
export async function addActivateJob(queues: Pick<QueueSet, 'activate'>, data: ActivateJobData, opts: JobsOptions = {}) {
  const payload = validateJobData('activate', data);
  const jobId = payload.action === 'activate'
    ? versionJobId(payload.server, payload.version!)
    : `${payload.server}-${payload.action}-${Date.now()}-${crypto.randomBytes(3).toString('hex')}`;
  return queues.activate.add(payload.action, payload, { jobId, ...opts });
}

export async function execActivateJob(job: JobLike<ActivateJobData>, context: WorkerContext): Promise<ActivateResult> {
  const settings = serverSettings(context, job.data.server);
  return withServerLock(context, job.data.server, (signal) => activateVersion(context, settings, job, signal));
}

/** onFinalFailure: the job will not be tried again. A failed post-activation check is already recorded. */
export async function activateFailed(job: JobLike<ActivateJobData>, error: Error, context: WorkerContext): Promise<void> {
  if (error instanceof PostActivationError) return;
  const { server, version, action } = job.data;
  const reason = `${action}${version ? ` ${version}` : ''} failed: ${describeError(error)}`;
  await context.state.update(server, { state: 'failed', lastError: reason });
  await context.events.publish({ type: 'update.failed', server, version, jobId: job.id, reason, actor: job.data.requestedBy });
  await context.metrics.increment('updates_total', [server, 'failed']);
}

/**
 * redis-semaphore stores a mutex under `mutex:<key>`, outside QUEUE_PREFIX: Redis ACLs that allow
 * only the prefix's keys would refuse it, and nothing that works by prefix (cleanup, monitoring)
 * would see it. This one keeps the key it is given.
 */
class PrefixedMutex extends Mutex {
  constructor(client: Redis, key: string, options: LockOptions) {
    super(client, key, options);
    this._key = key;
  }
}

export function serverLockKey(config: Pick<Config, 'queuePrefix'>, server: string): string {
  return appKey(config, 'lock', 'activate', server);
}

export interface ServerLockOptions {
  acquireTimeoutMs?: number;
  lockTimeoutMs?: number;
}

/**
 * Run `fn` holding the server's activation lock (a Redis mutex, so across processes). Cleanup
 * takes it too before deleting a server's versions. `signal` aborts when the lock is lost
 * (Redis unreachable longer than the TTL): check it before changing anything on disk.
 * Not acquired within the acquire timeout: LockError (retryable).
 */
export async function withServerLock<T>(
  context: Pick<WorkerContext, 'redis' | 'config' | 'log'>,
  server: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options: ServerLockOptions = {},
): Promise<T> {
  const key = serverLockKey(context.config, server);
  const lockTimeout = options.lockTimeoutMs ?? context.config.activationLockTtlMs ?? SERVER_LOCK_TIMEOUT_MS;
  const lost = new AbortController();
  const mutex = new PrefixedMutex(context.redis, key, {
    lockTimeout,
    acquireTimeout: options.acquireTimeoutMs ?? SERVER_LOCK_ACQUIRE_TIMEOUT_MS,
    retryInterval: 100,
    refreshInterval: Math.round(lockTimeout / 3),
    onLockLost: (error) => {
      context.log.orchestration.error(`lost the lock of ${server} (${key}): ${error.message}`, { server });
      lost.abort(new LockError(`lost the lock of ${server} while working on it`, {
        hint: 'Redis was unreachable for longer than the lock TTL; the job is retried',
      }));
    },
  });
  if (!(await mutex.tryAcquire())) {
    throw new LockError(`${server} is being activated or cleaned up by another worker (lock ${key} is held)`, {
      hint: `the job is retried with backoff; a lock left by a crashed worker expires after ${lockTimeout / 1000} s`,
      details: { server, key },
    });
  }
  try {
    return await fn(lost.signal);
  } finally {
    await mutex.release().catch((error: unknown) => {
      context.log.orchestration.warn(`releasing the lock of ${server} failed (it expires by itself): ${describeError(error)}`, { server });
    });
  }
}

/**
 * Which version an activate job moves to: activate/approve name it; rollback names it or goes
 * back to the previous version (Redis state first, then the on-disk history).
 */
export function activationTarget(
  data: Pick<ActivateJobData, 'action' | 'version' | 'server'>,
  known: { current?: string; statePrevious?: string; historyPrevious?: string },
): string {
  if (data.version) return data.version;
  if (data.action !== 'rollback') {
    throw new ConflictError(`${data.action} of ${data.server} needs a version`, { hint: 'name the version to activate' });
  }
  const previous = [known.statePrevious, known.historyPrevious].find((version) => version && version !== known.current);
  if (!previous) {
    throw new ConflictError(`${data.server} has no previous version to roll back to`, {
      hint: `name the version: mcp-updater rollback ${data.server} --to <version>`,
    });
  }
  return previous;
}

async function exists(target: string): Promise<boolean> {
  try {
    await fs.access(target);
    return true;
  } catch {
    return false;
  }
}

async function activateVersion(
  context: WorkerContext,
  settings: ServerSettings,
  job: JobLike<ActivateJobData>,
  signal: AbortSignal,
): Promise<ActivateResult> {
  const { layout, state: store } = context;
  const { server, action } = job.data;
  const log = context.log.automation;
  const state = await store.get(server);
  const history = await layout.readHistory(server);
  const linked = await layout.currentVersion(server);
  // An earlier run of this very job switched `current` and died (kill -9, Redis lost) before
  // its post-activation check passed: finish that activation rather than calling it unchanged
  // (no check, no event) or, for a rollback, rolling back once more. Its history entry says what it did.
  const lastEntry = history?.entries.at(-1);
  const resumed = job.id !== undefined && linked !== undefined && lastEntry?.jobId === job.id && lastEntry.to === linked ? lastEntry : undefined;
  const from = resumed ? resumed.from : linked;
  const target = resumed?.to ?? activationTarget(job.data, { current: linked, statePrevious: state.previous, historyPrevious: history?.previous });

  if (action === 'approve' && state.staged !== target && !(await layout.readVersionRecord(server, target))) {
    throw new ConflictError(`${server}@${target} is not staged; run a check first`, {
      hint: `mcp-updater check ${server} stages the version the policy allows; approve what it staged`,
    });
  }
  if (!resumed && from === target) {
    await syncUnchanged(context, server, target, state);
    log.info(`${action} ${server}@${target}: already the current version`, { server, version: target, jobId: job.id });
    return { outcome: 'unchanged', server, action, version: target, from, restaged: false };
  }

  await store.update(server, { state: 'activating' });
  const { record, restaged } = await ensureVersionDir(context, settings, job, target, history);
  const integrity = record?.integrity ?? history?.integrities?.[target];

  signal.throwIfAborted();
  await layout.ensureLauncher(server);
  // `previous` before this activation; a resumed run already moved it, so it looks one entry back.
  const previousBefore = resumed ? history!.entries.at(-2)?.from : state.previous ?? history?.previous;
  const previous = from ?? previousBefore;
  if (!resumed) {
    await layout.switchCurrent(server, target);
    const entry: HistoryEntry = {
      action: from === undefined && action === 'activate' ? 'install' : action,
      ...(from ? { from } : {}),
      to: target,
      at: context.now().toISOString(),
      ...(job.id ? { jobId: job.id } : {}),
      ...(integrity ? { integrity } : {}),
      ...(job.data.reason ? { reason: job.data.reason } : {}),
    };
    await recordSwitch(context, settings, entry, { current: target, previous, integrity });
  }
  await store.update(server, {
    current: target,
    previous: previous ?? null,
    package: record?.package ?? settings.package,
  });
  log.info(`${action} ${server}: ${from ?? '(none)'} -> ${target}${restaged ? ' (re-staged from backup)' : ''}${resumed ? ' (finishing an interrupted run of this job)' : ''}`, {
    server, version: target, from, jobId: job.id,
  });

  let smokeTest: SmokeTestRecord | undefined;
  try {
    smokeTest = await postActivationCheck(context, settings, target);
  } catch (error) {
    await undoActivation(context, settings, job, { target, from, previousBefore, wasStaged: state.staged === target, error });
  }

  // Another version may still be waiting for approval; this activation does not answer it.
  const stillAwaiting = state.staged !== undefined && state.staged !== target;
  await store.update(server, {
    state: stillAwaiting ? 'awaiting-approval' : 'idle',
    lastError: null,
    ...(state.staged === target ? { staged: null } : {}),
  });
  await store.clearFailedVersion(server, target);
  const actor = job.data.requestedBy;
  await context.events.publish({
    type: 'update.activated', server, version: target, from, jobId: job.id, reason: job.data.reason, actor,
    details: { action, restaged, ...(smokeTest ? { toolCount: smokeTest.toolCount } : {}) },
  });
  if (action === 'rollback') {
    // An operator rolled away from `from`: checks must not move straight back to it. A forced
    // check or an approve of that version lifts this.
    if (from) await store.markFailedVersion(server, from);
    await context.events.publish({ type: 'update.rolled-back', server, version: target, from, jobId: job.id, reason: job.data.reason, actor });
    await context.metrics.increment('rollbacks_total', [server]);
  } else {
    await context.metrics.increment('updates_total', [server, 'activated']);
  }
  return { outcome: 'activated', server, action, version: target, from, restaged, smokeTest };
}

/** Nothing to switch; make Redis agree with the disk and drop a staged marker of this version. */
async function syncUnchanged(context: WorkerContext, server: string, version: string, state: ServerState): Promise<void> {
  const stale = state.state === 'activating' || (state.state === 'awaiting-approval' && state.staged === version);
  await context.state.update(server, {
    current: version,
    ...(state.staged === version ? { staged: null } : {}),
    ...(stale ? { state: 'idle' } : {}),
  });
}

/** The version's directory, re-staged from its backup tarball when cleanup removed it. */
async function ensureVersionDir(
  context: WorkerContext,
  settings: ServerSettings,
  job: JobLike<ActivateJobData>,
  version: string,
  history: DiskHistory | undefined,
): Promise<{ record?: VersionRecord; restaged: boolean }> {
  const { layout } = context;
  const { server } = job.data;
  if (await exists(layout.versionDir(server, version))) {
    return { record: await layout.readVersionRecord(server, version), restaged: false };
  }
  const integrity = history?.integrities?.[version];
  const hint = `run \`mcp-updater check ${server}\` to download and stage a version again, or choose an installed version`;
  if (!integrity) {
    throw new NotFoundError(`${server}@${version} is not installed and no backup of it is known`, { hint, details: { server, version } });
  }
  const backup = layout.backupFile(integrity);
  if (!(await exists(backup))) {
    throw new NotFoundError(`${server}@${version} is not installed and its backup ${backup} is gone`, { hint, details: { server, version } });
  }
  context.log.automation.info(`re-staging ${server}@${version} from its backup ${backup}`, { server, version, jobId: job.id });
  const { record } = await stageVersion(context, {
    server,
    package: history?.package ?? settings.package,
    version,
    integrity,
    jobId: job.id ?? `${server}-restage-${Date.now()}`,
    settings,
  });
  return { record, restaged: true };
}

/** Append to the Redis history and to history.json (current, previous, integrities, entries). */
async function recordSwitch(
  context: WorkerContext,
  settings: ServerSettings,
  entry: HistoryEntry,
  pointers: { current?: string; previous?: string; integrity?: string },
): Promise<void> {
  const server = settings.name;
  await context.state.appendHistory(server, entry);
  const history = await context.layout.readHistory(server)
    ?? { server, package: settings.package, integrities: {}, entries: [] };
  const integrities = { ...history.integrities };
  if (pointers.integrity) integrities[entry.to] = pointers.integrity;
  const { current: _current, previous: _previous, ...rest } = history;
  await context.layout.writeHistory({
    ...rest,
    ...(pointers.current ? { current: pointers.current } : {}),
    ...(pointers.previous ? { previous: pointers.previous } : {}),
    integrities,
    entries: [...history.entries, entry],
  });
}

/** MCP handshake through bin/<server>, exactly as a client starts it. */
async function postActivationCheck(context: WorkerContext, settings: ServerSettings, version: string): Promise<SmokeTestRecord | undefined> {
  if (!settings.smokeTest.enabled) return undefined;
  const server = settings.name;
  return runSmokeTest({
    label: `${server} ${version} after activation`,
    command: context.layout.launcher(server),
    // A configured command has its args baked into the run script already (see stage).
    args: settings.smokeTest.command ? [] : settings.smokeTest.args,
    env: settings.smokeTest.env,
    // The same working directory as the stage's smoke test (relative smokeTest.args).
    cwd: process.cwd(),
    timeoutMs: settings.smokeTest.timeoutMs,
    network: settings.smokeTest.network,
  });
}

/**
 * The new version failed its post-activation check: switch back to `from` (or remove `current`
 * on a first install), record it once (history, state, events, metrics) and fail the job.
 */
async function undoActivation(
  context: WorkerContext,
  settings: ServerSettings,
  job: JobLike<ActivateJobData>,
  failure: { target: string; from?: string; previousBefore?: string; wasStaged: boolean; error: unknown },
): Promise<never> {
  const { layout, state: store } = context;
  const { server } = job.data;
  const { target, from, previousBefore, error } = failure;
  const cause = describeError(error);
  const staged = failure.wasStaged ? { staged: null } : {};
  await store.markFailedVersion(server, target);

  if (from) {
    await layout.switchCurrent(server, from);
    const reason = `post-activation check of ${target} failed: ${cause}`;
    const integrity = (await layout.readHistory(server))?.integrities?.[from];
    await recordSwitch(context, settings, {
      action: 'auto-rollback',
      from: target,
      to: from,
      at: context.now().toISOString(),
      ...(job.id ? { jobId: job.id } : {}),
      ...(integrity ? { integrity } : {}),
      reason,
    }, { current: from, previous: previousBefore });
    const lastError = `${target} failed its post-activation check and was rolled back to ${from}: ${cause}`;
    await store.update(server, { current: from, previous: previousBefore ?? null, state: 'failed', lastError, ...staged });
    context.log.automation.error(`${server}: ${lastError}`, { server, version: target, from, jobId: job.id });
    await context.events.publish({ type: 'update.failed', server, version: target, from, jobId: job.id, reason });
    await context.events.publish({ type: 'update.rolled-back', server, version: from, from: target, jobId: job.id, reason });
    await context.metrics.increment('rollbacks_total', [server]);
    await context.metrics.increment('updates_total', [server, 'failed']);
    throw new PostActivationError(lastError, {
      hint: `${from} is active again; ${target} is skipped by checks until forced (mcp-updater check ${server} after a fix)`,
      cause: error,
      details: { server, version: target, from },
    });
  }

  await fs.unlink(layout.currentLink(server)).catch((unlinkError: NodeJS.ErrnoException) => {
    if (unlinkError.code !== 'ENOENT') throw unlinkError;
  });
  const history = await layout.readHistory(server);
  if (history) {
    const { current: _current, ...rest } = history;
    await layout.writeHistory(rest);
  }
  const lastError = `${target} failed its post-activation check; nothing is active: ${cause}`;
  await store.update(server, { current: null, state: 'failed', lastError, ...staged });
  context.log.automation.error(`${server}: ${lastError}`, { server, version: target, jobId: job.id });
  await context.events.publish({ type: 'update.failed', server, version: target, jobId: job.id, reason: lastError });
  await context.metrics.increment('updates_total', [server, 'failed']);
  throw new PostActivationError(lastError, {
    hint: `fix the package or its smokeTest settings, then run mcp-updater check ${server}`,
    cause: error,
    details: { server, version: target },
  });
}
