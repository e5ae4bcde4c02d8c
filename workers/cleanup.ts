/*
 * cleanup: free disk space on its own schedule (CLEANUP_SCHEDULE) or on request. Gathers the facts
 * (installed versions, Redis state, history, staging leftovers, backup tarballs), lets
 * shared/retention.ts decide, and deletes under each server's activation lock, checking the live
 * `current` link, previous and staged version once more right before deleting. A dry run changes nothing.
 * Servers that left the inventory are not touched, and their backups are kept.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeError, LockError, NotFoundError } from '../shared/errors.js';
import { stagingRunDied, type DiskHistory, type InstallLayout } from '../shared/layout.js';
import type { CleanupJobData, CleanupResult } from '../shared/queues.js';
import { retentionPlan, type RetentionInput, type RetentionPlan, type RetentionServer } from '../shared/retention.js';
import { dataPreservedMessage, moveServerData } from '../shared/serverData.js';
import { bytesFreedByRemoving, pruneStore, storeRoot } from '../shared/store.js';
import { withServerLock } from './activation/lock.js';
import { measureServerDisk, type WorkerContext } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export function createCleanupWorker(context: WorkerContext) {
  return createPipelineWorker('cleanup', context, execCleanupJob, { lockDurationMs: 120_000 });
}

export async function execCleanupJob(job: JobLike<CleanupJobData>, context: WorkerContext): Promise<CleanupResult> {
  const { dryRun = false, server: scope } = job.data;
  const log = context.log.cleanup;
  const input = await gatherRetentionFacts(context, scope);
  const plan = retentionPlan(input);
  const bytesPlanned = await plannedBytes(context.layout, plan);
  const summary = `${plan.removeVersions.length} version(s), ${plan.removeStaging.length} staging leftover(s), ${plan.removeBackups.length} backup(s)`;
  if (dryRun) {
    log.info(`cleanup dry run${scope ? ` of ${scope}` : ''}: would remove ${summary} (${bytesPlanned} bytes)`, { jobId: job.id, plan });
    return { dryRun, plan, bytesFreed: 0, bytesPlanned, skipped: [] };
  }

  const skipped: CleanupResult['skipped'] = [];
  const removedVersions: string[] = [];
  let bytesFreed = 0;
  const byServer = new Map<string, string[]>();
  for (const { server, version } of plan.removeVersions) byServer.set(server, [...(byServer.get(server) ?? []), version]);
  for (const [server, versions] of byServer) {
    try {
      await withServerLock(context, server, async (signal) => {
        const protectedNow = await liveProtectedVersions(context, server);
        for (const version of versions) {
          if (protectedNow.has(version)) {
            skipped.push({ server, version, reason: 'became current, previous or staged' });
            continue;
          }
          signal.throwIfAborted();
          await preserveDataBeforeDelete(context, job, server, version);
          bytesFreed += await removeTree(context.layout, context.layout.versionDir(server, version), server);
          removedVersions.push(`${server}@${version}`);
        }
      });
    } catch (error) {
      if (!(error instanceof LockError)) throw error;
      log.warn(`cleanup skips ${server}: ${describeError(error)}`, { server, jobId: job.id });
      skipped.push({ server, reason: 'busy: activation in progress' });
    }
  }

  const removedStaging: string[] = [];
  for (const leftover of plan.removeStaging) {
    bytesFreed += await bytesFreedByRemoving([leftover]);
    await fs.rm(leftover, { recursive: true, force: true });
    removedStaging.push(leftover);
  }
  const removedBackups: string[] = [];
  for (const file of plan.removeBackups) {
    bytesFreed += await bytesFreedByRemoving([file]);
    await fs.rm(file, { force: true });
    removedBackups.push(file);
  }
  // Shared files (shared/store.ts) whose last version went just now: freed only now.
  bytesFreed += (await pruneStore(storeRoot(context.layout.root))).bytesFreed;
  await recordDiskUsage(context, input.servers);

  log.info(
    `cleanup${scope ? ` of ${scope}` : ''}: removed ${removedVersions.length} version(s), ${removedStaging.length} staging leftover(s), ${removedBackups.length} backup(s), ${bytesFreed} bytes freed`,
    {
      jobId: job.id,
      removedVersions,
      removedStaging,
      removedBackups,
      skipped,
      bytesFreed,
    },
  );
  await context.events.publish({
    type: 'cleanup.done',
    server: scope ?? '*',
    jobId: job.id,
    reason: job.data.reason,
    actor: job.data.requestedBy,
    details: { bytesFreed, removedVersions, removedStaging, removedBackups, ...(skipped.length > 0 ? { skipped } : {}) },
  });
  return { dryRun, plan, bytesFreed, bytesPlanned, skipped };
}

/** Files the server wrote into a version about to be deleted go to its data directory first. */
async function preserveDataBeforeDelete(
  context: WorkerContext,
  job: JobLike<CleanupJobData>,
  server: string,
  version: string,
): Promise<void> {
  const { moved, conflicts } = await moveServerData(context.layout, server, version, { leaveLinks: false, now: context.now() });
  if (moved.length === 0) return;
  const dataDir = context.layout.dataDir(server);
  const settings = context.inventory.server(server);
  const reason = [
    dataPreservedMessage({ server, package: settings?.package, version, dataDir, files: moved, when: 'cleanup' }),
    ...conflicts.map((conflict) => conflict.message),
  ].join('; ');
  context.log.cleanup.warn(reason, { server, version, jobId: job.id });
  await context.events.publish({
    type: 'update.data-preserved',
    server,
    version,
    jobId: job.id,
    reason,
    details: { dataDir, moved, conflicts: conflicts.map((conflict) => conflict.path), step: 'cleanup' },
  });
}

