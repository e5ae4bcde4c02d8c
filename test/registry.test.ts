import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { expect } from 'chai';
import pacote from 'pacote';
import * as tar from 'tar';
import { verifyRegistrySignatures } from '../shared/signatures.js';
import { FIXTURE_SIGNING_KEY, FixtureRegistry, fixturePackageDir, type PublishResult } from './support/registry.js';
import { FIXED_MTIME, integrityOf, packDirectory, packEntries } from './support/tarball.js';

const execFileAsync = promisify(execFile);
const CORGI = 'application/vnd.npm.install-v1+json';

interface ListedEntry {
  path: string;
  type: string;
  mode: number | undefined;
  size: number;
  linkpath: string | undefined;
  mtime: Date | undefined;
  body: Buffer;
}

/** Read a tarball's entries verbatim (tar.Parser does not sanitise paths). */
async function listTarball(tgz: Buffer): Promise<ListedEntry[]> {
  const entries: ListedEntry[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new tar.Parser({
      onReadEntry: (entry) => {
        const chunks: Buffer[] = [];
        const listed: ListedEntry = {
          path: entry.path,
          type: entry.type,
          mode: entry.mode,
          size: entry.size,
          linkpath: entry.linkpath,
          mtime: entry.mtime,
          body: Buffer.alloc(0),
        };
        entries.push(listed);
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => {
          listed.body = Buffer.concat(chunks);
        });
      },
    });
    parser.on('error', reject);
    parser.on('end', () => resolve());
    parser.end(tgz);
  });
  return entries;
}

async function expectRejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  expect.fail('expected the promise to reject');
}

