/*
 * One scenario's world: its own random QUEUE_PREFIX on the local Redis, a temp directory for the
 * inventory, servers, backups and logs, and the environment a worker or dashboard child process
 * gets. `cleanup()` deletes only this prefix's keys and this directory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.js';
import { configureLogging } from '../../shared/logger.js';
import { deleteKeysWithPrefix } from '../../test/support/env.js';

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface BenchEnvOptions {
  registryUrl: string;
  /** Extra variables for the child processes and the parent's config (CONCURRENCY, …). */
  env?: Record<string, string>;
}

export class BenchEnv {
  readonly redis: Redis;
  readonly config: Config;

  private constructor(
    readonly root: string,
    readonly prefix: string,
    readonly env: Record<string, string>,
  ) {
    this.redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
    this.config = loadConfig(env);
  }

  static async create(name: string, options: BenchEnvOptions): Promise<BenchEnv> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), `mcpu-bench-${name}-`));
    const prefix = `mcpu-bench-${crypto.randomBytes(5).toString('hex')}`;
    const env: Record<string, string> = {
      REDIS_URL: BENCH_REDIS_URL,
      QUEUE_PREFIX: prefix,
      API_BASE_URL: options.registryUrl,
      MCP_SERVERS_CONFIG: path.join(root, 'mcp-servers.yaml'),
      MCP_SERVERS_PATH: path.join(root, 'servers'),
      BACKUP_DIR: path.join(root, 'backups'),
      LOG_DIR: path.join(root, 'logs'),
      LOG_LEVEL: 'warn',
      ...options.env,
    };
    await fs.writeFile(env.MCP_SERVERS_CONFIG!, 'servers: {}\n');
    const benchEnv = new BenchEnv(root, prefix, env);
    // The parent's own loggers (StateStore seeding, producers) write here, never to the console.
    configureLogging({ logDir: benchEnv.config.logDir, logLevel: 'warn', console: 'off' });
    return benchEnv;
  }

  get inventoryFile(): string {
    return this.env.MCP_SERVERS_CONFIG!;
  }

  async writeInventory(yaml: string): Promise<void> {
    await fs.writeFile(this.inventoryFile, yaml);
  }

  async cleanup(): Promise<void> {
    await deleteKeysWithPrefix(this.redis, this.prefix);
    this.redis.disconnect();
    await fs.rm(this.root, { recursive: true, force: true });
  }
}
