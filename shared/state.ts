/*
 * Per-server state in Redis (docs/ARCHITECTURE.md "Server record": current, previous, latest,
 * candidate, state, last error, last check, history) shared by every worker, the API and the CLI.
 * One hash per server, one capped list of history entries, a set of failed versions and a set of
 * known server names.
 *
 * Disk is the truth for what is installed: whenever a server's record is missing (Redis restarted
 * empty, or was flushed), `current`, `previous`, the history and the versions rolled away from are
 * rebuilt from the install layout (the `current` link and `<name>/history.json`) before anything
 * is answered. Redis holds what the disk cannot know: jobs, the last check, the last error.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { DiskHistory, HistoryEntry } from './layout.js';
import { HISTORY_LIMIT, InstallLayout } from './layout.js';
import { appKey } from './redis.js';
import type { ServerDiskUsage } from './store.js';
import { nextState, type ServerStateName } from './stateMachine.js';

export type { ServerStateName } from './stateMachine.js';

export interface ServerState {
  name: string;
  package?: string;
  current?: string;
  previous?: string;
  /** What the followed dist-tag points at. */
  latest?: string;
  /** Highest version the policy allows now (may equal current). */
  candidate?: string;
  /** Staged version waiting for approval (activation: manual, or held by a trust gate: surface or source repository change). */
  staged?: string;
  /** Why the staged version waits, when the surface gate holds it ("breaking: removed tool add"). */
  gate?: string;
  state: ServerStateName;
  lastError?: string;
  lastCheck?: string;
  /** Short outcome of the last check ("up to date", "update 1.2.3", "2.0.0 blocked by policy minor"). */
  lastCheckResult?: string;
  updatedAt?: string;
  /** The last chain a check started for this server, and its version (check looks it up to find it alive). */
  chain?: string;
  chainVersion?: string;
  /**
   * The version an operator rolled back from: checks skip every version up to it until a newer
   * one is activated, an approve, or a forced check (kept in history.json too).
   */
  hold?: string;
  /** Versions that failed integrity, staging or smoke test; checks skip them unless forced. */
  failedVersions: string[];
  /** Bytes on disk, measured after the last stage, activation or cleanup (shared/store.ts). */
  disk?: ServerDiskUsage;
}

type StoredFields = Omit<ServerState, 'name' | 'failedVersions'>;
const FIELDS: (keyof StoredFields)[] = [
  'package',
  'current',
  'previous',
  'latest',
  'candidate',
  'staged',
  'gate',
  'state',
  'lastError',
  'lastCheck',
  'lastCheckResult',
  'updatedAt',
  'chain',
  'chainVersion',
  'hold',
  'disk',
];

/*
 * A check reads and writes a server's state three times: each is one Lua script (one command, one
 * socket write) rather than two or three commands, or an ioredis Pipeline, which is costly to build
 * on a connection BullMQ loaded its scripts into (it copies every script, ~30 µs). The history
 * append likewise. Keys share QUEUE_PREFIX, so they share a slot under Cluster's `{mcp}` prefix.
 */
const GET_STATE = `return {redis.call('HMGET', KEYS[1], unpack(ARGV)), redis.call('SMEMBERS', KEYS[2])}`;
/** ARGV: server, number of field/value pairs, the pairs, then the fields to clear. */
const UPDATE_STATE = `
local last = 2 + tonumber(ARGV[2]) * 2
redis.call('HSET', KEYS[1], unpack(ARGV, 3, last))
redis.call('SADD', KEYS[2], ARGV[1])
if #ARGV > last then redis.call('HDEL', KEYS[1], unpack(ARGV, last + 1)) end
return 1`;

const APPEND_HISTORY = `redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1`;

/** Refill a lost history list, unless a concurrent rebuild (or a new entry) got there first. */
const FILL_HISTORY = `if redis.call('LLEN', KEYS[1]) == 0 then redis.call('RPUSH', KEYS[1], unpack(ARGV)) end
return 1`;