/** Everything retentionPlan needs, read from the inventory, Redis and the disk. */
export async function gatherRetentionFacts(context: WorkerContext, scope?: string): Promise<RetentionInput> {
  const { layout } = context;
  const inventory = context.inventory.inventory.servers;
  if (scope && !inventory.has(scope)) {
    throw new NotFoundError(`server "${scope}" is not in the inventory ${context.config.serversConfig}`, {
      hint: 'cleanup only manages servers of the inventory; run it without a server to clean up everything',
    });
  }
  const inScope = [...inventory.values()].filter((settings) => !scope || settings.name === scope);

  const servers: RetentionServer[] = [];
  const allIntegrities = new Map<string, string>();
  for (const settings of inScope) {
    const fact = await serverFacts(context, settings.name, settings.keep);
    servers.push(settings.ecosystem ? { ...fact, ecosystem: settings.ecosystem } : fact);
    for (const integrity of Object.values(fact.integrities)) allIntegrities.set(backupPath(layout, integrity), integrity);
  }

  // Integrities of servers outside this run (other scope, or gone from the inventory) are never removed.
  const protectedIntegrities: string[] = [];
  for (const name of await serverDirectories(layout)) {
    if (inScope.some((settings) => settings.name === name)) continue;
    const integrities = await knownIntegrities(layout, name, await layout.readHistory(name));
    for (const integrity of Object.values(integrities)) {
      protectedIntegrities.push(integrity);
      if (!scope) allIntegrities.set(backupPath(layout, integrity), integrity);
    }
  }

  const staging = await stagingLeftovers(layout, scope);
  const backups = (await backupFiles(layout))
    .map((backup) => ({ ...backup, integrity: allIntegrities.get(backup.file) }))
    // A scoped run only touches backups it can tell belong to that server.
    .filter((backup) => !scope || backup.integrity !== undefined);
  return { servers, staging, backups, protectedIntegrities, now: context.now().getTime() };
}

async function serverFacts(context: WorkerContext, server: string, keep: number): Promise<RetentionServer> {
  const { layout } = context;
  const state = await context.state.get(server);
  const history = await layout.readHistory(server);
  const current = (await layout.currentVersion(server)) ?? state.current;
  const installed: RetentionServer['installed'] = [];
  for (const version of await layout.installedVersions(server)) {
    const record = await layout.readVersionRecord(server, version).catch(() => undefined);
    const stagedAt = record?.stagedAt ? Date.parse(record.stagedAt) : NaN;
    installed.push({
      version,
      stagedAt: Number.isFinite(stagedAt) ? stagedAt : (await fs.stat(layout.versionDir(server, version))).mtimeMs,
    });
  }
  const entries = history?.entries ?? [...(await context.state.history(server))].reverse();
  const recentVersions: string[] = [];
  for (const entry of [...entries].reverse()) {
    for (const version of [entry.to, entry.from]) {
      if (version && !recentVersions.includes(version)) recentVersions.push(version);
    }
  }
  return {
    name: server,
    keep,
    current,
    previous: state.previous ?? history?.previous,
    staged: state.staged,
    installed,
    recentVersions,
    integrities: await knownIntegrities(layout, server, history),
  };
}

/** version -> integrity from history.json and the installed versions' records. */
async function knownIntegrities(layout: InstallLayout, server: string, history: DiskHistory | undefined): Promise<Record<string, string>> {
  const integrities: Record<string, string> = { ...history?.integrities };
  for (const entry of history?.entries ?? []) {
    if (entry.integrity && !integrities[entry.to]) integrities[entry.to] = entry.integrity;
  }
  for (const version of await layout.installedVersions(server)) {
    const record = await layout.readVersionRecord(server, version).catch(() => undefined);
    if (record?.integrity) integrities[version] = record.integrity;
  }
  return integrities;
}

