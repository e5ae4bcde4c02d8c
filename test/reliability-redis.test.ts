/*
 * Redis loss, on a private redis-server (test/support/redisServer.ts; never the shared one): a
 * worker process and a scheduler process (`mcp-updater start --role ...`), a dashboard and a
 * producer client in this process. Redis stops in the middle of installing servers and comes back
 * on the same port: first with its data (SHUTDOWN SAVE, like a restart with persistence), then
 * without (SIGKILL, like a failover to an empty replica). The processes must stay up and finish
 * by themselves; /ready says 503 while Redis is away and 200 after; producers fail fast with
 * RedisUnavailableError (EREDIS) meanwhile.
 */
import fs from 'node:fs/promises';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { CHECK_SCHEDULER_PREFIX } from '../producers/scheduler.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { closeQueues, createQueues, type QueueSet } from '../shared/queueSet.js';
import { createRedis, RedisUnavailableError } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { loadConfig, type Config } from '../shared/config.js';
import { startDashboard, type RunningDashboard } from '../dashboard/server.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry } from './support/registry.js';
import { PrivateRedis } from './support/redisServer.js';
import { killHard, sleep, startRole, summary, type ChildWithOutput } from './support/reliability.js';
import { waitUntil } from './support/wait.js';

const TOKEN = 'reliability-redis-token-0123456789';
const WAVES = [
  Array.from({ length: 8 }, (_, index) => `redis-a${index}`),
  Array.from({ length: 3 }, (_, index) => `redis-b${index}`),
  Array.from({ length: 8 }, (_, index) => `redis-c${index}`),
];
const old = new Date(Date.now() - 30 * 86_400_000);

function inventory(servers: string[]): string {
  return `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 20s, env: { FIXTURE_MCP_DELAY_MS: "300" } }\nservers:\n${servers.map((name) => `  ${name}: { package: ${name} }\n`).join('')}`;
}