interface StateScripts {
  mcpUpdaterFillHistory(key: string, ...entries: string[]): Promise<number>;
  mcpUpdaterGetState(key: string, failedKey: string, ...fields: string[]): Promise<[(string | null)[], string[]]>;
  mcpUpdaterUpdateState(key: string, indexKey: string, server: string, pairs: number, ...fieldsThenCleared: string[]): Promise<number>;
  mcpUpdaterAppendHistory(key: string, entry: string, limit: number): Promise<number>;
}

function stateScripts(redis: Redis): StateScripts {
  const scripted = redis as unknown as Partial<StateScripts>;
  if (!scripted.mcpUpdaterGetState) redis.defineCommand('mcpUpdaterGetState', { numberOfKeys: 2, lua: GET_STATE });
  if (!scripted.mcpUpdaterUpdateState) redis.defineCommand('mcpUpdaterUpdateState', { numberOfKeys: 2, lua: UPDATE_STATE });
  if (!scripted.mcpUpdaterFillHistory) redis.defineCommand('mcpUpdaterFillHistory', { numberOfKeys: 1, lua: FILL_HISTORY });
  if (!scripted.mcpUpdaterAppendHistory) redis.defineCommand('mcpUpdaterAppendHistory', { numberOfKeys: 1, lua: APPEND_HISTORY });
  return redis as unknown as StateScripts;
}

type StoreConfig = Pick<Config, 'queuePrefix' | 'serversPath' | 'stagingDir' | 'backupDir'>;

export class StateStore {
  private readonly scripts: StateScripts;
  private readonly layout: InstallLayout;

  constructor(
    private readonly redis: Redis,
    private readonly config: StoreConfig,
  ) {
    this.scripts = stateScripts(redis);
    this.layout = new InstallLayout(config);
  }

  private key(server: string): string {
    return appKey(this.config, 'server', server);
  }
  private historyKey(server: string): string {
    return appKey(this.config, 'history', server);
  }
  private failedKey(server: string): string {
    return appKey(this.config, 'failed', server);
  }
  private get indexKey(): string {
    return appKey(this.config, 'servers');
  }

  async get(server: string): Promise<ServerState> {
    const [values, failed] = await this.scripts.mcpUpdaterGetState(this.key(server), this.failedKey(server), ...FIELDS);
    if (isMissing(values)) return this.rebuild(server);
    return toState(server, values, failed);
  }

  /** Many servers in one round trip (status page with thousands of servers). */
  async getMany(servers: string[]): Promise<ServerState[]> {
    return Promise.all(await this.readMany(servers));
  }

