/*
 * The producer client: what the CLI, the HTTP API and other Node services use to put jobs into
 * Redis (check, approve, rollback, cleanup). Payloads are validated before they are sent; when
 * Redis is down every call fails at once with RedisUnavailableError instead of hanging.
 *
 *   const client = ProducerClient.connect({ redisUrl: 'redis://127.0.0.1:6379', queuePrefix: 'mcp' });
 *   const { jobId } = await client.check('memory', { reason: 'new release announced' });
 *   await client.close();
 */
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../shared/config.js';
import type { Ecosystem } from '../shared/inventory.js';
import {
  enqueue,
  enqueueChecks,
  requestChainId,
  type ActivateJobData,
  type CheckJobData,
  type CleanupJobData,
  type JobResultByQueue,
  type QueueName,
} from '../shared/queues.js';
import { closeQueues, createQueueEvents, createQueues, type QueueSet } from '../shared/queueSet.js';
import { createRedis, RedisUnavailableError, waitForRedis } from '../shared/redis.js';

export interface EnqueueResult {
  jobId: string;
  queue: QueueName;
}

export interface ProducerClientOptions {
  redisUrl?: string;
  queuePrefix?: string;
  maxRetries?: number;
}

export class ProducerClient {
  private readonly connection: Redis;
  private readonly queues: QueueSet;
  private readonly events = new Map<QueueName, QueueEvents>();

  private constructor(private readonly config: Config) {
    this.connection = createRedis(config, 'producer');
    this.queues = createQueues(config, this.connection);
  }

  /** Connect with a full Config (the CLI, the API) or just the Redis URL and prefix (other services). */
  static connect(options: Config | ProducerClientOptions = {}): ProducerClient {
    const config =
      'serversPath' in options
        ? (options as Config)
        : loadConfig({
            ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
            ...(options.queuePrefix ? { QUEUE_PREFIX: options.queuePrefix } : {}),
            ...(options.maxRetries ? { MAX_RETRIES: String(options.maxRetries) } : {}),
          });
    return new ProducerClient(config);
  }

  /** Fail fast with RedisUnavailableError when Redis does not answer. */
  async ready(timeoutMs = 3_000): Promise<void> {
    await waitForRedis(this.connection, this.config.redisUrl, timeoutMs);
  }

  get queue(): QueueSet {
    return this.queues;
  }

  async check(server: string, options: Omit<CheckJobData, 'server'> = {}): Promise<EnqueueResult> {
    const job = await this.guard(() => enqueue(this.queues, 'check', { server, ...options }));
    return { jobId: job.id!, queue: 'check' };
  }

  async checkAll(servers: string[], options: Omit<CheckJobData, 'server'> = {}): Promise<EnqueueResult[]> {
    const jobs = await this.guard(() =>
      enqueueChecks(
        this.queues,
        servers.map((server) => ({ server, ...options })),
      ),
    );
    return jobs.map((job) => ({ jobId: job.id!, queue: 'check' as const }));
  }

  /** `ecosystem` says how `version` is spelled (a pypi server's are PEP 440). */
  async approve(server: string, version: string, requestedBy?: string, ecosystem?: Ecosystem): Promise<EnqueueResult> {
    return this.activate({
      server,
      chain: requestChainId(server, 'approve'),
      action: 'approve',
      version,
      requestedBy,
      reason: 'approved',
      ...(ecosystem ? { ecosystem } : {}),
    });
  }

  async rollback(
    server: string,
    options: { version?: string; requestedBy?: string; reason?: string; ecosystem?: Ecosystem } = {},
  ): Promise<EnqueueResult> {
    return this.activate({
      server,
      chain: requestChainId(server, 'rollback'),
      action: 'rollback',
      ...options,
      reason: options.reason ?? 'rollback requested',
    });
  }

  async cleanup(options: CleanupJobData = {}): Promise<EnqueueResult> {
    const job = await this.guard(() => enqueue(this.queues, 'cleanup', options));
    return { jobId: job.id!, queue: 'cleanup' };
  }

  /** Wait for a job to finish; resolves its result (typed by queue) or rejects with its failure reason. */
  async waitFor<Q extends QueueName>(queue: Q, jobId: string, timeoutMs = 5 * 60_000): Promise<JobResultByQueue[Q]> {
    const job = await this.queues[queue].getJob(jobId);
    if (!job) throw new Error(`job ${jobId} is not in the ${queue} queue`);
    if (!this.events.has(queue)) {
      // A new QueueEvents reads from the end of the event stream only once it has connected; a job
      // finishing in between (after waitUntilFinished found it unfinished) would never be heard
      // of, and the wait would last its whole timeout. It starts from the stream's last entry now.
      const [last] = await this.connection.xrevrange(this.queues[queue].keys.events, '+', '-', 'COUNT', 1);
      if (!this.events.has(queue)) this.events.set(queue, createQueueEvents(queue, this.config, last?.[0] ?? '0-0'));
    }
    return (await job.waitUntilFinished(this.queueEvents(queue), timeoutMs)) as JobResultByQueue[Q];
  }

  queueEvents(queue: QueueName): QueueEvents {
    let events = this.events.get(queue);
    if (!events) {
      events = createQueueEvents(queue, this.config);
      this.events.set(queue, events);
    }
    return events;
  }

  async close(): Promise<void> {
    await Promise.all([...this.events.values()].map((events) => events.close()));
    await closeQueues(this.queues);
    this.connection.disconnect();
  }

  private async activate(data: ActivateJobData): Promise<EnqueueResult> {
    const job = await this.guard(() => enqueue(this.queues, 'activate', data));
    return { jobId: job.id!, queue: 'activate' };
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.connection.status !== 'ready') await this.ready();
    try {
      return await fn();
    } catch (error) {
      if (this.connection.status !== 'ready') throw new RedisUnavailableError(this.config.redisUrl, error);
      throw error;
    }
  }
}