describe('reliability: Redis goes away and comes back (private redis-server)', function () {
  this.timeout(120_000);
  let redisServer: PrivateRedis;
  let registry: FixtureRegistry;
  let env: TestEnv;
  let config: Config;
  let worker: ChildWithOutput;
  let scheduler: ChildWithOutput;
  let dashboard: RunningDashboard;
  let dashboardInventory: InventoryWatcher;
  let client: ProducerClient;
  let probe: { redis: ReturnType<typeof createRedis>; queues: QueueSet; state: StateStore; layout: InstallLayout };
  const children: ChildWithOutput[] = [];
  const facts: Record<string, unknown> = {};

  before(async () => {
    redisServer = await PrivateRedis.start();
    registry = await FixtureRegistry.start();
    for (const name of WAVES.flat()) await registry.publish({ name, version: '1.0.0', publishedAt: old });
    // Slow enough that Redis goes away while downloads, stages and activations are running.
    registry.injectFault({ match: 'tarball', kind: 'delay', delayMs: 400 });
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: inventory(WAVES[0]!),
      // A job whose reply Redis lost when it went away is active with nobody working on it; the
      // stalled check takes it up again after about twice the lock duration (2-4 min by default
      // for stage and activate), which this shortens to fit the waits below.
      env: {
        REDIS_URL: redisServer.url,
        API_TOKEN: TOKEN,
        PORT: '0',
        CONCURRENCY: 'stage=2,activate=2',
        LOG_LEVEL: 'info',
        JOB_LOCK_DURATION: '3000',
      },
    });
    config = loadConfig(env.env);
    const redis = createRedis(config, 'worker');
    probe = { redis, queues: createQueues(config, redis), state: new StateStore(redis, config), layout: new InstallLayout(config) };
    dashboardInventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
    dashboard = await startDashboard(config, { inventory: dashboardInventory });
    client = ProducerClient.connect(config);
    worker = startRole('worker', env.env);
    scheduler = startRole('scheduler', env.env);
    children.push(worker, scheduler);
  });

  after(async () => {
    for (const child of children) await killHard(child);
    await client?.close();
    await dashboard?.close();
    dashboardInventory?.close();
    if (probe) {
      await closeQueues(probe.queues);
      probe.redis.disconnect();
    }
    await env?.cleanup();
    await registry?.close();
    await redisServer?.close();
  });

  async function installed(servers: string[]): Promise<number> {
    let count = 0;
    for (const server of servers) if (await probe.layout.currentVersion(server)) count += 1;
    return count;
  }

  /** Every server of `servers` installed, and if they are not: where each one that is not stands. */
  async function waitInstalled(what: string, servers: string[]): Promise<void> {
    await waitUntil(
      what,
      async () => (await installed(servers)) === servers.length,
      60_000,
      100,
      async () => {
        const lines: string[] = [];
        for (const server of servers) {
          if (await probe.layout.currentVersion(server)) continue;
          const record = await probe.state.get(server);
          const jobs: string[] = [];
          for (const queue of ['download', 'stage', 'activate'] as const) {
            const job = await probe.queues[queue].getJob(`${server}@1.0.0`);
            if (job) jobs.push(`${queue} ${await job.getState()}${job.failedReason ? ` (${job.failedReason.slice(0, 200)})` : ''}`);
          }
          lines.push(
            `${server}: ${record.state}${record.lastError ? `, ${record.lastError.slice(0, 300)}` : ''}; jobs: ${jobs.join(', ') || 'none'}`,
          );
        }
        return `not installed:\n${lines.join('\n')}\nworker output, last lines:\n${worker.output.join('').slice(-3_000)}`;
      },
    );
  }

  async function ready(): Promise<number> {
    return (await fetch(`${dashboard.url}/ready`)).status;
  }

  /** While Redis is down: /ready, /health, the API and the producer client. */
  async function whileDown(label: string): Promise<void> {
    const readyStatus = await waitUntil('/ready to answer 503', async () => ((await ready()) === 503 ? 503 : undefined), 5_000);
    const body = (await (await fetch(`${dashboard.url}/ready`)).json()) as { status: string; reason: string };
    expect(body.status).to.equal('unavailable');
    expect(body.reason).to.match(/Redis at .* is not reachable/);
    expect((await fetch(`${dashboard.url}/health`)).status, '/health').to.equal(200);
    const api = await fetch(`${dashboard.url}/api/v1/servers/${WAVES[0]![0]}/check`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(api.status, 'POST check while Redis is down').to.equal(503);
    expect(((await api.json()) as { error: { code: string } }).error.code).to.equal('EREDIS');

    // The client that knew Redis and one that never saw it, at the same time.
    const fresh = ProducerClient.connect(config);
    const timed = async (attempt: () => Promise<unknown>) => {
      const started = Date.now();
      const error = await attempt().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      return { error, ms: Date.now() - started };
    };
    const [known, unknown] = await Promise.all([timed(() => client.check(WAVES[0]![0]!)), timed(() => fresh.checkAll(WAVES[0]!))]);
    await fresh.close();
    for (const [who, outcome] of [
      ['producer', known],
      ['fresh producer', unknown],
    ] as const) {
      expect(outcome.error, `${who} while Redis is down`).to.be.instanceOf(RedisUnavailableError);
      expect((outcome.error as RedisUnavailableError).code).to.equal('EREDIS');
      expect(outcome.ms, `${who} fails within`).to.be.below(4_000);
    }
    const producerMs = known.ms;
    const freshMs = unknown.ms;
    await sleep(500);
    expect(worker.exitCode, `worker process (${worker.output.join('').slice(-500)})`).to.equal(null);
    expect(scheduler.exitCode, `scheduler process (${scheduler.output.join('').slice(-500)})`).to.equal(null);
    facts[label] = { ready: readyStatus, producerMs, freshProducerMs: freshMs };
  }

  it('with its data kept: workers and scheduler reconnect and finish, /ready 503 then 200, producers fail fast meanwhile', async () => {
    await waitUntil('/ready to answer 200 at start', async () => (await ready()) === 200, 10_000, 50);
    await waitUntil(
      'some, not all, first installs',
      async () => {
        const count = await installed(WAVES[0]!);
        return count >= 1 && count < WAVES[0]!.length;
      },
      60_000,
      20,
    );
    const before = await installed(WAVES[0]!);
    const downAt = Date.now();
    await redisServer.stop();
    await whileDown('restart');
    await redisServer.start();
    const readyAgain = await waitUntil(
      '/ready to answer 200',
      async () => ((await ready()) === 200 ? Date.now() - downAt : undefined),
      15_000,
      100,
    );

    // What was running when Redis left finishes without anyone's help.
    await waitInstalled('every first-wave server installed', WAVES[0]!);
    // The scheduler process is still connected: it picks up an inventory change.
    await env.writeInventory(inventory([...WAVES[0]!, ...WAVES[1]!]));
    await waitInstalled('the second wave installed by the scheduler and the worker', WAVES[1]!);
    // And the producer client works again.
    await registry.publish({ name: WAVES[0]![0]!, version: '1.1.0', publishedAt: old });
    await client.check(WAVES[0]![0]!, { reason: 'after the restart' });
    await waitUntil(
      'the update after the restart',
      async () => (await probe.layout.currentVersion(WAVES[0]![0]!)) === '1.1.0',
      30_000,
      100,
    );
    for (const server of [...WAVES[0]!, ...WAVES[1]!]) {
      const record = await probe.layout.readVersionRecord(server, (await probe.layout.currentVersion(server))!);
      expect(record?.smokeTest?.ok, `${server} smoke test`).to.equal(true);
    }
    facts.restart = { ...(facts.restart as object), installedWhenStopped: `${before}/${WAVES[0]!.length}`, readyAfterMs: readyAgain };
  });

  it('without its data (killed, restarted empty): the scheduler puts its schedulers back and every server gets installed', async () => {
    const servers = WAVES.flat();
    await env.writeInventory(inventory(servers));
    await waitUntil(
      'some, not all, third-wave installs',
      async () => {
        const count = await installed(WAVES[2]!);
        return count >= 1 && count < WAVES[2]!.length;
      },
      60_000,
      20,
    );
    const before = await installed(WAVES[2]!);
    const downAt = Date.now();
    await redisServer.stop({ lose: true });
    await whileDown('dataLoss');
    await redisServer.start();
    // The data really is gone: the audit events of the first wave are not rebuilt (only what the
    // disk knows is: current, previous, history; see the next assertions).
    const events = await probe.redis.xrange(`${config.queuePrefix}:mcp-updater:events`, '-', '+');
    const firstInstall = events.some(([, fields]) =>
      fields.some((field) => field.includes('"update.activated"') && field.includes(`"${WAVES[0]![1]}"`)),
    );
    expect(firstInstall, "the first wave's install events").to.equal(false);
    const readyAgain = await waitUntil(
      '/ready to answer 200',
      async () => ((await ready()) === 200 ? Date.now() - downAt : undefined),
      15_000,
      100,
    );

    await waitInstalled('every server installed after the data loss', servers);
    const schedulers = (await probe.queues.check.getJobSchedulers(0, -1, true))
      .map((item) => item.key)
      .filter((key) => key.startsWith(CHECK_SCHEDULER_PREFIX));
    expect(schedulers.sort(), 'check schedulers after the data loss').to.deep.equal(
      servers.map((server) => `${CHECK_SCHEDULER_PREFIX}${server}`).sort(),
    );
    for (const server of servers) {
      const record = await probe.layout.readVersionRecord(server, (await probe.layout.currentVersion(server))!);
      expect(record?.smokeTest?.ok, `${server} smoke test`).to.equal(true);
    }
    // What the disk knows came back: an installed server's record shows its current version again.
    const rebuilt = await probe.state.get(WAVES[0]![1]!);
    expect(rebuilt.current, 'current after the data loss').to.equal(await probe.layout.currentVersion(WAVES[0]![1]!));
    expect(worker.exitCode).to.equal(null);
    expect(scheduler.exitCode).to.equal(null);
    const log = await fs.readFile(`${config.logDir}/orchestration.log`, 'utf8').catch(() => '');
    facts.dataLoss = {
      ...(facts.dataLoss as object),
      installedWhenKilled: `${before}/${WAVES[2]!.length}`,
      readyAfterMs: readyAgain,
      resyncLogged: log.includes('scheduler re-synced'),
    };
    summary('redis-loss', { servers: servers.length, redisStarts: redisServer.starts, ...facts });
  });
});