describe('test support: fixture registry, tarball helpers and MCP fixtures', function () {
  this.timeout(30_000);

  let registry: FixtureRegistry;
  let tmpRoot: string;
  let cacheCounter = 0;
  let base: { v100: PublishResult; v110: PublishResult; beta: PublishResult; scoped: PublishResult };
  const v100Date = new Date('2021-03-04T05:06:07.000Z');

  /** pacote options with a fresh, private cache directory for every call. */
  const pacoteOpts = (extra: Record<string, unknown> = {}): pacote.Options => ({
    registry: registry.url,
    cache: path.join(tmpRoot, `pacote-cache-${++cacheCounter}`),
    fetchRetries: 0,
    ...extra,
  });

  before(async () => {
    tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-updater-registry-test-'));
    registry = await FixtureRegistry.start();
    base = {
      v100: await registry.publish({ name: 'fixture-pkg', version: '1.0.0', publishedAt: v100Date }),
      v110: await registry.publish({ name: 'fixture-pkg', version: '1.1.0' }),
      beta: await registry.publish({ name: 'fixture-pkg', version: '2.0.0-beta.1', tag: 'beta' }),
      scoped: await registry.publish({ name: '@fixture/scoped', version: '1.0.0' }),
    };
  });

  after(async () => {
    await registry?.close();
    if (tmpRoot) await fs.rm(tmpRoot, { recursive: true, force: true });
  });

  afterEach(() => {
    registry.clearFaults();
  });

  describe('tarball helpers', () => {
    it('packDirectory builds a deterministic npm-style tarball with overridden package.json', async () => {
      const opts = {
        name: '@acme/renamed',
        version: '3.2.1',
        packageJson: { dependencies: { 'fixture-dep': '^1.0.0' }, description: 'overridden' },
      };
      const a = await packDirectory(fixturePackageDir('mcp-healthy'), opts);
      const b = await packDirectory(fixturePackageDir('mcp-healthy'), opts);
      expect(a.equals(b)).to.equal(true);
      expect(a[0]).to.equal(0x1f); // gzip magic
      expect(a[1]).to.equal(0x8b);

      const entries = await listTarball(a);
      expect(entries.map((e) => e.path)).to.deep.equal(['package/package.json', 'package/server.js']);
      for (const e of entries) {
        expect(e.type).to.equal('File');
        expect(e.mtime?.getTime()).to.equal(FIXED_MTIME.getTime());
      }
      const server = entries.find((e) => e.path === 'package/server.js')!;
      expect((server.mode ?? 0) & 0o777).to.equal(0o755);
      const pkg = JSON.parse(entries[0]!.body.toString('utf8')) as Record<string, unknown>;
      expect(pkg).to.include({ name: '@acme/renamed', version: '3.2.1', description: 'overridden', type: 'module' });
      expect(pkg.dependencies).to.deep.equal({ 'fixture-dep': '^1.0.0' });
      expect(pkg.bin).to.deep.equal({ 'mcp-healthy': 'server.js' });
    });

    it('integrityOf computes sha512 SRI and sha1 hex', () => {
      expect(integrityOf(Buffer.from('hello'))).to.deep.equal({
        integrity: 'sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==',
        shasum: 'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d',
      });
    });

    it('packEntries writes hostile entries verbatim (traversal, absolute, links, fifo, chardev, long paths)', async () => {
      const longPath = `package/${'d'.repeat(120)}/${'f'.repeat(150)}.js`;
      const tgz = await packEntries([
        { path: 'package/package.json', body: '{"name":"evil","version":"1.0.0"}' },
        { path: 'package/../../evil', body: 'pwned' },
        { path: '/etc/x', body: Buffer.from([1, 2, 3]), mode: 0o600 },
        { path: 'package/dir', type: 'directory' },
        { path: 'package/link', type: 'symlink', linkpath: '../../../../etc/passwd' },
        { path: 'package/hard', type: 'hardlink', linkpath: '/etc/passwd' },
        { path: 'package/fifo', type: 'fifo' },
        { path: 'package/null', type: 'chardev' },
        { path: longPath, body: 'long' },
      ]);
      const entries = await listTarball(tgz);
      expect(entries.map((e) => [e.path, e.type])).to.deep.equal([
        ['package/package.json', 'File'],
        ['package/../../evil', 'File'],
        ['/etc/x', 'File'],
        ['package/dir', 'Directory'],
        ['package/link', 'SymbolicLink'],
        ['package/hard', 'Link'],
        ['package/fifo', 'FIFO'],
        ['package/null', 'CharacterDevice'],
        [longPath, 'File'],
      ]);
      expect(entries[1]!.body.toString()).to.equal('pwned');
      expect(entries[2]!.mode).to.equal(0o600);
      expect(entries[4]!.linkpath).to.equal('../../../../etc/passwd');
      expect(entries[5]!.linkpath).to.equal('/etc/passwd');
      expect(entries[8]!.body.toString()).to.equal('long');
    });
  });

  describe('FixtureRegistry + pacote', () => {
    it('serves the abbreviated packument (no time) for the corgi Accept header', async () => {
      registry.resetRequests();
      const p = (await pacote.packument('fixture-pkg', pacoteOpts())) as unknown as Record<string, unknown>;
      expect(p.name).to.equal('fixture-pkg');
      expect(p['dist-tags']).to.deep.equal({ latest: '1.1.0', beta: '2.0.0-beta.1' });
      expect(Object.keys(p.versions as object)).to.deep.equal(['1.0.0', '1.1.0', '2.0.0-beta.1']);
      expect(p).to.not.have.property('time');
      expect(p.modified).to.be.a('string');
      expect(registry.requests).to.have.length(1);
      expect(registry.requests[0]!.accept).to.include(CORGI);
      expect(registry.requests[0]!.status).to.equal(200);

      const res = await fetch(registry.packumentUrl('fixture-pkg'), { headers: { accept: CORGI } });
      expect(res.headers.get('content-type')).to.equal(CORGI);
      const body = (await res.json()) as { versions: Record<string, Record<string, unknown>> };
      const allowed = [
        'name',
        'version',
        'dependencies',
        'optionalDependencies',
        'peerDependencies',
        'peerDependenciesMeta',
        'bundleDependencies',
        'bin',
        'engines',
        'os',
        'cpu',
        'dist',
        'deprecated',
        '_hasShrinkwrap',
        'hasInstallScript',
      ];
      const v1 = body.versions['1.0.0']!;
      expect(Object.keys(v1).every((k) => allowed.includes(k))).to.equal(true);
      expect(v1).to.include({ name: 'fixture-pkg', version: '1.0.0', _hasShrinkwrap: false });
      expect(v1.bin).to.deep.equal({ 'mcp-healthy': 'server.js' });
      const { signatures, ...dist } = v1.dist as { signatures: unknown; integrity: string };
      expect(dist).to.deep.equal({ integrity: base.v100.integrity, shasum: base.v100.shasum, tarball: base.v100.tarballUrl });
      // Signed as npm's registry signs: name@version:integrity with the key /-/npm/v1/keys publishes.
      expect(
        verifyRegistrySignatures({ name: base.v100.name, version: '1.0.0', integrity: dist.integrity, signatures }, [FIXTURE_SIGNING_KEY])
          .result,
      ).to.equal('verified');
      expect(v1).to.not.have.property('description');
    });

    it('serves the full packument with time and full manifests', async () => {
      const p = (await pacote.packument('fixture-pkg', pacoteOpts({ fullMetadata: true }))) as unknown as Record<string, any>;
      expect(p._id).to.equal('fixture-pkg');
      expect(p.time).to.include.keys('created', 'modified', '1.0.0', '1.1.0', '2.0.0-beta.1');
      expect(p.time['1.0.0']).to.equal(v100Date.toISOString());
      expect(p.time.created).to.equal(v100Date.toISOString());
      const m = p.versions['1.1.0'];
      expect(m).to.include({
        _id: 'fixture-pkg@1.1.0',
        name: 'fixture-pkg',
        version: '1.1.0',
        description: 'Test fixture: a tiny, healthy MCP stdio server (zero dependencies).',
      });
      const { signatures, ...dist } = m.dist;
      expect(dist).to.deep.equal({ integrity: base.v110.integrity, shasum: base.v110.shasum, tarball: base.v110.tarballUrl });
      expect(signatures).to.have.length(1);
      expect(m.dist.tarball.startsWith(registry.url)).to.equal(true);
      expect(registry.requests.at(-1)!.accept).to.not.include(CORGI);

      const res = await fetch(registry.packumentUrl('fixture-pkg'));
      expect(res.headers.get('content-type')).to.equal('application/json');
    });

    it('resolves manifests for ranges and dist-tags', async () => {
      expect((await pacote.manifest('fixture-pkg@^1.0.0', pacoteOpts())).version).to.equal('1.1.0');
      expect((await pacote.manifest('fixture-pkg@~1.0.0', pacoteOpts())).version).to.equal('1.0.0');
      expect((await pacote.manifest('fixture-pkg', pacoteOpts())).version).to.equal('1.1.0');
      expect((await pacote.manifest('fixture-pkg@beta', pacoteOpts())).version).to.equal('2.0.0-beta.1');
      const before = await pacote.manifest('fixture-pkg@^1.0.0', pacoteOpts({ before: new Date('2022-01-01T00:00:00Z') }));
      expect(before.version).to.equal('1.0.0');
    });

    it('serves tarballs whose integrity pacote verifies', async () => {
      const buf = await pacote.tarball('fixture-pkg@1.0.0', pacoteOpts({ integrity: base.v100.integrity }));
      expect(buf.length).to.equal(base.v100.size);
      expect(integrityOf(buf).integrity).to.equal(base.v100.integrity);
      const last = registry.requests.at(-1)!;
      expect(last.url).to.equal('/fixture-pkg/-/fixture-pkg-1.0.0.tgz');
      expect(last.status).to.equal(200);

      const res = await fetch(base.v100.tarballUrl);
      expect(res.headers.get('content-type')).to.equal('application/octet-stream');
      expect(res.headers.get('content-length')).to.equal(String(base.v100.size));
    });

    it('refuses a corrupted tarball with EINTEGRITY', async () => {
      registry.injectFault({ match: 'tarball', kind: 'corrupt' });
      const err = await expectRejection(pacote.tarball('fixture-pkg@1.1.0', pacoteOpts({ integrity: base.v110.integrity })));
      expect(err.code).to.equal('EINTEGRITY');
      // integrity taken from the packument is enforced as well
      const err2 = await expectRejection(pacote.tarball('fixture-pkg@1.1.0', pacoteOpts()));
      expect(err2.code).to.equal('EINTEGRITY');
      const last = registry.requests.at(-1)!;
      expect(last.status).to.equal(200);
      expect(last.faults).to.deep.equal(['corrupt']);
      registry.clearFaults();
      const ok = await pacote.tarball('fixture-pkg@1.1.0', pacoteOpts({ integrity: base.v110.integrity }));
      expect(ok.length).to.equal(base.v110.size);
    });

    it('handles scoped packages with escaped and unescaped packument URLs', async () => {
      const m = await pacote.manifest('@fixture/scoped@1.0.0', pacoteOpts());
      expect(m.name).to.equal('@fixture/scoped');
      expect(m.dist.tarball).to.equal(`${registry.url}@fixture/scoped/-/scoped-1.0.0.tgz`);
      expect(base.scoped.tarballUrl).to.equal(m.dist.tarball);
      expect(registry.requests.some((r) => r.url === '/@fixture%2fscoped')).to.equal(true);

      const escaped = await fetch(`${registry.url}@fixture%2fscoped`);
      const unescaped = await fetch(`${registry.url}@fixture/scoped`);
      const upper = await fetch(`${registry.url}@fixture%2Fscoped`);
      expect([escaped.status, unescaped.status, upper.status]).to.deep.equal([200, 200, 200]);
      expect(unescaped.headers.get('etag')).to.equal(escaped.headers.get('etag'));
      expect(((await unescaped.json()) as { name: string }).name).to.equal('@fixture/scoped');

      const buf = await pacote.tarball('@fixture/scoped@1.0.0', pacoteOpts({ integrity: base.scoped.integrity }));
      expect(buf.length).to.equal(base.scoped.size);
    });

    it('answers 404 {"error":"Not found"} for unknown packages and tarballs', async () => {
      const res = await fetch(`${registry.url}no-such-package`);
      expect(res.status).to.equal(404);
      expect(await res.json()).to.deep.equal({ error: 'Not found' });
      const tgz = await fetch(`${registry.url}fixture-pkg/-/fixture-pkg-9.9.9.tgz`);
      expect(tgz.status).to.equal(404);
      const err = await expectRejection(pacote.manifest('no-such-package', pacoteOpts()));
      expect(err.code).to.equal('E404');
    });

    it('uses strong ETags and answers If-None-Match with 304', async () => {
      const name = 'etag-pkg';
      await registry.publish({ name, version: '1.0.0' });
      const url = registry.packumentUrl(name);
      const full = await fetch(url);
      const corgi = await fetch(url, { headers: { accept: CORGI } });
      const etag = full.headers.get('etag')!;
      expect(etag).to.match(/^"[0-9a-f]{40}"$/);
      expect(corgi.headers.get('etag')).to.match(/^"[0-9a-f]{40}"$/);
      expect(corgi.headers.get('etag')).to.not.equal(etag);

      const again = await fetch(url, { headers: { 'if-none-match': etag } });
      expect(again.status).to.equal(304);
      expect(again.headers.get('etag')).to.equal(etag);
      expect(registry.requests.at(-1)!.status).to.equal(304);

      await registry.publish({ name, version: '1.0.1' });
      const changed = await fetch(url, { headers: { 'if-none-match': etag } });
      expect(changed.status).to.equal(200);
      expect(changed.headers.get('etag')).to.not.equal(etag);

      const tgz = await fetch(registry.tarballUrl(name, '1.0.0'));
      const tgzAgain = await fetch(registry.tarballUrl(name, '1.0.0'), {
        headers: { 'if-none-match': tgz.headers.get('etag')! },
      });
      expect(tgzAgain.status).to.equal(304);
    });

    it('makes a version published during a test visible through the same pacote cache (revalidated via 304)', async () => {
      const name = 'live-pkg';
      await registry.publish({ name, version: '1.0.0' });
      const opts = pacoteOpts();
      registry.resetRequests();
      expect((await pacote.manifest(name, opts)).version).to.equal('1.0.0');
      expect((await pacote.manifest(name, opts)).version).to.equal('1.0.0');
      expect(registry.requests.map((r) => r.status)).to.deep.equal([200, 304]);

      await registry.publish({ name, version: '1.1.0', packageJson: { dependencies: { 'fixture-pkg': '^1.0.0' } } });
      const m = await pacote.manifest(name, opts);
      expect(m.version).to.equal('1.1.0');
      expect(m.dependencies).to.deep.equal({ 'fixture-pkg': '^1.0.0' });
      expect(registry.requests.at(-1)!.status).to.equal(200);
    });

    it('applies dist-tags (npm default-tag rule), deprecation and unpublish', async () => {
      const name = 'tags-pkg';
      await registry.publish({ name, version: '2.0.0' });
      await registry.publish({ name, version: '1.5.0' }); // lower: latest stays 2.0.0
      await registry.publish({ name, version: '3.0.0-rc.1', tag: 'next' });
      await registry.publish({ name, version: '1.0.0', tag: false });
      let p = (await pacote.packument(name, pacoteOpts())) as unknown as Record<string, any>;
      expect(p['dist-tags']).to.deep.equal({ latest: '2.0.0', next: '3.0.0-rc.1' });

      registry.setDistTag(name, 'latest', '1.5.0');
      registry.deprecate(name, '1.0.0', 'do not use 1.0.0');
      expect((await pacote.manifest(name, pacoteOpts())).version).to.equal('1.5.0');
      p = (await pacote.packument(name, pacoteOpts())) as unknown as Record<string, any>;
      expect(p.versions['1.0.0'].deprecated).to.equal('do not use 1.0.0');
      p = (await pacote.packument(name, pacoteOpts({ fullMetadata: true }))) as unknown as Record<string, any>;
      expect(p.versions['1.0.0'].deprecated).to.equal('do not use 1.0.0');
      expect(p.versions['1.5.0']).to.not.have.property('deprecated');

      registry.unpublish(name, '1.5.0');
      p = (await pacote.packument(name, pacoteOpts({ fullMetadata: true }))) as unknown as Record<string, any>;
      expect(Object.keys(p.versions)).to.deep.equal(['1.0.0', '2.0.0', '3.0.0-rc.1']);
      expect(p['dist-tags']).to.deep.equal({ latest: '2.0.0', next: '3.0.0-rc.1' });
      expect(p.time).to.not.have.property('1.5.0');
      registry.unpublish(name);
      expect((await fetch(registry.packumentUrl(name))).status).to.equal(404);

      await registry.publish({ name: 'deprecated-at-publish', version: '1.0.0', deprecated: 'gone' });
      expect((await pacote.manifest('deprecated-at-publish', pacoteOpts())).deprecated).to.equal('gone');
    });

    it('publishes ready tarballs and fixture folders with packageJson merged into manifest and tarball', async () => {
      const tgz = await packEntries([
        { path: 'package/package.json', body: JSON.stringify({ name: 'crafted', version: '0.0.1', bin: 'cli.js' }) },
        { path: 'package/cli.js', body: '#!/usr/bin/env node\n', mode: 0o755 },
      ]);
      const res = await registry.publish({ name: 'crafted', version: '0.0.1', tarball: tgz, packageJson: { description: 'crafted one' } });
      expect(res).to.deep.equal({
        name: 'crafted',
        version: '0.0.1',
        ...integrityOf(tgz),
        tarballUrl: `${registry.url}crafted/-/crafted-0.0.1.tgz`,
        size: tgz.length,
      });
      const m = await pacote.manifest('crafted@0.0.1', { ...pacoteOpts(), fullMetadata: true });
      expect(m.description).to.equal('crafted one');
      expect(m.bin).to.deep.equal({ crafted: 'cli.js' }); // string bin normalised like the registry does
      expect((await pacote.tarball('crafted@0.0.1', pacoteOpts())).equals(tgz)).to.equal(true);

      await registry.publish({
        name: 'with-lib',
        version: '1.0.0',
        fromDir: fixturePackageDir('plain-lib'),
        packageJson: { keywords: ['x'] },
      });
      const dest = path.join(tmpRoot, 'extract-with-lib');
      await pacote.extract('with-lib@1.0.0', dest, pacoteOpts());
      const inner = JSON.parse(await fs.readFile(path.join(dest, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(inner).to.include({ name: 'with-lib', version: '1.0.0', main: 'index.js' });
      expect(inner.keywords).to.deep.equal(['x']);
      expect(await fs.readdir(dest)).to.have.members(['package.json', 'index.js']);

      const dup = await expectRejection(registry.publish({ name: 'crafted', version: '0.0.1', tarball: tgz }));
      expect(dup.message).to.match(/cannot publish over/);
    });
  });

  describe('faults', () => {
    it("'status' answers the status with a JSON body, for the next N requests only", async () => {
      registry.injectFault({ match: 'packument', kind: 'status', status: 503, times: 1 });
      const res = await fetch(registry.packumentUrl('fixture-pkg'));
      expect(res.status).to.equal(503);
      expect(res.headers.get('content-type')).to.equal('application/json');
      expect(await res.json()).to.have.property('error');
      expect(registry.requests.at(-1)).to.include({ status: 503 });
      expect(registry.requests.at(-1)!.faults).to.deep.equal(['status']);
      expect((await fetch(registry.packumentUrl('fixture-pkg'))).status).to.equal(200);

      registry.injectFault({ match: 'packument', kind: 'status', status: 500 });
      const err = await expectRejection(pacote.manifest('fixture-pkg', pacoteOpts()));
      expect(err.statusCode).to.equal(500);
      registry.clearFaults();

      registry.resetRequests();
      registry.injectFault({ match: 'packument', kind: 'status', status: 503, times: 1 });
      const m = await pacote.manifest('fixture-pkg', pacoteOpts({ fetchRetries: 1, fetchRetryMintimeout: 1, fetchRetryMaxtimeout: 5 }));
      expect(m.version).to.equal('1.1.0');
      expect(registry.requests.map((r) => r.status)).to.deep.equal([503, 200]);

      registry.injectFault({ match: 'tarball', kind: 'status', status: 404 });
      const err404 = await expectRejection(pacote.tarball('fixture-pkg@1.0.0', pacoteOpts()));
      expect(err404.statusCode).to.equal(404);
    });

    it("'delay' waits then serves; usable to trigger client timeouts", async () => {
      registry.injectFault({ match: 'packument', kind: 'delay', delayMs: 150, times: 1 });
      const t0 = Date.now();
      const res = await fetch(registry.packumentUrl('fixture-pkg'));
      expect(res.status).to.equal(200);
      expect(Date.now() - t0).to.be.at.least(140);
      expect(registry.requests.at(-1)!.faults).to.deep.equal(['delay']);

      registry.injectFault({ match: 'packument', kind: 'delay', delayMs: 2_000, times: 1 });
      const err = await expectRejection(fetch(registry.packumentUrl('fixture-pkg'), { signal: AbortSignal.timeout(100) }));
      expect(err.name).to.equal('TimeoutError');
    });

    it("'drop' destroys the socket without answering (logged with status 0)", async () => {
      registry.injectFault({ match: 'packument', kind: 'drop', times: 1 });
      await expectRejection(fetch(registry.packumentUrl('fixture-pkg')));
      expect(registry.requests.at(-1)).to.include({ url: '/fixture-pkg', status: 0 });

      registry.injectFault({ match: 'packument', kind: 'drop' });
      const err = await expectRejection(pacote.manifest('fixture-pkg', pacoteOpts()));
      expect(err.code).to.equal('ECONNRESET');
    });

    it("'truncate' announces the full Content-Length but sends half the body", async () => {
      registry.injectFault({ match: 'tarball', kind: 'truncate' });
      const res = await fetch(base.v100.tarballUrl);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-length')).to.equal(String(base.v100.size));
      await expectRejection(res.arrayBuffer());
      expect(registry.requests.at(-1)!.faults).to.deep.equal(['truncate']);
      await expectRejection(pacote.tarball('fixture-pkg@1.0.0', pacoteOpts({ integrity: base.v100.integrity })));
    });

    it("'invalid-json' answers 200 with a JSON content type and a broken body", async () => {
      registry.injectFault({ match: 'packument', kind: 'invalid-json' });
      const res = await fetch(registry.packumentUrl('fixture-pkg'));
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/json');
      expect(await res.text()).to.equal('{"name":');
      const err = await expectRejection(pacote.packument('fixture-pkg', pacoteOpts()));
      expect(err.message).to.match(/invalid json/i);
    });

    it('matches faults by kind of request, RegExp and probability; clearFaults removes them', async () => {
      registry.injectFault({ match: 'tarball', kind: 'status', status: 500 });
      expect((await fetch(registry.packumentUrl('fixture-pkg'))).status).to.equal(200);
      expect((await fetch(base.v100.tarballUrl)).status).to.equal(500);
      registry.clearFaults();
      expect((await fetch(base.v100.tarballUrl)).status).to.equal(200);

      registry.injectFault({ match: /scoped/, kind: 'status', status: 502 });
      expect((await fetch(registry.packumentUrl('@fixture/scoped'))).status).to.equal(502);
      expect((await fetch(registry.packumentUrl('fixture-pkg'))).status).to.equal(200);
      registry.clearFaults();

      registry.injectFault({ kind: 'status', status: 500, probability: 0 });
      for (let i = 0; i < 5; i++) expect((await fetch(registry.packumentUrl('fixture-pkg'))).status).to.equal(200);
      registry.clearFaults();

      registry.injectFault({ kind: 'status', status: 500, times: 2 });
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(registry.packumentUrl('fixture-pkg'))).status);
      expect(statuses).to.deep.equal([500, 500, 200]);
    });

    it('keeps connections alive and close() also closes idle keep-alive sockets', async () => {
      const other = await FixtureRegistry.start();
      await other.publish({ name: 'ka-pkg', version: '1.0.0', fromDir: fixturePackageDir('plain-lib') });
      const agent = new http.Agent({ keepAlive: true });
      const get = (): Promise<{ status: number; connection: string | undefined; port: number | undefined }> =>
        new Promise((resolve, reject) => {
          const req = http.get(other.packumentUrl('ka-pkg'), { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, port: req.socket?.localPort }));
          });
          req.on('error', reject);
        });
      try {
        const first = await get();
        const second = await get();
        expect(first.status).to.equal(200);
        expect(first.connection).to.equal('keep-alive');
        expect(second.port).to.equal(first.port); // same socket reused
        const t0 = Date.now();
        await other.close();
        expect(Date.now() - t0).to.be.below(1_000);
      } finally {
        agent.destroy();
        await other.close();
      }
    });
  });

  describe('npm CLI against the fixture registry', () => {
    let npmDir: string;
    let npmEnv: NodeJS.ProcessEnv;

    before(async () => {
      npmDir = path.join(tmpRoot, 'npm');
      await fs.mkdir(npmDir, { recursive: true });
      await fs.writeFile(path.join(npmDir, 'user.npmrc'), '');
      await fs.writeFile(path.join(npmDir, 'global.npmrc'), '');
      npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
      Object.assign(npmEnv, {
        npm_config_userconfig: path.join(npmDir, 'user.npmrc'),
        npm_config_globalconfig: path.join(npmDir, 'global.npmrc'),
        npm_config_cache: path.join(npmDir, 'cache'),
        npm_config_update_notifier: 'false',
        npm_config_loglevel: 'error',
      });
      await registry.publish({
        name: 'fixture-dep',
        version: '1.0.0',
        fromDir: fixturePackageDir('plain-lib'),
        publishedAt: new Date('2020-01-01T00:00:00Z'),
      });
      await registry.publish({ name: 'fixture-dep', version: '1.1.0', fromDir: fixturePackageDir('plain-lib') });
      await registry.publish({
        name: '@fixture/mcp-app',
        version: '1.0.0',
        packageJson: { dependencies: { 'fixture-dep': '^1.0.0' } },
        publishedAt: new Date('2020-06-01T00:00:00Z'),
      });
    });

    async function npmInstall(project: string, extra: string[]): Promise<Record<string, any>> {
      const dir = path.join(npmDir, project);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: project, version: '0.0.0', private: true }));
      await execFileAsync(
        'npm',
        [
          'install',
          '--registry',
          registry.url,
          '--ignore-scripts',
          '--omit=dev',
          '--no-audit',
          '--no-fund',
          ...extra,
          '@fixture/mcp-app@1.0.0',
        ],
        { cwd: dir, env: npmEnv, timeout: 60_000 },
      );
      return JSON.parse(await fs.readFile(path.join(dir, 'package-lock.json'), 'utf8')) as Record<string, any>;
    }

    it('npm install resolves a package and its dependency from the fixture registry', async () => {
      registry.resetRequests();
      const lock = await npmInstall('app', []);
      const app = lock.packages['node_modules/@fixture/mcp-app'];
      const dep = lock.packages['node_modules/fixture-dep'];
      expect(app.version).to.equal('1.0.0');
      expect(app.resolved).to.equal(`${registry.url}@fixture/mcp-app/-/mcp-app-1.0.0.tgz`);
      expect(dep.version).to.equal('1.1.0');
      expect(dep.resolved.startsWith(registry.url)).to.equal(true);
      const installed = path.join(npmDir, 'app', 'node_modules');
      const depPkg = JSON.parse(await fs.readFile(path.join(installed, 'fixture-dep', 'package.json'), 'utf8')) as { version: string };
      expect(depPkg.version).to.equal('1.1.0');
      const bin = await fs.realpath(path.join(installed, '.bin', 'mcp-healthy'));
      expect(bin).to.equal(path.join(await fs.realpath(installed), '@fixture', 'mcp-app', 'server.js'));
      expect(registry.requests.every((r) => r.status === 200)).to.equal(true);
      expect(registry.requests.map((r) => r.url)).to.include.members([
        '/@fixture%2fmcp-app',
        '/fixture-dep',
        '/@fixture/mcp-app/-/mcp-app-1.0.0.tgz',
        '/fixture-dep/-/fixture-dep-1.1.0.tgz',
      ]);
    });

    it('npm install --before uses the full packument time to pick older versions', async () => {
      registry.resetRequests();
      const lock = await npmInstall('app-before', ['--before', '2021-01-01']);
      expect(lock.packages['node_modules/fixture-dep'].version).to.equal('1.0.0');
      expect(lock.packages['node_modules/@fixture/mcp-app'].version).to.equal('1.0.0');
      const packumentRequests = registry.requests.filter((r) => !r.url.endsWith('.tgz'));
      expect(packumentRequests.length).to.be.greaterThan(0);
      expect(packumentRequests.every((r) => !(r.accept ?? '').includes(CORGI))).to.equal(true);
    });
  });

  describe('MCP fixture servers', () => {
    const connect = async (
      fixture: string,
      opts: { timeout?: number; env?: Record<string, string>; script?: string } = {},
    ): Promise<{ client: Client; transport: StdioClientTransport }> => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [opts.script ?? path.join(fixturePackageDir(fixture), 'server.js')],
        env: { ...getDefaultEnvironment(), ...(opts.env ?? {}) },
        stderr: 'pipe',
      });
      const client = new Client({ name: 'registry-test', version: '0.0.0' });
      try {
        await client.connect(transport, { timeout: opts.timeout ?? 5_000 });
      } catch (err) {
        await transport.close(); // make sure the child process is gone
        throw err;
      }
      return { client, transport };
    };

    it('mcp-healthy completes the handshake, lists 2 tools and answers calls', async () => {
      const logFile = path.join(tmpRoot, 'mcp-launches.log');
      const { client } = await connect('mcp-healthy', { env: { FIXTURE_MCP_LOG: logFile } });
      try {
        expect(client.getServerVersion()).to.deep.equal({ name: 'mcp-healthy', version: '1.0.0' });
        expect(client.getServerCapabilities()).to.have.property('tools');
        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name)).to.deep.equal(['echo', 'add']);
        for (const t of tools) expect(t.inputSchema.type).to.equal('object');
        const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
        expect(sum.content).to.deep.equal([{ type: 'text', text: '42' }]);
        const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
        expect(echo.content).to.deep.equal([{ type: 'text', text: 'hi' }]);
        expect(await client.ping()).to.deep.equal({});
      } finally {
        await client.close();
      }
      const lines = (await fs.readFile(logFile, 'utf8')).trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include('mcp-healthy@1.0.0');
    });

    it('mcp-healthy installed from the registry reports the published name and version', async () => {
      await registry.publish({ name: '@fixture/mcp-server', version: '2.3.4' });
      const dest = path.join(tmpRoot, 'extract-mcp-server');
      await pacote.extract('@fixture/mcp-server@2.3.4', dest, pacoteOpts());
      const stat = await fs.stat(path.join(dest, 'server.js'));
      expect(stat.mode & 0o111).to.not.equal(0);
      const { client } = await connect('mcp-healthy', { script: path.join(dest, 'server.js') });
      try {
        expect(client.getServerVersion()).to.deep.equal({ name: '@fixture/mcp-server', version: '2.3.4' });
        expect((await client.listTools()).tools).to.have.length(2);
      } finally {
        await client.close();
      }
    });

    it('mcp-broken-crash fails to connect', async () => {
      const err = await expectRejection(connect('mcp-broken-crash'));
      expect(err).to.be.instanceOf(Error);
      expect(err.message).to.match(/connection closed|EPIPE/i);
    });

    it('mcp-bad-tools initializes but fails tools/list', async () => {
      const { client } = await connect('mcp-bad-tools');
      try {
        expect(client.getServerVersion()?.name).to.equal('mcp-bad-tools');
        const err = await expectRejection(client.listTools());
        expect(err.code).to.equal(-32603);
      } finally {
        await client.close();
      }
    });

    it('mcp-broken-silent never answers the handshake', async () => {
      const err = await expectRejection(connect('mcp-broken-silent', { timeout: 300 }));
      expect(err.message).to.match(/timed out/i);
    });
  });
});
