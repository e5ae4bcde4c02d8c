/*
 * download: fetch the candidate's tarball through pacote into BACKUP_DIR, content-addressed by
 * its integrity, verifying SRI while streaming. A mismatch is final and leaves nothing behind;
 * network errors and 5xx are retried with backoff. Then adds the stage job.
 */
import fs from 'node:fs/promises';
import type { Queue } from 'bullmq';
import { describeError } from '../shared/errors.js';
import { validateJobData, versionJobId, type DownloadJobData } from '../shared/queues.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export type { DownloadJobData };

export interface DownloadResult {
  file: string;
  bytes: number;
  /** The verified tarball was already in the backup store. */
  cached: boolean;
  stageJobId?: string;
}

export function createDownloadWorker(context: WorkerContext) {
  return createPipelineWorker('download', context, execDownloadJob, { onFinalFailure: downloadFailed, lockDurationMs: 120_000 });
}

export async function addDownloadJob(queue: Queue<DownloadJobData>, data: DownloadJobData, jobId?: string) {
  const payload = validateJobData('download', data);
  return queue.add('download', payload, { jobId: jobId ?? versionJobId(payload.server, payload.version) });
}

export async function execDownloadJob(job: JobLike<DownloadJobData>, context: WorkerContext): Promise<DownloadResult> {
  const { server, version, integrity } = job.data;
  serverSettings(context, server);
  await context.state.update(server, { state: 'downloading' });
  const file = context.layout.backupFile(integrity);
  let cached = true;
  let bytes: number;
  try {
    bytes = (await fs.stat(file)).size;
  } catch {
    cached = false;
    bytes = (await context.registry.downloadTarball(job.data, file)).bytes;
  }
  await context.events.publish({
    type: 'update.downloaded', server, version, jobId: job.id, reason: job.data.reason, details: { bytes, cached },
  });
  const stage = await context.queues.stage.add('stage', {
    server, package: job.data.package, version, integrity, reason: job.data.reason,
  }, { jobId: job.id?.includes('-forced-') ? `${job.id}` : versionJobId(server, version) });
  await context.state.update(server, { state: 'staging' });
  return { file, bytes, cached, stageJobId: stage.id };
}

export async function downloadFailed(job: JobLike<DownloadJobData>, error: Error, context: WorkerContext): Promise<void> {
  const { server, version } = job.data;
  const code = (error as { code?: string }).code;
  // Integrity and policy failures are properties of the version: do not try it again unforced.
  if (code === 'EINTEGRITY' || code === 'ETARBALLHOST' || code === 'ETOOBIG') await context.state.markFailedVersion(server, version);
  await context.state.update(server, { state: 'failed', lastError: describeError(error) });
  await context.events.publish({ type: 'update.failed', server, version, jobId: job.id, reason: describeError(error) });
  await context.metrics.increment('updates_total', [server, 'failed']);
}
