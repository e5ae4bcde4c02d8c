/*
 * The per-server activation lock: a Redis mutex (redis-semaphore), so one activation or cleanup
 * of a server runs at a time across all processes.
 */
import type { Redis } from 'ioredis';
import { Mutex, type LockOptions } from 'redis-semaphore';
import type { Config } from '../../shared/config.js';
import { describeError, LockError } from '../../shared/errors.js';
import { appKey } from '../../shared/redis.js';
import type { WorkerContext } from '../context.js';

/** Default TTL of the per-server lock (ACTIVATION_LOCK_TTL); refreshed while held, so it only matters when a worker dies. */
export const SERVER_LOCK_TIMEOUT_MS = 120_000;
/** How long to wait for another process's activation or cleanup before failing with LockError. */
export const SERVER_LOCK_ACQUIRE_TIMEOUT_MS = 5_000;

/**
 * redis-semaphore stores a mutex under `mutex:<key>`, outside QUEUE_PREFIX: Redis ACLs that allow
 * only the prefix's keys would refuse it, and nothing that works by prefix (cleanup, monitoring)
 * would see it. This one keeps the key it is given.
 */
class PrefixedMutex extends Mutex {
  constructor(client: Redis, key: string, options: LockOptions) {
    super(client, key, options);
    this._key = key;
  }
}

export function serverLockKey(config: Pick<Config, 'queuePrefix'>, server: string): string {
  return appKey(config, 'lock', 'activate', server);
}

export interface ServerLockOptions {
  acquireTimeoutMs?: number;
  lockTimeoutMs?: number;
}

/**
 * Run `fn` holding the server's activation lock (a Redis mutex, so across processes). Cleanup
 * takes it too before deleting a server's versions. `signal` aborts when the lock is lost
 * (Redis unreachable longer than the TTL): check it before changing anything on disk.
 * Not acquired within the acquire timeout: LockError (retryable).
 */
export async function withServerLock<T>(
  context: Pick<WorkerContext, 'redis' | 'config' | 'log'>,
  server: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options: ServerLockOptions = {},
): Promise<T> {
  const key = serverLockKey(context.config, server);
  const lockTimeout = options.lockTimeoutMs ?? context.config.activationLockTtlMs ?? SERVER_LOCK_TIMEOUT_MS;
  const lost = new AbortController();
  const mutex = new PrefixedMutex(context.redis, key, {
    lockTimeout,
    acquireTimeout: options.acquireTimeoutMs ?? SERVER_LOCK_ACQUIRE_TIMEOUT_MS,
    retryInterval: 100,
    refreshInterval: Math.round(lockTimeout / 3),
    onLockLost: (error) => {
      context.log.orchestration.error(`lost the lock of ${server} (${key}): ${error.message}`, { server });
      lost.abort(
        new LockError(`lost the lock of ${server} while working on it`, {
          hint: 'Redis was unreachable for longer than the lock TTL; the job is retried',
        }),
      );
    },
  });
  if (!(await mutex.tryAcquire())) {
    throw new LockError(`${server} is being activated or cleaned up by another worker (lock ${key} is held)`, {
      hint: `the job is retried with backoff; a lock left by a crashed worker expires after ${lockTimeout / 1000} s`,
      details: { server, key },
    });
  }
  try {
    return await fn(lost.signal);
  } finally {
    await mutex.release().catch((error: unknown) => {
      context.log.orchestration.warn(`releasing the lock of ${server} failed (it expires by itself): ${describeError(error)}`, { server });
    });
  }
}
