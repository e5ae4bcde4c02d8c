/*
 * What every processor needs, built once per worker process: config, the watched inventory, Redis,
 * the queues to chain follow-up jobs into, server state, events, metrics, the registry client and
 * the install layout. Tests build one with their own clock and inventory.
 */
import type { Redis } from 'ioredis';
import type winston from 'winston';
import type { Config } from '../shared/config.js';
import { EventLog } from '../shared/events.js';
import { inventoryDefaults, InventoryWatcher, type ServerSettings } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { createLogger } from '../shared/logger.js';
import { MetricsRecorder } from '../shared/metrics.js';
import { closeQueues, createQueues, type QueueSet } from '../shared/queueSet.js';
import { createRedis } from '../shared/redis.js';
import { lazyAttestationVerifier, type AttestationVerifier } from '../shared/provenance.js';
import { RegistryClient } from '../shared/registry.js';
import { StateStore } from '../shared/state.js';
import { serverDiskUsage, type ServerDiskUsage } from '../shared/store.js';
import { describeError, NotFoundError } from '../shared/errors.js';

export interface WorkerContext {
  config: Config;
  inventory: InventoryWatcher;
  redis: Redis;
  /** The queues' own connection (see createWorkerContext). */
  queueRedis: Redis;
  queues: QueueSet;
  state: StateStore;
  events: EventLog;
  metrics: MetricsRecorder;
  registry: RegistryClient;
  /** Sigstore verification of npm provenance attestations (its trust root read once a day; its libraries loaded at the first). */
  provenance: AttestationVerifier;
  layout: InstallLayout;
  /** Injectable clock (minReleaseAge tests). */
  now: () => Date;
  log: { automation: winston.Logger; orchestration: winston.Logger; cleanup: winston.Logger };
}

export interface WorkerContextOptions {
  inventory?: InventoryWatcher;
  now?: () => Date;
}

export async function createWorkerContext(config: Config, options: WorkerContextOptions = {}): Promise<WorkerContext> {
  const inventory = options.inventory ?? (await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config)));
  // Shared by every processor (state, events, metrics, locks, follow-up jobs): at a sweep's
  // concurrency many of their commands meet in one event-loop turn, and one write each costs CPU.
  const redis = createRedis(config, 'worker', { autoPipelining: true });
  // The queues get a connection of their own: BullMQ loads its scripts (about fifty) into the
  // client it is given, and ioredis copies every script of a connection into each auto-pipeline
  // batch it builds (~30 µs). State, events, metrics and locks then batch on a connection that
  // holds only a few scripts of ours: ~3 % of a pipeline update's CPU.
  const queueRedis = createRedis(config, 'worker', { autoPipelining: true });
  const queues = createQueues(config, queueRedis);
  return {
    config,
    inventory,
    redis,
    queueRedis,
    queues,
    state: new StateStore(redis, config),
    events: new EventLog(redis, config, queues.webhook, (server) => {
      const settings = inventory.server(server);
      return settings ? (settings.ecosystem ?? 'npm') : undefined;
    }),
    metrics: new MetricsRecorder(redis, config),
    registry: new RegistryClient(config, {}),
    provenance: lazyAttestationVerifier(async () => (await import('../shared/sigstore.js')).ProvenanceVerifier.fromConfig(config)),
    layout: new InstallLayout(config),
    now: options.now ?? (() => new Date()),
    log: {
      automation: createLogger('automation'),
      orchestration: createLogger('orchestration'),
      cleanup: createLogger('cleanup'),
    },
  };
}

export async function closeWorkerContext(context: WorkerContext): Promise<void> {
  context.inventory.close();
  await closeQueues(context.queues);
  context.queueRedis.disconnect();
  context.redis.disconnect();
}

/** The server's settings, or a non-retryable error when it left the inventory. */
export function serverSettings(context: WorkerContext, server: string): ServerSettings {
  const settings = context.inventory.server(server);
  if (!settings) {
    throw new NotFoundError(`server "${server}" is not in the inventory ${context.config.serversConfig}`, {
      hint: 'add it to the inventory, or ignore this job if the server was removed on purpose',
    });
  }
  return settings;
}

/**
 * What `server` takes on disk now, for its record (stage, activate and cleanup measure it after
 * they changed the disk, so no request ever walks a tree). A failure costs only the figure.
 */
export async function measureServerDisk(context: WorkerContext, server: string): Promise<ServerDiskUsage | undefined> {
  try {
    return await serverDiskUsage(context.layout.serverDir(server), context.now());
  } catch (error) {
    context.log.automation.warn(`${server}: measuring its bytes on disk failed: ${describeError(error)}`, { server });
    return undefined;
  }
}
