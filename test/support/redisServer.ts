/*
 * A private redis-server for tests that take Redis away (never the shared one on 6379): a child
 * `redis-server --port N --save '' --appendonly no` on a free port with its own temp directory.
 * `stop()` ends it (by default with SHUTDOWN SAVE, so `start()` on the same port brings the same
 * data back, like a Redis restart with persistence; `{ lose: true }` kills it and the data with it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

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
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 300, retryStrategy: () => null, enableOfflineQueue: false });
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

  private constructor(readonly port: number, readonly dir: string) {}

  get url(): string { return `redis://127.0.0.1:${this.port}`; }
  get pid(): number | undefined { return this.child?.pid; }
  get running(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }

  /** A new server on a free port, answering PING before this resolves. */
  static async start(): Promise<PrivateRedis> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-redis-'));
    const redis = new PrivateRedis(await freePort(), dir);
    await redis.start();
    return redis;
  }

  /** Start (again) on the same port; loads dump.rdb if a SHUTDOWN SAVE left one. */
  async start(timeoutMs = 10_000): Promise<void> {
    if (this.running) return;
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
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
