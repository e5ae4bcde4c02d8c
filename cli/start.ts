/*
 * `mcp-updater start --role all|scheduler|worker|dashboard`: composes the roles in one process.
 * Validates env and inventory first (exit 78), makes sure Redis answers (starting a local
 * redis-server child when it can), then runs until SIGTERM/SIGINT, when active jobs finish and
 * the process exits 0. SIGHUP re-reads the inventory.
 */
import path from 'node:path';
import v8 from 'node:v8';
import type { Config } from '../shared/config.js';
import type { ResolvedIndex } from '../shared/ecosystems/pypiIndex.js';
import type { InventoryWatcher } from '../shared/inventory.js';
import type { Scheduler } from '../producers/scheduler.js';

export const ROLES = ['all', 'scheduler', 'worker', 'dashboard'] as const;
export type Role = (typeof ROLES)[number];

type Stopper = () => Promise<void>;

/**
 * How far V8 lets the heap grow past what survived the last full GC. Its default on a machine with
 * a large heap limit is up to 4×: a 10,000-server sweep kept ~45 MB alive but took the worker to
 * ~310 MB RSS; at 15 % it peaks near 180 MB, for 10-20 % more CPU per check (README, "Benchmarks").
 */
const HEAP_GROWING_PERCENT = 15;

/**
 * V8 also grows the young generation from 1 to 16 MB a half under load and seldom gives it back.
 * Only a busy worker gains from that (held at 1 MB, a steady-state check cost ~35 % more CPU); the
 * other roles and the all-in-one service of a small install keep it at 1 MB (idle with three
 * servers: 136 -> 105 MB RSS).
 */
const SMALL_YOUNG_GENERATION: readonly Role[] = ['all', 'scheduler', 'dashboard'];

/**
 * Both flags are read by V8 at every GC, so setting them after start-up is safe. A
 * --heap-growing-percent, --max-old-space-size or a young-generation flag given to node (command
 * line or NODE_OPTIONS) wins.
 */
function boundHeap(role: Role): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const has = (pattern: RegExp) => given.some((arg) => pattern.test(arg));
  if (!has(/^--(heap[-_]growing[-_]percent|max[-_]old[-_]space[-_]size)\b/)) {
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
  if (SMALL_YOUNG_GENERATION.includes(role) && !has(/^--(semi[-_]space[-_]growth[-_]factor|max[-_]semi[-_]space[-_]size)\b/)) {
    v8.setFlagsFromString('--semi-space-growth-factor=1');
  }
}

/*
 * Modules are imported where they are used, not at the top: `mcp-updater --help` imports this
 * file for ROLES and `config check` for loadStartupConfig, and neither needs Redis or BullMQ.
 */

/**
 * Validate env + inventory the way start does, and resolve the registry and, when the inventory
 * has pypi servers, the Python package index (a bad one is exit 78 naming its variable); used by
 * `config check` too.
 */
export async function loadStartupConfig(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ config: Config; inventory: InventoryWatcher; pypiIndex?: ResolvedIndex }> {
  const [{ loadConfig, resolveRegistry }, { inventoryDefaults, InventoryWatcher }] = await Promise.all([
    import('../shared/config.js'),
    import('../shared/inventory.js'),
  ]);
  const config = loadConfig(env);
  resolveRegistry(config);
  const inventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
  const hasPypi = [...inventory.inventory.servers.values()].some((server) => server.ecosystem === 'pypi');
  if (!hasPypi) return { config, inventory };
  try {
    const { resolveIndex } = await import('../shared/ecosystems/pypiIndex.js');
    return { config, inventory, pypiIndex: await resolveIndex(env) };
  } catch (error) {
    inventory.close();
    throw error;
  }
}

/** "Python package index https://pypi.internal/simple/ (from PIP_INDEX_URL)", credentials redacted. */
export function describeIndex(index: ResolvedIndex, redact: (url: string) => string): string {
  return `Python package index ${redact(index.url)} (from ${index.source})`;
}

