/*
 * What the commands other than `start` share: the configuration (validated like start does, exit
 * 78), the inventory the server names are checked against (unknown name: exit 2 listing the known
 * ones), and a session on Redis (producer client, state) that fails within seconds with exit 1
 * when Redis does not answer, instead of hanging.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.js';
import { EventLog } from '../../shared/events.js';
import { inventoryDefaults, loadInventory, type Inventory } from '../../shared/inventory.js';
import { InstallLayout } from '../../shared/layout.js';
import { configureLogging } from '../../shared/logger.js';
import { createRedis, RedisUnavailableError, waitForRedis } from '../../shared/redis.js';
import { parseDuration } from '../../shared/schedule.js';
import { StateStore } from '../../shared/state.js';
import type { ProducerClient } from '../../producers/client.js';
import { UsageError } from '../exit.js';
import { listNames } from '../format.js';

/** How long a command waits for Redis before giving up with exit 1. */
export const REDIS_TIMEOUT_MS = 3_000;

/**
 * The configuration for commands that never talk to the registry: loading validates only, so an
 * unset API_BASE_URL does not make every command ask `npm config get registry`.
 */
export function cliConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = loadConfig(env);
  // Modules that log (the audit log behind EventLog) must not write to the terminal.
  configureLogging({ logDir: config.logDir, logLevel: config.logLevel, console: 'off' });
  return config;
}

export async function cliInventory(config: Config): Promise<Inventory> {
  return loadInventory(config.serversConfig, inventoryDefaults(config));
}

/** Every name must be a server of the inventory; otherwise a usage error naming the known ones. */
export function requireServers(inventory: Inventory, names: string[]): void {
  const unknown = names.filter((name) => !inventory.servers.has(name));
  if (unknown.length === 0) return;
  const label =
    unknown.length === 1 ? `unknown server "${unknown[0]}"` : `unknown servers ${unknown.map((name) => `"${name}"`).join(', ')}`;
  throw new UsageError(`${label} (not in ${inventory.file})`, `known servers: ${listNames([...inventory.servers.keys()].sort(), 30)}`);
}

export interface CliSession {
  config: Config;
  inventory: Inventory;
  /**
   * The producer client, connected on first use: it loads BullMQ, which `servers`, `diff` and
   * `status <name>` never need (a third of their start-up).
   */
  client(): Promise<ProducerClient>;
  /** Connection for reads (state, history, events). */
  redis: Redis;
  state: StateStore;
  layout: InstallLayout;
  events(): EventLog;
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Server names the command was given: checked against the inventory before connecting. */
  servers?: string[];
}

export async function openSession(options: SessionOptions = {}, config: Config = cliConfig()): Promise<CliSession> {
  const inventory = await cliInventory(config);
  requireServers(inventory, options.servers ?? []);
  const redis = await connectRedis(config);
  let client: Promise<ProducerClient> | undefined;
  let events: EventLog | undefined;
  return {
    config,
    inventory,
    client: () => (client ??= connectProducer(config)),
    redis,
    state: new StateStore(redis, config),
    layout: new InstallLayout(config),
    events: () => (events ??= new EventLog(redis, config)),
    async close() {
      redis.disconnect();
      await (await client?.catch(() => undefined))?.close();
    },
  };
}

/**
 * Redis answered the session already; a producer that cannot connect now fails within
 * REDIS_TIMEOUT_MS (and is left alone: one that never connected cannot be closed without waiting,
 * and the command exits on the error).
 */
async function connectProducer(config: Config): Promise<ProducerClient> {
  const { ProducerClient } = await import('../../producers/client.js');
  const client = ProducerClient.connect(config);
  await client.ready(REDIS_TIMEOUT_MS);
  return client;
}

/**
 * A connection for reads, or RedisUnavailableError: at the first refused connection (a CLI user
 * wants the answer now, not after the reconnect loop) or after REDIS_TIMEOUT_MS.
 */
async function connectRedis(config: Config): Promise<Redis> {
  const redis = createRedis(config, 'producer');
  let onError: ((error: Error) => void) | undefined;
  const refused = new Promise<never>((_, reject) => {
    onError = (error) => reject(new RedisUnavailableError(config.redisUrl, error));
    redis.once('error', onError);
  });
  try {
    await Promise.race([waitForRedis(redis, config.redisUrl, REDIS_TIMEOUT_MS), refused]);
    return redis;
  } catch (error) {
    redis.disconnect();
    throw error;
  } finally {
    redis.off('error', onError!);
    refused.catch(() => undefined);
  }
}

/** Run `fn` with a session and always close it. */
export async function withSession<T>(fn: (session: CliSession) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const session = await openSession(options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

export function jsonOption(): Option {
  return new Option('--json', 'print JSON for scripts (shapes in the README, "CLI")');
}

/** Option parser for "--timeout 10m": a positive duration in ms; commander reports a bad one (exit 2). */
export function parseTimeout(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms <= 0) throw new Error('must be more than 0');
    return ms;
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message} (use a duration such as 30s, 10m or 1h)`);
  }
}
