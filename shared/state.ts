/*
 * Per-server state in Redis (DESIGN.md: current, previous, latest, candidate, state, last error,
 * last check, history) shared by every worker, the API and the CLI. One hash per server, one
 * capped list of history entries, and a set of known server names.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { HistoryEntry } from './layout.js';
import { HISTORY_LIMIT } from './layout.js';
import { appKey } from './redis.js';

export const SERVER_STATES = ['idle', 'checking', 'downloading', 'staging', 'awaiting-approval', 'activating', 'failed'] as const;
export type ServerStateName = (typeof SERVER_STATES)[number];

export interface ServerState {
  name: string;
  package?: string;
  current?: string;
  previous?: string;
  /** What the followed dist-tag points at. */
  latest?: string;
  /** Highest version the policy allows now (may equal current). */
  candidate?: string;
  /** Staged version waiting for approval (activation: manual). */
  staged?: string;
  state: ServerStateName;
  lastError?: string;
  lastCheck?: string;
  /** Short outcome of the last check ("up to date", "update 1.2.3", "2.0.0 blocked by policy minor"). */
  lastCheckResult?: string;
  updatedAt?: string;
  /** Versions that failed integrity, staging or smoke test; checks skip them unless forced. */
  failedVersions: string[];
}

type StoredFields = Omit<ServerState, 'name' | 'failedVersions'>;
const FIELDS: (keyof StoredFields)[] = [
  'package', 'current', 'previous', 'latest', 'candidate', 'staged', 'state', 'lastError', 'lastCheck',
  'lastCheckResult', 'updatedAt',
];

export class StateStore {
  constructor(private readonly redis: Redis, private readonly config: Pick<Config, 'queuePrefix'>) {}

  private key(server: string): string { return appKey(this.config, 'server', server); }
  private historyKey(server: string): string { return appKey(this.config, 'history', server); }
  private failedKey(server: string): string { return appKey(this.config, 'failed', server); }
  private get indexKey(): string { return appKey(this.config, 'servers'); }

  async get(server: string): Promise<ServerState> {
    const [state] = await this.getMany([server]);
    return state!;
  }

  /** Many servers in one round trip (status page with thousands of servers). */
  async getMany(servers: string[]): Promise<ServerState[]> {
    if (servers.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const server of servers) {
      pipeline.hmget(this.key(server), ...FIELDS);
      pipeline.smembers(this.failedKey(server));
    }
    const replies = (await pipeline.exec()) ?? [];
    return servers.map((name, index) => {
      const [fieldError, values] = replies[index * 2]!;
      const [setError, failed] = replies[index * 2 + 1]!;
      if (fieldError) throw fieldError;
      if (setError) throw setError;
      const state: ServerState = { name, state: 'idle', failedVersions: (failed as string[]).sort() };
      (values as (string | null)[]).forEach((value, fieldIndex) => {
        if (value !== null && value !== '') (state as unknown as Record<string, string>)[FIELDS[fieldIndex]!] = value;
      });
      return state;
    });
  }

  /** Set fields; `undefined` leaves a field alone, `null` clears it. */
  async update(server: string, patch: { [K in keyof StoredFields]?: StoredFields[K] | null }): Promise<void> {
    const set: Record<string, string> = { updatedAt: new Date().toISOString() };
    const clear: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      if (value === null) clear.push(field); else set[field] = String(value);
    }
    const pipeline = this.redis.pipeline().hset(this.key(server), set).sadd(this.indexKey, server);
    if (clear.length > 0) pipeline.hdel(this.key(server), ...clear);
    await execOrThrow(pipeline);
  }

  async markFailedVersion(server: string, version: string): Promise<void> {
    await this.redis.sadd(this.failedKey(server), version);
  }

  async clearFailedVersion(server: string, version: string): Promise<void> {
    await this.redis.srem(this.failedKey(server), version);
  }

  async appendHistory(server: string, entry: HistoryEntry): Promise<void> {
    await execOrThrow(this.redis.pipeline()
      .lpush(this.historyKey(server), JSON.stringify(entry))
      .ltrim(this.historyKey(server), 0, HISTORY_LIMIT - 1));
  }

  /** Newest first. */
  async history(server: string, limit = HISTORY_LIMIT): Promise<HistoryEntry[]> {
    const items = await this.redis.lrange(this.historyKey(server), 0, limit - 1);
    return items.map((item) => JSON.parse(item) as HistoryEntry);
  }

  /** Names of every server that ever had state (includes servers since removed from the inventory). */
  async knownServers(): Promise<string[]> {
    return (await this.redis.smembers(this.indexKey)).sort();
  }

  /** Forget a server's state (it left the inventory and its files are gone). */
  async remove(server: string): Promise<void> {
    await execOrThrow(this.redis.pipeline()
      .del(this.key(server), this.historyKey(server), this.failedKey(server))
      .srem(this.indexKey, server));
  }
}

export async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
