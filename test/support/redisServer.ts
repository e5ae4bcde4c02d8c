/*
 * A private redis-server for tests that take Redis away (never the shared one on 6379): a child
 * `redis-server --port N --save '' --appendonly no` on a free port with its own temp directory.
 * `stop()` ends it (by default with SHUTDOWN SAVE, so `start()` on the same port brings the same
 * data back, like a Redis restart with persistence; `{ lose: true }` kills it and the data with it).
 *
 * And the suite's own Redis (ensureSuiteRedis): when nothing answers at TEST_REDIS_URL's default
 * address and redis-server is installed, one is started there for the run, as `npm start` does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { hasRedisServer, isDefaultAddress, redisAnswers } from '../../cli/redisLauncher.js';

/** A TCP port nobody listens on right now (the kernel's choice for port 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 300,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export class PrivateRedis {
  private child?: ChildProcess;
  /** How many times the server was started (1 after `PrivateRedis.start()`). */
  starts = 0;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** A new server on `port` (default: a free one), answering PING before this resolves. */
  static async start(port?: number): Promise<PrivateRedis> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-redis-'));
    const redis = new PrivateRedis(port ?? (await freePort()), dir);
    await redis.start();
    return redis;
  }

  /** Start (again) on the same port; loads dump.rdb if a SHUTDOWN SAVE left one. */
  async start(timeoutMs = 10_000): Promise<void> {
    if (this.running) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.child = child;
    this.starts += 1;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`redis-server on port ${this.port} exited at start: ${stderr.trim()}`);
      if (await answers(this.url)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not answer within ${timeoutMs} ms`);
  }

  /** Stop the server: SHUTDOWN SAVE (data kept for the next start) or, with `lose`, SIGKILL. */
  async stop(options: { lose?: boolean } = {}): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (options.lose) {
      child.kill('SIGKILL');
      await fs.rm(path.join(this.dir, 'dump.rdb'), { force: true });
    } else {
      const client = new Redis(this.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      // The server closes the connection instead of answering.
      await client.call('SHUTDOWN', 'SAVE').catch(() => undefined);
      client.disconnect();
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stop for good and remove the data directory. */
  async close(): Promise<void> {
    await this.stop({ lose: true });
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Redis for the whole run at `url`: the one that answers there, or, when none does, the address
 * is the default local one and redis-server is installed, a PrivateRedis started on its port
 * (nothing kept on disk). Returns how to stop what was started (nothing when Redis was there).
 */
export async function ensureSuiteRedis(url: string): Promise<{ started: boolean; stop(): Promise<void> }> {
  if (await redisAnswers(url, 1_500)) return { started: false, stop: async () => undefined };
  const howTo = 'install Redis (`apt-get install -y redis-server`) or set TEST_REDIS_URL to a Redis the tests may use';
  if (!isDefaultAddress(url)) throw new Error(`no Redis answers at ${url} (TEST_REDIS_URL): ${howTo}`);
  if (!hasRedisServer()) throw new Error(`no Redis answers at ${url} and redis-server is not installed: ${howTo}`);
  const redis = await PrivateRedis.start(Number(new URL(url).port || 6379));
  return { started: true, stop: () => redis.close() };
}
