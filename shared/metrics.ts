/*
 * Pipeline counters that every process can add to and the dashboard can read, wherever the
 * worker ran: they live in Redis hashes, and dashboard/ turns them into prom-client metrics.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { appKey } from './redis.js';

/** Upper bounds (seconds) of the stage_duration_seconds histogram. */
export const STAGE_DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export type CounterName = 'checks_total' | 'updates_total' | 'rollbacks_total' | 'surface_changes_total' | 'provenance_total';

/*
 * checked() and observeStageDuration() write several fields each: one Lua script apiece, one
 * command, instead of a Pipeline (see the scripts of shared/state.ts for why).
 */
const RECORD_CHECK = `redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;
/** ARGV: seconds, then the bucket bounds the observation falls in. */
const OBSERVE_DURATION = `for i = 2, #ARGV do redis.call('HINCRBY', KEYS[1], 'le:' .. ARGV[i], 1) end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'sum', ARGV[1])
return 1`;

interface MetricsScripts {
  mcpUpdaterRecordCheck(countersKey: string, lastCheckKey: string, field: string, server: string, at: string): Promise<number>;
  mcpUpdaterObserveDuration(histogramKey: string, seconds: string, ...bounds: string[]): Promise<number>;
}

export class MetricsRecorder {
  private readonly scripts: MetricsScripts;

  constructor(
    private readonly redis: Redis,
    private readonly config: Pick<Config, 'queuePrefix'>,
  ) {
    const scripted = redis as unknown as Partial<MetricsScripts>;
    if (!scripted.mcpUpdaterRecordCheck) redis.defineCommand('mcpUpdaterRecordCheck', { numberOfKeys: 2, lua: RECORD_CHECK });
    if (!scripted.mcpUpdaterObserveDuration) redis.defineCommand('mcpUpdaterObserveDuration', { numberOfKeys: 1, lua: OBSERVE_DURATION });
    this.scripts = redis as unknown as MetricsScripts;
  }

  key(name: string): string {
    return appKey(this.config, 'metrics', name);
  }

  /** Counter fields are the label values joined by "|" (server names cannot contain it). */
  async increment(name: CounterName, labels: string[]): Promise<void> {
    await this.redis.hincrby(this.key(name), labels.join('|'), 1);
  }

  async checked(server: string, result: string, at: Date): Promise<void> {
    await this.scripts.mcpUpdaterRecordCheck(
      this.key('checks_total'),
      this.key('last_check'),
      `${server}|${result}`,
      server,
      String(at.getTime() / 1000),
    );
  }

  async observeStageDuration(seconds: number): Promise<void> {
    const bounds = STAGE_DURATION_BUCKETS.filter((bound) => seconds <= bound).map(String);
    await this.scripts.mcpUpdaterObserveDuration(this.key('stage_duration_seconds'), String(seconds), ...bounds);
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
