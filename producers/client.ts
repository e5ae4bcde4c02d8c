/*
 * The producer client: what the CLI, the HTTP API and other Node services use to put jobs into
 * Redis (check, approve, rollback, cleanup). Payloads are validated before they are sent; when
 * Redis is down every call fails at once with RedisUnavailableError instead of hanging.
 *
 *   const client = ProducerClient.connect({ redisUrl: 'redis://127.0.0.1:6379', queuePrefix: 'mcp' });
 *   const { jobId } = await client.check('memory', { reason: 'new release announced' });
 *   await client.close();
 */
import crypto from 'node:crypto';
import type { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../shared/config.js';
import {
  checkJobOptions, validateJobData,
  type ActivateJobData, type CheckJobData, type CleanupJobData, type JobDataByQueue, type QueueName,
} from '../shared/queues.js';
import { closeQueues, createQueueEvents, createQueues, createRedis, RedisUnavailableError, waitForRedis, type QueueSet } from '../shared/redis.js';

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
    const config = 'serversPath' in options
      ? options as Config
      : loadConfig({
          API_BASE_URL: 'http://127.0.0.1/',
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

  get queue(): QueueSet { return this.queues; }

  async check(server: string, options: Omit<CheckJobData, 'server'> = {}): Promise<EnqueueResult> {
    const data = validateJobData('check', { server, ...options });
    const job = await this.add('check', data, checkJobOptions(server));
    return { jobId: job.id!, queue: 'check' };
  }

  async checkAll(servers: string[], options: Omit<CheckJobData, 'server'> = {}): Promise<EnqueueResult[]> {
    const items = servers.map((server) => ({
      name: 'check', data: validateJobData('check', { server, ...options }), opts: checkJobOptions(server),
    }));
    const jobs = await this.guard(() => this.queues.check.addBulk(items));
    return jobs.map((job) => ({ jobId: job.id!, queue: 'check' as const }));
  }

  async approve(server: string, version: string, requestedBy?: string): Promise<EnqueueResult> {
    return this.activate({ server, action: 'approve', version, requestedBy, reason: 'approved' });
  }

  async rollback(server: string, options: { version?: string; requestedBy?: string; reason?: string } = {}): Promise<EnqueueResult> {
    return this.activate({ server, action: 'rollback', ...options, reason: options.reason ?? 'rollback requested' });
  }

  async cleanup(options: CleanupJobData = {}): Promise<EnqueueResult> {
    const data = validateJobData('cleanup', options);
    const job = await this.add('cleanup', data, { jobId: `cleanup-${Date.now()}-${crypto.randomBytes(3).toString('hex')}` });
    return { jobId: job.id!, queue: 'cleanup' };
  }

  /** Wait for a job to finish; resolves its return value or rejects with its failure reason. */
  async waitFor<R = unknown>(queue: QueueName, jobId: string, timeoutMs = 5 * 60_000): Promise<R> {
    const job = await this.queues[queue].getJob(jobId);
    if (!job) throw new Error(`job ${jobId} is not in the ${queue} queue`);
    return (await job.waitUntilFinished(this.queueEvents(queue), timeoutMs)) as R;
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
    const payload = validateJobData('activate', data);
    const jobId = `${payload.server}-${payload.action}-${Date.now()}-${crypto.randomBytes(3).toString('hex')}`;
    const job = await this.add('activate', payload, { jobId });
    return { jobId: job.id!, queue: 'activate' };
  }

  private async add<Q extends QueueName>(queue: Q, data: JobDataByQueue[Q], opts: Parameters<Queue['add']>[2]): Promise<Job> {
    const target = this.queues[queue] as unknown as Queue;
    return this.guard(() => target.add(queue, data, opts));
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
