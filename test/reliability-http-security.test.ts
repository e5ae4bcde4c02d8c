/*
 * HTTP security against real processes: two dashboards (`mcp-updater start --role dashboard`) and
 * a worker process on one QUEUE_PREFIX, with API_TOKEN, REGISTRY_TOKEN, WEBHOOK_SECRET and a
 * password in REDIS_URL. Every mutating endpoint and Bull Board refuse missing and wrong tokens;
 * a session cookie cannot change anything from another origin; the mutation rate limit is one
 * budget across both dashboards; and after a real update has run (registry token in use,
 * webhooks signed) no response, log line, file, Redis key or job holds any of the secrets.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ProducerClient } from '../producers/client.js';
import { loadConfig, type Config } from '../shared/config.js';
import { QUEUE_NAMES } from '../shared/queues.js';
import { createTestEnv, deleteKeysWithPrefix, type TestEnv } from './support/env.js';
import { fixturePackageDir, FixtureRegistry } from './support/registry.js';
import { freePort } from './support/redisServer.js';
import { killHard, startRole, summary, type ChildWithOutput } from './support/reliability.js';
import { pipelineIdle } from './support/pipeline.js';
import { waitUntil } from './support/wait.js';

const API_TOKEN = 'sec-api-token-4f1c2b7e9d0a5c3e8b6f';
const REGISTRY_TOKEN = 'sec-registry-token-a9e8d7c6b5a4';
const WEBHOOK_SECRET = 'sec-webhook-secret-1a2b3c4d5e6f';
const REDIS_PASSWORD = 'sec-redis-password-0f9e8d7c';
const SECRETS = { API_TOKEN, REGISTRY_TOKEN, WEBHOOK_SECRET, REDIS_PASSWORD };
const MUTATION_LIMIT = 30;
const old = new Date(Date.now() - 30 * 86_400_000);

const MUTATING = [
  '/api/v1/servers/sec-a/check',
  '/api/v1/checks',
  '/api/v1/servers/sec-a/approve',
  '/api/v1/servers/sec-a/rollback',
  '/api/v1/cleanup',
];
/** Bull Board: its UI, its JSON API and its actions. */
const BOARD: Array<[string, string]> = [
  ['GET', '/admin/queues'],
  ['GET', '/admin/queues/api/queues'],
  ['PUT', '/admin/queues/api/queues/check/retry/failed'],
  ['PUT', '/admin/queues/api/queues/check/pause'],
  ['PUT', '/admin/queues/api/queues/check/clean/completed'],
];
const WRONG_CREDENTIALS: Array<[string, Record<string, string>]> = [
  ['no credentials', {}],
  ['a wrong token', { authorization: 'Bearer sec-api-token-4f1c2b7e9d0a5c3e8b6X' }],
  ['the token in upper case', { authorization: `Bearer ${API_TOKEN.toUpperCase()}` }],
  ['a prefix of the token', { authorization: `Bearer ${API_TOKEN.slice(0, -1)}` }],
  ['the token plus a character', { authorization: `Bearer ${API_TOKEN}x` }],
  ['Basic instead of Bearer', { authorization: `Basic ${Buffer.from(`x:${API_TOKEN}`).toString('base64')}` }],
  ['Bearer without a token', { authorization: 'Bearer' }],
  ['an unknown session cookie', { cookie: `mcpu_session=${'ab'.repeat(32)}` }],
  ['the token as the cookie', { cookie: `mcpu_session=${API_TOKEN}` }],
];

