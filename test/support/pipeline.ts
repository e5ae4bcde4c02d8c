/*
 * Waiting for the pipeline to go quiet: end-to-end tests trigger a check and then wait until no job
 * of the chain's queues is left to run, whatever the chain did (installed, failed, waits for
 * approval).
 */
import type { QueueName } from '../../shared/queues.js';
import type { WorkerContext } from '../../workers/context.js';
import { waitUntil } from './wait.js';

/** The queues a server's update passes through, in order. */
export const PIPELINE_QUEUES = ['check', 'download', 'stage', 'activate', 'cleanup'] as const satisfies readonly QueueName[];

/** Job states in which a job will still run. */
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** True when no job of `queues` is waiting, delayed or running. */
export async function pipelineIdle(queues: WorkerContext['queues'], names: readonly QueueName[] = PIPELINE_QUEUES): Promise<boolean> {
  for (const name of names) {
    const counts = await queues[name].getJobCounts(...UNFINISHED);
    if (Object.values(counts).some((count) => count > 0)) return false;
  }
  return true;
}

/**
 * Wait until the pipeline is idle. Pass only the queues the test runs workers for: a queue without
 * a worker never empties.
 */
export async function settlePipeline(
  queues: WorkerContext['queues'],
  options: { queues?: readonly QueueName[]; timeoutMs?: number } = {},
): Promise<void> {
  await waitUntil('the pipeline to settle', () => pipelineIdle(queues, options.queues), options.timeoutMs ?? 60_000, 100);
}
