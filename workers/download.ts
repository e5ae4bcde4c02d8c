/*
 * download: fetch the candidate's tarball into BACKUP_DIR, content-addressed by its integrity,
 * verifying SRI while streaming (shared/registry.ts). A mismatch is final and leaves nothing
 * behind; network errors and 5xx are retried with backoff. Then adds the stage job of its chain.
 */
import fs from 'node:fs/promises';
import { pypiIndexFor } from '../shared/ecosystems/pypiIndex.js';
import { enqueue, type DownloadJobData, type DownloadResult } from '../shared/queues.js';
import { startState } from '../shared/stateMachine.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export function createDownloadWorker(context: WorkerContext) {
  return createPipelineWorker('download', context, execDownloadJob, { lockDurationMs: 120_000 });
}

export async function execDownloadJob(job: JobLike<DownloadJobData>, context: WorkerContext): Promise<DownloadResult> {
  const { server, version, integrity, chain } = job.data;
  serverSettings(context, server);
  await context.state.update(server, { state: startState('download') });
  const file = context.layout.backupFile(integrity);
  let cached = true;
  let bytes: number;
  try {
    bytes = (await fs.stat(file)).size;
  } catch {
    cached = false;
    bytes =
      job.data.ecosystem === 'pypi'
        ? (
            await (
              await pypiIndexFor(context.config)
            ).download(job.data.tarball, integrity, file, `${job.data.file ?? 'the file'} of ${job.data.package} ${version}`)
          ).bytes
        : (await context.registry.downloadTarball(job.data, file)).bytes;
  }
  await context.events.publish({
    type: 'update.downloaded',
    server,
    version,
    jobId: job.id,
    reason: job.data.reason,
    details: { bytes, cached },
  });
  await enqueue(context.queues, 'stage', {
    server,
    chain,
    package: job.data.package,
    version,
    integrity,
    ...(job.data.ecosystem ? { ecosystem: job.data.ecosystem } : {}),
    ...(job.data.provenance ? { provenance: job.data.provenance } : {}),
    ...(job.data.reason ? { reason: job.data.reason } : {}),
    ...(job.data.force ? { force: true } : {}),
  });
  return { file, bytes, cached, chain };
}
