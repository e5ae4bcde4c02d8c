/*
 * Issue 11, item 2: dependencies obey the rules the top package obeys. npm resolves a lock
 * (nothing executed, nothing extracted, no git or URL fetched), the lock is audited, and only
 * then does `npm ci` install exactly it. Each hostile dependency is refused with its own message,
 * nothing of it is installed, and the attacker's host (a second loopback server) gets no request.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { auditLockEntries, auditRegistryDependencies, nonRegistrySpec, type PackageLock } from '../shared/lockAudit.js';
import type { Packument } from '../shared/registry.js';
import type { StageJobData, StageResult } from '../shared/queues.js';
import type { WorkerContext } from '../workers/context.js';
import { execStageJob } from '../workers/stage.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory } from './support/tarball.js';

const DAY = 24 * 3600 * 1000;
const old = new Date(Date.now() - 30 * DAY);
const SHA = (seed: number) => `sha512-${Buffer.alloc(64, seed).toString('base64')}`;

describe('lock audit: pure decisions', () => {
  const specs: Array<[string, string | undefined]> = [
    ['^1.2.3', undefined],
    ['1.2.3', undefined],
    ['latest', undefined],
    ['>=1 <2', undefined],
    ['npm:other@^1.0.0', undefined],
    ['http://127.0.0.1:9/evil.tgz', 'a URL'],
    ['https://example.invalid/x.tgz', 'a URL'],
    ['git+https://example.invalid/x.git', 'a git repository'],
    ['github:user/repo', 'a git repository'],
    ['user/repo', 'a git repository'],
    ['user/repo#main', 'a git repository'],
    ['file:../x', 'a local file or folder'],
    ['link:../x', 'a link to a local folder'],
    ['workspace:*', 'a workspace reference'],
    ['npm:other@http://127.0.0.1:9/x.tgz', 'a URL'],
  ];
  for (const [spec, expected] of specs)
    it(`${JSON.stringify(spec)}: ${expected ?? 'registry'}`, () => expect(nonRegistrySpec(spec)).to.equal(expected));

  const base = {
    topPackage: 'top',
    isBackupTarball: (resolved: string) => resolved === 'file:../backup.tgz',
    tarballProblem: (url: string) => (new URL(url).host === '127.0.0.1:1' ? undefined : `host ${new URL(url).host} is not the registry`),
  };
  const lock = (entries: PackageLock['packages']): PackageLock => ({
    packages: {
      '': { dependencies: { top: 'file:../backup.tgz' } },
      'node_modules/top': { version: '1.0.0', resolved: 'file:../backup.tgz', integrity: SHA(1) },
      ...entries,
    },
  });
  const cases: Array<[string, PackageLock, string[]]> = [
    ['a registry entry without resolved', lock({ 'node_modules/a': { version: '1.0.0', integrity: SHA(2) } }), []],
    [
      'a registry entry on the registry host',
      lock({ 'node_modules/a': { version: '1.0.0', resolved: 'http://127.0.0.1:1/a/-/a-1.0.0.tgz', integrity: SHA(2) } }),
      [],
    ],
    ['a bundled entry', lock({ 'node_modules/top/node_modules/b': { version: '1.0.0', inBundle: true } }), []],
    [
      'the top package from somewhere else',
      { packages: { 'node_modules/top': { version: '1.0.0', resolved: 'file:/tmp/other.tgz', integrity: SHA(1) } } },
      ['top@1.0.0'],
    ],
    [
      'another host',
      lock({ 'node_modules/a': { version: '1.0.0', resolved: 'http://127.0.0.1:2/a.tgz', integrity: SHA(2) } }),
      ['a@1.0.0'],
    ],
    [
      'a git resolution',
      lock({ 'node_modules/a': { version: '1.0.0', resolved: 'git+ssh://git@example.invalid/a.git#abc', integrity: SHA(2) } }),
      ['a@1.0.0'],
    ],
    ['a file resolution', lock({ 'node_modules/a': { version: '1.0.0', resolved: 'file:../a.tgz', integrity: SHA(2) } }), ['a@1.0.0']],
    ['a link', lock({ 'node_modules/a': { version: '1.0.0', resolved: '../a', link: true } }), ['a@1.0.0']],
    ['no integrity', lock({ 'node_modules/a': { version: '1.0.0' } }), ['a@1.0.0']],
    ['a SHA-1 integrity', lock({ 'node_modules/a': { version: '1.0.0', integrity: 'sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=' } }), ['a@1.0.0']],
    [
      'a version that is not semver',
      lock({ 'node_modules/a': { version: 'git+https://x/a.git', integrity: SHA(2) } }),
      ['a@git+https://x/a.git'],
    ],
    [
      "a URL spec in an entry's dependencies",
      lock({ 'node_modules/a': { version: '1.0.0', integrity: SHA(2), dependencies: { evil: 'http://127.0.0.1:2/e.tgz' } } }),
      ['evil@http://127.0.0.1:2/e.tgz'],
    ],
  ];
  for (const [name, input, expected] of cases) {
    it(`auditLockEntries: ${name}`, () => {
      const { problems } = auditLockEntries({ ...base, lock: input });
      expect(problems.map((problem) => problem.dependency)).to.deep.equal(expected);
    });
  }
  it('auditLockEntries: a hostile override is refused', () => {
    const { problems } = auditLockEntries({ ...base, lock: lock({}), overrides: { a: { evil: 'github:x/y' } } });
    expect(problems.map((problem) => [problem.dependency, problem.kind])).to.deep.equal([['evil@github:x/y', 'source']]);
    expect(problems[0]!.reason).to.include('overrides');
  });

  const now = new Date('2026-11-29T00:00:00Z');
  const packument = (time?: string, tarball = 'http://127.0.0.1:1/a/-/a-1.0.0.tgz', integrity = SHA(2)): Packument => ({
    name: 'a',
    'dist-tags': { latest: '1.0.0' },
    versions: { '1.0.0': { name: 'a', version: '1.0.0', dist: { tarball, integrity } } },
    ...(time ? { time: { '1.0.0': time } } : {}),
  });
  const registryCases: Array<[string, Packument | undefined, string | undefined]> = [
    ['old enough', packument('2026-10-01T00:00:00Z'), undefined],
    ['too young', packument('2026-11-28T00:00:00Z'), 'too-young'],
    ['no publish time', packument(undefined), 'too-young'],
    ['not listed', undefined, 'source'],
    ['its tarball on another host', packument('2026-10-01T00:00:00Z', 'http://127.0.0.1:2/a.tgz'), 'source'],
    ["another integrity than the lock's", packument('2026-10-01T00:00:00Z', undefined, SHA(3)), 'source'],
  ];
  for (const [name, doc, kind] of registryCases) {
    it(`auditRegistryDependencies: ${name}`, () => {
      const problems = auditRegistryDependencies({
        dependencies: [{ name: 'a', version: '1.0.0', integrity: SHA(2), location: 'node_modules/a' }],
        packuments: new Map(doc ? [['a', doc]] : []),
        minReleaseAgeMs: 3 * DAY,
        now,
        tarballProblem: base.tarballProblem,
      });
      expect(problems.map((problem) => problem.kind)).to.deep.equal(kind ? [kind] : []);
    });
  }
});

describe('lock audit: hostile dependencies are refused before anything is installed', function () {
  this.timeout(120_000);
  let registry: FixtureRegistry;
  let attacker: http.Server;
  let attackerUrl: string;
  const attackerRequests: string[] = [];
  let env: TestEnv;
  let context: WorkerContext;
  let work: string;
  let version = 0;

  before(async () => {
    attacker = http.createServer((request, response) => {
      attackerRequests.push(`${request.method} ${request.url}`);
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    registry = await FixtureRegistry.start();
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-audit-'));
    const plain = fixturePackageDir('plain-lib');
    await registry.publish({ name: 'fixture-dep', version: '1.0.0', fromDir: plain, publishedAt: old });
    await registry.publish({ name: 'fixture-dep', version: '1.1.0', fromDir: plain, publishedAt: new Date() });
    await registry.publish({
      name: 'fixture-mid-url',
      version: '1.0.0',
      fromDir: plain,
      publishedAt: old,
      packageJson: { dependencies: { evil: `${attackerUrl}/evil.tgz` } },
    });
    await registry.publish({
      name: 'fixture-mid-git',
      version: '1.0.0',
      fromDir: plain,
      publishedAt: old,
      packageJson: { dependencies: { evil: `git+${attackerUrl}/evil.git` } },
    });
    await registry.publish({ name: 'fixture-timeless', version: '1.0.0', fromDir: plain, publishedAt: old });
    registry.editPackument('fixture-timeless', (doc) => {
      delete (doc.time as Record<string, string> | undefined)?.['1.0.0'];
    });
    await registry.publish({
      name: 'fixture-elsewhere',
      version: '1.0.0',
      fromDir: plain,
      publishedAt: old,
      tarballUrl: `${attackerUrl}/fixture-elsewhere-1.0.0.tgz`,
    });
    // A registry dependency that ships an npm-shrinkwrap.json locking its own dependency.
    const depIntegrity = (v: string) => registry.requests.length >= 0 && integrities.get(v)!;
    const integrities = new Map<string, string>();
    for (const v of ['1.0.0', '1.1.0']) {
      const doc = (await (await fetch(registry.packumentUrl('fixture-dep'))).json()) as Packument;
      integrities.set(v, doc.versions[v]!.dist!.integrity!);
    }
    for (const [name, entry] of [
      [
        'fixture-shrink-elsewhere',
        { version: '1.0.0', resolved: `${attackerUrl}/fixture-dep-1.0.0.tgz`, integrity: depIntegrity('1.0.0') },
      ],
      [
        'fixture-shrink-young',
        { version: '1.1.0', resolved: registry.tarballUrl('fixture-dep', '1.1.0'), integrity: depIntegrity('1.1.0') },
      ],
    ] as const) {
      const dir = path.join(work, name);
      await fs.cp(plain, dir, { recursive: true });
      await fs.writeFile(
        path.join(dir, 'npm-shrinkwrap.json'),
        JSON.stringify({
          name,
          version: '1.0.0',
          lockfileVersion: 3,
          requires: true,
          packages: { '': { name, version: '1.0.0', dependencies: { 'fixture-dep': '^1.0.0' } }, 'node_modules/fixture-dep': entry },
        }),
      );
      await registry.publish({
        name,
        version: '1.0.0',
        fromDir: dir,
        publishedAt: old,
        packageJson: { dependencies: { 'fixture-dep': '^1.0.0' }, files: ['index.js', 'npm-shrinkwrap.json'] },
      });
      registry.editPackument(name, (doc) => {
        (doc.versions as Record<string, Record<string, unknown>>)['1.0.0']!._hasShrinkwrap = true;
      });
    }
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory:
        'defaults:\n  minReleaseAge: 3d\n  activation: manual\n  smokeTest: { timeout: 10s }\nservers:\n  hostile: { package: mcp-hostile }\n',
    });
    context = await env.context();
  });

  after(async () => {
    await env?.cleanup();
    await registry?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  afterEach(() => {
    expect(attackerRequests, 'requests to the attacker host').to.deep.equal([]);
  });

  async function stageWith(
    packageJson: Record<string, unknown>,
  ): Promise<{ data: StageJobData; result?: StageResult; error?: Error & { code?: string } }> {
    version += 1;
    const v = `1.0.${version}`;
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-hostile', version: v, packageJson });
    const { integrity } = integrityOf(tarball);
    const file = context.layout.backupFile(integrity);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, tarball);
    const data: StageJobData = { server: 'hostile', chain: `hostile@${v}`, package: 'mcp-hostile', version: v, integrity };
    try {
      const result = await runProcessor('stage', { id: data.chain, data, attemptsMade: 0, opts: { attempts: 3 } }, context, execStageJob);
      return { data, result };
    } catch (error) {
      return { data, error: error as Error & { code?: string } };
    }
  }

  async function expectRefused(packageJson: Record<string, unknown>, code: string, mentions: string[]): Promise<string> {
    const { data, error } = await stageWith(packageJson);
    expect(error, 'refused').not.to.equal(undefined);
    expect(error!.code, error!.message).to.equal(code);
    expect(error!.name, 'final').to.equal('UnrecoverableError');
    for (const text of mentions) expect(error!.message).to.include(text);
    expect(
      await fs.lstat(context.layout.versionDir('hostile', data.version)).then(
        () => true,
        () => false,
      ),
      'nothing installed',
    ).to.equal(false);
    expect(await fs.readdir(path.join(context.layout.stagingRoot, 'hostile')).catch(() => []), 'no staging left').to.deep.equal([]);
    return error!.message;
  }

  it('installs a clean tree from the lock it audited', async () => {
    const { result, error } = await stageWith({ dependencies: { 'fixture-dep': '^1.0.0' } });
    expect(error?.message).to.equal(undefined);
    const dir = context.layout.versionDir('hostile', result!.version);
    const lock = JSON.parse(await fs.readFile(path.join(dir, 'package-lock.json'), 'utf8')) as PackageLock;
    expect(lock.packages?.['node_modules/fixture-dep']?.version).to.equal('1.0.0');
    expect(JSON.parse(await fs.readFile(path.join(dir, 'node_modules', 'fixture-dep', 'package.json'), 'utf8'))).to.include({
      version: '1.0.0',
    });
  });

  it('a dependency given as a URL of another host', async () => {
    await expectRefused({ dependencies: { evil: `${attackerUrl}/evil.tgz` } }, 'EDEPSOURCE', ['evil@', 'as a URL']);
  });

  it('a git dependency', async () => {
    await expectRefused({ dependencies: { evil: `git+${attackerUrl}/evil.git` } }, 'EDEPSOURCE', ['evil@', 'git repository']);
  });

  it('a GitHub shorthand dependency', async () => {
    await expectRefused({ dependencies: { evil: 'attacker/evil' } }, 'EDEPSOURCE', ['evil@attacker/evil', 'git repository']);
  });

  it('a file: dependency', async () => {
    await expectRefused({ dependencies: { evil: 'file:/etc' } }, 'EDEPSOURCE', ['evil@file:/etc', 'local file']);
  });

  it('a link: dependency', async () => {
    await expectRefused({ dependencies: { evil: 'link:../../..' } }, 'EDEPSOURCE', ['evil@link:', 'link']);
  });

  it('an override that points elsewhere', async () => {
    await expectRefused(
      { dependencies: { 'fixture-dep': '^1.0.0' }, overrides: { 'fixture-dep': `${attackerUrl}/fixture-dep.tgz` } },
      'EDEPSOURCE',
      ['overrides', 'fixture-dep@'],
    );
  });

  it('a URL dependency of a registry dependency (npm refuses to fetch it)', async () => {
    await expectRefused({ dependencies: { 'fixture-mid-url': '1.0.0' } }, 'EDEPSOURCE', ['EALLOWREMOTE', `evil@${attackerUrl}/evil.tgz`]);
  });

  it('a git dependency of a registry dependency (npm refuses to fetch it)', async () => {
    await expectRefused({ dependencies: { 'fixture-mid-git': '1.0.0' } }, 'EDEPSOURCE', ['EALLOWGIT', 'evil@git+']);
  });

  it('a dependency whose packument sends its tarball to another host', async () => {
    await expectRefused({ dependencies: { 'fixture-elsewhere': '1.0.0' } }, 'EDEPSOURCE', [
      'fixture-elsewhere@1.0.0',
      'not at the registry',
    ]);
  });

  // npm counts a URL a dependency's shrinkwrap locks as remote: it refuses it before fetching.
  it('an npm-shrinkwrap.json of a dependency that resolves a package on another host', async () => {
    await expectRefused({ dependencies: { 'fixture-shrink-elsewhere': '1.0.0' } }, 'EDEPSOURCE', [
      'EALLOWREMOTE',
      'fixture-shrink-elsewhere@1.0.0 (or a package its npm-shrinkwrap.json locks)',
    ]);
  });

  it('an npm-shrinkwrap.json of a dependency that locks a version younger than minReleaseAge (--before ignores locks)', async () => {
    await expectRefused({ dependencies: { 'fixture-shrink-young': '1.0.0' } }, 'EDEPSOURCE', [
      'EALLOWREMOTE',
      'fixture-shrink-young@1.0.0 (or a package its npm-shrinkwrap.json locks)',
    ]);
  });

  it('a dependency whose packument has no publish time counts as too young', async () => {
    await expectRefused({ dependencies: { 'fixture-timeless': '^1.0.0' } }, 'EDEPTOOYOUNG', ['fixture-timeless@1.0.0', 'no publish time']);
  });
});
