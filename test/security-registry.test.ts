/*
 * Issue 12, findings 5 and 8: registry credentials go only to the registry, and a hostile
 * registry cannot starve the service. Loopback servers only: a "registry" that redirects to a
 * second port which records what it receives, one that serves oversized or endless packuments,
 * and one that trickles a tarball a byte at a time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { DEFAULT_MAX_PACKUMENT_BYTES, loadConfig } from '../shared/config.js';
import { ConfigurationError, RegistryError } from '../shared/errors.js';
import { RegistryClient, type TarballSpec } from '../shared/registry.js';
import { integrityOf } from './support/tarball.js';

const TOKEN = `npm_${crypto.randomBytes(18).toString('hex')}`;
const TARBALL = Buffer.from('not really a tarball, but integrity-checked bytes all the same');
const { integrity } = integrityOf(TARBALL);

interface Seen {
  url: string;
  authorization?: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A loopback server that records each request's URL and Authorization header. */
class Loopback {
  readonly seen: Seen[] = [];
  private server!: http.Server;
  url = '';
  constructor(private readonly handler: Handler) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      this.handler(req, res);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function client(registry: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient {
  return new RegistryClient({ apiBaseUrl: registry, registryToken: TOKEN, tarballHosts: [], maxTarballBytes: 1024 * 1024, ...extra }, {});
}

async function failure(promise: Promise<unknown>): Promise<RegistryError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, 'it failed').to.be.instanceOf(RegistryError);
  return error as RegistryError;
}

describe('security: registry credentials go only to the registry (scheme, host, port)', function () {
  this.timeout(20_000);
  let recorder: Loopback;
  let registry: Loopback;
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-redirect-'));
    // The other port: it would happily serve the tarball, and it records who asked.
    recorder = await new Loopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(TARBALL);
    }).start();
    registry = await new Loopback((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/pkg/-/')) {
        res.writeHead(302, { location: `${recorder.url}pkg/-/pkg-1.0.0.tgz` }).end();
      } else if (url.startsWith('/same/-/')) {
        res.writeHead(301, { location: '/pkg-files/pkg-1.0.0.tgz' }).end();
      } else if (url.startsWith('/pkg-files/')) {
        res.writeHead(200).end(TARBALL);
      } else if (url === '/moved') {
        res.writeHead(307, { location: `${recorder.url}moved` }).end();
      } else {
        res.writeHead(404).end();
      }
    }).start();
  });

  after(async () => {
    await recorder?.close();
    await registry?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    recorder.seen.length = 0;
    registry.seen.length = 0;
  });

  const spec = (tarball: string): TarballSpec => ({ package: 'pkg', version: '1.0.0', tarball, integrity });

  it('refuses a tarball redirect to another port of the registry host: nothing, least of all the token, reaches it', async () => {
    const error = await failure(client(registry.url).downloadTarball(spec(`${registry.url}pkg/-/pkg-1.0.0.tgz`), path.join(dir, 'a.tgz')));
    expect(error.code).to.equal('ETARBALLHOST');
    expect(error.message).to.include(`redirects to ${recorder.url}pkg/-/pkg-1.0.0.tgz`).and.include('nothing was sent there');
    expect(error.hint).to.include('TARBALL_HOSTS');
    expect(recorder.seen).to.deep.equal([]);
    expect(registry.seen.map((seen) => seen.authorization)).to.deep.equal([`Bearer ${TOKEN}`]);
    expect(await fs.readdir(dir)).to.deep.equal([]);
  });

  it('refuses a packument redirect to another origin the same way', async () => {
    const error = await failure(client(registry.url).packument('moved', false));
    expect(error.code).to.equal('ETARBALLHOST');
    expect(recorder.seen).to.deep.equal([]);
  });

  it('follows a redirect to an allowed TARBALL_HOSTS origin without the token', async () => {
    const port = new URL(recorder.url).port;
    const result = await client(registry.url, { tarballHosts: [`127.0.0.1:${port}`] }).downloadTarball(
      spec(`${registry.url}pkg/-/pkg-1.0.0.tgz`),
      path.join(dir, 'b.tgz'),
    );
    expect(result.bytes).to.equal(TARBALL.length);
    expect(recorder.seen).to.have.length(1);
    expect(recorder.seen[0]!.authorization, 'no Authorization header at the other port').to.equal(undefined);
    expect(registry.seen[0]!.authorization).to.equal(`Bearer ${TOKEN}`);
  });

  it('keeps the token on a redirect within the registry origin', async () => {
    await client(registry.url).downloadTarball(spec(`${registry.url}same/-/pkg-1.0.0.tgz`), path.join(dir, 'c.tgz'));
    expect(registry.seen.map((seen) => [seen.url, seen.authorization])).to.deep.equal([
      ['/same/-/pkg-1.0.0.tgz', `Bearer ${TOKEN}`],
      ['/pkg-files/pkg-1.0.0.tgz', `Bearer ${TOKEN}`],
    ]);
  });

  it('sends no token to a TARBALL_HOSTS origin, nor to a path of the registry host outside the registry', async () => {
    const port = new URL(recorder.url).port;
    await client(registry.url, { tarballHosts: [`127.0.0.1:${port}`] }).downloadTarball(
      spec(`${recorder.url}pkg/-/pkg-1.0.0.tgz`),
      path.join(dir, 'd.tgz'),
    );
    expect(recorder.seen[0]!.authorization).to.equal(undefined);
    await client(`${registry.url}npm/`).downloadTarball(spec(`${registry.url}pkg-files/pkg-1.0.0.tgz`), path.join(dir, 'e.tgz'));
    expect(registry.seen.at(-1)!.authorization).to.equal(undefined);
  });

  describe('assertTarballHost compares scheme, host and port', () => {
    const cases: Array<[string, string, string[], boolean]> = [
      ['same origin', 'https://registry.example/pkg/-/pkg-1.0.0.tgz', [], true],
      ['same origin, default port written out', 'https://registry.example:443/pkg/-/pkg-1.0.0.tgz', [], true],
      ['host name in another case', 'https://REGISTRY.example/pkg/-/pkg-1.0.0.tgz', [], true],
      ['http:// for an https:// registry', 'http://registry.example/pkg/-/pkg-1.0.0.tgz', [], false],
      ['another port', 'https://registry.example:8443/pkg/-/pkg-1.0.0.tgz', [], false],
      ['another host', 'https://evil.example/pkg/-/pkg-1.0.0.tgz', [], false],
      ['not http(s)', 'file:///etc/passwd', [], false],
      ['a TARBALL_HOSTS host takes the registry scheme', 'https://cdn.example/pkg-1.0.0.tgz', ['cdn.example'], true],
      ['… and only that scheme', 'http://cdn.example/pkg-1.0.0.tgz', ['cdn.example'], false],
      ['… and only its port', 'https://cdn.example:8443/pkg-1.0.0.tgz', ['cdn.example'], false],
      ['a TARBALL_HOSTS origin with scheme and port', 'http://cdn.example:8080/pkg-1.0.0.tgz', ['http://cdn.example:8080'], true],
    ];
    for (const [what, url, hosts, allowed] of cases) {
      it(`${allowed ? 'allows' : 'refuses'} ${what}`, () => {
        const registryClient = client('https://registry.example/', { tarballHosts: hosts });
        if (allowed) {
          expect(() => registryClient.assertTarballHost(url)).not.to.throw();
        } else {
          expect(() => registryClient.assertTarballHost(url))
            .to.throw(RegistryError)
            .with.property('code', 'ETARBALLHOST');
        }
      });
    }

    it('and the other way round: an https:// tarball for an http:// registry', () => {
      expect(() => client('http://registry.example/').assertTarballHost('https://registry.example/pkg.tgz')).to.throw(
        /points at https:\/\/registry\.example, not at the registry http:\/\/registry\.example \(another scheme\)/,
      );
    });
  });
});

