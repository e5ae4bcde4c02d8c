/*
 * Python servers end to end (docs/ARCHITECTURE.md "Ecosystems"): real BullMQ workers on the real
 * Redis, the fixture package index on loopback serving real wheels of tiny MCP servers, real pip
 * for dependencies, real handshakes through bin/<name>.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { sandboxStatus } from '../shared/sandbox.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { importClientConfig, renderServers } from '../cli/import.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { waitUntil } from './support/wait.js';
import { FixtureRegistry } from './support/registry.js';
import { FixtureIndex } from './support/pypiIndex.js';

const DAY = 86_400_000;
const old = new Date(Date.now() - 30 * DAY);
const fresh = new Date(Date.now() - 60_000);

function inventory(servers: string, defaults = '  minReleaseAge: 0\n'): string {
  return `defaults:\n${defaults}  smokeTest: { timeout: 20s }\nservers:\n${servers}`;
}

describe('pypi servers end to end (workers, fixture index, real wheels, real pip)', function () {
  this.timeout(120_000);
  let index: FixtureIndex;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;
  let scratch: string;
  const savedIndex = process.env.PYPI_INDEX_URL;

  async function setUp(servers: string, defaults?: string, registryUrl?: string): Promise<void> {
    env = await createTestEnv({ inventory: inventory(servers, defaults), ...(registryUrl ? { registryUrl } : {}) });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
    client = ProducerClient.connect(env.config);
  }

  async function checkAndSettle(server: string, force = false): Promise<void> {
    await client.check(server, { force, reason: 'test' });
    await settle();
  }

  async function settle(): Promise<void> {
    await settlePipeline(context.queues, { timeoutMs: 100_000 });
  }

  async function handshake(server: string) {
    return runSmokeTest({ command: context.layout.launcher(server), args: [], env: {}, cwd: env.root, timeoutMs: 15_000 });
  }

  beforeEach(async () => {
    scratch = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'mcpu-test-wheels-'));
    index = await FixtureIndex.start(scratch);
    process.env.PYPI_INDEX_URL = index.url;
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await client?.close();
    await env?.cleanup();
    await index.close();
    await fs.rm(scratch, { recursive: true, force: true });
    if (savedIndex === undefined) delete process.env.PYPI_INDEX_URL;
    else process.env.PYPI_INDEX_URL = savedIndex;
  });

  it('installs the newest stable release first, then updates; pre-releases and yanked releases are skipped', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
    expect(await handshake('demo')).to.include({ ok: true, serverName: 'demo-py-mcp', serverVersion: '1.0.0', toolCount: 2 });
    const requirements = await fs.readFile(
      path.join(context.layout.versionDir('demo', '1.0.0'), '.mcp-updater', 'requirements.txt'),
      'utf8',
    );
    expect(requirements).to.match(/^demo-py-mcp==1\.0\.0 --hash=sha256:[0-9a-f]{64}$/m);

    index.publish({ name: 'demo-py-mcp', version: '1.1', kind: 'healthy', uploadedAt: old });
    index.publish({ name: 'demo-py-mcp', version: '1.2.0', kind: 'healthy', uploadedAt: old, yanked: true });
    index.publish({ name: 'demo-py-mcp', version: '1.3.0rc1', kind: 'healthy', uploadedAt: old });
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.1', previous: '1.0.0', state: 'idle' });
    expect(await handshake('demo')).to.include({ ok: true, serverVersion: '1.1' });
  });

  it('each policy: patch, minor and major from 1.2.3; a pinned pre-release is installed', async () => {
    for (const version of ['1.2.3', '1.2.4', '1.3.0', '2.0.0', '2.1.0rc1'])
      index.publish({ name: 'demo-py-mcp', version, kind: 'healthy', uploadedAt: old });
    const server = (policy: string, version = '1.2.3') => `  demo: { pypi: demo-py-mcp, version: "${version}", policy: ${policy} }\n`;
    await setUp(server('patch'));
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.2.3');
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.2.4');
    await env.writeInventory(inventory(server('minor')));
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.3.0');
    await env.writeInventory(inventory(server('major')));
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('2.0.0');
    await env.writeInventory(inventory(server('pin', '2.1.0rc1')));
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('2.1.0rc1');
    expect(await handshake('demo')).to.include({ ok: true, serverVersion: '2.1.0rc1' });
  });

  it('minimum release age: a release uploaded too recently is not taken', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old });
    index.publish({ name: 'demo-py-mcp', version: '1.1.0', kind: 'healthy', uploadedAt: fresh });
    await setUp('  demo: { pypi: demo-py-mcp, minReleaseAge: 2d }\n');
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', lastCheckResult: 'install 1.0.0' });
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', lastCheckResult: 'up to date; 1.1.0 skipped (too-young)' });
  });

  it('installs a dependency from the index, pinned by its hash; a too young dependency stops the stage', async () => {
    index.publish({ name: 'demo-helper', version: '1.0.0', kind: 'library', uploadedAt: old });
    index.publish({
      name: 'dep-py-mcp',
      version: '1.0.0',
      kind: 'healthy',
      uploadedAt: old,
      requires: ['demo-helper>=1.0'],
      importsHelper: 'demo_helper',
    });
    await setUp('  deps: { pypi: dep-py-mcp, minReleaseAge: 2d }\n');
    await checkAndSettle('deps');
    expect(await context.state.get('deps')).to.include({ current: '1.0.0', state: 'idle' });
    expect(await handshake('deps')).to.include({ ok: true, toolCount: 3 });
    const requirements = await fs.readFile(
      path.join(context.layout.versionDir('deps', '1.0.0'), '.mcp-updater', 'requirements.txt'),
      'utf8',
    );
    expect(requirements).to.match(/^demo-helper==1\.0\.0 --hash=sha256:[0-9a-f]{64}$/m);

    // pip resolves to the newest helper; its upload time is younger than minReleaseAge: refused, not skipped.
    index.publish({ name: 'demo-helper', version: '1.1.0', kind: 'library', uploadedAt: fresh });
    index.publish({
      name: 'dep-py-mcp',
      version: '1.1.0',
      kind: 'healthy',
      uploadedAt: old,
      requires: ['demo-helper>=1.1'],
      importsHelper: 'demo_helper',
    });
    await checkAndSettle('deps');
    const state = await context.state.get('deps');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.lastError).to.match(/EDEPTOOYOUNG.*demo-helper 1\.1\.0/);
    // Not the version's fault: the next check tries it again.
    expect(state.failedVersions).to.deep.equal([]);
    expect(await context.layout.installedVersions('deps')).to.deep.equal(['1.0.0']);
  });

  it('a digest mismatch installs nothing', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old, corrupt: true });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/EINTEGRITY.*sha256/);
    expect(await context.layout.currentVersion('demo')).to.equal(undefined);
    expect(await fs.readdir(path.join(env.config.backupDir, 'sha256')).catch(() => [])).to.deep.equal([]);
  });

  it('a release with only an sdist is refused, naming the files', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old, sdistOnly: true });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(
      /demo-py-mcp 1\.0\.0 has no wheel for this interpreter, only a source distribution \(files: demo_py_mcp-1\.0\.0\.tar\.gz\)/,
    );
  });

  it('allowSdist: the verified sdist is built (offline, sandboxed where possible) and installed like a wheel', async () => {
    index.publish({
      name: 'demo-py-mcp',
      version: '1.0.0',
      kind: 'healthy',
      uploadedAt: old,
      sdistOnly: true,
      // The backend fails the build when it can reach the index: the build must run without network.
      buildProbesNetwork: `${index.origin}/simple/`,
    });
    await setUp('  demo: { pypi: demo-py-mcp, allowSdist: true }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    if (!sandboxStatus().networkIsolation) {
      // Without network namespaces the build's own code can reach the network: said, not hidden.
      expect(state.lastError).to.match(/^ESDISTBUILD: building demo_py_mcp-1\.0\.0\.tar\.gz .*the build reached/s);
      return;
    }
    expect(state).to.include({ current: '1.0.0', state: 'idle' });
    expect(await handshake('demo')).to.include({ ok: true, serverName: 'demo-py-mcp', serverVersion: '1.0.0', toolCount: 2 });
    const requirements = await fs.readFile(
      path.join(context.layout.versionDir('demo', '1.0.0'), '.mcp-updater', 'requirements.txt'),
      'utf8',
    );
    expect(requirements).to.match(
      /^# The first one was built here from demo_py_mcp-1\.0\.0\.tar\.gz \(sha256 [0-9a-f]{64}\); build requirements: none\.$/m,
    );
    const pinned = /^demo-py-mcp==1\.0\.0 --hash=sha256:([0-9a-f]{64})$/m.exec(requirements)?.[1];
    const built = /built here from \S+ \(sha256 ([0-9a-f]{64})\)/.exec(requirements)?.[1];
    // The wheel is pinned by its own digest, not the sdist's.
    expect(pinned).to.be.a('string').and.not.equal(built);
    // Nothing of the build is left in the version directory.
    expect(await fs.readdir(path.join(context.layout.versionDir('demo', '1.0.0'), '.mcp-updater'))).to.not.include('work');
  });

  it('allowSdist: build requirements come from the index, hash-pinned and subject to the release age', async () => {
    index.publish({ name: 'demo-build-helper', version: '1.0.0', kind: 'library', uploadedAt: old });
    index.publish({
      name: 'demo-py-mcp',
      version: '1.0.0',
      kind: 'healthy',
      uploadedAt: old,
      sdistOnly: true,
      buildRequires: ['demo-build-helper>=1.0'],
    });
    await setUp('  demo: { pypi: demo-py-mcp, allowSdist: true, minReleaseAge: 2d }\n');
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
    const requirements = await fs.readFile(
      path.join(context.layout.versionDir('demo', '1.0.0'), '.mcp-updater', 'requirements.txt'),
      'utf8',
    );
    expect(requirements).to.match(/build requirements: demo-build-helper==1\.0\.0\.$/m);

    index.publish({ name: 'demo-build-helper', version: '1.1.0', kind: 'library', uploadedAt: fresh });
    index.publish({
      name: 'demo-py-mcp',
      version: '1.1.0',
      kind: 'healthy',
      uploadedAt: old,
      sdistOnly: true,
      buildRequires: ['demo-build-helper>=1.1'],
    });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.lastError).to.match(/^EDEPTOOYOUNG: build requirement demo-build-helper 1\.1\.0 of demo-py-mcp@1\.1\.0/);
    expect(await context.layout.installedVersions('demo')).to.deep.equal(['1.0.0']);
  });

  it('allowSdist: a failing build names the sdist and its last lines; nothing becomes current', async () => {
    index.publish({
      name: 'demo-py-mcp',
      version: '1.0.0',
      kind: 'healthy',
      uploadedAt: old,
      sdistOnly: true,
      buildFails: 'cannot build here',
    });
    await setUp('  demo: { pypi: demo-py-mcp, allowSdist: true }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(
      /^ESDISTBUILD: building demo_py_mcp-1\.0\.0\.tar\.gz \(the sdist of demo-py-mcp@1\.0\.0\) failed: [\s\S]*RuntimeError: cannot build here/,
    );
    expect(state.failedVersions).to.deep.equal(['1.0.0']);
    expect(await context.layout.currentVersion('demo')).to.equal(undefined);
    expect(await context.layout.installedVersions('demo')).to.deep.equal([]);
    expect(await fs.readdir(path.join(context.layout.stagingRoot, 'demo')).catch(() => [])).to.deep.equal([]);
  });

  it('an sdist downloaded with allowSdist is not built once allowSdist is removed', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old, sdistOnly: true });
    await setUp('  demo: { pypi: demo-py-mcp, allowSdist: true }\n');
    // Only check and download run: the stage job waits for the inventory change below.
    await workers!.close();
    workers = startWorkers(context, ['check', 'download']);
    await client.check('demo', { reason: 'test' });
    await waitUntil('the stage job to wait', async () => (await context.queues.stage.getJobCounts('waiting')).waiting === 1);
    await env.writeInventory(inventory('  demo: { pypi: demo-py-mcp }\n'));
    await workers.close();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
    await settle();
    const state = await context.state.get('demo');
    expect(state.lastError).to.match(
      /^ESDISTSTAGE: demo-py-mcp@1\.0\.0 has only a source distribution, and servers\.demo\.allowSdist is not true/,
    );
    expect(await context.layout.installedVersions('demo')).to.deep.equal([]);
  });

  it('a wheel with an entry outside its root is refused before pip installs anything', async () => {
    index.publish({
      name: 'demo-py-mcp',
      version: '1.0.0',
      kind: 'healthy',
      uploadedAt: old,
      extraEntries: [['../evil.py', 'raise SystemExit(1)\n']],
    });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(
      /^EPATHTRAVERSAL: demo_py_mcp-1\.0\.0-py3-none-any\.whl \(for demo-py-mcp@1\.0\.0\) is unsafe and was not installed: entry '\.\.\/evil\.py' has a '\.\.' segment/,
    );
    expect(state.failedVersions).to.deep.equal(['1.0.0']);
    expect(await context.layout.installedVersions('demo')).to.deep.equal([]);
  });

  it('a broken server fails the smoke test and is not activated', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp, smokeTest: { timeout: 5s } }\n');
    await checkAndSettle('demo');
    index.publish({ name: 'demo-py-mcp', version: '1.1.0', kind: 'broken', uploadedAt: old });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.failedVersions).to.deep.equal(['1.1.0']);
    expect(state.lastError).to.match(/ESMOKETEST/);
    expect(await context.layout.installedVersions('demo')).to.deep.equal(['1.0.0']);
    expect(await fs.readdir(path.join(context.layout.stagingRoot, 'demo')).catch(() => [])).to.deep.equal([]);
    expect((await handshake('demo')).serverVersion).to.equal('1.0.0');
  });

  it('a failed post-activation check rolls back by itself', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    index.publish({ name: 'demo-py-mcp', version: '1.1.0', kind: 'healthy', uploadedAt: old, failsWhenActive: true });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.lastError).to.match(/EPOSTACTIVATION/);
    expect(state.failedVersions).to.include('1.1.0');
    const events = await context.events.list({ server: 'demo', limit: 100 });
    expect(events.filter((event) => event.type === 'update.rolled-back')).to.have.length(1);
    expect((await handshake('demo')).serverVersion).to.equal('1.0.0');
    // The next check does not install the bad version again.
    const activations = async () => (await context.events.list({ server: 'demo', type: 'update.activated', limit: 100 })).length;
    const before = await activations();
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', lastCheckResult: 'up to date; 1.1.0 skipped (failed-before)' });
    expect(await activations()).to.equal(before);
  });

  it('a rollback holds the server by PEP 440 order: the next checks do not move up to the version rolled back from', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0', kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    index.publish({ name: 'demo-py-mcp', version: '1.1', kind: 'healthy', uploadedAt: old });
    await checkAndSettle('demo');
    expect((await context.state.get('demo')).current).to.equal('1.1');
    await client.rollback('demo', { requestedBy: 'test', ecosystem: 'pypi' });
    await settle();
    expect(await context.state.get('demo')).to.include({ current: '1.0', hold: '1.1' });
    expect((await context.layout.readHistory('demo'))?.hold).to.equal('1.1');

    // 1.0.post1 is newer than 1.0 but not than the hold (and 1.1 itself is what was rolled back from).
    index.publish({ name: 'demo-py-mcp', version: '1.0.post1', kind: 'healthy', uploadedAt: old });
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({
      current: '1.0',
      lastCheckResult: 'held at 1.0 after a rollback from 1.1; a version newer than 1.1 moves on (or check --force)',
    });
    expect((await handshake('demo')).serverVersion).to.equal('1.0');

    index.publish({ name: 'demo-py-mcp', version: '1.10', kind: 'healthy', uploadedAt: old });
    await checkAndSettle('demo');
    const state = await context.state.get('demo');
    expect(state.current).to.equal('1.10');
    expect(state.hold).to.equal(undefined);
  });

  it('cleanup removes old versions; a rollback re-stages one from its backup wheel', async () => {
    for (const version of ['1.0', '1.1', '1.2', '1.3']) index.publish({ name: 'demo-py-mcp', version, kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp, keep: 1, policy: pin, version: "1.0" }\n');
    for (const version of ['1.0', '1.1', '1.2', '1.3']) {
      await env.writeInventory(inventory(`  demo: { pypi: demo-py-mcp, keep: 1, policy: pin, version: "${version}" }\n`));
      await checkAndSettle('demo');
      expect((await context.state.get('demo')).current).to.equal(version);
    }
    const real = await client.cleanup({});
    const cleaned = await client.waitFor('cleanup', real.jobId);
    expect(cleaned.bytesFreed).to.be.greaterThan(0);
    expect((await context.layout.installedVersions('demo')).sort()).to.deep.equal(['1.2', '1.3']);
    await client.rollback('demo', { version: '1.0', requestedBy: 'test', ecosystem: 'pypi' });
    await settle();
    expect((await context.state.get('demo')).current).to.equal('1.0');
    expect(await handshake('demo')).to.include({ ok: true, serverVersion: '1.0' });
  });

  it('a Claude Desktop config with uvx entries imports into working entries of a mixed npm + Python inventory', async () => {
    const registry = await FixtureRegistry.start();
    try {
      await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
      index.publish({ name: 'demo-helper', version: '1.0.0', kind: 'library', uploadedAt: old });
      index.publish({
        name: 'dep-py-mcp',
        version: '1.0.0',
        kind: 'healthy',
        uploadedAt: old,
        requires: ['demo-helper'],
        importsHelper: 'demo_helper',
      });
      index.publish({ name: 'demo-py-mcp', version: '2.0', kind: 'healthy', uploadedAt: old, extraScripts: ['demo-py-admin'] });
      const imported = importClientConfig({
        mcpServers: {
          node: { command: 'npx', args: ['-y', 'demo-mcp'] },
          deps: { command: 'uvx', args: ['dep-py-mcp'] },
          demo: { command: 'uvx', args: ['--from', 'demo-py-mcp==2.0', 'demo-py-mcp'] },
        },
      });
      expect(imported.unsupported).to.deep.equal([]);
      const servers = renderServers(imported.servers, 'claude_desktop_config.json').replace(/^servers:\n/, '');
      await setUp(servers, undefined, registry.url);
      for (const name of ['node', 'deps', 'demo']) await checkAndSettle(name);
      expect((await context.state.get('node')).current).to.equal('1.0.0');
      expect((await context.state.get('deps')).current).to.equal('1.0.0');
      expect((await context.state.get('demo')).current).to.equal('2.0');
      expect(await handshake('node')).to.include({ ok: true, serverName: 'demo-mcp' });
      expect(await handshake('deps')).to.include({ ok: true, serverName: 'dep-py-mcp', toolCount: 3 });
      expect(await handshake('demo')).to.include({ ok: true, serverName: 'demo-py-mcp', serverVersion: '2.0' });
      // Every event (audit log, API, webhooks) names the server's ecosystem.
      for (const [server, ecosystem] of [
        ['node', 'npm'],
        ['deps', 'pypi'],
      ] as const) {
        const events = await context.events.list({ server, limit: 100 });
        expect(events.map((event) => event.type)).to.include('update.activated');
        expect(new Set(events.map((event) => event.ecosystem)), server).to.deep.equal(new Set([ecosystem]));
      }
    } finally {
      await registry.close();
    }
  });

  it('a distribution with several console scripts needs command:', async () => {
    index.publish({ name: 'multi-py-mcp', version: '1.0', kind: 'healthy', uploadedAt: old, extraScripts: ['multi-admin'] });
    await setUp('  multi: { pypi: multi-py-mcp, command: nope }\n');
    await checkAndSettle('multi');
    const state = await context.state.get('multi');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.match(/ENOBIN.*has no console script "nope" \(it has: multi-py-mcp, multi-admin\)/);
    await env.writeInventory(inventory('  multi: { pypi: multi-py-mcp, command: multi-admin }\n'));
    await checkAndSettle('multi');
    expect((await context.state.get('multi')).current).to.equal('1.0');
  });
});
