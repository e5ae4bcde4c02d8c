/*
 * activate: point `current` at a staged version (auto after stage, operator approve, rollback),
 * one activation per server at a time across all processes (workers/activation/lock.ts, shared
 * with cleanup). What to switch to is decided by the activation rules (shared/activation.ts). A
 * version whose directory cleanup removed is re-staged from its backup tarball first. After the
 * switch the server must answer an MCP handshake through its launcher; if it does not, `current`
 * goes back to the version it came from by itself and the job fails.
 */
import fs from 'node:fs/promises';
import { activationFacts, planActivation } from '../shared/activation.js';
import { describeError, MCPError, NotFoundError, type MCPErrorOptions } from '../shared/errors.js';
import { holdAfterSwitch } from '../shared/policy.js';
import { versionOrder } from '../shared/versionOrder.js';
import { carryServerData, dataPreservedMessage, type DataCarry } from '../shared/serverData.js';
import type { ServerSettings } from '../shared/inventory.js';
import type { DiskHistory, HistoryEntry, SmokeTestRecord, VersionRecord } from '../shared/layout.js';
import type { ActivateJobData, ActivateResult } from '../shared/queues.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { nextState, startState } from '../shared/stateMachine.js';
import { withServerLock } from './activation/lock.js';
import type { WorkerContext } from './context.js';
import { measureServerDisk, serverSettings } from './context.js';
import { stageVersion } from './staging/version.js';
import { createPipelineWorker, type JobLike } from './worker.js';

/** BullMQ job lock: a re-stage (npm install + smoke test) plus the post-activation check. */
export const ACTIVATE_JOB_LOCK_MS = 180_000;

/** The post-activation check failed; `current` is back where it was. Final, and the version's fault. */
export class PostActivationError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('EPOSTACTIVATION', message, { ...options, retryable: false, versionFault: true });
  }
}

export function createActivateWorker(context: WorkerContext) {
  return createPipelineWorker('activate', context, execActivateJob, { lockDurationMs: ACTIVATE_JOB_LOCK_MS });
}

export async function execActivateJob(job: JobLike<ActivateJobData>, context: WorkerContext): Promise<ActivateResult> {
  const settings = serverSettings(context, job.data.server);
  return withServerLock(context, job.data.server, (signal) => activateVersion(context, settings, job, signal));
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
  const facts = await activationFacts(store, layout, server);
  const plan = planActivation({ server, action, version: job.data.version, jobId: job.id }, facts);
  if (plan.kind === 'unchanged') {
    await syncUnchanged(context, server, plan.target, facts.staged);
    log.info(`${action} ${server}@${plan.target}: already the current version`, { server, version: plan.target, jobId: job.id });
    return { outcome: 'unchanged', server, action, version: plan.target, from: plan.target, restaged: false };
  }
  const { target, from } = plan;
  const resumed = plan.kind === 'resume';

  await store.update(server, { state: startState('activate') });
  // As read with the facts, a moment ago; recordSwitch reads it again before it writes.
  const { history } = facts;
  const { record, restaged } = await ensureVersionDir(context, settings, job, target, history);
  const integrity = record?.integrity ?? history?.integrities?.[target];

  signal.throwIfAborted();
  await layout.ensureLauncher(server);
  // `previous` before this activation; a resumed run already moved it, so it looks one entry back.
  const previousBefore = resumed ? history?.entries.at(-2)?.from : (facts.previous ?? facts.historyPrevious);
  const previous = from ?? previousBefore;
  const data = await preserveData(context, job, { target, from, package: record?.package ?? settings.package });
  if (plan.kind === 'switch') {
    await layout.switchCurrent(server, target);
    const entry: HistoryEntry = {
      action: plan.historyAction,
      ...(from ? { from } : {}),
      to: target,
      at: context.now().toISOString(),
      ...(job.id ? { jobId: job.id } : {}),
      ...(integrity ? { integrity } : {}),
      ...(job.data.reason ? { reason: job.data.reason } : {}),
      // Which MCP surface went live, and for an approval who approved it (the surface gate).
      ...(record?.smokeTest?.surfaceHash ? { surfaceHash: record.smokeTest.surfaceHash } : {}),
      ...(job.data.action === 'approve' ? { approvedBy: job.data.requestedBy ?? 'unknown' } : {}),
      // Where it was built (its verified provenance): for approve, the source that was approved.
      ...(record?.provenance ? { provenance: record.provenance } : {}),
    };
    await recordSwitch(context, settings, entry, { current: target, previous, integrity });
  }
  const pointers = { current: target, previous: previous ?? null, package: record?.package ?? settings.package };
  // With a post-activation check the record shows the switch while the check runs; without one,
  // the pointers go with the closing update below (one write less).
  const checked = settings.smokeTest.enabled;
  if (checked) await store.update(server, pointers);
  log.info(
    `${action} ${server}: ${from ?? '(none)'} -> ${target}${restaged ? ' (re-staged from backup)' : ''}${resumed ? ' (finishing an interrupted run of this job)' : ''}`,
    {
      server,
      version: target,
      from,
      jobId: job.id,
    },
  );

  let smokeTest: SmokeTestRecord | undefined;
  try {
    smokeTest = await postActivationCheck(context, settings, target);
  } catch (error) {
    await undoActivation(context, settings, job, { target, from, previousBefore, wasStaged: facts.staged === target, error });
  }

  // Another version may still be waiting for approval; this activation does not answer it.
  const stillAwaiting = facts.staged !== undefined && facts.staged !== target;
  const disk = await measureServerDisk(context, server);
  // One round trip: the closing update, the version's failed mark lifted, the hold read.
  const [, , { hold: holdBefore }] = await Promise.all([
    store.update(server, {
      ...(checked ? {} : pointers),
      state: nextState('activating', { step: 'activate', event: 'done', stillAwaiting }),
      lastError: null,
      disk,
      ...(facts.staged === target ? { staged: null, gate: null } : {}),
    }),
    store.clearFailedVersion(server, target),
    store.get(server),
  ]);
  const hold = holdAfterSwitch({ action, from, to: target, hold: holdBefore }, versionOrder(settings.ecosystem));
  if (hold !== holdBefore) await store.setHold(server, hold);
  const actor = job.data.requestedBy;
  await context.events.publish({
    type: 'update.activated',
    server,
    version: target,
    from,
    jobId: job.id,
    reason: job.data.reason,
    actor,
    details: {
      action,
      restaged,
      ...(smokeTest ? { toolCount: smokeTest.toolCount } : {}),
      ...(data.moved.length + data.linked.length > 0 ? { data: { moved: data.moved, linked: data.linked } } : {}),
    },
  });
  if (action === 'rollback') {
    // An operator rolled away from `from`: checks must not move straight back to it (nor, by the
    // hold, to anything up to it). A forced check or an approve of that version lifts this.
    if (from) await store.markFailedVersion(server, from);
    await context.events.publish({
      type: 'update.rolled-back',
      server,
      version: target,
      from,
      jobId: job.id,
      reason: job.data.reason,
      actor,
      ...(hold ? { details: { hold } } : {}),
    });
    await context.metrics.increment('rollbacks_total', [server]);
  } else {
    await context.metrics.increment('updates_total', [server, 'activated']);
  }
  return { outcome: 'activated', server, action, version: target, from, restaged, smokeTest };
}