describe('security: a hostile registry cannot starve the service', function () {
  this.timeout(30_000);
  const LIMIT = 64 * 1024;
  let hostile: Loopback;
  let dir: string;
  /** Open trickling responses, ended in after(). */
  const trickles = new Set<NodeJS.Timeout>();

  /** A packument of `count` versions. */
  function packument(count: number): Buffer {
    const versions: Record<string, unknown> = {};
    for (let index = 0; index < count; index++) {
      versions[`1.0.${index}`] = {
        name: 'big',
        version: `1.0.${index}`,
        description: 'x'.repeat(20),
        dist: { tarball: `http://127.0.0.1:1/big/-/big-1.0.${index}.tgz`, integrity: 'sha512-AAAA' },
      };
    }
    return Buffer.from(JSON.stringify({ name: 'big', 'dist-tags': { latest: `1.0.${count - 1}` }, versions }));
  }

  const trickle = (res: http.ServerResponse, headers: http.OutgoingHttpHeaders) => {
    res.writeHead(200, headers);
    const timer = setInterval(() => res.write('x'), 100);
    trickles.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      trickles.delete(timer);
    });
  };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-hostile-'));
    const big = packument(2_000);
    const gzipBomb = zlib.gzipSync(
      Buffer.concat([Buffer.from('{"name":"bomb","dist-tags":{},"versions":{},"pad":"'), Buffer.alloc(4 * LIMIT, 0x20), Buffer.from('"}')]),
    );
    const large = packument(12_000);
    hostile = await new Loopback((req, res) => {
      switch (req.url) {
        case '/big-declared':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': big.length }).end(big);
          break;
        case '/big-chunked':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(big);
          break;
        case '/bomb':
          res
            .writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipBomb.length })
            .end(gzipBomb);
          break;
        case '/large':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': large.length }).end(large);
          break;
        case '/large-not-json':
          res.writeHead(200).end(Buffer.alloc(2 * 1024 * 1024, 0x7b));
          break;
        case '/trickle-packument':
          trickle(res, { 'content-type': 'application/json' });
          break;
        case '/pkg/-/pkg-1.0.0.tgz':
          trickle(res, { 'content-type': 'application/octet-stream' });
          break;
        default:
          res.writeHead(404).end();
      }
    }).start();
  });

  after(async () => {
    for (const timer of trickles) clearInterval(timer);
    await hostile?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('MAX_PACKUMENT_SIZE: a sensible default, sizes like 50mb, a clear error for nonsense', () => {
    const base = { API_BASE_URL: 'http://127.0.0.1:9/' };
    expect(loadConfig(base).maxPackumentBytes)
      .to.equal(DEFAULT_MAX_PACKUMENT_BYTES)
      .and.equal(50 * 1024 * 1024);
    expect(loadConfig({ ...base, MAX_PACKUMENT_SIZE: '2mb' }).maxPackumentBytes).to.equal(2 * 1024 * 1024);
    expect(() => loadConfig({ ...base, MAX_PACKUMENT_SIZE: 'lots' })).to.throw(
      ConfigurationError,
      /MAX_PACKUMENT_SIZE: must be a size like 500kb/,
    );
    expect(loadConfig(base).downloadTimeoutMs).to.equal(600_000);
    expect(() => loadConfig({ ...base, DOWNLOAD_TIMEOUT: '0' })).to.throw(ConfigurationError, /DOWNLOAD_TIMEOUT/);
  });

  for (const [what, route] of [
    ['announced by Content-Length', 'big-declared'],
    ['sent chunked', 'big-chunked'],
    ['gzip that unpacks past it', 'bomb'],
  ] as const) {
    it(`refuses an oversized packument ${what} with EPACKUMENTTOOBIG naming MAX_PACKUMENT_SIZE`, async () => {
      const error = await failure(client(hostile.url, { maxPackumentBytes: LIMIT }).packument(route, false));
      expect(error.code).to.equal('EPACKUMENTTOOBIG');
      expect(error.message).to.include(`${route}'s packument is larger than MAX_PACKUMENT_SIZE (${LIMIT} bytes)`);
      expect(error.hint).to.include('raise MAX_PACKUMENT_SIZE');
      expect(error.retryable).to.equal(false);
    });
  }

  it('parses a large packument off the event loop to the same result, and refuses a large non-packument', async () => {
    const registryClient = client(hostile.url);
    const result = await registryClient.packument('large', false);
    expect(Object.keys(result.versions)).to.have.length(12_000);
    expect(result['dist-tags']).to.deep.equal({ latest: '1.0.11999' });
    expect(result.versions['1.0.7']).to.deep.include({
      name: 'big',
      version: '1.0.7',
      dist: { tarball: 'http://127.0.0.1:1/big/-/big-1.0.7.tgz', integrity: 'sha512-AAAA', shasum: undefined, unpackedSize: undefined },
    });
    expect((await failure(registryClient.packument('large-not-json', false))).code).to.equal('EBADPACKUMENT');
  });

  it('abandons a tarball that trickles in at DOWNLOAD_TIMEOUT though it never idles, leaving nothing behind', async () => {
    const slow = client(hostile.url, { registryTimeoutMs: 5_000, downloadTimeoutMs: 1_000 });
    const error = await failure(
      slow.downloadTarball(
        { package: 'pkg', version: '1.0.0', tarball: `${hostile.url}pkg/-/pkg-1.0.0.tgz`, integrity },
        path.join(dir, 'slow.tgz'),
      ),
    );
    expect(error.code).to.equal('EDOWNLOADTIMEOUT');
    expect(error.message).to.include('tarball of pkg@1.0.0: not complete within DOWNLOAD_TIMEOUT (1000 ms)');
    expect(error.retryable).to.equal(true);
    expect(await fs.readdir(dir)).to.deep.equal([]);
  });

  it('abandons a trickling packument the same way', async () => {
    const slow = client(hostile.url, { registryTimeoutMs: 5_000, downloadTimeoutMs: 1_000 });
    const error = await failure(slow.packument('trickle-packument', false));
    expect(error.code).to.equal('EDOWNLOADTIMEOUT');
    expect(error.message).to.include("trickle-packument's packument: not complete within DOWNLOAD_TIMEOUT");
  });
});
