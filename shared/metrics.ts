/*
 * Pipeline counters that every process can add to and the dashboard can read, wherever the
 * worker ran: they live in Redis hashes, and dashboard/ turns them into prom-client metrics.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { appKey } from './redis.js';

/** Upper bounds (seconds) of the stage_duration_seconds histogram. */
export const STAGE_DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export type CounterName = 'checks_total' | 'updates_total' | 'rollbacks_total';

export class MetricsRecorder {
  constructor(private readonly redis: Redis, private readonly config: Pick<Config, 'queuePrefix'>) {}

  key(name: string): string { return appKey(this.config, 'metrics', name); }

  /** Counter fields are the label values joined by "|" (server names cannot contain it). */
  async increment(name: CounterName, labels: string[]): Promise<void> {
    await this.redis.hincrby(this.key(name), labels.join('|'), 1);
  }

  async checked(server: string, result: string, at: Date): Promise<void> {
    await this.redis.pipeline()
      .hincrby(this.key('checks_total'), `${server}|${result}`, 1)
      .hset(this.key('last_check'), server, String(at.getTime() / 1000))
      .exec();
  }

  async observeStageDuration(seconds: number): Promise<void> {
    const pipeline = this.redis.pipeline();
    const key = this.key('stage_duration_seconds');
    for (const bound of STAGE_DURATION_BUCKETS) if (seconds <= bound) pipeline.hincrby(key, `le:${bound}`, 1);
    pipeline.hincrby(key, 'count', 1).hincrbyfloat(key, 'sum', seconds);
    await pipeline.exec();
  }

  async readCounter(name: CounterName): Promise<Array<{ labels: string[]; value: number }>> {
    const hash = await this.redis.hgetall(this.key(name));
    return Object.entries(hash).map(([field, value]) => ({ labels: field.split('|'), value: Number(value) }));
  }

  async readLastChecks(): Promise<Record<string, number>> {
    const hash = await this.redis.hgetall(this.key('last_check'));
    return Object.fromEntries(Object.entries(hash).map(([server, value]) => [server, Number(value)]));
  }

  async readStageDurations(): Promise<{ buckets: Array<{ le: number; count: number }>; count: number; sum: number }> {
    const hash = await this.redis.hgetall(this.key('stage_duration_seconds'));
    return {
      buckets: STAGE_DURATION_BUCKETS.map((le) => ({ le, count: Number(hash[`le:${le}`] ?? 0) })),
      count: Number(hash.count ?? 0),
      sum: Number(hash.sum ?? 0),
    };
  }
}
