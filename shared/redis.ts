/*
 * The one Redis connection factory and the queue constructor. Workers wait for Redis forever
 * (maxRetriesPerRequest: null, as BullMQ requires); producers fail fast so an API call or a CLI
 * command answers at once with a clear error instead of hanging while Redis is down. BullMQ's
 * queue objects are built in shared/queueSet.ts, so what only reads Redis never loads BullMQ.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import type { Config } from './config.js';
import { MCPError } from './errors.js';
import { redactUrl } from './redact.js';

export type ConnectionRole = 'worker' | 'producer';

export class RedisUnavailableError extends MCPError {
  constructor(url: string, cause?: unknown) {
    const reason = cause instanceof Error ? ` (${cause.message})` : '';
    super('EREDIS', `Redis at ${redactUrl(url)} is not reachable${reason}`, {
      hint: 'start Redis (`redis-server`, `docker compose up redis`) or set REDIS_URL',
      retryable: true,
      cause,
    });
  }
}

export function redisOptions(role: ConnectionRole): RedisOptions {
  const reconnect = (times: number) => Math.min(200 * 2 ** Math.min(times, 6), 5_000);
  return role === 'worker'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: reconnect }
    : {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        connectTimeout: 3_000,
        commandTimeout: 5_000,
        retryStrategy: reconnect,
      };
}

/**
 * A new ioredis client for REDIS_URL. Errors are logged by the caller's 'error' listener.
 * `autoPipelining` sends the commands of one event-loop turn in one write: only for a connection
 * that never blocks (BZPOPMIN, XREAD… would hold up every command queued behind them), which is
 * why BullMQ's own Worker and QueueEvents connections (ownedConnection) never get it.
 */
export function createRedis(config: Pick<Config, 'redisUrl'>, role: ConnectionRole, options: { autoPipelining?: boolean } = {}): Redis {
  const client = new Redis(config.redisUrl, { ...redisOptions(role), ...(options.autoPipelining ? { enableAutoPipelining: true } : {}) });
  // An unhandled 'error' event would crash the process; reconnection is automatic.
  client.on('error', () => undefined);
  return client;
}

/** Resolve once the client is connected, or fail with RedisUnavailableError after `timeoutMs`. */
export async function waitForRedis(client: Redis, url: string, timeoutMs = 3_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(new RedisUnavailableError(url, new Error(`no answer within ${timeoutMs} ms`))), timeoutMs);
    const onReady = () => finish();
    const onEnd = () => finish(new RedisUnavailableError(url, new Error('connection closed')));
    function finish(error?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (error) reject(error);
      else resolve();
    }
    client.on('ready', onReady);
    client.on('end', onEnd);
  });
}

/**
 * Connection options (not a client) for BullMQ objects that need a connection of their own
 * (workers, QueueEvents): BullMQ then creates it and closes it on close(); a client it is
 * handed stays open and keeps the process alive.
 */
export function ownedConnection(config: Pick<Config, 'redisUrl'>, role: ConnectionRole): ConnectionOptions {
  return { url: config.redisUrl, ...redisOptions(role) } as ConnectionOptions;
}

/** Redis key for mcp-updater's own data (server state, events, locks), under QUEUE_PREFIX. */
export function appKey(config: Pick<Config, 'queuePrefix'>, ...parts: string[]): string {
  return [config.queuePrefix, 'mcp-updater', ...parts].join(':');
}

/** Warn-worthy Redis settings: BullMQ loses jobs if Redis may evict keys. */
export async function evictionPolicyProblem(client: Redis): Promise<string | undefined> {
  try {
    const reply = (await client.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy && policy !== 'noeviction') {
      return `Redis maxmemory-policy is "${policy}": Redis may evict queue keys and lose jobs; set it to noeviction (redis-cli CONFIG SET maxmemory-policy noeviction)`;
    }
  } catch {
    // Managed Redis often forbids CONFIG; nothing to say then.
  }
  return undefined;
}
