/*
 * check: ask the registry what the server's package offers and decide (shared/policy.ts) whether
 * to move. Records latest, candidate and the check time; on a candidate emits `update.available`
 * and adds the download job with id `<server>@<version>`, so repeated checks add it once.
 * Checks are enqueued by producers/ (scheduler, client); `{server, force?, reason?}` is public.
 */
import { describeError, MCPError } from '../shared/errors.js';
import { chooseCandidate, needsFullMetadata, type CandidateDecision } from '../shared/policy.js';
import { versionJobId, type CheckJobData } from '../shared/queues.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export type { CheckJobData };

export interface CheckResult {
  server: string;
  current?: string;
  latest?: string;
  candidate?: string;
  summary: string;
  /** Id of the download job added (or found already queued). */
  downloadJobId?: string;
}

export function createCheckWorker(context: WorkerContext) {
  return createPipelineWorker('check', context, execCheckJob, { onFinalFailure: checkFailed });
}

export async function execCheckJob(job: JobLike<CheckJobData>, context: WorkerContext): Promise<CheckResult> {
  const { server, force } = job.data;
  const settings = serverSettings(context, server);
  const previous = await context.state.get(server);
  const current = previous.current ?? await context.layout.currentVersion(server);
  const busy = previous.state === 'downloading' || previous.state === 'staging' || previous.state === 'activating';
  // "checking" is written while the registry answers: one round trip less on every check.
  const [packument] = await Promise.all([
    context.registry.packument(settings.package, needsFullMetadata(settings)),
    busy ? undefined : context.state.update(server, { state: 'checking', package: settings.package }),
  ]);
  const now = context.now();
  const decision: CandidateDecision = chooseCandidate({
    packument,
    current,
    settings,
    now,
    exclude: force ? [] : previous.failedVersions,
  });
  const checkedAt = now.toISOString();
  if (decision.error) {
    throw new MCPError(decision.error.code, decision.error.message, { retryable: false });
  }
  const recorded = context.state.update(server, {
    package: settings.package,
    current: current ?? null,
    latest: decision.latest ?? null,
    candidate: decision.allowed ?? null,
    lastCheck: checkedAt,
    lastCheckResult: decision.summary,
    // A failed update or a pending approval stays visible until something newer happens.
    state: busy || previous.state === 'awaiting-approval' || previous.state === 'failed' ? undefined : 'idle',
  });

  const result: CheckResult = { server, current, latest: decision.latest, summary: decision.summary };
  if (!decision.candidate) {
    await Promise.all([recorded, context.metrics.checked(server, decision.updateAvailable ? 'held-back' : 'up-to-date', now)]);
    return result;
  }
  await recorded;
  const candidate = decision.candidate;
  const manifest = packument.versions[candidate]!;
  try {
    context.registry.assertTarballHost(manifest.dist!.tarball!);
  } catch (error) {
    // A packument that sends us to another host is a property of this version: refuse it once,
    // loudly, and let later checks move on to other versions.
    await context.state.markFailedVersion(server, candidate);
    await context.events.publish({ type: 'update.failed', server, version: candidate, jobId: job.id, reason: describeError(error) });
    throw error;
  }
  if (force) await context.state.clearFailedVersion(server, candidate);
  result.candidate = candidate;

  const jobId = force ? `${versionJobId(server, candidate)}-forced-${Date.now()}` : versionJobId(server, candidate);
  const existing = await context.queues.download.getJob(jobId);
  // A download that ran out of attempts on a transient fault is tried again by the next check.
  if (existing && (await existing.getState()) === 'failed') await existing.retry('failed');
  if (!existing) {
    await context.events.publish({
      type: 'update.available', server, version: candidate, from: current, jobId: job.id, reason: job.data.reason,
      details: { latest: decision.latest, policy: settings.policy },
    });
  }
  const download = await context.queues.download.add('download', {
    server,
    package: settings.package,
    version: candidate,
    integrity: manifest.dist!.integrity!,
    tarball: manifest.dist!.tarball!,
    reason: job.data.reason,
  }, { jobId });
  if (!busy) await context.state.update(server, { state: 'downloading' });
  await context.metrics.checked(server, 'update', now);
  result.downloadJobId = download.id;
  return result;
}

/** A check that will not be retried leaves the error on the server's record. */
export async function checkFailed(job: JobLike<CheckJobData>, error: Error, context: WorkerContext): Promise<void> {
  const server = job.data.server;
  if (!context.inventory.server(server)) return;
  const state = await context.state.get(server);
  await context.state.update(server, {
    lastError: describeError(error),
    lastCheck: context.now().toISOString(),
    lastCheckResult: 'check failed',
    state: state.state === 'checking' ? 'idle' : undefined,
  });
  await context.metrics.checked(server, 'error', context.now());
}