  private async readMany(servers: string[]): Promise<Array<ServerState | Promise<ServerState>>> {
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
      const fields = values as (string | null)[];
      return isMissing(fields) ? this.rebuild(name) : toState(name, fields, failed as string[]);
    });
  }

  /**
   * Write the record of `server` from the disk: `current` from its link, `previous`, the package
   * and the history from history.json, and the versions an operator or a failed post-activation
   * check rolled away from (checks skip them until forced), and a rollback's hold. Nothing on
   * disk: nothing is written.
   */
  async rebuild(server: string): Promise<ServerState> {
    const [current, history] = await Promise.all([this.layout.currentVersion(server), this.layout.readHistory(server)]);
    if (current === undefined && history === undefined) return { name: server, state: 'idle', failedVersions: [] };
    const failedVersions = history ? versionsRolledAwayFrom(history) : [];
    const patch = {
      current: current ?? null,
      previous: history?.previous && history.previous !== current ? history.previous : null,
      package: history?.package ?? null,
      hold: history?.hold ?? null,
      state: nextState('idle', { step: 'rebuild', event: 'done' }) ?? 'idle',
    };
    await this.update(server, patch);
    if (failedVersions.length > 0) await this.redis.sadd(this.failedKey(server), ...failedVersions);
    if (history && history.entries.length > 0) {
      const newestFirst = history.entries
        .slice(-HISTORY_LIMIT)
        .reverse()
        .map((entry) => JSON.stringify(entry));
      await this.scripts.mcpUpdaterFillHistory(this.historyKey(server), ...newestFirst);
    }
    return this.get(server);
  }

  /** Set fields; `undefined` leaves a field alone, `null` clears it. */
  async update(server: string, patch: { [K in keyof StoredFields]?: StoredFields[K] | null }): Promise<void> {
    const set: string[] = ['updatedAt', new Date().toISOString()];
    const clear: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      if (value === null) clear.push(field);
      else set.push(field, typeof value === 'object' ? JSON.stringify(value) : String(value));
    }
    await this.scripts.mcpUpdaterUpdateState(this.key(server), this.indexKey, server, set.length / 2, ...set, ...clear);
  }

  async markFailedVersion(server: string, version: string): Promise<void> {
    await this.redis.sadd(this.failedKey(server), version);
  }

  async clearFailedVersion(server: string, version: string): Promise<void> {
    await this.redis.srem(this.failedKey(server), version);
  }

  /**
   * Set (a version) or lift (undefined) the rollback hold, in Redis and in history.json, so a
   * rebuild from disk keeps it.
   */
  async setHold(server: string, hold: string | undefined): Promise<void> {
    await this.update(server, { hold: hold ?? null });
    const history = await this.layout.readHistory(server);
    if (!history || history.hold === hold) return;
    const { hold: _previous, ...rest } = history;
    await this.layout.writeHistory(hold ? { ...rest, hold } : rest);
  }

  async appendHistory(server: string, entry: HistoryEntry): Promise<void> {
    await this.scripts.mcpUpdaterAppendHistory(this.historyKey(server), JSON.stringify(entry), HISTORY_LIMIT);
  }

  /** Newest first; rebuilt from history.json when Redis has none. */
  async history(server: string, limit = HISTORY_LIMIT): Promise<HistoryEntry[]> {
    let items = await this.redis.lrange(this.historyKey(server), 0, limit - 1);
    if (items.length === 0 && (await this.layout.readHistory(server))?.entries.length) {
      await this.rebuild(server);
      items = await this.redis.lrange(this.historyKey(server), 0, limit - 1);
    }
    return items.map((item) => JSON.parse(item) as HistoryEntry);
  }

  /** Names of every server that ever had state (includes servers since removed from the inventory). */
  async knownServers(): Promise<string[]> {
    return (await this.redis.smembers(this.indexKey)).sort();
  }

  /** Forget a server's state (it left the inventory and its files are gone). */
  async remove(server: string): Promise<void> {
    await execOrThrow(
      this.redis.pipeline().del(this.key(server), this.historyKey(server), this.failedKey(server)).srem(this.indexKey, server),
    );
  }
}

/** A record that was never written (or was lost with Redis): every field is empty, updatedAt too. */
function isMissing(values: (string | null)[]): boolean {
  return values[FIELDS.indexOf('updatedAt')] === null;
}

/**
 * Versions that were switched away from by a rollback or a failed post-activation check and not
 * activated again since: checks skip them, as they did before Redis lost the record.
 */
export function versionsRolledAwayFrom(history: Pick<DiskHistory, 'entries'>): string[] {
  const held = new Set<string>();
  for (const entry of history.entries) {
    if ((entry.action === 'rollback' || entry.action === 'auto-rollback') && entry.from) held.add(entry.from);
    else held.delete(entry.to);
  }
  return [...held].sort();
}

function toState(name: string, values: (string | null)[], failed: string[]): ServerState {
  const state: ServerState = { name, state: 'idle', failedVersions: failed.sort() };
  values.forEach((value, fieldIndex) => {
    if (value === null || value === '') return;
    const field = FIELDS[fieldIndex]!;
    if (field === 'disk') state.disk = JSON.parse(value) as ServerDiskUsage;
    else (state as unknown as Record<string, string>)[field] = value;
  });
  return state;
}

export async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
