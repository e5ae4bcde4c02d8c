import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { treeUsage } from '../shared/store.js';
import type { StageJobData, StageResult } from '../shared/queues.js';
import { readVersionFiles, versionTree } from '../shared/serverData.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import type { VersionRecord } from '../shared/layout.js';
import type { WorkerContext } from '../workers/context.js';
import { execStageJob } from '../workers/stage.js';
import { npmCiArgs, npmEnvironment, npmResolveArgs, npmrcAuthLine, REGISTRY_TOKEN_ENV } from '../workers/staging/npmInstall.js';
import { choosePackageBin, runScriptText, runsWithNode } from '../workers/staging/package.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory, packEntries, type RawTarEntry } from './support/tarball.js';
import { waitUntil } from './support/wait.js';

const DAY = 24 * 3600 * 1000;

describe('stage: pure decisions', () => {
  describe('choosePackageBin', () => {
    const cases: Array<[string, { name?: string; bin?: unknown }, string | undefined, string]> = [
      ['a string bin', { name: 'pkg', bin: 'cli.js' }, undefined, 'ok pkg cli.js'],
      ['a string bin of a scoped package', { name: '@s/pkg', bin: './bin/cli.js' }, undefined, 'ok pkg bin/cli.js'],
      ['the only bin of a map', { name: 'pkg', bin: { other: 'x.js' } }, undefined, 'ok other x.js'],
      ['the bin named like the package', { name: '@s/pkg', bin: { a: 'a.js', pkg: 'p.js' } }, undefined, 'ok pkg p.js'],
      ['the configured bin', { name: 'pkg', bin: { a: 'a.js', pkg: 'p.js' } }, 'a', 'ok a a.js'],
      ['a configured bin the package lacks', { name: 'pkg', bin: { a: 'a.js' } }, 'b', 'ENOBIN'],
      ['no bin', { name: 'pkg' }, undefined, 'ENOBIN'],
      ['several bins, none named like the package', { name: 'pkg', bin: { a: 'a.js', b: 'b.js' } }, undefined, 'ENOBIN'],
      ['a bin with ..', { name: 'pkg', bin: '../../evil.js' }, undefined, 'EBINESCAPE'],
      ['a bin that normalises outside', { name: 'pkg', bin: 'lib/../../evil.js' }, undefined, 'EBINESCAPE'],
      ['an absolute bin', { name: 'pkg', bin: '/usr/bin/env' }, undefined, 'EBINESCAPE'],
      ['a bin that is the package folder', { name: 'pkg', bin: '.' }, undefined, 'EBINESCAPE'],
      ['a bin that normalises inside', { name: 'pkg', bin: 'lib/../cli.js' }, undefined, 'ok pkg cli.js'],
    ];
    for (const [name, manifest, wanted, expected] of cases) {
      it(`${expected}: ${name}`, () => {
        const choice = choosePackageBin(manifest, wanted);
        expect(choice.ok ? `ok ${choice.name} ${choice.path}` : choice.code).to.equal(expected);
      });
    }
  });

  describe('runsWithNode', () => {
    const cases: Array<[string, boolean]> = [
      ['#!/usr/bin/env node', true],
      ['#!/usr/bin/node --experimental-foo', true],
      ['#!/usr/bin/env nodejs', true],
      ["'use strict';", true],
      ['#!/bin/sh', false],
      ['#!/usr/bin/env python3', false],
    ];
    for (const [line, expected] of cases)
      it(`${expected ? 'node' : 'itself'}: ${line}`, () => expect(runsWithNode(line)).to.equal(expected));
  });

  it('runScriptText quotes paths and execs node, the bin itself or the configured command, inside the package', () => {
    const node = runScriptText({ kind: 'node', dir: 'node_modules/@s/pkg', bin: "it's/server.js" }, 'x', '/opt/node/bin/node');
    expect(node).to.match(/^#!\/bin\/sh\n/);
    expect(node).to.include('here="$(cd "$here/.." && pwd -P)"');
    expect(node).to.include(`command -v node >/dev/null || NODE='/opt/node/bin/node'`);
    expect(node).to.include(`exec "$NODE" "$here"/'node_modules/@s/pkg/it'\\''s/server.js' "$@"`);
    expect(runScriptText({ kind: 'exec', dir: 'node_modules/pkg', bin: 'bin/run' }, 'x')).to.include(
      `exec "$here"/'node_modules/pkg/bin/run' "$@"`,
    );
    const command = runScriptText({ kind: 'command', dir: 'node_modules/pkg', command: 'node', args: ['dist/index.js', '--stdio'] }, 'x');
    expect(command).to.include(`cd "$here"/'node_modules/pkg' || exit 127`);
    expect(command).to.include(`exec 'node' 'dist/index.js' '--stdio' "$@"`);
  });

  it('the run script finds its version however it is started, and the node to run it with', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-runscript-'));
    try {
      const version = path.join(root, 'versions', '1.0.0');
      await fs.mkdir(path.join(version, 'node_modules', 'pkg'), { recursive: true });
      await fs.mkdir(path.join(version, '.mcp-updater'));
      await fs.writeFile(path.join(version, 'node_modules', 'pkg', 'bin.js'), 'console.log(JSON.stringify(process.argv.slice(1)));\n');
      const run = path.join(version, '.mcp-updater', 'run');
      await fs.writeFile(run, runScriptText({ kind: 'node', dir: 'node_modules/pkg', bin: 'bin.js' }, 'x', process.execPath), {
        mode: 0o755,
      });
      const nodeDir = path.dirname(process.execPath);
      const start = (file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          execFile(file, args, { cwd: options.cwd, env: options.env ?? { PATH: `${nodeDir}:/usr/bin:/bin` } }, (error, stdout, stderr) =>
            resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
          );
        });
      const expected = JSON.stringify([path.join(await fs.realpath(version), 'node_modules/pkg/bin.js'), 'a b']);
      // By its absolute path (a launcher, a smoke test), by a relative one, and as `sh run` from its folder.
      expect((await start(run, ['a b'])).stdout.trim()).to.equal(expected);
      expect((await start('./.mcp-updater/run', ['a b'], { cwd: version })).stdout.trim()).to.equal(expected);
      expect((await start('/bin/sh', ['run', 'a b'], { cwd: path.dirname(run) })).stdout.trim()).to.equal(expected);
      // No node on PATH: the node that staged it.
      expect((await start(run, ['a b'], { env: { PATH: '/nonexistent' } })).stdout.trim()).to.equal(expected);
      // MCP_UPDATER_NODE wins, and a wrong one fails naming it rather than falling back.
      expect((await start(run, ['a b'], { env: { PATH: '/nonexistent', MCP_UPDATER_NODE: process.execPath } })).stdout.trim()).to.equal(
        expected,
      );
      const wrong = await start(run, ['a b'], { env: { PATH: `${nodeDir}:/usr/bin:/bin`, MCP_UPDATER_NODE: path.join(root, 'no-node') } });
      expect(wrong.code).to.equal(127);
      expect(wrong.stderr).to.include(path.join(root, 'no-node'));
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('npm resolves a lock first (no git, URL, folder or foreign file), --before only with a minimum release age, then installs it with ci', () => {
    const before = new Date('2026-01-02T03:04:05.000Z');
    const common = [
      '--omit=dev',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      '--fetch-retries=1',
      '--fetch-retry-mintimeout=1000',
      '--fetch-retry-maxtimeout=5000',
      '--registry=http://127.0.0.1:1/',
      '--cache=/c',
    ];
    expect(npmResolveArgs({ registry: 'http://127.0.0.1:1/', cacheDir: '/c' })).to.deep.equal([
      'install',
      '--package-lock-only',
      ...common,
      '--allow-git=none',
      '--allow-remote=none',
      '--allow-directory=none',
    ]);
    expect(npmResolveArgs({ registry: 'http://127.0.0.1:1/', cacheDir: '/c', before })).to.include('--before=2026-01-02T03:04:05.000Z');
    expect(npmCiArgs({ registry: 'http://127.0.0.1:1/', cacheDir: '/c' })).to.deep.equal(['ci', ...common]);
  });

  it('npmEnvironment drops npm_* variables and our secrets, and passes the registry token by name', () => {
    const env = npmEnvironment(
      {
        PATH: '/bin',
        HOME: '/home/x',
        npm_config_registry: 'http://elsewhere/',
        NPM_CONFIG_CACHE: '/tmp/x',
        npm_lifecycle_event: 'start',
        API_TOKEN: 'secret-api',
        REGISTRY_TOKEN: 'secret-registry',
        HTTPS_PROXY: 'http://proxy:3128',
      },
      'tok-123456',
    );
    expect(env).to.deep.equal({ PATH: '/bin', HOME: '/home/x', HTTPS_PROXY: 'http://proxy:3128', [REGISTRY_TOKEN_ENV]: 'tok-123456' });
  });

  it('npmrcAuthLine scopes the token to the registry and references it by name', () => {
    expect(npmrcAuthLine('http://127.0.0.1:4873/')).to.equal('//127.0.0.1:4873/:_authToken=${MCP_UPDATER_REGISTRY_TOKEN}');
    expect(npmrcAuthLine('https://registry.example.com/npm/private')).to.equal(
      '//registry.example.com/npm/private/:_authToken=${MCP_UPDATER_REGISTRY_TOKEN}',
    );
  });
});

describe('stage queue (execStageJob on real Redis)', function () {
  this.timeout(60_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let pidLog: string;
  const marker = crypto.randomBytes(6).toString('hex');

  before(async () => {
    registry = await FixtureRegistry.start();
    const logDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-stage-pids-'));
    pidLog = path.join(logDir, 'pids.log');
    env = await createTestEnv({
      registryUrl: registry.url,
      env: { MAX_PACKAGE_FILES: '20', MAX_TARBALL_SIZE: '256kb', MAX_PACKAGE_SIZE: '1mb' },
      inventory: `
defaults:
  minReleaseAge: 0
  activation: manual
  smokeTest: { timeout: 10s, env: { FIXTURE_MCP_LOG: ${JSON.stringify(pidLog)} } }
servers:
  healthy: { package: mcp-healthy }
  auto: { package: mcp-healthy, activation: auto }
  twice: { package: mcp-healthy, smokeTest: { timeout: 10s, env: { FIXTURE_MCP_DELAY_MS: "600" } } }
  crash: { package: mcp-broken-crash, smokeTest: { timeout: 2s } }
  silent: { package: mcp-broken-silent, smokeTest: { timeout: 2s } }
  bad: { package: mcp-bad }
  lib: { package: plain-lib }
  cmd: { package: mcp-nobin, smokeTest: { command: node, args: [server.js] } }
  deps: { package: mcp-with-dep }
  deps-aged: { package: mcp-with-dep, minReleaseAge: 3d }
`,
    });
    context = await env.context();
  });

  after(async () => {
    await env?.cleanup();
    await registry?.close();
    await fs.rm(path.dirname(pidLog), { recursive: true, force: true });
  });

  /** Put a tarball into the backup store as download would, and return its stage payload. */
  async function backup(server: string, pkg: string, version: string, tarball: Buffer): Promise<StageJobData> {
    const { integrity } = integrityOf(tarball);
    const file = context.layout.backupFile(integrity);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, tarball);
    return { server, chain: `${server}@${version}`, package: pkg, version, integrity };
  }

  async function backupFixture(server: string, fixture: string, pkg: string, version: string, packageJson?: Record<string, unknown>) {
    return backup(server, pkg, version, await packDirectory(fixturePackageDir(fixture), { name: pkg, version, packageJson }));
  }

  async function stage(data: StageJobData, id = `${data.server}@${data.version}`): Promise<StageResult> {
    return runProcessor('stage', { id, data: { ...data, chain: id }, attemptsMade: 0, opts: { attempts: 1 } }, context, execStageJob);
  }

  async function stageFails(data: StageJobData): Promise<Error & { code?: string }> {
    try {
      await stage(data);
    } catch (error) {
      return error as Error & { code?: string };
    }
    expect.fail('staging succeeded');
  }

  async function exists(file: string): Promise<boolean> {
    return fs.lstat(file).then(
      () => true,
      () => false,
    );
  }

  async function stagingLeftovers(server: string): Promise<string[]> {
    return fs.readdir(path.join(context.layout.stagingRoot, server)).catch(() => []);
  }

  /** What a failed stage must leave: no version directory, no staging directory, failed state, an event. */
  async function expectCleanFailure(data: StageJobData, code: string) {
    expect(await exists(context.layout.versionDir(data.server, data.version))).to.equal(false);
    expect(await stagingLeftovers(data.server)).to.deep.equal([]);
    const state = await context.state.get(data.server);
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.include(code);
    const events = await context.events.list({ server: data.server, type: 'update.failed' });
    expect(events[0]).to.include({ version: data.version });
    expect(events[0]!.reason).to.include(code);
  }

  async function deadPids(): Promise<void> {
    const text = await fs.readFile(pidLog, 'utf8').catch(() => '');
    for (const match of text.matchAll(/pid=(\d+)/g)) {
      const pid = Number(match[1]);
      let running = true;
      try {
        process.kill(pid, 0);
      } catch {
        running = false;
      }
      expect(running, `smoke-tested server ${pid} still runs`).to.equal(false);
    }
  }

  afterEach(deadPids);

  it('stages a healthy package into versions/<v> with a run script that answers a handshake (manual activation)', async () => {
    const data = await backupFixture('healthy', 'mcp-healthy', 'mcp-healthy', '1.0.0');
    const result = await stage(data);
    const dir = context.layout.versionDir('healthy', '1.0.0');
    expect(result).to.include({ version: '1.0.0', dir, toolCount: 2, reused: false, next: 'awaiting-approval' });

    const record = JSON.parse(await fs.readFile(context.layout.versionRecordFile(dir), 'utf8')) as VersionRecord;
    expect(record).to.include({
      server: 'healthy',
      package: 'mcp-healthy',
      version: '1.0.0',
      integrity: data.integrity,
      bin: 'server.js',
      packageDir: 'node_modules/mcp-healthy',
    });
    // The package is the one dependency of a generated project, as npx installs it.
    const wrapper = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as {
      private: boolean;
      dependencies: Record<string, string>;
    };
    expect(wrapper.private).to.equal(true);
    expect(wrapper.dependencies['mcp-healthy']).to.equal(`file:${context.layout.backupFile(data.integrity)}`);
    expect(await exists(path.join(dir, 'node_modules', 'mcp-healthy', 'server.js'))).to.equal(true);
    expect(record.smokeTest).to.include({ ok: true, serverName: 'mcp-healthy', serverVersion: '1.0.0', toolCount: 2 });
    const run = context.layout.runScript(dir);
    expect((await fs.stat(run)).mode & 0o777).to.equal(0o755);
    const handshake = await runSmokeTest({ command: run, timeoutMs: 10_000 });
    expect(handshake).to.include({ ok: true, serverName: 'mcp-healthy', toolCount: 2 });
    expect(await stagingLeftovers('healthy')).to.deep.equal([]);

    const state = await context.state.get('healthy');
    expect(state).to.include({ state: 'awaiting-approval', staged: '1.0.0' });
    // Its bytes on disk, measured once the version was in place: what treeUsage sees now.
    const usage = await treeUsage(context.layout.serverDir('healthy'));
    expect(state.disk).to.deep.include({ bytes: usage.bytes, sharedBytes: 0, fullCopyBytes: usage.logicalBytes });
    expect(state.disk!.bytes).to.be.greaterThan(0);
    const staged = await context.events.list({ server: 'healthy', type: 'update.staged' });
    expect(staged[0]).to.include({ version: '1.0.0', jobId: 'healthy@1.0.0' });
    expect(staged[0]!.details).to.include({ toolCount: 2, serverName: 'mcp-healthy' });
    expect(await context.events.list({ server: 'healthy', type: 'update.awaiting-approval' })).to.have.length(1);
    expect((await context.metrics.readStageDurations()).count).to.equal(1);
  });

  it('reuses versions/<v> when it already holds the same integrity', async () => {
    const data = await backupFixture('healthy', 'mcp-healthy', 'mcp-healthy', '1.0.0');
    const result = await stage(data, 'healthy@1.0.0-again');
    expect(result.reused).to.equal(true);
    expect((await context.metrics.readStageDurations()).count).to.equal(1);
  });

  it('two runs of one stage job at once each stage in a directory of their own: one places the version, the other reuses it', async () => {
    // A job Redis lost in a restart is added again while its first run goes on; a worker that
    // stalls past its lock sees its job handed to another. Neither run may spoil the other's files.
    const data = await backupFixture('twice', 'mcp-healthy', 'mcp-healthy', '1.0.0');
    const first = stage(data);
    // The second run starts while the first one's smoke test runs from its staging directory.
    const root = path.join(context.layout.stagingRoot, 'twice');
    await waitUntil('the first run in its smoke test', async () => {
      for (const name of await fs.readdir(root).catch(() => [] as string[]))
        if (await exists(context.layout.runScript(path.join(root, name)))) return true;
      return false;
    });
    const results = await Promise.all([first, stage(data)]);
    expect(results.map((result) => result.reused).sort()).to.deep.equal([false, true]);
    // What is in place is one run's complete version: every file its record lists, and it answers.
    const dir = context.layout.versionDir('twice', '1.0.0');
    expect(await context.layout.readVersionRecord('twice', '1.0.0')).to.deep.include({ integrity: data.integrity });
    const recorded = (await readVersionFiles(dir))!;
    const present = new Map((await versionTree(dir)).map((entry) => [entry.path, entry.size]));
    expect(present).to.deep.equal(recorded);
    expect(await runSmokeTest({ command: context.layout.runScript(dir), timeoutMs: 10_000 })).to.include({ ok: true, toolCount: 2 });
    expect(await stagingLeftovers('twice')).to.deep.equal([]);
    const state = await context.state.get('twice');
    expect(state.failedVersions ?? []).to.deep.equal([]);
    expect(await context.events.list({ server: 'twice', type: 'update.failed' })).to.deep.equal([]);
  });

  it("a run removes what earlier runs of its job left when their process died, and nothing of a live run or another host's", async () => {
    const data = await backupFixture('twice', 'mcp-healthy', 'mcp-healthy', '1.1.0');
    const mine = path.basename(context.layout.stagingDir('twice', '1.1.0', 'twice@1.1.0'));
    const [, host] = /-([0-9a-f]{8})-\d+-[0-9a-f]{8}$/.exec(mine)!;
    const gone = await new Promise<number>((resolve) => {
      const child = execFile(process.execPath, ['-e', '0'], () => resolve(child.pid!));
    });
    const root = path.join(context.layout.stagingRoot, 'twice');
    const names = {
      dead: `1.1.0-twice_1.1.0-${host}-${gone}-0000beef`,
      alive: `1.1.0-twice_1.1.0-${host}-${process.pid}-0000cafe`,
      otherHost: `1.1.0-twice_1.1.0-${host === 'ffffffff' ? 'eeeeeeee' : 'ffffffff'}-${gone}-0000f00d`,
      otherJob: `1.1.0-twice_1.1.0-again-${host}-${gone}-0000d00d`,
    };
    for (const name of Object.values(names)) await fs.mkdir(path.join(root, name, 'node_modules'), { recursive: true });
    await stage(data);
    expect((await stagingLeftovers('twice')).sort()).to.deep.equal([names.alive, names.otherHost, names.otherJob].sort());
    for (const name of Object.values(names)) await fs.rm(path.join(root, name), { recursive: true, force: true });
  });

  it('refuses to replace versions/<v> holding another integrity', async () => {
    const data = await backupFixture('healthy', 'mcp-healthy', 'mcp-healthy', '1.0.0', { description: 'different bytes' });
    const error = await stageFails(data);
    expect(error.code).to.equal('EVERSIONEXISTS');
    const record = await context.layout.readVersionRecord('healthy', '1.0.0');
    expect(record?.integrity).not.to.equal(data.integrity);
  });

  it('adds the activate job of its chain when activation is auto', async () => {
    const data = await backupFixture('auto', 'mcp-healthy', 'mcp-healthy', '1.0.0');
    const result = await stage(data);
    expect(result).to.include({ next: 'activate', chain: 'auto@1.0.0' });
    const job = await context.queues.activate.getJob('auto@1.0.0');
    expect(job?.data).to.deep.equal({ server: 'auto', chain: 'auto@1.0.0', action: 'activate', version: '1.0.0' });
  });

  it('runs a configured smoke-test command from the version directory when the package has no bin', async () => {
    const data = await backupFixture('cmd', 'mcp-healthy', 'mcp-nobin', '1.0.0', { bin: undefined });
    const result = await stage(data);
    expect(result.toolCount).to.equal(2);
    const dir = context.layout.versionDir('cmd', '1.0.0');
    expect((await context.layout.readVersionRecord('cmd', '1.0.0'))?.bin).to.equal(undefined);
    expect(await runSmokeTest({ command: context.layout.runScript(dir), cwd: os.tmpdir(), timeoutMs: 10_000 })).to.include({ ok: true });
  });

  it('fails a package that crashes at start: nothing installed, state failed, update.failed', async () => {
    const data = await backupFixture('crash', 'mcp-broken-crash', 'mcp-broken-crash', '1.0.0');
    const error = await stageFails(data);
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include('exited with code 1');
    expect(error.message).to.include('simulated startup crash');
    await expectCleanFailure(data, 'ESMOKETEST');
    expect((await context.state.get('crash')).failedVersions).to.deep.equal(['1.0.0']);
    expect(await context.metrics.readCounter('updates_total')).to.deep.include({ labels: ['crash', 'failed'], value: 1 });
  });

  it('fails a package that never answers within its smoke-test timeout', async () => {
    const data = await backupFixture('silent', 'mcp-broken-silent', 'mcp-broken-silent', '1.0.0');
    const started = Date.now();
    const error = await stageFails(data);
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include('no answer to initialize within 2s');
    expect(Date.now() - started).to.be.lessThan(8_000);
    await expectCleanFailure(data, 'ESMOKETEST');
  });

  it('extracts directory entries, inside symlinks and hard links exactly (strict node-tar)', async () => {
    const server = await fs.readFile(path.join(fixturePackageDir('mcp-healthy'), 'server.js'));
    const manifest = { name: 'mcp-healthy', version: '1.0.2', type: 'module', bin: { 'mcp-healthy': 'copy.js' } };
    const data = await backup(
      'healthy',
      'mcp-healthy',
      '1.0.2',
      await packEntries([
        { path: 'package/', type: 'directory' },
        { path: 'package/package.json', body: JSON.stringify(manifest) },
        { path: 'package/lib/', type: 'directory', mode: 0o700 },
        { path: 'package/lib/server.js', body: server, mode: 0o600 },
        { path: 'package/server.js', type: 'symlink', linkpath: 'lib/server.js' },
        { path: 'package/copy.js', type: 'hardlink', linkpath: 'package/lib/server.js' },
      ]),
    );
    const result = await stage(data);
    expect(result.toolCount).to.equal(2);
    const dir = path.join(context.layout.versionDir('healthy', '1.0.2'), 'node_modules', 'mcp-healthy');
    expect(await fs.readlink(path.join(dir, 'server.js'))).to.equal('lib/server.js');
    const [copy, original] = await Promise.all([fs.stat(path.join(dir, 'copy.js')), fs.stat(path.join(dir, 'lib', 'server.js'))]);
    expect(copy.ino).to.equal(original.ino);
    // Modes are normalised like npm does (the umask still applies), then made read-only by the
    // shared store: nobody may write, owner may read.
    expect(original.mode & 0o622, 'file: owner read only, no group/other write').to.equal(0o400);
    expect((await fs.stat(path.join(dir, 'lib'))).mode & 0o722, 'directory: owner rwx, no group/other write').to.equal(0o700);
  });

  it('refuses a tarball whose package.json names another version', async () => {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-bad', version: '9.9.9' });
    const data = await backup('bad', 'mcp-bad', '1.0.0', tarball);
    const error = await stageFails(data);
    expect(error.code).to.equal('EPKGMISMATCH');
    expect(error.message).to.include('mcp-bad@9.9.9').and.include('mcp-bad@1.0.0');
    await expectCleanFailure(data, 'EPKGMISMATCH');
  });

  it('refuses a tarball whose package.json names another package', async () => {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-other', version: '1.0.1' });
    const error = await stageFails(await backup('bad', 'mcp-bad', '1.0.1', tarball));
    expect(error.code).to.equal('EPKGMISMATCH');
    expect(error.message).to.include('mcp-other@1.0.1').and.include('mcp-bad@1.0.1');
  });

  it('refuses a tarball without package.json', async () => {
    const data = await backup('bad', 'mcp-bad', '1.0.2', await packEntries([{ path: 'package/server.js', body: 'process.exit(0)\n' }]));
    const error = await stageFails(data);
    expect(error.code).to.equal('EPKGJSON');
    await expectCleanFailure(data, 'EPKGJSON');
  });

  it('refuses a bin that points outside the package', async () => {
    const data = await backupFixture('bad', 'mcp-healthy', 'mcp-bad', '1.0.3', { bin: { 'mcp-bad': '../../../evil.js' } });
    const error = await stageFails(data);
    expect(error.code).to.equal('EBINESCAPE');
    await expectCleanFailure(data, 'EBINESCAPE');
  });

  it('refuses a package without a bin when no smoke-test command is set', async () => {
    const data = await backupFixture('lib', 'plain-lib', 'plain-lib', '1.0.0');
    const error = (await stageFails(data)) as Error & { code?: string };
    expect(error.code).to.equal('ENOBIN');
    expect(error.message).to.include('set smokeTest.command or bin for lib');
  });

  describe('malicious tarballs', () => {
    const packageJson = (version: string): RawTarEntry => ({
      path: 'package/package.json',
      body: JSON.stringify({ name: 'mcp-bad', version, bin: { 'mcp-bad': 'server.js' } }),
    });
    const escapee = `mcpu-escape-${marker}`;
    const cases: Array<[string, string, RawTarEntry[]]> = [
      [
        'a ../ path',
        'EPATHTRAVERSAL',
        [
          { path: `package/../../../../../../../../tmp/${escapee}`, body: 'owned' },
          { path: `package/../../${escapee}`, body: 'owned' },
        ],
      ],
      ['an absolute path', 'EABSPATH', [{ path: `/tmp/${escapee}`, body: 'owned' }]],
      [
        'a symlink pointing outside',
        'ELINKESCAPE',
        [
          { path: 'package/out', type: 'symlink', linkpath: '../../../../../../../../../../tmp' },
          { path: `package/out/${escapee}`, body: 'owned' },
        ],
      ],
      ['an absolute symlink', 'ELINKESCAPE', [{ path: 'package/out', type: 'symlink', linkpath: '/tmp' }]],
      ['a hard link to a file outside', 'ELINKESCAPE', [{ path: 'package/passwd', type: 'hardlink', linkpath: '/etc/passwd' }]],
      [
        'a hard link climbing out',
        'ELINKESCAPE',
        [{ path: 'package/passwd', type: 'hardlink', linkpath: 'package/../../../../../../etc/passwd' }],
      ],
      [
        'a file written through an inside symlink',
        'ELINKTHROUGH',
        [
          { path: 'package/lib', type: 'symlink', linkpath: 'real' },
          { path: 'package/lib/x.js', body: 'x' },
        ],
      ],
      ['a FIFO', 'EDEVICE', [{ path: 'package/pipe', type: 'fifo' }]],
      ['a character device', 'EDEVICE', [{ path: 'package/null', type: 'chardev' }]],
      ['a file outside the package folder', 'EOUTSIDEROOT', [{ path: escapee, body: 'owned' }]],
      ['too many files', 'ETOOMANYFILES', Array.from({ length: 25 }, (_, i) => ({ path: `package/f${i}.js`, body: '1' }))],
      ['an oversized file', 'ETOOBIG', [{ path: 'package/big.bin', body: Buffer.alloc(300 * 1024) }]],
      [
        'files adding up over the package size',
        'EPACKAGETOOBIG',
        Array.from({ length: 5 }, (_, i) => ({ path: `package/part${i}.bin`, body: Buffer.alloc(250 * 1024) })),
      ],
      ['a set-user-id file', 'ESETID', [{ path: 'package/suid', body: '#!/bin/sh\n', mode: 0o4755 }]],
    ];
    let index = 0;
    for (const [name, code, entries] of cases) {
      it(`${code}: ${name}`, async () => {
        index += 1;
        const version = `2.0.${index}`;
        const data = await backup('bad', 'mcp-bad', version, await packEntries([packageJson(version), ...entries]));
        const error = await stageFails(data);
        expect(error.code, error.message).to.equal(code);
        expect(error.message).to.include('was not extracted');
        await expectCleanFailure(data, code);
        // Nothing may appear where the hostile paths point, nor anywhere up the test's tree.
        const places = new Set([
          '/tmp',
          os.tmpdir(),
          env.root,
          path.dirname(env.root),
          context.layout.stagingRoot,
          path.dirname(context.layout.stagingRoot),
          context.layout.root,
          context.layout.serverDir('bad'),
        ]);
        for (const place of places) expect(await exists(path.join(place, escapee)), `${place}/${escapee}`).to.equal(false);
      });
    }
  });

  it('refuses a corrupted backup with EINTEGRITY and removes it', async () => {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-bad', version: '3.0.0' });
    const data = await backup('bad', 'mcp-bad', '3.0.0', tarball);
    const file = context.layout.backupFile(data.integrity);
    const corrupted = Buffer.from(tarball);
    corrupted[corrupted.length >> 1]! ^= 0xff;
    await fs.writeFile(file, corrupted);
    const error = await stageFails(data);
    expect(error.code).to.equal('EINTEGRITY');
    expect(await exists(file)).to.equal(false);
    await expectCleanFailure(data, 'EINTEGRITY');
  });

  it('fails with EBACKUPMISSING when the backup is gone', async () => {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-bad', version: '3.0.1' });
    const data = await backup('bad', 'mcp-bad', '3.0.1', tarball);
    await fs.rm(context.layout.backupFile(data.integrity));
    const error = await stageFails(data);
    expect(error.code).to.equal('EBACKUPMISSING');
    expect(error.message).to.include('the next check of bad downloads it again');
  });

  describe('dependencies', () => {
    before(async () => {
      await registry.publish({
        name: 'fixture-dep',
        version: '1.0.0',
        fromDir: fixturePackageDir('plain-lib'),
        publishedAt: new Date(Date.now() - 30 * DAY),
      });
    });

    it('installs dependencies from the registry into node_modules, without leaving a .npmrc', async () => {
      const data = await backupFixture('deps', 'mcp-healthy', 'mcp-with-dep', '1.0.0', { dependencies: { 'fixture-dep': '^1.0.0' } });
      const result = await stage(data);
      expect(result.toolCount).to.equal(2);
      const dir = context.layout.versionDir('deps', '1.0.0');
      const dep = JSON.parse(await fs.readFile(path.join(dir, 'node_modules', 'fixture-dep', 'package.json'), 'utf8')) as {
        version: string;
      };
      expect(dep.version).to.equal('1.0.0');
      expect(await exists(path.join(dir, '.npmrc'))).to.equal(false);
      expect(await exists(path.join(dir, 'package-lock.json'))).to.equal(true);
    });

    it('keeps dependency versions younger than minReleaseAge out (--before)', async () => {
      await registry.publish({ name: 'fixture-dep', version: '1.1.0', fromDir: fixturePackageDir('plain-lib') });
      const depVersion = async (server: string) => {
        const file = path.join(context.layout.versionDir(server, '1.0.1'), 'node_modules', 'fixture-dep', 'package.json');
        return (JSON.parse(await fs.readFile(file, 'utf8')) as { version: string }).version;
      };
      await stage(await backupFixture('deps', 'mcp-healthy', 'mcp-with-dep', '1.0.1', { dependencies: { 'fixture-dep': '^1.0.0' } }));
      expect(await depVersion('deps')).to.equal('1.1.0');
      await stage(await backupFixture('deps-aged', 'mcp-healthy', 'mcp-with-dep', '1.0.1', { dependencies: { 'fixture-dep': '^1.0.0' } }));
      expect(await depVersion('deps-aged')).to.equal('1.0.0');
    });

    it('gives npm the registry token through a temporary .npmrc that names an environment variable', async () => {
      const token = `fixture-token-${marker}`;
      const tokenEnv = await createTestEnv({
        registryUrl: registry.url,
        env: { REGISTRY_TOKEN: token },
        inventory: 'servers:\n  deps: { package: mcp-with-dep, minReleaseAge: 0, activation: manual }\n',
      });
      try {
        const tokenContext = await tokenEnv.context();
        const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), {
          name: 'mcp-with-dep',
          version: '1.0.0',
          packageJson: { dependencies: { 'fixture-dep': '1.0.0' } },
        });
        const { integrity } = integrityOf(tarball);
        const file = tokenContext.layout.backupFile(integrity);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, tarball);
        const data = { server: 'deps', chain: 'deps@1.0.0', package: 'mcp-with-dep', version: '1.0.0', integrity };
        await runProcessor('stage', { id: 'deps@1.0.0', data }, tokenContext, execStageJob);
        const dir = tokenContext.layout.versionDir('deps', '1.0.0');
        expect(await exists(path.join(dir, 'node_modules', 'fixture-dep', 'package.json'))).to.equal(true);
        expect(await exists(path.join(dir, '.npmrc'))).to.equal(false);
        // The secret is on no file of the install tree, the npm cache or the logs.
        const files = await fs.readdir(tokenEnv.root, { recursive: true, withFileTypes: true });
        for (const entry of files.filter((item) => item.isFile())) {
          const text = await fs.readFile(path.join(entry.parentPath, entry.name), 'latin1');
          expect(text.includes(token), path.join(entry.parentPath, entry.name)).to.equal(false);
        }
      } finally {
        await tokenEnv.cleanup();
      }
    });

    it('fails with EDEPENDENCY, not retryable, naming a dependency that does not exist', async () => {
      const data = await backupFixture('deps', 'mcp-healthy', 'mcp-with-dep', '1.0.2', { dependencies: { 'fixture-missing': '^1.0.0' } });
      const error = await stageFails(data);
      expect(error.code).to.equal('EDEPENDENCY');
      expect(error.message).to.include('E404').and.include('fixture-missing');
      expect(error.name).to.equal('UnrecoverableError');
      await expectCleanFailure(data, 'EDEPENDENCY');
    });
  });
});
