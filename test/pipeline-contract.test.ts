/*
 * The pipeline contract and its state machine, through real BullMQ workers on the real Redis and
 * the fixture registry (issue 10): what the status says is what is true, failures end in one
 * failure record, recovery needs no --force, and the disk rebuilds what Redis lost.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { expect } from 'chai';
import request from 'supertest';
import { createDashboardApp } from '../dashboard/app.js';
import { ProducerClient } from '../producers/client.js';
import type { UpdateEvent } from '../shared/events.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, deleteKeysWithPrefix, TEST_REDIS_URL, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { FixtureRegistry } from './support/registry.js';
import { waitUntil } from './support/wait.js';

const BIN = fileURLToPath(new URL('../bin/mcp-updater.js', import.meta.url));
const DAY = 86_400_000;
const old = new Date(Date.now() - 30 * DAY);
const TOKEN = 'contract-test-token-0123456789';
const PIPELINE = ['check', 'download', 'stage', 'activate'] as const;

function inventory(server: string, extra = ''): string {
  return `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\n${extra}servers:\n${server}`;
}

describe('pipeline contract: states tell the truth (workers, fixture registry)', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;

  async function setUp(
    servers: string,
    options: { queues?: Array<(typeof PIPELINE)[number]>; env?: Record<string, string>; extra?: string } = {},
  ) {
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: inventory(servers, options.extra),
      env: { RETRY_BACKOFF: '50', API_TOKEN: TOKEN, ...options.env },
    });
    context = await env.context();
    workers = startWorkers(context, options.queues ?? [...PIPELINE]);
    client = ProducerClient.connect(env.config);
  }

  async function settle(): Promise<void> {
    await settlePipeline(context.queues, { queues: PIPELINE });
  }

  async function checkAndSettle(server: string, force = false): Promise<void> {
    await client.check(server, { force, reason: 'test' });
    await settle();
  }

  /** Only check and download run: the chain stops with its stage job waiting. */
  async function stageWaiting(): Promise<void> {
    await waitUntil('the stage job to wait', async () => (await context.queues.stage.getWaitingCount()) === 1, 30_000, 50);
  }

  async function failures(server: string): Promise<UpdateEvent[]> {
    return (await context.events.list({ server, limit: 100 })).filter((event) => event.type === 'update.failed');
  }

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await client?.close();
    await env?.cleanup();
    await registry.close();
  });

  it('a download that failed on a transient cause after its last attempt is run again by the next plain check', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp }\n');
    registry.injectFault({ match: 'tarball', kind: 'status', status: 503 });
    await checkAndSettle('demo');
    let state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/503/);
    expect(state.failedVersions, 'an outage does not block the version').to.deep.equal([]);
    expect(await failures('demo')).to.have.length(1);

    registry.clearFaults();
    await checkAndSettle('demo');
    state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'idle' });
    expect(state.lastError).to.equal(undefined);
    expect(await context.layout.currentVersion('demo')).to.equal('1.0.0');
    // The second chain has an id of its own: the failed one is kept, not re-used.
    expect(state.chain).to.match(/^demo@1\.0\.0#/);
  });

  it('a stage that failed for a cause outside the version (its backup vanished) is staged again by a plain check', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp }\n', { queues: ['check', 'download'] });
    await client.check('demo', { reason: 'test' });
    await stageWaiting();
    expect((await context.state.get('demo')).state).to.equal('downloading');
    const stageJob = (await context.queues.stage.getWaiting())[0]!;
    await fs.rm(context.layout.backupFile(stageJob.data.integrity));
    await workers!.close();
    workers = startWorkers(context, [...PIPELINE]);
    await settle();
    let state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/EBACKUPMISSING/);
    expect(state.failedVersions).to.deep.equal([]);

    await checkAndSettle('demo');
    state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'idle' });
  });

  it('a stage job that stalls more often than allowed ends failed with a reason and exactly one event', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp }\n', { queues: ['check', 'download'], env: { JOB_LOCK_DURATION: '1000' } });
    await client.check('demo', { reason: 'test' });
    await stageWaiting();
    const connection = { url: TEST_REDIS_URL };
    // A worker that takes the job and dies with it (its lock is never renewed), three times.
    for (let kill = 0; kill < 3; kill += 1) {
      const dying = new Worker('stage', () => new Promise(() => undefined), {
        connection,
        prefix: env.prefix,
        lockDuration: 1000,
        stalledInterval: 1000,
        maxStalledCount: 2,
        name: `dying-${kill}`,
      });
      await waitUntil(
        'the dying worker to take the stage job',
        async () => (await context.queues.stage.getActive()).some((job) => job.processedBy === `dying-${kill}`),
        20_000,
        50,
      );
      await dying.close(true);
    }
    await workers!.close();
    workers = startWorkers(context, ['stage', 'activate']);
    await waitUntil('the stage job to fail', async () => (await context.queues.stage.getFailedCount()) === 1, 30_000, 100);
    await waitUntil('the failure to be recorded', async () => (await context.state.get('demo')).state === 'failed', 10_000, 50);
    const state = await context.state.get('demo');
    expect(state.lastError).to.match(/stalled-job limit/);
    expect(state.failedVersions).to.deep.equal([]);
    expect(await failures('demo')).to.have.length(1);
    expect(await context.layout.currentVersion('demo')).to.equal(undefined);
  });

  describe('registry values check must refuse or read correctly', () => {
    it('a multi-hash SRI (sha512 and sha1) is read, the sha512 is verified, and the version installs', async () => {
      const published = await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
      const sha1 = `sha1-${Buffer.from(published.shasum, 'hex').toString('base64')}`;
      registry.editPackument('demo-mcp', (doc) => {
        const dist = (doc.versions as Record<string, { dist: Record<string, string> }>)['1.0.0']!.dist;
        dist.integrity = `${published.integrity} ${sha1}`;
      });
      await setUp('  demo: { package: demo-mcp }\n');
      await checkAndSettle('demo');
      expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
    });

    const poison: Array<{
      name: string;
      edit: (version: Record<string, unknown>, doc: Record<string, unknown>) => void;
      message: RegExp;
      version: string;
    }> = [
      {
        name: 'a sha1-only integrity',
        edit: (version) => {
          (version.dist as Record<string, string>).integrity = `sha1-${Buffer.alloc(20, 7).toString('base64')}`;
        },
        message: /strongest integrity is sha1; mcp-updater requires sha256, sha384 or sha512/,
        version: '1.1.0',
      },
      {
        name: 'only a shasum',
        edit: (version) => {
          delete (version.dist as Record<string, string>).integrity;
        },
        message: /only a SHA-1 shasum/,
        version: '1.1.0',
      },
      {
        name: 'a malformed sha512 digest',
        edit: (version) => {
          (version.dist as Record<string, string>).integrity = 'sha512-abc';
        },
        message: /not a 64-byte base64 digest/,
        version: '1.1.0',
      },
      {
        name: 'a tarball URL with a space',
        edit: (version) => {
          (version.dist as Record<string, string>).tarball += ' x';
        },
        message: /tarball URL .* is not an http\(s\) URL/,
        version: '1.1.0',
      },
      {
        name: 'a version key with whitespace',
        edit: (_version, doc) => {
          const versions = doc.versions as Record<string, unknown>;
          versions['1.1.0 '] = versions['1.1.0'];
          delete versions['1.1.0'];
        },
        message: /version key "1\.1\.0 " that is not an exact semver version/,
        version: '1.1.0 ',
      },
    ];
    for (const testCase of poison) {
      it(`${testCase.name}: the version fails once with a clear error, nothing is installed, the state is failed`, async () => {
        await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
        await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
        await setUp('  demo: { package: demo-mcp, version: 1.0.0 }\n');
        await checkAndSettle('demo');
        expect((await context.state.get('demo')).current).to.equal('1.0.0');
        registry.editPackument('demo-mcp', (doc) => {
          const versions = doc.versions as Record<string, Record<string, unknown>>;
          testCase.edit(versions['1.1.0']!, doc);
        });
        await checkAndSettle('demo');
        const state = await context.state.get('demo');
        expect(state.state).to.equal('failed');
        expect(state.lastError).to.match(testCase.message);
        expect(state.failedVersions).to.include(testCase.version);
        expect(state.current).to.equal('1.0.0');
        expect(await failures('demo')).to.have.length(1);
        expect(await context.queues.download.getJobCounts('completed', 'failed', 'waiting')).to.deep.equal({
          completed: 1,
          failed: 0,
          waiting: 0,
        });

        // A plain check of the failed server ends failed again (nothing new), never checking, and
        // does not report the refused version a second time.
        await checkAndSettle('demo');
        expect((await context.state.get('demo')).state).to.equal('failed');
        expect(await failures('demo')).to.have.length(1);
        // Something new and usable: the check starts a chain, the server ends idle on it.
        await registry.publish({ name: 'demo-mcp', version: '1.2.0', publishedAt: old });
        await checkAndSettle('demo');
        expect(await context.state.get('demo')).to.include({ current: '1.2.0', state: 'idle' });
      });
    }

    it('a pinned version whose manifest has no dist fails with a message naming it', async () => {
      await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
      registry.editPackument('demo-mcp', (doc) => {
        delete (doc.versions as Record<string, Record<string, unknown>>)['1.0.0']!.dist;
      });
      await setUp('  demo: { package: demo-mcp, policy: pin, version: 1.0.0 }\n');
      await checkAndSettle('demo');
      const state = await context.state.get('demo');
      expect(state.state).to.equal('failed');
      expect(state.lastError).to.match(/EBADVERSION: demo-mcp@1\.0\.0: the registry gives no dist/);
      expect(state.lastError).to.not.match(/Cannot read properties/);
      expect(await failures('demo')).to.have.length(1);
    });
  });

  it('a first install that finds no version allowed fails (check --wait exits 1), nothing installed', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: new Date() });
    await setUp('  demo: { package: demo-mcp, minReleaseAge: 7d }\n');
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'check', 'demo', '--wait', '--timeout', '60s'],
        {
          env: { ...env.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? env.root },
          timeout: 80_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
      );
    });
    expect(run.code, run.stdout + run.stderr).to.equal(1);
    expect(run.stdout + run.stderr).to.match(/ENOVERSION: no version of demo-mcp may be installed \(1\.0\.0 too-young\)/);
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/lower minReleaseAge/);
    expect(state.current).to.equal(undefined);
    expect(await failures('demo')).to.have.length(1);
  });

  it('a version waiting for approval is not staged again by later checks, and approve activates it', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, activation: manual }\n');
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ state: 'awaiting-approval', staged: '1.0.0' });
    await checkAndSettle('demo');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ state: 'awaiting-approval', staged: '1.0.0', lastCheckResult: '1.0.0 is staged and waits for approval' });
    expect(await context.queues.stage.getCompletedCount(), 'stage jobs').to.equal(1);
    const waiting = (await context.events.list({ server: 'demo', limit: 100 })).filter(
      (event) => event.type === 'update.awaiting-approval',
    );
    expect(waiting).to.have.length(1);
    const { jobId } = await client.approve('demo', '1.0.0', 'test');
    await client.waitFor('activate', jobId, 30_000);
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
  });

  it('after Redis lost every key, the API shows current, previous and history from disk, and rollback works', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, version: 1.0.0 }\n');
    await checkAndSettle('demo');
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.1.0');

    await workers!.close();
    workers = undefined;
    await deleteKeysWithPrefix(env.redis, env.prefix);

    const inventoryWatcher = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
    const redis = createRedis(env.config, 'producer');
    await waitForRedis(redis, env.config.redisUrl);
    const app = createDashboardApp({
      config: env.config,
      inventory: inventoryWatcher,
      redis,
      producer: client,
      processMetrics: false,
      rateLimits: { read: 10_000, mutation: 10_000, login: 10_000 },
      serverCacheMs: 0,
    });
    try {
      const host = `127.0.0.1:${env.config.port}`;
      const detail = await request(app).get('/api/v1/servers/demo').set('Host', host);
      expect(detail.status).to.equal(200);
      expect(detail.body).to.include({ current: '1.1.0', previous: '1.0.0' });
      expect(detail.body.history.map((entry: { to: string }) => entry.to)).to.deep.equal(['1.1.0', '1.0.0']);

      workers = startWorkers(context, [...PIPELINE]);
      const rollback = await request(app)
        .post('/api/v1/servers/demo/rollback')
        .set('Host', host)
        .set('Authorization', `Bearer ${TOKEN}`)
        .send({});
      expect(rollback.status, JSON.stringify(rollback.body)).to.equal(202);
      await client.waitFor('activate', rollback.body.jobId as string, 30_000);
      expect(await context.layout.currentVersion('demo')).to.equal('1.0.0');
      expect(await context.state.get('demo')).to.include({ current: '1.0.0', previous: '1.1.0', state: 'idle' });
    } finally {
      inventoryWatcher.close();
      redis.disconnect();
    }
  });

  it('versions an operator rolled away from stay skipped after Redis lost its keys', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, version: 1.0.0 }\n');
    await checkAndSettle('demo');
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await checkAndSettle('demo');
    const { jobId } = await client.rollback('demo', { reason: 'test' });
    await client.waitFor('activate', jobId, 30_000);
    await deleteKeysWithPrefix(env.redis, env.prefix);
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'idle' });
    expect(state.failedVersions).to.deep.equal(['1.1.0']);
  });
});
