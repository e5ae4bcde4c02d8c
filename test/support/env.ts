/*
 * A test's own world: a random QUEUE_PREFIX on the real Redis, temp directories for servers,
 * staging, backups and logs, an inventory file, and a WorkerContext. `cleanup()` removes only
 * this test's Redis keys and files.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.js';
import { inventoryDefaults, InventoryWatcher } from '../../shared/inventory.js';
import { configureLogging } from '../../shared/logger.js';
import { createWorkerContext, closeWorkerContext, type WorkerContext } from '../../workers/context.js';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestEnvOptions {
  /** Registry URL (the fixture registry's `url`). */
  registryUrl?: string;
  /** Inventory YAML written to the inventory file. */
  inventory?: string;
  /** Extra environment variables for loadConfig. */
  env?: Record<string, string>;
}

export interface TestEnv {
  root: string;
  prefix: string;
  config: Config;
  /** The process env that produced `config` (for child processes). */
  env: Record<string, string>;
  inventoryFile: string;
  writeInventory(yaml: string): Promise<void>;
  /** A WorkerContext on this env; closed by cleanup(). */
  context(options?: { now?: () => Date }): Promise<WorkerContext>;
  redis: Redis;
  cleanup(): Promise<void>;
}

export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

const ISSUED = Symbol.for('mcp-updater.test.prefixes');

/**
 * Every QUEUE_PREFIX createTestEnv handed out in this process: at the end of the run the
 * isolation check (test/support/isolation.ts) looks for keys left under them. A global, as the
 * mocha plugin and the test files may load this module apart.
 */
export function issuedPrefixes(): Set<string> {
  const store = globalThis as typeof globalThis & { [ISSUED]?: Set<string> };
  store[ISSUED] ??= new Set();
  return store[ISSUED];
}

export async function createTestEnv(options: TestEnvOptions = {}): Promise<TestEnv> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-'));
  const prefix = `mcpu-test-${crypto.randomBytes(5).toString('hex')}`;
  issuedPrefixes().add(prefix);
  const inventoryFile = path.join(root, 'mcp-servers.yaml');
  await fs.writeFile(inventoryFile, options.inventory ?? 'servers: {}\n');
  const env: Record<string, string> = {
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    API_BASE_URL: options.registryUrl ?? 'http://127.0.0.1:9/',
    MCP_SERVERS_CONFIG: inventoryFile,
    MCP_SERVERS_PATH: path.join(root, 'servers'),
    BACKUP_DIR: path.join(root, 'backups'),
    CACHE_DIR: path.join(root, 'cache'),
    LOG_DIR: path.join(root, 'logs'),
    LOG_LEVEL: 'debug',
    MAX_RETRIES: '2',
    ...options.env,
  };
  const config = loadConfig(env);
  configureLogging({ logDir: config.logDir, logLevel: config.logLevel, console: 'off' });
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const contexts: WorkerContext[] = [];
  return {
    root,
    prefix,
    config,
    env,
    inventoryFile,
    redis,
    async writeInventory(yaml: string) {
      await fs.writeFile(inventoryFile, yaml);
      for (const context of contexts) await context.inventory.reload().catch(() => undefined);
    },
    async context(contextOptions = {}) {
      const inventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
      const context = await createWorkerContext(config, { inventory, now: contextOptions.now });
      contexts.push(context);
      return context;
    },
    async cleanup() {
      for (const context of contexts) await closeWorkerContext(context);
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
