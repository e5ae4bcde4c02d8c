/*
 * Issue 11, item 1 (and the npm part of item 6): a server is installed as the one dependency of a
 * generated project, as npx does, so its devDependencies are never resolved and its
 * bundleDependencies come from its own tarball; npm failures are told apart by npm's own code.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { StageJobData, StageResult } from '../shared/queues.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import type { WorkerContext } from '../workers/context.js';
import { execStageJob } from '../workers/stage.js';
import { installLimitProblem } from '../workers/staging/version.js';
import { loadConfig } from '../shared/config.js';
import { classifyNpmFailure, npmCacheDir, refusedSpecIn } from '../workers/staging/npmInstall.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory, packEntries } from './support/tarball.js';

const DAY = 24 * 3600 * 1000;

describe("install: npm failures classified by npm's own error code", () => {
  const cases: Array<[string, string, { kind: string; npmCode?: string; dependency?: string }]> = [
    [
      'E404 of a missing package',
      [
        'npm error code E404',
        'npm error 404 Not Found - GET http://127.0.0.1:4873/fixture-missing - Not found',
        'npm error 404',
        "npm error 404  The requested resource 'fixture-missing@^1.0.0' could not be found or you do not have permission to access it.",
        'npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log',
      ].join('\n'),
      { kind: 'unresolvable', npmCode: 'E404', dependency: 'fixture-missing@^1.0.0' },
    ],
    [
      'E404 of npm 8',
      "npm ERR! code E404\nnpm ERR! 404  'left-pad@^9.0.0' is not in this registry.",
      { kind: 'unresolvable', npmCode: 'E404', dependency: 'left-pad@^9.0.0' },
    ],
    [
      'ETARGET',
      'npm error code ETARGET\nnpm error notarget No matching version found for fixture-dep@^9.0.0.\nnpm error notarget In most cases you or one of your dependencies are requesting',
      { kind: 'unresolvable', npmCode: 'ETARGET', dependency: 'fixture-dep@^9.0.0' },
    ],
    [
      'ENOVERSIONS',
      'npm error code ENOVERSIONS\nnpm error No versions available for fixture-empty',
      { kind: 'unresolvable', npmCode: 'ENOVERSIONS', dependency: 'fixture-empty' },
    ],
    [
      'ERESOLVE',
      'npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree\nnpm error Could not resolve dependency:\nnpm error peer react@"^19.0.0" from fixture-ui@1.0.0',
      { kind: 'unresolvable', npmCode: 'ERESOLVE', dependency: 'react@"^19.0.0"' },
    ],
    [
      'EINTEGRITY',
      'npm error code EINTEGRITY\nnpm error sha512-abc integrity checksum failed when using sha512',
      { kind: 'unresolvable', npmCode: 'EINTEGRITY' },
    ],
    [
      'EUNSUPPORTEDPROTOCOL',
      'npm error code EUNSUPPORTEDPROTOCOL\nnpm error Unsupported URL Type "workspace:": workspace:*',
      { kind: 'unresolvable', npmCode: 'EUNSUPPORTEDPROTOCOL', dependency: 'workspace:*' },
    ],
    [
      'ECONNREFUSED',
      'npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error errno ECONNREFUSED\nnpm error FetchError: request to http://127.0.0.1:9/fixture-dep failed, reason: connect ECONNREFUSED 127.0.0.1:9',
      { kind: 'unreachable', npmCode: 'ECONNREFUSED' },
    ],
    [
      'ETIMEDOUT',
      'npm error code ETIMEDOUT\nnpm error network request to http://127.0.0.1:9/x failed',
      { kind: 'unreachable', npmCode: 'ETIMEDOUT' },
    ],
    [
      'EAI_AGAIN',
      'npm error code EAI_AGAIN\nnpm error request to http://registry.invalid/x failed, reason: getaddrinfo EAI_AGAIN',
      { kind: 'unreachable', npmCode: 'EAI_AGAIN' },
    ],
    [
      'a 503',
      'npm error code E503\nnpm error 503 Service Unavailable - GET http://127.0.0.1:4873/fixture-dep',
      { kind: 'unreachable', npmCode: 'E503' },
    ],
    [
      'a full disk',
      'npm error code ENOSPC\nnpm error nospc Could not install from ... no space left on device',
      { kind: 'other', npmCode: 'ENOSPC' },
    ],
    ['no code at all', 'Segmentation fault', { kind: 'other' }],
  ];
  for (const [name, stderr, expected] of cases) {
    it(`${expected.kind}: ${name}`, () => {
      const failure = classifyNpmFailure(stderr);
      expect({ kind: failure.kind, npmCode: failure.npmCode, dependency: failure.dependency }).to.deep.include(expected);
      expect(failure.summary).not.to.match(/complete log|^code /);
    });
  }
});

describe('install: which dependency npm refused to fetch, from its debug log', () => {
  it('names the dependency, its URL and who wanted it', () => {
    const log = [
      '16 silly fetch manifest mid@1.0.0',
      '21 silly placeDep node_modules/mid evil@ OK for: mid@1.0.0 want: http://127.0.0.1:9/evil.tgz',
      '22 verbose stack Error: Fetching packages of type "remote" have been disabled',
    ].join('\n');
    expect(refusedSpecIn(log)).to.equal('evil@http://127.0.0.1:9/evil.tgz (wanted by mid@1.0.0)');
    expect(refusedSpecIn('3 silly fetch manifest x@git+ssh://git@example.invalid/x.git')).to.equal('x@git+ssh://git@example.invalid/x.git');
    expect(
      refusedSpecIn(
        '15 silly placeDep ROOT top@1.0.0 OK for:  want: file:/x.tgz\n20 silly placeDep ROOT mid@1.0.0 OK for: top@1.0.0 want: 1.0.0\n21 silly fetch manifest fixture-dep@^1.0.0',
      ),
    ).to.equal('mid@1.0.0 (or a package its npm-shrinkwrap.json locks)');
    expect(refusedSpecIn('16 silly fetch manifest mid@1.0.0')).to.equal(undefined);
  });
});

describe("install: CACHE_DIR holds npm's cache", () => {
  const base = { API_BASE_URL: 'http://127.0.0.1:9/' };
  it('defaults to ./data/cache, whatever BACKUP_DIR is', () => {
    const config = loadConfig({ ...base, BACKUP_DIR: '/var/backups' });
    expect(config.cacheDir).to.equal(path.resolve('./data/cache'));
    expect(npmCacheDir(config)).to.equal(path.resolve('./data/cache/npm'));
  });
  it('follows CACHE_DIR', () => {
    expect(npmCacheDir(loadConfig({ ...base, CACHE_DIR: '/srv/mcp/cache' }))).to.equal('/srv/mcp/cache/npm');
  });
});

describe('install: a server is the one dependency of a generated project', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;

  before(async () => {
    registry = await FixtureRegistry.start();
    await registry.publish({
      name: 'fixture-dep',
      version: '1.0.0',
      fromDir: fixturePackageDir('plain-lib'),
      publishedAt: new Date(Date.now() - 30 * DAY),
    });
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: `
defaults:
  minReleaseAge: 0
  activation: manual
  smokeTest: { timeout: 10s }
servers:
  dev-deps: { package: mcp-dev-deps }
  bundled: { package: '@fixture/mcp-bundled' }
  broken-deps: { package: mcp-broken-deps }
`,
    });
    context = await env.context();
  });

  after(async () => {
    await env?.cleanup();
    await registry?.close();
  });

  async function backup(server: string, pkg: string, version: string, tarball: Buffer): Promise<StageJobData> {
    const { integrity } = integrityOf(tarball);
    const file = context.layout.backupFile(integrity);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, tarball);
    return { server, chain: `${server}@${version}`, package: pkg, version, integrity };
  }

  async function stage(data: StageJobData, attempts = 1): Promise<StageResult> {
    return runProcessor('stage', { id: data.chain, data, attemptsMade: 0, opts: { attempts } }, context, execStageJob);
  }

  async function stageError(data: StageJobData, attempts = 1): Promise<Error & { code?: string }> {
    try {
      await stage(data, attempts);
    } catch (error) {
      return error as Error & { code?: string };
    }
    expect.fail('staging succeeded');
  }

  const exists = (file: string) =>
    fs.lstat(file).then(
      () => true,
      () => false,
    );

  it('installs a package whose devDependencies hold workspace:* and an unpublished package', async () => {
    const data = await backup('dev-deps', 'mcp-dev-deps', '1.0.0', await packDirectory(fixturePackageDir('mcp-dev-deps')));
    const result = await stage(data);
    expect(result).to.include({ version: '1.0.0', toolCount: 2, next: 'awaiting-approval' });
    const dir = context.layout.versionDir('dev-deps', '1.0.0');
    expect(await exists(path.join(dir, 'node_modules', 'mcp-dev-deps', 'server.js'))).to.equal(true);
    expect(await exists(path.join(dir, 'node_modules', 'fixture-dep', 'package.json'))).to.equal(true);
    expect(await exists(path.join(dir, 'node_modules', 'fixture-unpublished-dev-only'))).to.equal(false);
    expect(await exists(path.join(dir, 'node_modules', '@fixture'))).to.equal(false);
    // npm's cache is in CACHE_DIR/npm, never in the version directory.
    expect(await exists(path.join(env.config.cacheDir, 'npm', '_cacache'))).to.equal(true);
    // The registry was never asked for a devDependency.
    expect(registry.requests.filter((request) => /unpublished-dev-only|workspace-tool/.test(request.url))).to.deep.equal([]);
    // What the launcher runs is the package's bin inside node_modules.
    const run = await fs.readFile(context.layout.runScript(dir), 'utf8');
    expect(run).to.include(`"$here"/'node_modules/mcp-dev-deps/server.js'`);
    expect(await runSmokeTest({ command: context.layout.runScript(dir), timeoutMs: 10_000 })).to.include({
      ok: true,
      serverName: 'mcp-dev-deps',
    });
  });

  it("takes bundleDependencies from the package's own tarball (a bundled package the registry does not have)", async () => {
    const server = await fs.readFile(path.join(fixturePackageDir('mcp-healthy'), 'server.js'));
    const manifest = {
      name: '@fixture/mcp-bundled',
      version: '1.0.0',
      type: 'module',
      bin: { 'mcp-bundled': 'server.js' },
      dependencies: { 'fixture-bundled-only': '1.0.0', 'fixture-dep': '^1.0.0' },
      bundleDependencies: ['fixture-bundled-only'],
    };
    const data = await backup(
      'bundled',
      '@fixture/mcp-bundled',
      '1.0.0',
      await packEntries([
        { path: 'package/package.json', body: JSON.stringify(manifest) },
        { path: 'package/server.js', body: server, mode: 0o755 },
        {
          path: 'package/node_modules/fixture-bundled-only/package.json',
          body: JSON.stringify({ name: 'fixture-bundled-only', version: '1.0.0', main: 'index.js' }),
        },
        { path: 'package/node_modules/fixture-bundled-only/index.js', body: 'export default 42;\n' },
      ]),
    );
    const result = await stage(data);
    expect(result.toolCount).to.equal(2);
    const dir = context.layout.versionDir('bundled', '1.0.0');
    const pkgDir = path.join(dir, 'node_modules', '@fixture', 'mcp-bundled');
    expect(await exists(path.join(pkgDir, 'server.js'))).to.equal(true);
    expect(
      (await exists(path.join(pkgDir, 'node_modules', 'fixture-bundled-only', 'index.js')))
        || (await exists(path.join(dir, 'node_modules', 'fixture-bundled-only', 'index.js'))),
    ).to.equal(true);
    expect(await exists(path.join(dir, 'node_modules', 'fixture-dep', 'package.json'))).to.equal(true);
    expect(registry.requests.filter((request) => request.url.includes('fixture-bundled-only'))).to.deep.equal([]);
    expect((await context.layout.readVersionRecord('bundled', '1.0.0'))?.packageDir).to.equal('node_modules/@fixture/mcp-bundled');
  });

  it('a dependency range nothing satisfies fails at once (EDEPENDENCY, ETARGET), naming the dependency', async () => {
    const data = await backup(
      'broken-deps',
      'mcp-broken-deps',
      '1.0.0',
      await packDirectory(fixturePackageDir('mcp-healthy'), {
        name: 'mcp-broken-deps',
        version: '1.0.0',
        packageJson: { dependencies: { 'fixture-dep': '^9.0.0' } },
      }),
    );
    const error = await stageError(data, 3);
    expect(error.code).to.equal('EDEPENDENCY');
    expect(error.name, 'final: not retried').to.equal('UnrecoverableError');
    expect(error.message).to.include('fixture-dep@^9.0.0').and.include('ETARGET');
    expect(error.message).not.to.include('reachable');
    const state = await context.state.get('broken-deps');
    expect(state.state).to.equal('failed');
    expect(state.lastError).to.include('fixture-dep@^9.0.0');
    // Not the version's fault: the next check tries it again once the dependency is published.
    expect(state.failedVersions).to.deep.equal([]);
    expect(await exists(context.layout.versionDir('broken-deps', '1.0.0'))).to.equal(false);
  });

  it('a registry that does not answer is retried (EREGISTRYUNREACHABLE), with a hint to check it', async () => {
    const data = await backup(
      'broken-deps',
      'mcp-broken-deps',
      '1.0.1',
      await packDirectory(fixturePackageDir('mcp-healthy'), {
        name: 'mcp-broken-deps',
        version: '1.0.1',
        packageJson: { dependencies: { 'fixture-flaky-dep': '^1.0.0' } },
      }),
    );
    // A package npm has never fetched: no cached copy to fall back on.
    await registry.publish({
      name: 'fixture-flaky-dep',
      version: '1.0.0',
      fromDir: fixturePackageDir('plain-lib'),
      publishedAt: new Date(Date.now() - 30 * DAY),
    });
    registry.injectFault({ match: /fixture-flaky-dep/, kind: 'status', status: 503 });
    try {
      const error = await stageError(data, 3);
      expect(error.code).to.equal('EREGISTRYUNREACHABLE');
      expect(error.name, 'retried: not final').not.to.equal('UnrecoverableError');
      expect(error.message).to.include('E503');
    } finally {
      registry.clearFaults();
    }
    expect(await exists(context.layout.versionDir('broken-deps', '1.0.1'))).to.equal(false);
  });
});

describe('install: MAX_PACKAGE_FILES and MAX_PACKAGE_SIZE cover the whole install', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;

  it('installLimitProblem names the limit and the largest packages', () => {
    const tree = [
      { path: 'package.json', kind: 'file' as const, size: 10 },
      { path: 'node_modules/top/server.js', kind: 'file' as const, size: 100 },
      { path: 'node_modules/@big/blob/a.bin', kind: 'file' as const, size: 5000 },
      { path: 'node_modules/@big/blob/node_modules/inner/b.bin', kind: 'file' as const, size: 3000 },
    ];
    expect(installLimitProblem(tree, { maxFiles: 10, maxBytes: 10_000 })).to.equal(undefined);
    const bytes = installLimitProblem(tree, { maxFiles: 10, maxBytes: 1000 })!;
    expect(bytes.code).to.equal('EPACKAGETOOBIG');
    expect(bytes.largest[0]).to.deep.equal({ package: '@big/blob', bytes: 8000, files: 2 });
    expect(installLimitProblem(tree, { maxFiles: 3, maxBytes: 10_000 })!.code).to.equal('ETOOMANYFILES');
  });

  before(async () => {
    registry = await FixtureRegistry.start();
    const manifest = JSON.stringify({ name: 'fixture-big', version: '1.0.0', main: 'index.js' });
    await registry.publish({
      name: 'fixture-big',
      version: '1.0.0',
      publishedAt: new Date(Date.now() - 30 * DAY),
      tarball: await packEntries([
        { path: 'package/package.json', body: manifest },
        { path: 'package/index.js', body: 'module.exports = 1;\n' },
        { path: 'package/a.bin', body: Buffer.alloc(120 * 1024, 1) },
        { path: 'package/b.bin', body: Buffer.alloc(120 * 1024, 2) },
      ]),
    });
    env = await createTestEnv({
      registryUrl: registry.url,
      env: { MAX_TARBALL_SIZE: '150kb', MAX_PACKAGE_SIZE: '200kb' },
      inventory: 'defaults:\n  minReleaseAge: 0\n  activation: manual\nservers:\n  big: { package: mcp-big }\n',
    });
    context = await env.context();
  });

  after(async () => {
    await env?.cleanup();
    await registry?.close();
  });

  it('refuses a small package whose dependency is oversized, naming the dependency', async () => {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), {
      name: 'mcp-big',
      version: '1.0.0',
      packageJson: { dependencies: { 'fixture-big': '1.0.0' } },
    });
    const { integrity } = integrityOf(tarball);
    const file = context.layout.backupFile(integrity);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, tarball);
    const data: StageJobData = { server: 'big', chain: 'big@1.0.0', package: 'mcp-big', version: '1.0.0', integrity };
    let error: (Error & { code?: string }) | undefined;
    try {
      await runProcessor('stage', { id: data.chain, data, attemptsMade: 0, opts: { attempts: 3 } }, context, execStageJob);
    } catch (caught) {
      error = caught as Error & { code?: string };
    }
    expect(error?.code).to.equal('EPACKAGETOOBIG');
    expect(error!.message).to.include('MAX_PACKAGE_SIZE').and.include('fixture-big');
    expect(error!.name).to.equal('UnrecoverableError');
    expect(
      await fs.lstat(context.layout.versionDir('big', '1.0.0')).then(
        () => true,
        () => false,
      ),
    ).to.equal(false);
  });
});
