import { expect } from 'chai';
import { ConfigurationError } from '../shared/errors.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { createLogger } from '../shared/logger.js';
import { closeQueues, createQueues, type QueueSet } from '../shared/queueSet.js';
import { StateStore } from '../shared/state.js';
import { Scheduler, checkSchedulerId } from '../producers/scheduler.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const INVENTORY = `
defaults:
  schedule: "0 */6 * * *"
servers:
  alpha:
    package: alpha-mcp
  beta:
    package: beta-mcp
    schedule: "15 4 * * 1"
    timezone: Europe/Berlin
`;

describe('scheduler (Job Schedulers on real Redis)', () => {
  let env: TestEnv;
  let queues: QueueSet;
  const watchers: InventoryWatcher[] = [];
  const made: Scheduler[] = [];
  const log = createLogger('orchestration');

  async function scheduler(): Promise<Scheduler> {
    const inventory = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
    watchers.push(inventory);
    const instance = new Scheduler({
      config: env.config,
      inventory,
      checkQueue: queues.check,
      cleanupQueue: queues.cleanup,
      state: new StateStore(env.redis, env.config),
      layout: new InstallLayout(env.config),
      log,
    });
    made.push(instance);
    return instance;
  }

  async function schedulers(): Promise<Record<string, { pattern?: string | null; tz?: string | null }>> {
    const list = await queues.check.getJobSchedulers(0, -1, true);
    return Object.fromEntries(list.map((item) => [item.key, { pattern: item.pattern, tz: item.tz }]));
  }

  beforeEach(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    queues = createQueues(env.config, env.redis);
  });

  afterEach(async () => {
    // A sync queued behind a running one would otherwise write to Redis after the cleanup.
    await Promise.all(made.splice(0).map((instance) => instance.stop()));
    for (const watcher of watchers.splice(0)) watcher.close();
    await closeQueues(queues);
    await env.cleanup();
  });

  it('upserts one scheduler per server with its cron and timezone, plus cleanup', async () => {
    const report = await (await scheduler()).sync();
    expect(report.upserted.sort()).to.deep.equal(['alpha', 'beta']);
    expect(await schedulers()).to.deep.equal({
      [checkSchedulerId('alpha')]: { pattern: '0 */6 * * *', tz: 'UTC' },
      [checkSchedulerId('beta')]: { pattern: '15 4 * * 1', tz: 'Europe/Berlin' },
    });
    const cleanup = await queues.cleanup.getJobSchedulers(0, -1, true);
    expect(cleanup.map((item) => [item.key, item.pattern])).to.deep.equal([['cleanup', env.config.cleanupSchedule]]);
  });

  it('gives servers with nothing installed an immediate check, once', async () => {
    await new StateStore(env.redis, env.config).update('beta', { current: '1.0.0' });
    const first = await (await scheduler()).sync();
    expect(first.firstChecks).to.deep.equal(['alpha']);
    await (await scheduler()).sync();
    const waiting = (await queues.check.getJobs(['waiting', 'prioritized'])).filter((job) => job.data.reason === 'first install');
    expect(waiting.map((job) => job.data.server)).to.deep.equal(['alpha']);
  });

  it('two schedulers syncing at once leave exactly one scheduler per server', async () => {
    const [a, b] = [await scheduler(), await scheduler()];
    await Promise.all([a.sync(), b.sync(), a.sync(), b.sync()]);
    expect(Object.keys(await schedulers()).sort()).to.deep.equal([checkSchedulerId('alpha'), checkSchedulerId('beta')]);
  });

  it('stop() lets the running sync end, drops the one queued behind it, and turns later syncs into no-ops', async () => {
    const instance = await scheduler();
    let reads = 0;
    const read = queues.check.getJobSchedulers.bind(queues.check);
    queues.check.getJobSchedulers = ((...args: Parameters<typeof read>) => {
      reads += 1;
      return read(...args);
    }) as typeof read;
    const running = instance.sync();
    void instance.sync();
    await instance.stop();
    expect((await running).upserted.sort()).to.deep.equal(['alpha', 'beta']);
    // A queued sync starts as the running one ends, before stop() resolves: one read means none ran.
    expect(reads, 'syncs that read the schedulers').to.equal(1);
    expect(await instance.sync()).to.deep.equal({ upserted: [], unchanged: [], removed: [], firstChecks: [] });
    expect(reads).to.equal(1);
  });

  it('follows inventory edits: changed cron updated, removed server removed, unchanged left alone', async () => {
    const instance = await scheduler();
    await instance.sync();
    await env.writeInventory(`
servers:
  alpha:
    package: alpha-mcp
    schedule: "*/30 * * * *"
  gamma:
    package: gamma-mcp
`);
    const report = await instance.reload();
    expect(report.upserted.sort()).to.deep.equal(['alpha', 'gamma']);
    expect(report.removed).to.deep.equal(['beta']);
    expect(await schedulers()).to.deep.equal({
      [checkSchedulerId('alpha')]: { pattern: '*/30 * * * *', tz: 'UTC' },
      [checkSchedulerId('gamma')]: { pattern: '0 */6 * * *', tz: 'UTC' },
    });
    const again = await instance.reload();
    expect(again.upserted).to.deep.equal([]);
    expect(again.unchanged.sort()).to.deep.equal(['alpha', 'gamma']);
  });

  it('a bad inventory edit is refused and the running set is kept', async () => {
    const instance = await scheduler();
    await instance.sync();
    await env.writeInventory('servers:\n  alpha:\n    package: alpha-mcp\n    policy: sometimes\n');
    const error = await instance.reload().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).to.be.instanceOf(ConfigurationError);
    expect((error as Error).message).to.equal('servers.alpha.policy: must be one of patch, minor, major, pin');
    expect(Object.keys(await schedulers()).sort()).to.deep.equal([checkSchedulerId('alpha'), checkSchedulerId('beta')]);
  });

  it('re-syncs by itself when the inventory file changes', async () => {
    const instance = await scheduler();
    await instance.start();
    await env.writeInventory('servers:\n  alpha:\n    package: alpha-mcp\n');
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && Object.keys(await schedulers()).length !== 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(Object.keys(await schedulers())).to.deep.equal([checkSchedulerId('alpha')]);
  });
});
