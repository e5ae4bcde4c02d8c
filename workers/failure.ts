/*
 * The one failure path. Every way a job can end badly — an error thrown after its last attempt,
 * a payload that fails validation, a job BullMQ failed because it stalled too often, an
 * unexpected exception — ends here, once: the server's state (shared/stateMachine.ts), a
 * `lastError` saying what happened and what to do, one `update.failed` event, one metric
 * increment, and, when the cause belongs to the version itself, the version on the failed list.
 */
import { describeError, isVersionFault } from '../shared/errors.js';
import type { QueueName } from '../shared/queues.js';
import { SERVER_NAME_PATTERN } from '../shared/schemas.js';
import { stateAfterFailure, type Step } from '../shared/stateMachine.js';
import type { WorkerContext } from './context.js';

export type FailureKind = 'error' | 'invalid-payload' | 'stalled' | 'unexpected';

export interface FailedJob {
  queue: QueueName;
  id?: string;
  /** The job's data as it is (it may be invalid). */
  data: unknown;
}

const STEPS: Partial<Record<QueueName, Step>> = { check: 'check', download: 'download', stage: 'stage', activate: 'activate' };

/** Errors BullMQ raises itself when it gives up on a job its worker lost. */
const STALLED_MESSAGES = ['job stalled more than allowable limit', 'job started more than allowable limit'];

export function failureKind(error: Error): FailureKind {
  if (STALLED_MESSAGES.includes(error.message)) return 'stalled';
  if ((error as { code?: unknown }).code === 'EVALIDATION') return 'invalid-payload';
  if (error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError) return 'unexpected';
  return 'error';
}

/** What happened, and what to do, in one line for lastError, the event and the logs. */
export function failureMessage(job: FailedJob, error: Error, kind: FailureKind): string {
  const described = describeError(error);
  switch (kind) {
    case 'stalled':
      return `${job.queue} job ${job.id ?? ''} was given up: its worker stopped (killed, OOM or lost Redis) while running it more often than the stalled-job limit allows: see the worker's log and memory; the next check tries again`;
    case 'invalid-payload':
      return `${job.queue} job ${job.id ?? ''} was refused: ${described}`;
    case 'unexpected':
      return `${job.queue} job ${job.id ?? ''} hit an unexpected error (a bug in mcp-updater, please report it): ${described}`;
    default:
      return described;
  }
}

function fieldOf(data: unknown, key: string): string | undefined {
  const value = data && typeof data === 'object' ? (data as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Record the final failure of a job once. Never throws: a failure to record is logged. */
export async function recordFailure(context: WorkerContext, job: FailedJob, error: Error): Promise<void> {
  const step = STEPS[job.queue];
  const kind = failureKind(error);
  const reason = failureMessage(job, error, kind);
  const logger = job.queue === 'cleanup' ? context.log.cleanup : context.log.automation;
  const server = fieldOf(job.data, 'server');
  logger.error(`${job.queue} job ${job.id} failed for good (${kind}): ${reason}`, { queue: job.queue, jobId: job.id, server });
  if (!step || !server || !SERVER_NAME_PATTERN.test(server) || !context.inventory.server(server)) return;
  const version = fieldOf(job.data, 'version');
  try {
    const current = await context.state.get(server);
    const state = stateAfterFailure(current.state, step);
    if (version && isVersionFault(error)) await context.state.markFailedVersion(server, version);
    await context.state.update(server, {
      lastError: reason,
      ...(state ? { state } : {}),
      ...(step === 'check' ? { lastCheck: context.now().toISOString(), lastCheckResult: 'check failed' } : {}),
    });
    const from = (error as { details?: { from?: unknown } }).details?.from;
    await context.events.publish({
      type: 'update.failed',
      server,
      version,
      jobId: job.id,
      reason,
      ...(typeof from === 'string' ? { from } : {}),
      actor: fieldOf(job.data, 'requestedBy'),
      details: { step: job.queue, kind },
    });
    if (step === 'check') await context.metrics.checked(server, 'error', context.now());
    else await context.metrics.increment('updates_total', [server, 'failed']);
  } catch (recordError) {
    logger.error(`${job.queue} job ${job.id}: recording its failure failed: ${describeError(recordError)}`, {
      queue: job.queue,
      jobId: job.id,
    });
  }
}
