/*
 * What every pipeline worker shares: payload validation before any work (a bad payload fails at
 * once, without retries), the retry decision of shared/errors.ts, the one failure path
 * (workers/failure.ts) for every way a job ends badly — including jobs BullMQ fails itself after
 * they stalled too often — logs, and error listeners so a Redis hiccup never crashes a process.
 */
import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { describeError, isRetryable, MCPError, ValidationError } from '../shared/errors.js';
import { ownedConnection } from '../shared/redis.js';
import { validateJobData, type JobDataByQueue, type JobResultByQueue, type QueueName } from '../shared/queues.js';
import type { WorkerContext } from './context.js';
import { recordFailure } from './failure.js';

/** Make an error safe to throw from a BullMQ processor: non-retryable ones stop the job at once. */
export function toJobError(error: unknown): Error {
  const err = error instanceof Error ? error : new Error(String(error));
  if (isRetryable(err)) return err;
  if (err instanceof UnrecoverableError) return err;
  const unrecoverable = new UnrecoverableError(err instanceof MCPError ? err.toString() : err.message);
  (unrecoverable as { code?: string }).code = (err as { code?: string }).code;
  return unrecoverable;
}

/** The part of a BullMQ job a processor uses; tests pass plain objects. */
export interface JobLike<T> {
  id?: string;
  name?: string;
  data: T;
  attemptsMade?: number;
  opts?: { attempts?: number };
  updateProgress?(progress: number | object): Promise<void>;
}

export type Processor<Q extends QueueName> = (job: JobLike<JobDataByQueue[Q]>, context: WorkerContext) => Promise<JobResultByQueue[Q]>;

export interface PipelineWorkerOptions {
  /** Lock duration for long jobs (stage runs npm install and a smoke test). */
  lockDurationMs?: number;
}

/** Set on an error whose failure runProcessor recorded, so the worker's `failed` listener does not record it again. */
const RECORDED = Symbol('mcp-updater.failure-recorded');

function markRecorded(error: Error): Error {
  (error as unknown as Record<symbol, boolean>)[RECORDED] = true;
  return error;
}

/** Is this the attempt after which BullMQ gives up? */
export function isFinalAttempt(job: Pick<JobLike<unknown>, 'attemptsMade' | 'opts'>, error: Error): boolean {
  return error instanceof UnrecoverableError || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
}

/** Validate, run, and map errors; exported so tests run a processor exactly as the worker does. */
export async function runProcessor<Q extends QueueName>(
  queue: Q,
  job: JobLike<JobDataByQueue[Q]>,
  context: WorkerContext,
  exec: Processor<Q>,
): Promise<JobResultByQueue[Q]> {
  const logger = queue === 'cleanup' ? context.log.cleanup : context.log.automation;
  let data: JobDataByQueue[Q];
  try {
    data = validateJobData(queue, job.data);
  } catch (error) {
    await recordFailure(context, { queue, id: job.id, data: job.data }, error as ValidationError);
    throw markRecorded(withCodeInMessage(toJobError(error as ValidationError)));
  }
  try {
    return await exec({ ...job, data } as JobLike<JobDataByQueue[Q]>, context);
  } catch (error) {
    const jobError = toJobError(error);
    const final = isFinalAttempt(job, jobError);
    if (final) {
      await recordFailure(context, { queue, id: job.id, data }, error as Error);
      throw markRecorded(withCodeInMessage(jobError));
    }
    logger.warn(`${queue} job ${job.id} will be retried: ${describeError(error)}`, {
      queue,
      jobId: job.id,
      server: (data as { server?: string }).server,
      attempt: (job.attemptsMade ?? 0) + 1,
    });
    throw withCodeInMessage(jobError);
  }
}

/**
 * BullMQ keeps only an error's message (the job's failedReason, shown by Bull Board and
 * `check --wait`): put the stable code in front, so "EINTEGRITY: ..." survives in Redis.
 */
function withCodeInMessage(error: Error): Error {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '' && !error.message.startsWith(code)) error.message = `${code}: ${error.message}`;
  return error;
}

/** A BullMQ Worker for `queue` on its own blocking connection. */
export function createPipelineWorker<Q extends QueueName>(
  queue: Q,
  context: WorkerContext,
  exec: Processor<Q>,
  options: PipelineWorkerOptions = {},
): Worker<JobDataByQueue[Q], JobResultByQueue[Q]> {
  const worker = new Worker<JobDataByQueue[Q], JobResultByQueue[Q]>(
    queue,
    (job: Job<JobDataByQueue[Q], JobResultByQueue[Q]>) => runProcessor(queue, job as unknown as JobLike<JobDataByQueue[Q]>, context, exec),
    {
      // Options, not a client: BullMQ then closes the connection on close() (a client it was
      // handed stays open and keeps the process alive).
      connection: ownedConnection(context.config, 'worker'),
      prefix: context.config.queuePrefix,
      // Recorded on every job it takes (processedBy): which host and process held a stalled job.
      name: `${os.hostname()}:${process.pid}`,
      concurrency: context.config.concurrency[queue],
      // JOB_LOCK_DURATION overrides every queue's own lock, and the stalled check follows it, so
      // a job whose worker died (kill -9, OOM) is taken up again within about twice that time.
      lockDuration: context.config.jobLockDurationMs ?? options.lockDurationMs ?? 30_000,
      ...(context.config.jobLockDurationMs ? { stalledInterval: context.config.jobLockDurationMs } : {}),
      maxStalledCount: 2,
      autorun: true,
    },
  );
  worker.on('error', (error) => {
    context.log.orchestration.error(`${queue} worker error: ${describeError(error)}`, { queue });
  });
  // Failures the processor never saw: BullMQ gives up on a job that stalled too often (its worker
  // was killed or OOM-killed mid-job) without running the processor again.
  worker.on('failed', (job, error) => {
    if (!job || (error as unknown as Record<symbol, boolean>)[RECORDED]) return;
    if (!isFinalAttempt({ attemptsMade: job.attemptsMade - 1, opts: job.opts }, error)) return;
    void recordFailure(context, { queue, id: job.id, data: job.data }, error);
  });
  return worker;
}