export async function start(role: Role): Promise<void> {
  boundHeap(role);
  const { config, inventory, pypiIndex } = await loadStartupConfig();
  const [
    { describeError },
    { InstallLayout },
    { closeLoggers, configureLogging, createLogger },
    { redactUrl, registerSecret },
    { createRedis, evictionPolicyProblem, waitForRedis },
    { closeQueues, createQueues },
    { StateStore },
    { Scheduler },
    { ensureRedis },
  ] = await Promise.all([
    import('../shared/errors.js'),
    import('../shared/layout.js'),
    import('../shared/logger.js'),
    import('../shared/redact.js'),
    import('../shared/redis.js'),
    import('../shared/queueSet.js'),
    import('../shared/state.js'),
    import('../producers/scheduler.js'),
    import('./redisLauncher.js'),
  ]);
  configureLogging({ logDir: config.logDir, logLevel: config.logLevel });
  for (const secret of [config.apiToken, config.registryToken, config.webhookSecret]) registerSecret(secret);
  const log = createLogger('orchestration');
  const stoppers: Stopper[] = [];

  process.on('unhandledRejection', (reason) => log.error(`unhandled rejection: ${describeError(reason)}`));
  process.on('uncaughtException', (error) => {
    log.error(`uncaught exception, exiting: ${describeError(error)}`, { error });
    void closeLoggers().finally(() => process.exit(1));
  });

  const localRedis = await ensureRedis(config.redisUrl, path.dirname(config.backupDir), log);
  stoppers.push(() => localRedis.stop());
  const redis = createRedis(config, 'worker');
  await waitForRedis(redis, config.redisUrl, 10_000);
  const evictionProblem = await evictionPolicyProblem(redis);
  if (evictionProblem) log.warn(evictionProblem);
  if (!config.apiToken && (role === 'all' || role === 'dashboard')) {
    log.warn(
      'API_TOKEN is not set: the HTTP API and Bull Board are READ-ONLY. Set API_TOKEN (e.g. `openssl rand -hex 32`) to enable checks, approvals and rollbacks over HTTP.',
    );
  }
  log.info(
    `mcp-updater starting (role ${role}): ${inventory.inventory.servers.size} servers from ${config.serversConfig}, registry ${config.apiBaseUrl}`,
  );
  if (pypiIndex) log.info(describeIndex(pypiIndex, redactUrl));
  // Disk is the truth for what is installed: a record Redis lost (it restarted empty) is rebuilt
  // from the install layout now and whenever Redis comes back, not at the next scheduled check.
  const records = new StateStore(redis, config);
  const rebuildRecords = () => records.getMany([...inventory.inventory.servers.keys()]);
  await rebuildRecords();
  redis.on('ready', () => {
    rebuildRecords().catch((error: unknown) => log.error(`rebuilding server records from disk failed: ${describeError(error)}`));
  });

  // Roles load their modules only when this process runs them.
  if (role === 'all' || role === 'worker') {
    const { createWorkerContext, closeWorkerContext } = await import('../workers/context.js');
    const { startWorkers } = await import('../workers/index.js');
    (await import('../shared/sandbox.js')).logSandboxStatus(log);
    const context = await createWorkerContext(config, { inventory });
    const workers = startWorkers(context, config.workers);
    stoppers.unshift(async () => {
      await workers.close();
      await closeWorkerContext(context);
    });
  }
  let scheduler: Scheduler | undefined;
  if (role === 'all' || role === 'scheduler') {
    const queues = createQueues(config, redis);
    const running = new Scheduler({
      config,
      inventory,
      checkQueue: queues.check,
      cleanupQueue: queues.cleanup,
      state: records,
      layout: new InstallLayout(config),
      log,
    });
    scheduler = running;
    await running.start();
    // Redis came back (after a restart it may be empty: no persistence, a failover to a fresh
    // replica): put the job schedulers and first checks back. A sync is idempotent.
    redis.on('ready', () => {
      running.sync().then(
        (report) =>
          log.info(
            `Redis reconnected: scheduler re-synced (${report.upserted.length} schedulers restored, ${report.firstChecks.length} first checks)`,
          ),
        (error: unknown) => log.error(`scheduler re-sync after reconnecting to Redis failed: ${describeError(error)}`),
      );
    });
    stoppers.unshift(async () => {
      await running.stop();
      await closeQueues(queues);
    });
  } else {
    inventory.watch();
  }
  if (role === 'all' || role === 'dashboard') {
    const { startDashboard } = await import('../dashboard/server.js');
    const dashboard = await startDashboard(config, { inventory });
    log.info(`dashboard on ${dashboard.url} (Bull Board: ${dashboard.url}/admin/queues)`);
    stoppers.unshift(() => dashboard.close());
  }

  process.on('SIGHUP', () => {
    log.info('SIGHUP: re-reading the inventory');
    const reloading = scheduler ? scheduler.reload() : inventory.reload();
    void reloading.catch((error: unknown) => log.error(`inventory reload refused, keeping the running set: ${describeError(error)}`));
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: finishing active jobs, then exiting`);
    void (async () => {
      for (const stop of stoppers) {
        try {
          await stop();
        } catch (error) {
          log.error(`shutdown step failed: ${describeError(error)}`);
        }
      }
      inventory.close();
      redis.disconnect();
      await closeLoggers();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
