/*
 * The package-index client (shared/ecosystems/pypiIndex.ts): where the index comes from, the JSON
 * API beside the simple API, redirects only to allowed origins, credentials only to the index,
 * size limits, digest verification; and the fixture index's simple API (PEP 691 JSON and HTML).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import {
  jsonApiUrl,
  normalizeProjectName,
  parseProjectJson,
  PypiIndexClient,
  resolveIndex,
  resolveIndexUrl,
} from '../shared/ecosystems/pypiIndex.js';
import { sha256Integrity } from '../shared/ecosystems/pypiPolicy.js';
import { ConfigurationError } from '../shared/errors.js';
import { createTestEnv } from './support/env.js';
import { FixtureIndex } from './support/pypiIndex.js';

const BIN = fileURLToPath(new URL('../bin/mcp-updater.js', import.meta.url));

const LIMITS = { tarballHosts: [], maxTarballBytes: 10 * 1024 * 1024 };

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; path?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  expect.fail('expected a rejection');
}

describe('pypi index: configuration and URLs', () => {
  it("PYPI_INDEX_URL wins over PIP_INDEX_URL; pip's config is the last resort; none is refused", async () => {
    expect(await resolveIndexUrl({ PYPI_INDEX_URL: 'http://127.0.0.1:9/simple/', PIP_INDEX_URL: 'http://127.0.0.1:8/simple/' })).to.equal(
      'http://127.0.0.1:9/simple/',
    );
    expect(await resolveIndexUrl({ PIP_INDEX_URL: 'http://127.0.0.1:8/simple/' })).to.equal('http://127.0.0.1:8/simple/');
    // pip's own configuration, asked as `python -m pip config get global.index-url` (a stand-in interpreter answers).
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-pip-config-'));
    const fakePython = path.join(dir, 'python3');
    await fs.writeFile(fakePython, '#!/bin/sh\n[ "$*" = "-m pip config get global.index-url" ] && echo http://127.0.0.1:7/simple/\n', {
      mode: 0o755,
    });
    expect(await resolveIndexUrl({ PATH: process.env.PATH ?? '' }, fakePython)).to.equal('http://127.0.0.1:7/simple/');
    await fs.rm(dir, { recursive: true, force: true });
    const none = await rejection(resolveIndexUrl({ PATH: process.env.PATH ?? '' }, '/nonexistent/python3'));
    expect(none).to.be.instanceOf(ConfigurationError);
    expect(none.message).to.equal('no Python package index is configured for pypi servers');
    expect((none as ConfigurationError).path).to.equal('PYPI_INDEX_URL');
    expect((await rejection(resolveIndexUrl({ PYPI_INDEX_URL: 'ftp://127.0.0.1/simple/' }))).message).to.equal(
      'PYPI_INDEX_URL: "ftp://127.0.0.1/simple/" is not an http(s) URL',
    );
  });

  it('says where the index came from; a bad value is refused naming the variable it came from', async () => {
    expect(await resolveIndex({ PYPI_INDEX_URL: ' http://127.0.0.1:9/simple/ ', PIP_INDEX_URL: 'nonsense' })).to.deep.equal({
      url: 'http://127.0.0.1:9/simple/',
      source: 'PYPI_INDEX_URL',
    });
    expect(await resolveIndex({ PYPI_INDEX_URL: '  ', PIP_INDEX_URL: 'https://u:t@pypi.internal/simple/' })).to.deep.equal({
      url: 'https://u:t@pypi.internal/simple/',
      source: 'PIP_INDEX_URL',
    });
    const cases: Array<[NodeJS.ProcessEnv, string, RegExp]> = [
      [{ PIP_INDEX_URL: 'pypi.internal/simple/' }, 'PIP_INDEX_URL', /^PIP_INDEX_URL: "pypi\.internal\/simple\/" is not an http\(s\) URL$/],
      [{ PYPI_INDEX_URL: 'file:///srv/simple/' }, 'PYPI_INDEX_URL', /^PYPI_INDEX_URL: "file:\/\/\/srv\/simple\/" is not an http\(s\) URL$/],
      [{ PYPI_INDEX_URL: 'http://exa mple/simple/' }, 'PYPI_INDEX_URL', /^PYPI_INDEX_URL: .* is not an http\(s\) URL$/],
    ];
    for (const [env, variable, message] of cases) {
      const error = await rejection(resolveIndex(env));
      expect(error, variable).to.be.instanceOf(ConfigurationError);
      expect(error.message).to.match(message);
      expect(error.path).to.equal(variable);
    }
    // A bad value in pip's own configuration is named as that, and PYPI_INDEX_URL is offered to override it.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-pip-config-'));
    const fakePython = path.join(dir, 'python3');
    await fs.writeFile(fakePython, '#!/bin/sh\n[ "$*" = "-m pip config get global.index-url" ] && echo ftp://mirror/simple/\n', {
      mode: 0o755,
    });
    const fromPip = await rejection(resolveIndex({ PATH: process.env.PATH ?? '' }, fakePython));
    await fs.rm(dir, { recursive: true, force: true });
    expect(fromPip.message).to.equal(`pip's global.index-url: "ftp://mirror/simple/" is not an http(s) URL`);
    expect(fromPip.path).to.equal("pip's global.index-url");
    expect((fromPip as ConfigurationError).hint).to.match(/set PYPI_INDEX_URL \(it wins over pip's configuration\)/);
  });

  it('`config check` with pypi servers names the index and its source; a bad one exits 78 naming the variable', async () => {
    const env = await createTestEnv({
      inventory: 'servers:\n  fetch: { pypi: mcp-server-fetch }\n  memory: { package: "@modelcontextprotocol/server-memory" }\n',
    });
    const cli = (extra: Record<string, string>) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const base: NodeJS.ProcessEnv = { ...env.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? env.root };
        delete base.PYPI_INDEX_URL;
        delete base.PIP_INDEX_URL;
        execFile(process.execPath, [BIN, 'config', 'check'], { env: { ...base, ...extra }, timeout: 60_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    try {
      const good = await cli({ PIP_INDEX_URL: 'http://user:secret@127.0.0.1:8/simple/' });
      expect(good.code, good.stderr).to.equal(0);
      expect(good.stdout).to.match(/^Python package index http:\/\/\[REDACTED\]@127\.0\.0\.1:8\/simple\/ \(from PIP_INDEX_URL\)$/m);
      expect(good.stdout).to.not.include('secret');
      const bad = await cli({ PYPI_INDEX_URL: 'not a url' });
      expect(bad.code).to.equal(78);
      expect(bad.stderr).to.match(/ECONFIG: PYPI_INDEX_URL: "not a url" is not an http\(s\) URL/);
    } finally {
      await env.cleanup();
    }
  });

  it('derives the JSON API from the simple API as the index software lays them out', () => {
    expect(jsonApiUrl('https://pypi.internal/simple/', 'MCP_Server.Fetch')).to.equal('https://pypi.internal/pypi/mcp-server-fetch/json');
    expect(jsonApiUrl('https://user:secret@pypi.internal/repo/simple', 'x')).to.equal('https://pypi.internal/repo/pypi/x/json');
    expect(jsonApiUrl('http://127.0.0.1:3141/root/pypi/+simple/', 'x')).to.equal('http://127.0.0.1:3141/root/pypi/+simple/pypi/x/json');
    expect(normalizeProjectName('A_b.C--d')).to.equal('a-b-c-d');
  });

  it('reads the JSON API: digests, upload times (zone-less ones are UTC), yanked flags; refuses what is not a project', () => {
    const project = parseProjectJson({
      info: { name: 'x', version: '1.0' },
      releases: {
        '1.0': [
          {
            filename: 'x-1.0-py3-none-any.whl',
            url: 'http://127.0.0.1/x.whl',
            digests: { sha256: 'AB'.repeat(32) },
            upload_time: '2026-01-02T03:04:05',
            yanked: true,
            packagetype: 'bdist_wheel',
          },
          null,
          { filename: 3 },
        ],
      },
    });
    expect(project).to.deep.equal({
      name: 'x',
      latest: '1.0',
      releases: {
        '1.0': [
          {
            filename: 'x-1.0-py3-none-any.whl',
            url: 'http://127.0.0.1/x.whl',
            sha256: 'ab'.repeat(32),
            uploadTime: '2026-01-02T03:04:05Z',
            yanked: true,
            packagetype: 'bdist_wheel',
            requiresPython: undefined,
          },
        ],
      },
    });
    expect(parseProjectJson({ releases: {} })).to.equal(undefined);
    expect(parseProjectJson([])).to.equal(undefined);
  });
});

describe('pypi index: requests', function () {
  this.timeout(30_000);
  let server: http.Server;
  let origin: string;
  let other: http.Server;
  let otherOrigin: string;
  const seen: Array<{ where: string; path: string; authorization?: string }> = [];
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-pypi-index-'));
    other = http.createServer((request, response) => {
      seen.push({ where: 'other', path: request.url ?? '', authorization: request.headers.authorization });
      response.end('{}');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    server = http.createServer((request, response) => {
      seen.push({ where: 'index', path: request.url ?? '', authorization: request.headers.authorization });
      if (request.url === '/pypi/away/json') {
        response.writeHead(302, { location: `${otherOrigin}/pypi/away/json` });
        response.end();
        return;
      }
      if (request.url === '/pypi/huge/json') {
        response.end(`{"info":{"name":"huge"},"releases":{},"pad":"${'x'.repeat(4096)}"}`);
        return;
      }
      if (request.url === '/pypi/ok/json') {
        response.end('{"info":{"name":"ok","version":"1.0"},"releases":{}}');
        return;
      }
      if (request.url === '/files/x.whl') {
        response.end('wheel bytes');
        return;
      }
      response.writeHead(404);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    other.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => other.close(resolve));
    await fs.rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen.length = 0;
  });

  it('sends the index credentials to the index only, and follows no redirect to another origin', async () => {
    const client = new PypiIndexClient(`http://bot:s3cret@${origin.slice(7)}/simple/`, LIMITS);
    expect(client.index).to.equal(`${origin}/simple/`);
    expect((await client.project('ok')).name).to.equal('ok');
    expect(seen[0]).to.deep.equal({
      where: 'index',
      path: '/pypi/ok/json',
      authorization: `Basic ${Buffer.from('bot:s3cret').toString('base64')}`,
    });
    const away = await rejection(client.project('away'));
    expect(away.code).to.equal('ETARBALLHOST');
    expect(away.message).to.include(
      `redirects to ${otherOrigin}/pypi/away/json, which points at ${otherOrigin}, not at the index ${origin}; nothing was sent there`,
    );
    expect(seen.filter((entry) => entry.where === 'other')).to.deep.equal([]);
    expect(client.fileProblem(`${otherOrigin}/x.whl`)).to.match(/not at the index/);
  });

  it('a TARBALL_HOSTS origin may serve files but gets no credentials', async () => {
    const client = new PypiIndexClient(`http://bot:s3cret@${origin.slice(7)}/simple/`, { ...LIMITS, tarballHosts: [otherOrigin.slice(7)] });
    expect(client.fileProblem(`${otherOrigin}/x.whl`)).to.equal(undefined);
    const target = path.join(dir, 'other.whl');
    await client.download(`${otherOrigin}/x.whl`, sha256Integrity(sha256Hex('{}'))!, target, 'x');
    expect(seen).to.deep.equal([{ where: 'other', path: '/x.whl', authorization: undefined }]);
  });

  it('refuses a JSON answer over MAX_PACKUMENT_SIZE and a 404 with a hint', async () => {
    const client = new PypiIndexClient(`${origin}/simple/`, { ...LIMITS, maxPackumentBytes: 1024 });
    expect((await rejection(client.project('huge'))).code).to.equal('EPACKUMENTTOOBIG');
    const missing = await rejection(client.project('missing'));
    expect(missing.code).to.equal('E404');
  });

  it('a file that does not match its digest leaves nothing behind', async () => {
    const client = new PypiIndexClient(`${origin}/simple/`, LIMITS);
    const target = path.join(dir, 'x.whl');
    const mismatch = await rejection(client.download(`${origin}/files/x.whl`, sha256Integrity('0'.repeat(64))!, target, 'x.whl of x 1.0'));
    expect(mismatch.code).to.equal('EINTEGRITY');
    expect(await fs.readdir(dir)).to.not.include('x.whl');
    await client.download(`${origin}/files/x.whl`, sha256Integrity(sha256Hex('wheel bytes'))!, target, 'x.whl of x 1.0');
    expect(await fs.readFile(target, 'utf8')).to.equal('wheel bytes');
  });
});

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('fixture index: the simple API (PEP 691 JSON and HTML)', function () {
  this.timeout(30_000);
  it('serves both forms with sha256 fragments, requires-python and yanked marks', async () => {
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-wheels-'));
    const index = await FixtureIndex.start(scratch);
    try {
      const file = index.publish({
        name: 'Demo_Py',
        version: '1.0',
        kind: 'healthy',
        uploadedAt: new Date('2026-01-01T00:00:00Z'),
        yanked: true,
        requiresPython: '>=3.8',
      });
      const json = (await (await fetch(`${index.url}demo-py/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as {
        files: Array<Record<string, unknown>>;
      };
      expect(json.files[0]).to.deep.include({
        filename: file.filename,
        hashes: { sha256: file.sha256 },
        'requires-python': '>=3.8',
        yanked: true,
      });
      const html = await (await fetch(`${index.url}demo-py/`)).text();
      expect(html).to.include(
        `href="${index.origin}/files/${file.filename}#sha256=${file.sha256}" data-requires-python="&gt;=3.8" data-yanked=""`,
      );
    } finally {
      await index.close();
      await fs.rm(scratch, { recursive: true, force: true });
    }
  });
});
