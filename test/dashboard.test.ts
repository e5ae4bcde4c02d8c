/*
 * The dashboard app on a real Redis (random QUEUE_PREFIX): every HTTP endpoint with good input,
 * bad input, unknown servers, missing/wrong tokens, read-only mode, rate limits, login sessions
 * with the Origin rule, jobs really enqueued, secrets never answered, HTML escaped.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createDashboardApp } from '../dashboard/app.js';
import { safeNext } from '../dashboard/pages.js';
import type { RateLimits } from '../dashboard/rate-limit.js';
import { escapeHtml } from '../dashboard/views.js';
import { SESSION_COOKIE, tokenFingerprint, tokensEqual } from '../dashboard/auth.js';
import { ProducerClient } from '../producers/client.js';
import { loadConfig, type Config } from '../shared/config.js';
import { EventLog } from '../shared/events.js';
import { relativeTime } from '../shared/humanTime.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { appKey, createRedis, waitForRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const TOKEN = 'test-token-0123456789abcdef-secret';
const FINGERPRINT = tokenFingerprint(TOKEN);
const HOST = 'dashboard.test';
const ORIGIN = `http://${HOST}`;

const INVENTORY = `
servers:
  memory:
    package: "@modelcontextprotocol/server-memory"
    activation: manual
    smokeTest:
      env: { MEMORY_API_KEY: "smoke-secret-value" }
  everything:
    package: mcp-everything
    policy: patch
`;

interface Harness {
  env: TestEnv;
  config: Config;
  app: Express;
  inventory: InventoryWatcher;
  redis: Redis;
  producer: ProducerClient;
  state: StateStore;
  close(): Promise<void>;
}

/** An app on the env's Redis; `config` overrides let one env host a read-only or a broken twin. */
async function harness(
  env: TestEnv,
  options: { config?: Config; rateLimits?: Partial<RateLimits>; ready?: boolean } = {},
): Promise<Harness> {
  const config = options.config ?? env.config;
  const inventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
  const redis = createRedis(config, 'producer');
  const producer = ProducerClient.connect(config);
  if (options.ready !== false) {
    await waitForRedis(redis, config.redisUrl);
    await producer.ready();
  }
  const app = createDashboardApp({
    config,
    inventory,
    redis,
    producer,
    processMetrics: false,
    rateLimits: { read: 10_000, mutation: 10_000, login: 10_000, ...options.rateLimits },
    serverCacheMs: 0,
  });
  return {
    env,
    config,
    app,
    inventory,
    redis,
    producer,
    state: new StateStore(env.redis, config),
    async close() {
      inventory.close();
      await producer.close();
      redis.disconnect();
    },
  };
}

async function login(app: Express, token = TOKEN): Promise<string> {
  const res = await request(app).post('/login').set('Host', HOST).set('Origin', ORIGIN).type('form').send({ token, next: '/' });
  expect(res.status).to.equal(303);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((line) => line.startsWith(`${SESSION_COOKIE}=`));
  expect(cookie, 'session cookie').to.be.a('string');
  return cookie!.split(';')[0]!;
}

const bearer = `Bearer ${TOKEN}`;