/**
 * Before the switch: files the server wrote into the version it leaves go to data/ (a symlink
 * stays behind for the process still running there) and every data file is linked into the
 * version it moves to. Reported once, when something was moved or could not be linked.
 */
async function preserveData(
  context: WorkerContext,
  job: JobLike<ActivateJobData>,
  switchTo: { target: string; from?: string; package: string },
): Promise<DataCarry> {
  const { server } = job.data;
  const { target, from } = switchTo;
  const data = await carryServerData(context.layout, server, target, from, context.now());
  if (data.moved.length === 0 && data.conflicts.length === 0) return data;
  const dataDir = context.layout.dataDir(server);
  const reason = [
    ...(data.moved.length > 0
      ? [dataPreservedMessage({ server, package: switchTo.package, version: from!, dataDir, files: data.moved, when: 'activation' })]
      : []),
    ...data.conflicts.map((conflict) => conflict.message),
  ].join('; ');
  context.log.automation.warn(reason, { server, version: target, from, jobId: job.id });
  await context.events.publish({
    type: 'update.data-preserved',
    server,
    version: target,
    from,
    jobId: job.id,
    reason,
    details: { dataDir, moved: data.moved, linked: data.linked, conflicts: data.conflicts.map((conflict) => conflict.path) },
  });
  return data;
}

/** Nothing to switch; make Redis agree with the disk and drop a staged marker of this version. */
async function syncUnchanged(context: WorkerContext, server: string, version: string, staged: string | undefined): Promise<void> {
  const stillAwaiting = staged !== undefined && staged !== version;
  await context.state.update(server, {
    current: version,
    state: nextState('activating', { step: 'activate', event: 'done', stillAwaiting }),
    ...(staged === version ? { staged: null, gate: null } : {}),
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
  // The record is there whenever the directory is (staging writes it before the move): one read.
  const installed = await layout.readVersionRecord(server, version);
  if (installed || (await exists(layout.versionDir(server, version)))) return { record: installed, restaged: false };
  const integrity = history?.integrities?.[version];
  const hint = `run \`mcp-updater check ${server}\` to download and stage a version again, or choose an installed version`;
  if (!integrity) {
    throw new NotFoundError(`${server}@${version} is not installed and no backup of it is known`, { hint, details: { server, version } });
  }
  const backup = layout.backupFile(integrity);
  if (!(await exists(backup))) {
    throw new NotFoundError(`${server}@${version} is not installed and its backup ${backup} is gone`, {
      hint,
      details: { server, version },
    });
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
  const history = (await context.layout.readHistory(server)) ?? { server, package: settings.package, integrities: {}, entries: [] };
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
async function postActivationCheck(
  context: WorkerContext,
  settings: ServerSettings,
  version: string,
): Promise<SmokeTestRecord | undefined> {
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
 * on a first install), record the switch back (history, pointers, `update.rolled-back`) and throw
 * PostActivationError; the failure itself is recorded by the one failure path.
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
  const staged = failure.wasStaged ? { staged: null, gate: null } : {};

  if (from) {
    await layout.switchCurrent(server, from);
    const reason = `post-activation check of ${target} failed: ${cause}`;
    const integrity = (await layout.readHistory(server))?.integrities?.[from];
    await recordSwitch(
      context,
      settings,
      {
        action: 'auto-rollback',
        from: target,
        to: from,
        at: context.now().toISOString(),
        ...(job.id ? { jobId: job.id } : {}),
        ...(integrity ? { integrity } : {}),
        reason,
      },
      { current: from, previous: previousBefore },
    );
    const lastError = `${target} failed its post-activation check and was rolled back to ${from}: ${cause}`;
    await store.update(server, { current: from, previous: previousBefore ?? null, ...staged });
    await context.events.publish({ type: 'update.rolled-back', server, version: from, from: target, jobId: job.id, reason });
    await context.metrics.increment('rollbacks_total', [server]);
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
  await store.update(server, { current: null, ...staged });
  throw new PostActivationError(lastError, {
    hint: `fix the package or its smokeTest settings, then run mcp-updater check ${server}`,
    cause: error,
    details: { server, version: target },
  });
}
