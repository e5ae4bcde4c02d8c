/*
 * What every pipeline worker shares: payload validation before any work (a bad payload fails at
 * once, without retries), the retry decision of shared/errors.ts, a hook for the final failure
 * (state + `update.failed`), logs, and error listeners so a Redis hiccup never crashes a process.
 */
import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { describeError, toJobError, ValidationError } from '../shared/errors.js';
import { ownedConnection } from '../shared/redis.js';
import { validateJobData, type JobDataByQueue, type QueueName } from '../shared/queues.js';
import type { WorkerContext } from './context.js';

/** The part of a BullMQ job a processor uses; tests pass plain objects. */
export interface JobLike<T> {
  id?: string;
  name?: string;
  data: T;
  attemptsMade?: number;
  opts?: { attempts?: number };
  updateProgress?(progress: number | object): Promise<void>;
}

export type Processor<Q extends QueueName, R> = (job: JobLike<JobDataByQueue[Q]>, context: WorkerContext) => Promise<R>;

export interface PipelineWorkerOptions<Q extends QueueName> {
  /** Called once when the job will not be tried again (unrecoverable or out of attempts). */
  onFinalFailure?: (job: JobLike<JobDataByQueue[Q]>, error: Error, context: WorkerContext) => Promise<void>;
  /** Lock duration for long jobs (stage runs npm install and a smoke test). */
  lockDurationMs?: number;
}

/** Is this the attempt after which BullMQ gives up? */
export function isFinalAttempt(job: JobLike<unknown>, error: Error): boolean {
  return error instanceof UnrecoverableError || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
}

/** Validate, run, and map errors; exported so tests run a processor exactly as the worker does. */
export async function runProcessor<Q extends QueueName, R>(
  queue: Q,
  job: JobLike<JobDataByQueue[Q]>,
  context: WorkerContext,
  exec: Processor<Q, R>,
  options: PipelineWorkerOptions<Q> = {},
): Promise<R> {
  const logger = queue === 'cleanup' ? context.log.cleanup : context.log.automation;
  let data: JobDataByQueue[Q];
  try {
    data = validateJobData(queue, job.data);
  } catch (error) {
    logger.error(`${queue} job ${job.id} refused: ${describeError(error)}`, { queue, jobId: job.id });
    throw withCodeInMessage(toJobError(error as ValidationError));
  }
  try {
    return await exec({ ...job, data } as JobLike<JobDataByQueue[Q]>, context);
  } catch (error) {
    const jobError = toJobError(error);
    const final = isFinalAttempt(job, jobError);
    logger.log(final ? 'error' : 'warn', `${queue} job ${job.id} ${final ? 'failed' : 'will be retried'}: ${describeError(error)}`, {
      queue, jobId: job.id, server: (data as { server?: string }).server, attempt: (job.attemptsMade ?? 0) + 1,
    });
    if (final && options.onFinalFailure) {
      try {
        await options.onFinalFailure({ ...job, data } as JobLike<JobDataByQueue[Q]>, error as Error, context);
      } catch (hookError) {
        logger.error(`${queue} job ${job.id}: recording the failure failed: ${describeError(hookError)}`, { queue, jobId: job.id });
      }
    }
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
export function createPipelineWorker<Q extends QueueName, R>(
  queue: Q,
  context: WorkerContext,
  exec: Processor<Q, R>,
  options: PipelineWorkerOptions<Q> = {},
): Worker<JobDataByQueue[Q], R> {
  const worker = new Worker<JobDataByQueue[Q], R>(
    queue,
    (job: Job<JobDataByQueue[Q], R>) => runProcessor(queue, job as unknown as JobLike<JobDataByQueue[Q]>, context, exec, options),
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
  return worker;
}