describe('dashboard', function () {
  this.timeout(30_000);
  let env: TestEnv;
  let h: Harness;
  let readOnly: Harness;
  /** Every body this suite received, to prove the token never leaves. */
  const bodies: string[] = [];
  const keep = (res: request.Response) => {
    bodies.push(res.text ?? JSON.stringify(res.body));
    return res;
  };

  before(async () => {
    env = await createTestEnv({ inventory: INVENTORY, env: { API_TOKEN: TOKEN, ALLOWED_HOSTS: HOST } });
    h = await harness(env);
    readOnly = await harness(env, { config: Object.freeze({ ...env.config, apiToken: undefined }) });
    const fiveMinutesAgo = new Date(Date.now() - 5 * 60_000).toISOString();
    await h.state.update('memory', {
      package: '@modelcontextprotocol/server-memory',
      current: '1.0.0',
      previous: '0.9.0',
      latest: '1.1.0',
      candidate: '1.1.0',
      staged: '1.1.0',
      state: 'awaiting-approval',
      lastCheck: fiveMinutesAgo,
      lastCheckResult: 'update 1.1.0',
      lastError: 'ESMOKETEST: <script>alert("pwned")</script> & friends',
    });
    await h.state.appendHistory('memory', { action: 'install', to: '0.9.0', at: '2026-01-01T00:00:00.000Z' });
    await h.state.appendHistory('memory', { action: 'activate', from: '0.9.0', to: '1.0.0', at: '2026-02-01T00:00:00.000Z' });
    await h.state.update('everything', { current: '2.0.0', latest: '2.0.0', candidate: '2.0.0', state: 'idle', lastCheck: fiveMinutesAgo });
    // Approve and rollback ask the activation rules, which read what is installed from the disk.
    const layout = new InstallLayout(env.config);
    for (const version of ['0.8.0', '0.9.0', '1.0.0', '1.1.0']) await fs.mkdir(layout.versionDir('memory', version), { recursive: true });
    await layout.switchCurrent('memory', '1.0.0');
    const events = new EventLog(env.redis, env.config);
    await events.publish({ type: 'update.available', server: 'memory', version: '1.1.0', from: '1.0.0', jobId: 'c1' });
    await events.publish({ type: 'update.staged', server: 'memory', version: '1.1.0', jobId: 's1' });
    await events.publish({ type: 'update.activated', server: 'everything', version: '2.0.0', from: '1.9.0', jobId: 'a1' });
  });

  after(async () => {
    await h?.close();
    await readOnly?.close();
    await env?.cleanup();
  });

  describe('helpers', () => {
    it('escapes every HTML-significant character', () => {
      expect(escapeHtml(`<a href="x" onclick='y'>&\`</a>`)).to.equal(
        '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;',
      );
      expect(escapeHtml(undefined)).to.equal('');
      expect(escapeHtml(42)).to.equal('42');
    });

    it('says how long ago something happened', () => {
      const now = new Date('2026-05-01T12:00:00Z');
      const cases: Array<[string | undefined, string]> = [
        [undefined, 'never'],
        ['garbage', 'unknown'],
        ['2026-05-01T11:59:58Z', 'just now'],
        ['2026-05-01T11:59:30Z', '30 s ago'],
        ['2026-05-01T11:55:00Z', '5 min ago'],
        ['2026-05-01T09:00:00Z', '3 h ago'],
        ['2026-04-28T12:00:00Z', '3 days ago'],
        ['2026-05-01T12:10:00Z', 'in 10 min'],
      ];
      for (const [iso, text] of cases) expect(relativeTime(iso, now), String(iso)).to.equal(text);
    });

    it('only redirects to local paths after login', () => {
      expect(safeNext('/admin/queues')).to.equal('/admin/queues');
      expect(safeNext('//evil.example/')).to.equal('/');
      expect(safeNext('/\\evil.example')).to.equal('/');
      expect(safeNext('https://evil.example/')).to.equal('/');
      expect(safeNext(undefined)).to.equal('/');
    });

    it('compares tokens in constant time and fingerprints them', () => {
      expect(tokensEqual(TOKEN, TOKEN)).to.equal(true);
      expect(tokensEqual('short', TOKEN)).to.equal(false);
      expect(FINGERPRINT).to.match(/^[0-9a-f]{8}$/);
    });
  });

  describe('probes', () => {
    it('GET /health answers ok', async () => {
      const res = keep(await request(h.app).get('/health'));
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ok' });
      expect(res.headers['content-type']).to.match(/application\/json/);
    });

    it('GET /ready answers ready while Redis answers', async () => {
      const res = keep(await request(h.app).get('/ready'));
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ready' });
    });

    it('GET /ready answers 503 with the reason when Redis is unreachable; reads answer 503 EREDIS', async () => {
      const broken = loadConfig({ ...env.env, API_TOKEN: TOKEN, REDIS_URL: 'redis://127.0.0.1:1' });
      const down = await harness(env, { config: broken, ready: false });
      try {
        const started = Date.now();
        const ready = await request(down.app).get('/ready');
        expect(Date.now() - started).to.be.below(2_500);
        expect(ready.status).to.equal(503);
        expect(ready.body.status).to.equal('unavailable');
        expect(ready.body.reason).to.match(/Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/);
        const health = await request(down.app).get('/health');
        expect(health.status).to.equal(200);
        const servers = await request(down.app).get('/api/v1/servers');
        expect(servers.status).to.equal(503);
        expect(servers.body.error.code).to.equal('EREDIS');
        const check = await request(down.app).post('/api/v1/servers/memory/check').set('Authorization', bearer).send({});
        expect(check.status).to.equal(503);
        expect(check.body.error.code).to.equal('EREDIS');
      } finally {
        await down.close();
      }
    });
  });

  describe('GET /api/v1/servers', () => {
    it('lists every inventory server with state and settings', async () => {
      const res = keep(await request(h.app).get('/api/v1/servers'));
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/application\/json/);
      const servers = res.body.servers as Array<Record<string, unknown>>;
      expect(servers.map((server) => server.name)).to.deep.equal(['memory', 'everything']);
      expect(servers[0]).to.include({
        name: 'memory',
        package: '@modelcontextprotocol/server-memory',
        current: '1.0.0',
        previous: '0.9.0',
        latest: '1.1.0',
        candidate: '1.1.0',
        updateAvailable: true,
        staged: '1.1.0',
        state: 'awaiting-approval',
        policy: 'minor',
        channel: 'latest',
        activation: 'manual',
        launcher: path.join(env.config.serversPath, 'bin', 'memory'),
      });
      expect(servers[0]!.lastCheck).to.be.a('string');
      expect(servers[0]!.lastError).to.include('<script>');
      expect(servers[1]).to.include({ name: 'everything', current: '2.0.0', updateAvailable: false, state: 'idle', policy: 'patch' });
    });

    it('serves a short-lived cached answer (one Redis read per cache period)', async () => {
      const cached = await harness(env, { rateLimits: {} });
      const app = createDashboardApp({
        config: env.config,
        inventory: cached.inventory,
        redis: cached.redis,
        producer: cached.producer,
        processMetrics: false,
        serverCacheMs: 60_000,
      });
      try {
        const first = await request(app).get('/api/v1/servers');
        await h.state.update('everything', { current: '2.0.1' });
        const second = await request(app).get('/api/v1/servers');
        expect(second.text).to.equal(first.text);
      } finally {
        await h.state.update('everything', { current: '2.0.0' });
        await cached.close();
      }
    });
  });

  describe('GET /api/v1/servers/:name', () => {
    it('answers one server with its history and settings (smoke-test env values hidden)', async () => {
      const res = keep(await request(h.app).get('/api/v1/servers/memory'));
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ name: 'memory', current: '1.0.0', staged: '1.1.0' });
      expect(res.body.history.map((entry: { to: string }) => entry.to)).to.deep.equal(['1.0.0', '0.9.0']);
      expect(res.body.settings).to.include({ policy: 'minor', activation: 'manual', channel: 'latest', keep: 3 });
      expect(res.body.settings.smokeTest.env).to.deep.equal({ MEMORY_API_KEY: '[REDACTED]' });
      expect(res.text).to.not.include('smoke-secret-value');
    });

    it('answers 404 for a server not in the inventory', async () => {
      const res = keep(await request(h.app).get('/api/v1/servers/nope'));
      expect(res.status).to.equal(404);
      expect(res.body.error).to.include({ code: 'ENOTFOUND' });
      expect(res.body.error.message).to.include('"nope" is not in the inventory');
    });

    it('answers 400 for a malformed name', async () => {
      const res = keep(await request(h.app).get('/api/v1/servers/Bad_Name'));
      expect(res.status).to.equal(400);
      expect(res.body.error.code).to.equal('EVALIDATION');
      expect(res.body.error.message).to.match(/server name.*lower-case/);
    });
  });

  describe('GET /api/v1/events', () => {
    it('lists events newest first', async () => {
      const res = keep(await request(h.app).get('/api/v1/events'));
      expect(res.status).to.equal(200);
      expect(res.body.events.map((event: { type: string }) => event.type)).to.deep.equal([
        'update.activated',
        'update.staged',
        'update.available',
      ]);
    });

    it('filters by server and limits', async () => {
      const res = await request(h.app).get('/api/v1/events').query({ server: 'memory', limit: 1 });
      expect(res.status).to.equal(200);
      expect(res.body.events).to.have.length(1);
      expect(res.body.events[0]).to.include({ type: 'update.staged', server: 'memory' });
    });

    it("refuses a bad limit with joi's message", async () => {
      for (const limit of ['0', '1001', 'many']) {
        const res = await request(h.app).get('/api/v1/events').query({ limit });
        expect(res.status, limit).to.equal(400);
        expect(res.body.error.message).to.match(/"limit" must be/);
      }
    });

    it('answers 404 for an unknown server', async () => {
      const res = await request(h.app).get('/api/v1/events').query({ server: 'ghost' });
      expect(res.status).to.equal(404);
    });
  });

  describe('POST /api/v1/servers/:name/check', () => {
    it('enqueues a check (202 {jobId}) and records who asked', async () => {
      const res = keep(await request(h.app).post('/api/v1/servers/everything/check').set('Authorization', bearer).send({ force: true }));
      expect(res.status).to.equal(202);
      expect(res.body.jobId).to.be.a('string');
      const job = await h.producer.queue.check.getJob(res.body.jobId);
      expect(job, 'job in the check queue').to.not.equal(undefined);
      expect(job!.data).to.include({ server: 'everything', force: true });
      expect(job!.data.reason).to.include(`token:${FINGERPRINT}`);
    });

    it('accepts an empty body', async () => {
      const res = await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', bearer);
      expect(res.status).to.equal(202);
    });

    it('writes the change to audit.log with the token fingerprint and IP', async () => {
      const file = path.join(env.config.logDir, 'audit.log');
      let text = '';
      for (let attempt = 0; attempt < 50 && !text.includes('"action":"check"'); attempt++) {
        text = await fs.readFile(file, 'utf8').catch(() => '');
        if (!text.includes('"action":"check"')) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const line = text
        .split('\n')
        .filter(Boolean)
        .map((entry) => JSON.parse(entry) as Record<string, unknown>)
        .find((entry) => entry.action === 'check');
      expect(line).to.include({ actor: `token:${FINGERPRINT}`, server: 'everything' });
      expect(line!.ip).to.be.a('string');
      expect(text).to.not.include(TOKEN);
    });

    it('answers 401 without a token and with a wrong one', async () => {
      const none = keep(await request(h.app).post('/api/v1/servers/memory/check').send({}));
      expect(none.status).to.equal(401);
      expect(none.body.error.code).to.equal('EUNAUTHORIZED');
      expect(none.headers['www-authenticate']).to.match(/^Bearer/);
      const wrong = keep(await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', 'Bearer not-the-token').send({}));
      expect(wrong.status).to.equal(401);
      const malformed = await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', TOKEN).send({});
      expect(malformed.status).to.equal(401);
    });

    it('answers 404 for an unknown server and 400 for a bad body', async () => {
      const unknown = await request(h.app).post('/api/v1/servers/ghost/check').set('Authorization', bearer).send({});
      expect(unknown.status).to.equal(404);
      const bad = await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', bearer).send({ force: 'yes' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.equal('"force" must be a boolean');
      const extra = await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', bearer).send({ surprise: 1 });
      expect(extra.status).to.equal(400);
      expect(extra.body.error.message).to.equal('"surprise" is not allowed');
      const broken = await request(h.app).post('/api/v1/servers/memory/check').set('Authorization', bearer).type('json').send('{"force":');
      expect(broken.status).to.equal(400);
      expect(broken.body.error.code).to.equal('EVALIDATION');
    });
  });

  describe('POST /api/v1/checks', () => {
    it('enqueues a check of every server (202 {jobIds})', async () => {
      await h.producer.queue.check.obliterate({ force: true });
      const res = keep(await request(h.app).post('/api/v1/checks').set('Authorization', bearer).send({}));
      expect(res.status).to.equal(202);
      expect(res.body.jobIds).to.have.length(2);
      const jobs = await Promise.all((res.body.jobIds as string[]).map((id) => h.producer.queue.check.getJob(id)));
      expect(jobs.map((job) => job!.data.server).sort()).to.deep.equal(['everything', 'memory']);
    });

    it('answers 401 without a token and 400 for a bad body', async () => {
      expect((await request(h.app).post('/api/v1/checks').send({})).status).to.equal(401);
      const bad = await request(h.app).post('/api/v1/checks').set('Authorization', bearer).send({ reason: 5 });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.equal('"reason" must be a string');
    });
  });

  describe('POST /api/v1/servers/:name/approve', () => {
    it('enqueues activation of the staged version', async () => {
      const res = keep(await request(h.app).post('/api/v1/servers/memory/approve').set('Authorization', bearer).send({ version: '1.1.0' }));
      expect(res.status).to.equal(202);
      const job = await h.producer.queue.activate.getJob(res.body.jobId);
      expect(job!.data).to.include({ server: 'memory', action: 'approve', version: '1.1.0' });
      expect(job!.data.requestedBy).to.include(`token:${FINGERPRINT}`);
    });

    it('answers 400 without a version, 409 for a version that is not staged, 404 for an unknown server', async () => {
      const missing = await request(h.app).post('/api/v1/servers/memory/approve').set('Authorization', bearer).send({});
      expect(missing.status).to.equal(400);
      expect(missing.body.error.message).to.equal('"version" is required');
      const notStaged = await request(h.app).post('/api/v1/servers/memory/approve').set('Authorization', bearer).send({ version: '9.9.9' });
      expect(notStaged.status).to.equal(409);
      expect(notStaged.body.error.code).to.equal('ECONFLICT');
      const nothing = await request(h.app)
        .post('/api/v1/servers/everything/approve')
        .set('Authorization', bearer)
        .send({ version: '2.0.1' });
      expect(nothing.status).to.equal(409);
      const unknown = await request(h.app).post('/api/v1/servers/ghost/approve').set('Authorization', bearer).send({ version: '1.0.0' });
      expect(unknown.status).to.equal(404);
      expect((await request(h.app).post('/api/v1/servers/memory/approve').send({ version: '1.1.0' })).status).to.equal(401);
    });
  });

  describe('POST /api/v1/servers/:name/rollback', () => {
    it('enqueues a rollback to the previous version, or to a named one', async () => {
      const res = keep(await request(h.app).post('/api/v1/servers/memory/rollback').set('Authorization', bearer).send({}));
      expect(res.status).to.equal(202);
      const job = await h.producer.queue.activate.getJob(res.body.jobId);
      expect(job!.data).to.include({ server: 'memory', action: 'rollback' });
      expect(job!.data.version).to.equal(undefined);
      const named = await request(h.app).post('/api/v1/servers/memory/rollback').set('Authorization', bearer).send({ version: '0.8.0' });
      expect(named.status).to.equal(202);
      expect((await h.producer.queue.activate.getJob(named.body.jobId))!.data).to.include({ action: 'rollback', version: '0.8.0' });
    });

    it('answers 409 without a previous version, 400 for a bad version, 404 and 401 as usual', async () => {
      const none = await request(h.app).post('/api/v1/servers/everything/rollback').set('Authorization', bearer).send({});
      expect(none.status).to.equal(409);
      expect(none.body.error.message).to.include('no previous version');
      const current = await request(h.app).post('/api/v1/servers/memory/rollback').set('Authorization', bearer).send({ version: '1.0.0' });
      expect(current.status).to.equal(409);
      const bad = await request(h.app).post('/api/v1/servers/memory/rollback').set('Authorization', bearer).send({ version: '../../etc' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.include('semver');
      expect((await request(h.app).post('/api/v1/servers/ghost/rollback').set('Authorization', bearer).send({})).status).to.equal(404);
      expect((await request(h.app).post('/api/v1/servers/memory/rollback').send({})).status).to.equal(401);
    });
  });

  describe('POST /api/v1/cleanup', () => {
    it('enqueues a cleanup', async () => {
      const res = keep(await request(h.app).post('/api/v1/cleanup').set('Authorization', bearer).send({ dryRun: true }));
      expect(res.status).to.equal(202);
      const job = await h.producer.queue.cleanup.getJob(res.body.jobId);
      expect(job!.data).to.include({ dryRun: true });
      expect(job!.data.requestedBy).to.include(`token:${FINGERPRINT}`);
    });

    it('answers 400 for a bad body, 404 for an unknown server, 401 without a token', async () => {
      const bad = await request(h.app).post('/api/v1/cleanup').set('Authorization', bearer).send({ dryRun: 'maybe' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.equal('"dryRun" must be a boolean');
      expect((await request(h.app).post('/api/v1/cleanup').set('Authorization', bearer).send({ server: 'ghost' })).status).to.equal(404);
      expect((await request(h.app).post('/api/v1/cleanup').send({})).status).to.equal(401);
    });
  });

  describe('read-only mode (API_TOKEN unset)', () => {
    const mutations: Array<[string, object]> = [
      ['/api/v1/servers/memory/check', {}],
      ['/api/v1/checks', {}],
      ['/api/v1/servers/memory/approve', { version: '1.1.0' }],
      ['/api/v1/servers/memory/rollback', {}],
      ['/api/v1/cleanup', { dryRun: true }],
    ];

    it('answers 403 EREADONLY on every mutating endpoint, whatever the credentials', async () => {
      for (const [url, body] of mutations) {
        for (const authorization of [undefined, bearer]) {
          const call = request(readOnly.app).post(url).send(body);
          if (authorization) call.set('Authorization', authorization);
          const res = keep(await call);
          expect(res.status, url).to.equal(403);
          expect(res.body.error).to.include({ code: 'EREADONLY', message: 'API_TOKEN is not set: the API is read-only' });
        }
      }
    });

    it('still serves reads', async () => {
      expect((await request(readOnly.app).get('/api/v1/servers')).status).to.equal(200);
      expect((await request(readOnly.app).get('/api/v1/servers/memory')).status).to.equal(200);
    });

    it('shows the status page with a read-only banner and no buttons or login link', async () => {
      const res = await request(readOnly.app).get('/');
      expect(res.status).to.equal(200);
      expect(res.text).to.include('Read-only:');
      expect(res.text).to.not.include('data-url=');
      expect(res.text).to.not.include('href="/login"');
    });

    it('refuses login', async () => {
      const res = await request(readOnly.app).post('/login').type('form').send({ token: TOKEN });
      expect(res.status).to.equal(403);
    });

    it('serves Bull Board without a token, read-only', async () => {
      const page = await request(readOnly.app).get('/admin/queues').set('Accept', 'text/html');
      expect(page.status).to.equal(200);
      const api = await request(readOnly.app).get('/admin/queues/api/queues');
      expect(api.status).to.equal(200);
      expect(api.body.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode)).to.equal(true);
      const change = await request(readOnly.app).put('/admin/queues/api/queues/check/pause');
      expect(change.status).to.equal(403);
      expect(change.body.error.code).to.equal('EREADONLY');
    });
  });

  describe('login sessions', () => {
    it('GET /login shows a form', async () => {
      const res = await request(h.app).get('/login?next=/admin/queues');
      expect(res.status).to.equal(200);
      expect(res.text).to.include('<form class="login" method="post" action="/login">');
      expect(res.text).to.include('value="/admin/queues"');
    });

    it('refuses a wrong token with 401 and the form again', async () => {
      const res = keep(await request(h.app).post('/login').set('Host', HOST).set('Origin', ORIGIN).type('form').send({ token: 'wrong' }));
      expect(res.status).to.equal(401);
      expect(res.text).to.include('That is not the API token.');
      expect(res.headers['set-cookie']).to.equal(undefined);
    });

    it('sets an HttpOnly SameSite=Strict session cookie holding a random id kept in Redis with a TTL', async () => {
      const res = await request(h.app)
        .post('/login')
        .set('Host', HOST)
        .set('Origin', ORIGIN)
        .type('form')
        .send({ token: TOKEN, next: '/admin/queues' });
      expect(res.status).to.equal(303);
      expect(res.headers.location).to.equal('/admin/queues');
      const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]!;
      expect(cookie).to.match(new RegExp(`^${SESSION_COOKIE}=[0-9a-f]{64};`));
      expect(cookie).to.include('HttpOnly').and.include('SameSite=Strict').and.include('Path=/');
      expect(cookie).to.not.include(TOKEN);
      const id = cookie.split(';')[0]!.split('=')[1]!;
      const ttl = await env.redis.ttl(appKey(env.config, 'session', id));
      expect(ttl).to.be.within(11 * 3600, 12 * 3600);
      expect(await env.redis.get(appKey(env.config, 'session', id))).to.not.include(TOKEN);
    });

    it('accepts a JSON login too', async () => {
      const res = await request(h.app).post('/login').send({ token: TOKEN });
      expect(res.status).to.equal(303);
    });

    it('lets a cookie holder change things only with a same-origin Origin or Referer', async () => {
      const cookie = await login(h.app);
      // Checks are deduplicated per server: start from an empty queue to see this one's data.
      await h.producer.queue.check.obliterate({ force: true });
      const ok = await request(h.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Origin', ORIGIN)
        .send({});
      expect(ok.status).to.equal(202);
      const job = await h.producer.queue.check.getJob(ok.body.jobId);
      expect(job!.data.reason).to.include(`session:${FINGERPRINT}`);
      const referer = await request(h.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Referer', `${ORIGIN}/`)
        .send({});
      expect(referer.status).to.equal(202);
      const noOrigin = await request(h.app).post('/api/v1/servers/memory/check').set('Host', HOST).set('Cookie', cookie).send({});
      expect(noOrigin.status).to.equal(403);
      expect(noOrigin.body.error.code).to.equal('EORIGIN');
      const foreign = await request(h.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Origin', 'http://evil.example')
        .send({});
      expect(foreign.status).to.equal(403);
    });

    it('ignores unknown session ids and ends the session on logout', async () => {
      const forged = await request(h.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', HOST)
        .set('Cookie', `${SESSION_COOKIE}=${'a'.repeat(64)}`)
        .set('Origin', ORIGIN)
        .send({});
      expect(forged.status).to.equal(401);
      const cookie = await login(h.app);
      const out = await request(h.app).post('/logout').set('Host', HOST).set('Origin', ORIGIN).set('Cookie', cookie);
      expect(out.status).to.equal(303);
      expect(String(out.headers['set-cookie'])).to.match(new RegExp(`${SESSION_COOKIE}=;`));
      const after = await request(h.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Origin', ORIGIN)
        .send({});
      expect(after.status).to.equal(401);
    });
  });

  describe('status page', () => {
    it('shows every server, relative check times, recent events, and escapes error text', async () => {
      const res = keep(await request(h.app).get('/'));
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/text\/html/);
      expect(res.text).to.include('<meta name="viewport" content="width=device-width, initial-scale=1">');
      expect(res.text).to.include('id="server-memory"').and.include('id="server-everything"');
      expect(res.text).to.include('5 min ago');
      expect(res.text).to.include('ESMOKETEST: &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; friends');
      expect(res.text).to.not.include('<script>alert');
      expect(res.text).to.include('update.activated');
      expect(res.text).to.include('data-state="awaiting-approval"');
    });

    it('offers a login link and no buttons to visitors', async () => {
      const res = await request(h.app).get('/');
      expect(res.text).to.include('href="/login"');
      expect(res.text).to.not.include('data-url=');
    });

    it('shows Check now, Approve (staged version) and Roll back (previous) to a logged-in user', async () => {
      const cookie = await login(h.app);
      const res = await request(h.app).get('/').set('Cookie', cookie);
      expect(res.text).to.include('data-url="/api/v1/servers/memory/check"');
      expect(res.text).to.include('data-url="/api/v1/servers/memory/approve" data-body="{&quot;version&quot;:&quot;1.1.0&quot;}"');
      expect(res.text).to.include('Roll back to 0.9.0');
      expect(res.text).to.include('data-url="/api/v1/servers/everything/check"');
      expect(res.text).to.not.include('data-url="/api/v1/servers/everything/approve"');
      expect(res.text).to.not.include('data-url="/api/v1/servers/everything/rollback"');
      expect(res.text).to.not.include('href="/login"');
    });

    it('sends a nonce-based CSP that matches the inline script and style', async () => {
      const res = await request(h.app).get('/');
      const csp = String(res.headers['content-security-policy']);
      const nonce = /script-src 'self' 'nonce-([^']+)'/.exec(csp)?.[1];
      expect(nonce).to.be.a('string');
      expect(res.text).to.include(`<script nonce="${nonce}">`);
      expect(res.text).to.include(`<style nonce="${nonce}">`);
      expect(csp).to.not.include('unsafe-inline');
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['x-powered-by']).to.equal(undefined);
    });

    it('answers unknown paths with 404', async () => {
      const api = await request(h.app).get('/api/v1/nothing');
      expect(api.status).to.equal(404);
      expect(api.body.error.code).to.equal('ENOTFOUND');
      const page = await request(h.app).get('/nothing').set('Accept', 'text/html');
      expect(page.status).to.equal(404);
      expect(page.text).to.include('<!doctype html>');
    });
  });

  describe('Bull Board', () => {
    it('requires the token: 401 for API clients, a redirect to /login for browsers', async () => {
      const api = await request(h.app).get('/admin/queues/api/queues');
      expect(api.status).to.equal(401);
      const wrong = await request(h.app).get('/admin/queues/api/queues').set('Authorization', 'Bearer wrong-token-wrong');
      expect(wrong.status).to.equal(401);
      const page = await request(h.app).get('/admin/queues').set('Accept', 'text/html');
      expect(page.status).to.equal(303);
      expect(page.headers.location).to.equal('/login?next=%2Fadmin%2Fqueues');
    });

    it('shows the pipeline queues and the webhook queue under the title mcp-updater', async () => {
      const page = keep(await request(h.app).get('/admin/queues').set('Authorization', bearer));
      expect(page.status).to.equal(200);
      expect(page.text).to.include('<title>mcp-updater</title>');
      const res = keep(await request(h.app).get('/admin/queues/api/queues').set('Authorization', bearer));
      expect(res.status).to.equal(200);
      const names = (res.body.queues as Array<{ name: string; readOnlyMode: boolean }>).map((queue) => queue.name).sort();
      expect(names).to.deep.equal(['activate', 'check', 'cleanup', 'download', 'stage', 'webhook']);
      expect(res.body.queues.some((queue: { readOnlyMode: boolean }) => queue.readOnlyMode)).to.equal(false);
    });

    it('redacts secrets in job data', async () => {
      await h.producer.queue.download.add(
        'download',
        {
          server: 'memory',
          chain: 'memory@1.0.0',
          package: 'x',
          version: '1.0.0',
          integrity: 'sha512-AAAA',
          tarball: 'https://user:hunter2-password@registry.example/x.tgz',
          reason: `token ${TOKEN}`,
        },
        { jobId: 'secret-job' },
      );
      const res = keep(await request(h.app).get('/admin/queues/api/queues/download/secret-job').set('Authorization', bearer));
      expect(res.status).to.equal(200);
      expect(res.text).to.include('[REDACTED]');
      expect(res.text).to.not.include('hunter2-password');
      expect(res.text).to.not.include(TOKEN);
    });

    it('lets a logged-in browser in, and refuses cross-origin changes', async () => {
      const cookie = await login(h.app);
      const page = await request(h.app).get('/admin/queues').set('Host', HOST).set('Cookie', cookie).set('Accept', 'text/html');
      expect(page.status).to.equal(200);
      const foreign = await request(h.app)
        .put('/admin/queues/api/queues/check/pause')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Origin', 'http://evil.example');
      expect(foreign.status).to.equal(403);
      const same = await request(h.app)
        .put('/admin/queues/api/queues/check/pause')
        .set('Host', HOST)
        .set('Cookie', cookie)
        .set('Origin', ORIGIN);
      expect(same.status).to.equal(200);
      expect(await h.producer.queue.check.isPaused()).to.equal(true);
      await h.producer.queue.check.resume();
    });
  });

  describe('rate limits (counted in Redis, shared by every dashboard process)', () => {
    let limitedEnv: TestEnv;
    const limited: Harness[] = [];
    before(async () => {
      limitedEnv = await createTestEnv({ inventory: INVENTORY, env: { API_TOKEN: TOKEN, ALLOWED_HOSTS: HOST } });
      const limits = { read: 3, mutation: 2, login: 2 };
      limited.push(await harness(limitedEnv, { rateLimits: limits }), await harness(limitedEnv, { rateLimits: limits }));
    });
    after(async () => {
      for (const one of limited) await one.close();
      await limitedEnv?.cleanup();
    });

    it('answers 429 past the mutation limit, counting across two app instances', async () => {
      const [a, b] = limited as [Harness, Harness];
      expect((await request(a.app).post('/api/v1/servers/memory/check').set('Authorization', bearer)).status).to.equal(202);
      expect((await request(b.app).post('/api/v1/servers/memory/check').set('Authorization', bearer)).status).to.equal(202);
      const third = await request(a.app).post('/api/v1/servers/memory/check').set('Authorization', bearer);
      expect(third.status).to.equal(429);
      expect(third.body.error.code).to.equal('ERATELIMIT');
      expect(third.headers['retry-after']).to.match(/^\d+$/);
      const keys = await limitedEnv.redis.keys(`${limitedEnv.prefix}:mcp-updater:rl:mutation:*`);
      expect(keys).to.have.length.greaterThan(0);
    });

    it('limits wrong-token guessing too', async () => {
      const res = await request(limited[1]!.app).post('/api/v1/servers/memory/check').set('Authorization', 'Bearer guess-guess-guess');
      expect(res.status).to.equal(429);
    });

    it('answers 429 past the read limit but never limits /health, /ready or /metrics', async () => {
      const app = limited[0]!.app;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(app).get('/api/v1/servers')).status);
      expect(statuses).to.deep.equal([200, 200, 200, 429]);
      for (let i = 0; i < 10; i++) {
        expect((await request(app).get('/health')).status).to.equal(200);
        expect((await request(app).get('/ready')).status).to.equal(200);
      }
      expect((await request(app).get('/metrics')).status).to.equal(200);
    });

    it('answers 429 past the login limit', async () => {
      const app = limited[0]!.app;
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await request(app).post('/login').type('form').send({ token: 'nope' })).status);
      expect(statuses).to.deep.equal([401, 401, 429]);
    });
  });

  describe('secrets', () => {
    it('never answered API_TOKEN in any body of this suite', async () => {
      expect(bodies.length).to.be.greaterThan(20);
      for (const body of bodies) expect(body).to.not.include(TOKEN);
    });
  });
});
