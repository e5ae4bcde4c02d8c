/*
 * `npm start` on a machine without a reachable Redis: when REDIS_URL is the default local
 * address and `redis-server` is installed, run one as a child (data in ./data/redis, AOF on,
 * noeviction); otherwise say how to get Redis.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type winston from 'winston';
import { Redis } from 'ioredis';
import { MCPError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact.js';

export interface LocalRedis {
  child?: ChildProcess;
  stop(): Promise<void>;
}

/** Does a Redis answer PING at `url` within `timeoutMs`? */
export async function redisAnswers(url: string, timeoutMs: number): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Only the default local address is ours to start; anything else is someone's configured Redis. */
export function isDefaultAddress(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.password || parsed.username || (parsed.pathname && parsed.pathname !== '/')) return false;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname) && (parsed.port === '' || parsed.port === '6379');
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function ensureRedis(url: string, dataRoot: string, log: winston.Logger): Promise<LocalRedis> {
  const none: LocalRedis = { stop: async () => undefined };
  if (await redisAnswers(url, 1_500)) return none;
  const howTo =
    'install Redis (`apt-get install -y redis-server`), run `docker compose up -d redis`, or set REDIS_URL to a reachable Redis';
  if (!isDefaultAddress(url)) {
    throw new MCPError('EREDIS', `Redis at ${redactUrl(url)} is not reachable`, { hint: howTo });
  }
  if (!hasRedisServer()) {
    throw new MCPError('EREDIS', `no Redis answers at ${redactUrl(url)} and redis-server is not installed`, { hint: howTo });
  }
  const dir = path.resolve(dataRoot, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  log.warn(`no Redis at ${url}: starting a local redis-server (data in ${dir}, AOF on)`);
  const child = spawn(
    'redis-server',
    [
      '--port',
      '6379',
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await redisAnswers(url, 500)) {
      return {
        child,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new MCPError('EREDIS', `the local redis-server did not start (exit code ${child.exitCode ?? 'none'})`, { hint: howTo });
}