/** Versions that must not be deleted right now: the live `current` link, previous and staged. */
async function liveProtectedVersions(context: WorkerContext, server: string): Promise<Set<string>> {
  const state = await context.state.get(server);
  const history = await context.layout.readHistory(server);
  const versions = [
    await context.layout.currentVersion(server),
    state.current,
    state.previous,
    state.staged,
    history?.current,
    history?.previous,
  ];
  return new Set(versions.filter((version): version is string => Boolean(version)));
}

function backupPath(layout: InstallLayout, integrity: string): string {
  try {
    return layout.backupFile(integrity);
  } catch {
    return '';
  }
}

async function childDirectories(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Server directories under MCP_SERVERS_PATH (everything but bin/ and dot-directories). */
async function serverDirectories(layout: InstallLayout): Promise<string[]> {
  const binName = path.basename(layout.binDir);
  return (await childDirectories(layout.root)).filter((name) => name !== binName && !name.startsWith('.'));
}

/**
 * Every server in the run gets its bytes on disk measured again: its own versions went, or a
 * neighbour's did and a file is no longer shared. Read first, so a lost record is rebuilt from
 * disk rather than replaced by one holding only the figure.
 */
async function recordDiskUsage(context: WorkerContext, servers: RetentionServer[]): Promise<void> {
  for (const { name, installed } of servers) {
    if (installed.length === 0) continue;
    await context.state.get(name);
    const disk = await measureServerDisk(context, name);
    if (disk) await context.state.update(name, { disk });
  }
}

/** Children of STAGING_DIR/<server>/ (all servers, or one). */
async function stagingLeftovers(layout: InstallLayout, scope?: string): Promise<RetentionInput['staging']> {
  const servers = scope ? [scope] : await childDirectories(layout.stagingRoot);
  const leftovers: RetentionInput['staging'] = [];
  for (const server of servers) {
    const serverStaging = path.join(layout.stagingRoot, server);
    for (const name of await fs.readdir(serverStaging).catch(() => [] as string[])) {
      const leftover = path.join(serverStaging, name);
      const stat = await fs.lstat(leftover).catch(() => undefined);
      if (stat) leftovers.push({ path: leftover, mtimeMs: stat.mtimeMs, ...(stagingRunDied(name) ? { died: true } : {}) });
    }
  }
  return leftovers;
}

/** BACKUP_DIR/<algorithm>/*.tgz (partial downloads end in .partial and are not listed). */
async function backupFiles(layout: InstallLayout): Promise<Array<{ file: string; mtimeMs: number }>> {
  const files: Array<{ file: string; mtimeMs: number }> = [];
  for (const algorithm of await childDirectories(layout.backupRoot)) {
    const dir = path.join(layout.backupRoot, algorithm);
    for (const name of await fs.readdir(dir)) {
      if (!name.endsWith('.tgz')) continue;
      const stat = await fs.stat(path.join(dir, name)).catch(() => undefined);
      if (stat?.isFile()) files.push({ file: path.join(dir, name), mtimeMs: stat.mtimeMs });
    }
  }
  return files;
}

/** What the plan would free: files shared with a version that stays (through the store) free nothing. */
async function plannedBytes(layout: InstallLayout, plan: RetentionPlan): Promise<number> {
  const targets = [
    ...plan.removeVersions.map(({ server, version }) => layout.versionDir(server, version)),
    ...plan.removeStaging,
    ...plan.removeBackups,
  ];
  return bytesFreedByRemoving(targets, { pruneAfter: true });
}

/**
 * Delete a version directory so it never shows half-deleted under versions/: rename it into
 * STAGING_DIR first (same filesystem), then remove it there. Returns the bytes freed at once (its
 * files still linked from the store are freed, and counted, by the prune that follows).
 */
async function removeTree(layout: InstallLayout, dir: string, server: string): Promise<number> {
  const bytes = await bytesFreedByRemoving([dir]);
  const trash = path.join(layout.stagingRoot, server, `.deleting-${path.basename(dir)}-${crypto.randomBytes(4).toString('hex')}`);
  let target = dir;
  try {
    await fs.mkdir(path.dirname(trash), { recursive: true });
    await fs.rename(dir, trash);
    target = trash;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 0;
    if (code !== 'EXDEV') throw error;
  }
  await fs.rm(target, { recursive: true, force: true });
  return bytes;
}