describe('reliability: HTTP security across dashboard processes', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let config: Config;
  let receiver: http.Server;
  const received: string[] = [];
  let dashboards: Array<{ child: ChildWithOutput; url: string }> = [];
  let worker: ChildWithOutput;
  const children: ChildWithOutput[] = [];
  /** Every status line, header and body any request of this suite got back. */
  const answers: string[] = [];
  /** Mutation requests sent from this address so far (they all count against one budget). */
  let mutationsSent = 0;
  const facts: Record<string, unknown> = {};

  async function call(
    base: string,
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: unknown; form?: string; record?: boolean } = {},
  ): Promise<{ status: number; text: string; headers: Headers }> {
    const headers: Record<string, string> = { ...init.headers };
    let body: string | undefined;
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = init.form;
    } else if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    if (method === 'POST' && url.startsWith('/api/')) mutationsSent += 1;
    const res = await fetch(`${base}${url}`, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    if (init.record !== false)
      answers.push(`${res.status} ${[...res.headers].map(([key, value]) => `${key}: ${value}`).join('\n')}\n\n${text}`);
    return { status: res.status, text, headers: res.headers };
  }

  const json = (text: string) => JSON.parse(text) as { error?: { code: string; message: string } };

  before(async () => {
    registry = await FixtureRegistry.start();
    await registry.publish({ name: 'fixture-dep', version: '1.0.0', fromDir: fixturePackageDir('plain-lib'), publishedAt: old });
    await registry.publish({
      name: 'sec-a',
      version: '1.0.0',
      publishedAt: old,
      packageJson: { dependencies: { 'fixture-dep': '^1.0.0' } },
    });
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        received.push(`${JSON.stringify(req.headers)}\n${body}`);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const ports = [await freePort(), await freePort()];
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: 'defaults:\n  minReleaseAge: 0\nservers:\n  sec-a: { package: sec-a }\n',
      env: {
        REDIS_URL: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6379`,
        API_TOKEN,
        REGISTRY_TOKEN,
        WEBHOOK_SECRET,
        WEBHOOK_URLS: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        LOG_LEVEL: 'debug',
        // Refused tokens at Bull Board count against the login limit (test/security-dashboard.test.ts);
        // this test sends dozens of them to count the 401s.
        RATE_LIMIT_LOGIN: '1000',
      },
    });
    config = loadConfig(env.env);
    dashboards = ports.map((port) => {
      const child = startRole('dashboard', { ...env.env, PORT: String(port) });
      children.push(child);
      return { child, url: `http://127.0.0.1:${port}` };
    });
    worker = startRole('worker', env.env);
    children.push(worker);
    for (const { url, child } of dashboards) {
      await waitUntil(
        `dashboard ${url} to listen`,
        async () => {
          if (child.exitCode !== null) throw new Error(`dashboard exited: ${child.output.join('')}`);
          return (
            (await fetch(`${url}/ready`).then(
              (res) => res.status,
              () => 0,
            )) === 200
          );
        },
        30_000,
        100,
      );
    }
  });

  after(async () => {
    for (const child of children) await killHard(child);
    await new Promise<void>((resolve) => receiver?.close(() => resolve()));
    await env?.cleanup();
    await registry?.close();
  });

  it('every mutating endpoint and Bull Board refuse missing and wrong credentials (401), on both processes', async () => {
    let refused = 0;
    for (const [index, [what, headers]] of WRONG_CREDENTIALS.entries()) {
      const base = dashboards[index % 2]!.url;
      // Mutations count against the rate limit, so each endpoint gets two of the variants.
      for (const [endpointIndex, endpoint] of MUTATING.entries()) {
        if ((index + endpointIndex) % WRONG_CREDENTIALS.length > 1) continue;
        const res = await call(base, 'POST', endpoint, { headers, body: { version: '1.0.0' } });
        expect(res.status, `POST ${endpoint} with ${what}`).to.equal(401);
        expect(json(res.text).error?.code).to.equal('EUNAUTHORIZED');
        expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
        refused += 1;
      }
      for (const [method, endpoint] of BOARD) {
        const res = await call(base, method, endpoint, { headers: { accept: 'application/json', ...headers } });
        expect(res.status, `${method} ${endpoint} with ${what}`).to.equal(401);
        refused += 1;
      }
    }
    // A browser without a session is sent to the login form, not shown the board.
    const browser = await call(dashboards[0]!.url, 'GET', '/admin/queues', { headers: { accept: 'text/html' } });
    expect(browser.status).to.equal(303);
    expect(browser.headers.get('location')).to.match(/^\/login\?next=/);
    // Nothing was enqueued or paused by any of it.
    const client = ProducerClient.connect(config);
    try {
      for (const name of ['check', 'activate', 'cleanup'] as const) expect(await client.queue[name].count(), `${name} jobs`).to.equal(0);
      expect(await client.queue.check.isPaused(), 'check queue paused').to.equal(false);
    } finally {
      await client.close();
    }
    // The right token opens both (the control).
    for (const { url } of dashboards) {
      expect(
        (
          await call(url, 'GET', '/admin/queues/api/queues', {
            headers: { authorization: `Bearer ${API_TOKEN}`, accept: 'application/json' },
          })
        ).status,
      ).to.equal(200);
    }
    facts.refused401 = refused;
  });

  it('a session cookie cannot change anything from another origin (403 EORIGIN); from its own origin it can', async () => {
    const { url } = dashboards[0]!;
    const login = await call(url, 'POST', '/login', { form: `token=${encodeURIComponent(API_TOKEN)}&next=%2F`, headers: { origin: url } });
    expect(login.status).to.equal(303);
    const cookie = login.headers
      .getSetCookie()
      .find((line) => line.startsWith('mcpu_session='))!
      .split(';')[0]!;
    const crossOrigin: Array<[string, Record<string, string>]> = [
      ['a foreign Origin', { origin: 'http://evil.example' }],
      ['a foreign Referer', { referer: 'http://evil.example/page' }],
      ['Origin: null', { origin: 'null' }],
      ['no Origin or Referer', {}],
      ['a look-alike host', { origin: `${url}.evil.example` }],
      ['another port', { origin: url.replace(/:\d+$/, ':1') }],
    ];
    let refused = 0;
    for (const [what, headers] of crossOrigin) {
      const res = await call(url, 'POST', '/api/v1/servers/sec-a/check', { headers: { cookie, ...headers } });
      expect(res.status, `cookie check with ${what}`).to.equal(403);
      expect(json(res.text).error?.code).to.equal('EORIGIN');
      const board = await call(url, 'PUT', '/admin/queues/api/queues/check/pause', {
        headers: { cookie, accept: 'application/json', ...headers },
      });
      expect(board.status, `cookie board action with ${what}`).to.equal(403);
      refused += 2;
    }
    // A login posted from another origin is refused too.
    const foreignLogin = await call(url, 'POST', '/login', {
      form: `token=${encodeURIComponent(API_TOKEN)}`,
      headers: { origin: 'http://evil.example', accept: 'application/json' },
    });
    expect(foreignLogin.status).to.equal(403);
    // The control: the same cookie from its own origin is accepted (this check runs the pipeline).
    const own = await call(url, 'POST', '/api/v1/servers/sec-a/check', { headers: { cookie, origin: url } });
    expect(own.status).to.equal(202);
    facts.crossOriginRefused = refused;
  });

  it(`the mutation limit (${MUTATION_LIMIT}/min per address) is one budget across both dashboard processes`, async () => {
    const left = MUTATION_LIMIT - mutationsSent;
    expect(left, 'budget left for this test').to.be.greaterThan(5);
    const statuses: Array<[number, number]> = [];
    for (let index = 0; index < left + 10; index++) {
      const which = index % 2;
      const res = await call(dashboards[which]!.url, 'POST', '/api/v1/servers/sec-a/check', {
        headers: { authorization: `Bearer ${API_TOKEN}` },
      });
      statuses.push([which, res.status]);
    }
    const accepted = statuses.filter(([, status]) => status === 202).length;
    const limited = statuses.filter(([, status]) => status === 429);
    expect(accepted, 'accepted').to.equal(left);
    expect(limited.length, '429s').to.equal(10);
    // Each process alone saw fewer than the limit, so only a shared count can have said 429 — and both did.
    expect(new Set(limited.map(([which]) => which)).size, 'processes answering 429').to.equal(2);
    expect(statuses.filter(([which]) => which === 0).length).to.be.below(MUTATION_LIMIT);
    facts.rateLimit = { sentThisTest: statuses.length, accepted, limited: limited.length, budget: MUTATION_LIMIT };
  });

  it('no response, log, file, Redis key, job or webhook holds API_TOKEN, REGISTRY_TOKEN, WEBHOOK_SECRET or the Redis password', async () => {
    const control = ProducerClient.connect(config);
    try {
      await waitUntil(
        'sec-a installed by the worker process',
        async () =>
          (await fs.readlink(path.join(config.serversPath, 'sec-a', 'current')).catch(() => '')) !== '' && pipelineIdle(control.queue),
        60_000,
        100,
      );
    } finally {
      await control.close();
    }
    await waitUntil('webhooks delivered', () => received.length >= 4, 20_000);
    // Secrets in places a careless answer would echo.
    const { url } = dashboards[1]!;
    const token = { authorization: `Bearer ${API_TOKEN}` };
    await call(url, 'GET', `/x-${API_TOKEN}`, { headers: { accept: 'application/json' } });
    await call(url, 'GET', `/api/v1/servers/${API_TOKEN}`);
    await call(url, 'GET', `/api/v1/events?token=${API_TOKEN}`);
    // The login form hands `next` back as it came (the caller's own input, not a secret of ours):
    // its answer is left out of the scan, the logs are not.
    await call(url, 'GET', `/login?next=/${API_TOKEN}`, { record: false });
    for (const page of ['/', '/api/v1/servers', '/api/v1/servers/sec-a', '/api/v1/events?limit=1000', '/metrics', '/ready', '/health'])
      await call(url, 'GET', page);
    for (const queue of QUEUE_NAMES) {
      for (const status of ['completed', 'failed']) {
        await call(url, 'GET', `/admin/queues/api/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=50`, {
          headers: { ...token, accept: 'application/json' },
        });
      }
    }

    const found: string[] = [];
    const scan = (where: string, text: string) => {
      for (const [name, secret] of Object.entries(SECRETS)) if (text.includes(secret)) found.push(`${name} in ${where}`);
    };
    answers.forEach((text, index) => scan(`answer #${index}: ${text.slice(0, 200)}`, text));
    received.forEach((text, index) => scan(`webhook #${index}`, text));
    for (const child of children) scan(`output of pid ${child.pid}`, child.output.join(''));

    // Every file under the test's root: logs, installed versions, npm's cache and logs, history, backups.
    let files = 0;
    async function walk(dir: string): Promise<void> {
      for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) {
          files += 1;
          const content = await fs.readFile(full);
          scan(full, content.toString('latin1'));
        }
      }
    }
    await walk(env.root);
    const logLines = (
      await Promise.all((await fs.readdir(config.logDir)).map((file) => fs.readFile(path.join(config.logDir, file), 'utf8')))
    )
      .join('')
      .split('\n').length;

    // Every key under the prefix, every value of every type.
    const redis = new Redis('redis://127.0.0.1:6379');
    let keys = 0;
    let jobs = 0;
    try {
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${config.queuePrefix}:*`, 'COUNT', 500);
        cursor = next;
        for (const key of batch) {
          keys += 1;
          const type = await redis.type(key);
          let value: unknown;
          if (type === 'string') value = await redis.get(key);
          else if (type === 'hash') value = await redis.hgetall(key);
          else if (type === 'list') value = await redis.lrange(key, 0, -1);
          else if (type === 'set') value = await redis.smembers(key);
          else if (type === 'zset') value = await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES');
          else if (type === 'stream') value = await redis.xrange(key, '-', '+');
          if (type === 'hash' && (value as Record<string, string>).data !== undefined) jobs += 1;
          scan(`redis ${key} (${type})`, JSON.stringify(value));
        }
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
    expect(found, 'secrets found').to.deep.equal([]);
    expect(jobs, 'jobs read back').to.be.greaterThan(3);
    expect(
      received.every((text) => /x-mcp-updater-signature":"sha256=[0-9a-f]{64}"/.test(text)),
      'webhooks are signed',
    ).to.equal(true);
    facts.scanned = { answers: answers.length, webhooks: received.length, files, logLines, redisKeys: keys, jobs };
    summary('http-security', facts);
    // Keys of the dashboards' rate limiter and sessions live under the prefix too; env.cleanup removes them.
    await deleteKeysWithPrefix(env.redis, config.queuePrefix);
  });
});
