/*
 * The pipeline end to end: real BullMQ workers on the real Redis, the fixture registry serving
 * real tarballs of real (tiny) MCP servers, real npm for dependencies, real handshakes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { fixturePackageDir, FixtureRegistry } from './support/registry.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';

const DAY = 86_400_000;
const old = new Date(Date.now() - 30 * DAY);

function inventory(server: string): string {
  return `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\nservers:\n${server}`;
}

describe('pipeline end to end (workers, fixture registry, real MCP servers)', function () {
  this.timeout(60_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;

  async function setUp(servers: string): Promise<void> {
    env = await createTestEnv({ registryUrl: registry.url, inventory: inventory(servers) });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
    client = ProducerClient.connect(env.config);
  }

  /** Trigger a check and wait until the server settles (no job of any pipeline queue left). */
  async function checkAndSettle(server: string, force = false): Promise<void> {
    await client.check(server, { force, reason: 'test' });
    await settle();
  }

  async function settle(): Promise<void> {
    await settlePipeline(context.queues, { timeoutMs: 45_000 });
  }

  async function handshake(server: string) {
    return runSmokeTest({ command: context.layout.launcher(server), args: [], env: {}, cwd: env.root, timeoutMs: 10_000 });
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

  it('installs a pinned version first, then stays pinned when a newer one is published', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, policy: pin, version: 1.0.0 }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', latest: '1.1.0', state: 'idle' });
    expect(await context.layout.currentVersion('demo')).to.equal('1.0.0');
    const answer = await handshake('demo');
    expect(answer).to.include({ ok: true, serverName: 'demo-mcp', serverVersion: '1.0.0', toolCount: 2 });
    await registry.publish({ name: 'demo-mcp', version: '1.2.0', publishedAt: old });
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.0.0');
  });

  it('updates on a new publish, with the launcher answering before and after', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, policy: minor }\n');
    await checkAndSettle('demo');
    expect((await handshake('demo')).serverVersion).to.equal('1.0.0');
    const launcherStat = await fs.stat(context.layout.launcher('demo'));
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.1.0', previous: '1.0.0', state: 'idle' });
    expect((await handshake('demo')).serverVersion).to.equal('1.1.0');
    expect((await fs.stat(context.layout.launcher('demo'))).mtimeMs).to.equal(launcherStat.mtimeMs);
    const types = (await context.events.list({ server: 'demo', limit: 100 })).map((event) => event.type).reverse();
    expect(types).to.deep.equal([
      'update.available',
      'update.downloaded',
      'update.staged',
      'update.activated',
      'update.available',
      'update.downloaded',
      'update.staged',
      'update.activated',
    ]);
    const history = await context.layout.readHistory('demo');
    expect(history?.entries.map((entry) => [entry.from, entry.to])).to.deep.equal([
      [undefined, '1.0.0'],
      ['1.0.0', '1.1.0'],
    ]);
  });

  it('installs dependencies with npm, respecting the release age for them too', async () => {
    await registry.publish({ name: 'fixture-dep', version: '1.0.0', fromDir: fixturePackageDir('plain-lib'), publishedAt: old });
    await registry.publish({ name: 'fixture-dep', version: '1.1.0', fromDir: fixturePackageDir('plain-lib'), publishedAt: new Date() });
    await registry.publish({
      name: 'demo-mcp',
      version: '1.0.0',
      publishedAt: old,
      packageJson: { dependencies: { 'fixture-dep': '^1.0.0' } },
    });
    await setUp('  demo: { package: demo-mcp, minReleaseAge: 2d }\n');
    await checkAndSettle('demo');
    const dependency = JSON.parse(
      await fs.readFile(path.join(context.layout.versionDir('demo', '1.0.0'), 'node_modules', 'fixture-dep', 'package.json'), 'utf8'),
    );
    expect(dependency.version).to.equal('1.0.0');
    expect((await handshake('demo')).ok).to.equal(true);
  });

  it('a broken MCP server fails the smoke test and is not activated', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, smokeTest: { timeout: 3s } }\n');
    await checkAndSettle('demo');
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old, fromDir: fixturePackageDir('mcp-broken-crash') });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.failedVersions).to.deep.equal(['1.1.0']);
    expect(state.lastError).to.match(/ESMOKETEST/);
    expect(await context.layout.installedVersions('demo')).to.deep.equal(['1.0.0']);
    const staging = await fs.readdir(path.join(context.layout.stagingRoot, 'demo')).catch(() => []);
    expect(staging).to.deep.equal([]);
    expect((await handshake('demo')).serverVersion).to.equal('1.0.0');
  });

  it('an integrity mismatch activates nothing', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp }\n');
    registry.injectFault({ match: 'tarball', kind: 'corrupt' });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.current).to.equal(undefined);
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/EINTEGRITY/);
    expect(await context.layout.currentVersion('demo')).to.equal(undefined);
  });

  it('a failed post-activation check rolls back by itself', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp }\n');
    await checkAndSettle('demo');
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old, packageJson: { fixtureFailsWhenActive: true } });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.lastError).to.match(/EPOSTACTIVATION/);
    expect(state.failedVersions).to.include('1.1.0');
    expect(await context.layout.currentVersion('demo')).to.equal('1.0.0');
    const events = await context.events.list({ server: 'demo', limit: 100 });
    expect(events.filter((event) => event.type === 'update.failed' && event.version === '1.1.0')).to.have.length(1);
    expect(events.filter((event) => event.type === 'update.rolled-back')).to.have.length(1);
    expect((await handshake('demo')).serverVersion).to.equal('1.0.0');
  });

  it('manual activation waits for approval', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('  demo: { package: demo-mcp, activation: manual }\n');
    await checkAndSettle('demo');
    let state = await context.state.get('demo');
    expect(state).to.include({ state: 'awaiting-approval', staged: '1.0.0' });
    expect(state.current).to.equal(undefined);
    await client.approve('demo', '1.0.0', 'test');
    await settle();
    state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'idle' });
    expect(state.staged).to.equal(undefined);
  });

  it('rolls back on request, also to a version cleanup already removed', async function () {
    // Eight pipelines with their installs and handshakes: on a loaded two-core machine they took
    // longer than the file's 60 s together (seen once while three other suites ran beside it).
    this.timeout(180_000);
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
      await registry.publish({ name: 'demo-mcp', version, publishedAt: old });
    }
    await setUp('  demo: { package: demo-mcp, keep: 1, policy: pin, version: 1.0.0 }\n');
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
      await env.writeInventory(inventory(`  demo: { package: demo-mcp, keep: 1, policy: pin, version: ${version} }\n`));
      await checkAndSettle('demo');
      expect((await context.state.get('demo')).current).to.equal(version);
    }
    // Cleanup keeps current (1.3.0), previous (1.2.0) and the newest `keep` (1): 1.0.0 and 1.1.0 go.
    const dryRun = await client.cleanup({ dryRun: true });
    const planned = await client.waitFor('cleanup', dryRun.jobId);
    expect(planned.plan.removeVersions.map((item) => item.version).sort()).to.deep.equal(['1.0.0', '1.1.0']);
    expect((await context.layout.installedVersions('demo')).sort()).to.deep.equal(['1.0.0', '1.1.0', '1.2.0', '1.3.0']);
    const real = await client.cleanup({});
    const cleaned = await client.waitFor('cleanup', real.jobId);
    expect(cleaned.bytesFreed).to.be.greaterThan(0);
    expect((await context.layout.installedVersions('demo')).sort()).to.deep.equal(['1.2.0', '1.3.0']);

    await client.rollback('demo', { requestedBy: 'test' });
    await settle();
    const afterRollback = await context.state.get('demo');
    expect(afterRollback.current).to.equal('1.2.0');
    // Rolled away from on purpose: unforced checks do not move back to it.
    expect(afterRollback.failedVersions).to.include('1.3.0');
    await client.rollback('demo', { version: '1.1.0', requestedBy: 'test' });
    await settle();
    expect((await context.state.get('demo')).current).to.equal('1.1.0');
    expect((await handshake('demo')).serverVersion).to.equal('1.1.0');
    const rolledBack = (await context.events.list({ server: 'demo', type: 'update.rolled-back' })).map((event) => event.version);
    expect(rolledBack).to.deep.equal(['1.1.0', '1.2.0']);
    // The pinned 1.3.0 was rolled away from: a plain check leaves it, a forced one brings it back.
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.1.0');
    await checkAndSettle('demo', true);
    expect((await context.state.get('demo')).current).to.equal('1.3.0');
    expect((await context.state.get('demo')).failedVersions).to.not.include('1.3.0');
  });
});
