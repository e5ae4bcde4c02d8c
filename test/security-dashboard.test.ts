/*
 * Issue 12, finding 4: the dashboard answers only its own names. Host header cases (DNS
 * rebinding), Origin compared with the allowed names rather than with Host, a malformed session
 * cookie, and Bull Board token guesses counted against the login limit. The app on a real Redis
 * (random QUEUE_PREFIX), driven with supertest and, for a request without Host, a raw socket.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createDashboardApp } from '../dashboard/app.js';
import { HostAllowlist, parseHost, SESSION_COOKIE } from '../dashboard/auth.js';
import type { RateLimits } from '../dashboard/rate-limit.js';
import { ProducerClient } from '../producers/client.js';
import { loadConfig } from '../shared/config.js';
import { ConfigurationError } from '../shared/errors.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const TOKEN = 'security-dashboard-token-0123456789';
const INVENTORY = 'servers:\n  memory:\n    package: "@modelcontextprotocol/server-memory"\n';

interface Dashboard {
  env: TestEnv;
  app: Express;
  close(): Promise<void>;
}

async function dashboard(options: { env?: Record<string, string>; rateLimits?: Partial<RateLimits> } = {}): Promise<Dashboard> {
  const env = await createTestEnv({ inventory: INVENTORY, env: { API_TOKEN: TOKEN, ALLOWED_HOSTS: 'dash.example', ...options.env } });
  const inventory = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
  const redis: Redis = createRedis(env.config, 'producer');
  const producer = ProducerClient.connect(env.config);
  await waitForRedis(redis, env.config.redisUrl);
  await producer.ready();
  const app = createDashboardApp({
    config: env.config,
    inventory,
    redis,
    producer,
    processMetrics: false,
    serverCacheMs: 0,
    rateLimits: { read: 10_000, mutation: 10_000, login: 10_000, ...options.rateLimits },
  });
  return {
    env,
    app,
    async close() {
      inventory.close();
      await producer.close();
      redis.disconnect();
      await env.cleanup();
    },
  };
}

/** A session cookie from the login form, sent by the dashboard's own origin. */
async function login(app: Express): Promise<string> {
  const res = await request(app)
    .post('/login')
    .set('Host', 'localhost')
    .set('Origin', 'http://localhost')
    .type('form')
    .send({ token: TOKEN, next: '/' });
  expect(res.status).to.equal(303);
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((line) => line.startsWith(`${SESSION_COOKIE}=`));
  return cookie!.split(';')[0]!;
}

describe('security: the dashboard answers only its own names', function () {
  this.timeout(30_000);
  let d: Dashboard;

  before(async () => {
    d = await dashboard();
  });

  after(async () => {
    await d?.close();
  });

  const hosts: Array<[string, number]> = [
    ['127.0.0.1:10250', 200],
    ['localhost', 200],
    ['LOCALHOST:10250', 200],
    ['localhost.', 200],
    ['[::1]:10250', 200],
    ['dash.example', 200],
    ['dash.example:8443', 200],
    ['evil.example', 421],
    ['evil.example:10250', 421],
    ['127.0.0.1.evil.example', 421],
    ['localhost.evil.example:10250', 421],
    ['0.0.0.0:10250', 421],
    ['user@localhost', 400],
    ['localhost/admin', 400],
  ];
  for (const [host, status] of hosts) {
    it(`Host: ${host} -> ${status}`, async () => {
      const res = await request(d.app).get('/api/v1/servers').set('Host', host);
      expect(res.status).to.equal(status);
      if (status === 421) {
        expect(res.body.error.code).to.equal('EHOST');
        expect(res.body.error.message).to.match(/^this dashboard does not answer to the name "/);
        expect(res.body.error.hint).to.include('ALLOWED_HOSTS');
      }
      if (status === 400) expect(res.body.error.code).to.equal('EBADHOST');
    });
  }

  it('refuses a foreign Host on the status page, Bull Board and /metrics too, but not on /health and /ready', async () => {
    const page = await request(d.app).get('/').set('Host', 'evil.example').set('Accept', 'text/html');
    expect(page.status).to.equal(421);
    expect(page.type).to.equal('text/html');
    expect(page.text).not.to.include('memory');
    expect(
      (await request(d.app).get('/admin/queues/api/queues').set('Host', 'evil.example').set('Authorization', `Bearer ${TOKEN}`)).status,
    ).to.equal(421);
    expect((await request(d.app).get('/metrics').set('Host', 'evil.example')).status).to.equal(421);
    expect((await request(d.app).get('/health').set('Host', 'evil.example')).status).to.equal(200);
    expect((await request(d.app).get('/ready').set('Host', 'evil.example')).status).to.equal(200);
  });

  it('answers 400 to a request without a Host header', async () => {
    const server = http.createServer(d.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () =>
          socket.write('GET /api/v1/servers HTTP/1.0\r\n\r\n'),
        );
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).to.match(/^HTTP\/1\.1 400 /);
      expect(answer).to.include('EBADHOST');
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  it('knows HOST, the loopback names and ALLOWED_HOSTS; a wildcard HOST is no name; a bad ALLOWED_HOSTS entry stops start-up', () => {
    expect([...new HostAllowlist({ host: '0.0.0.0', allowedHosts: [] }).names]).to.have.members(['localhost', '127.0.0.1', '::1']);
    expect(new HostAllowlist({ host: 'box.lan', allowedHosts: ['a.example'] }).allows('box.lan')).to.equal(true);
    expect(parseHost('[::1]:10250')).to.deep.equal({ name: '::1', port: '10250' });
    expect(loadConfig({ API_BASE_URL: 'http://127.0.0.1:9/', ALLOWED_HOSTS: 'Dash.Example, 10.0.0.5' }).allowedHosts).to.deep.equal([
      'dash.example',
      '10.0.0.5',
    ]);
    expect(() => loadConfig({ API_BASE_URL: 'http://127.0.0.1:9/', ALLOWED_HOSTS: 'https://dash.example' })).to.throw(
      ConfigurationError,
      /^ALLOWED_HOSTS: "https:\/\/dash\.example" is not a host name/,
    );
  });

  describe('Origin is compared with the allowed names, not with Host', () => {
    let cookie: string;

    before(async () => {
      cookie = await login(d.app);
    });

    const origins: Array<[string, string, string, number]> = [
      ['its own origin', 'localhost', 'http://localhost', 202],
      ['another allowed name on the same port', 'localhost:10250', 'http://dash.example:10250', 202],
      ['a loopback address for a loopback name', '127.0.0.1:10250', 'http://localhost:10250', 202],
      ['a foreign origin', 'localhost:10250', 'http://evil.example:10250', 403],
      ['an allowed name on another port', 'localhost:10250', 'http://localhost:3000', 403],
      ['a Referer of a foreign page', 'localhost', 'referer:http://evil.example/page', 403],
      ['Origin: null', 'localhost', 'null', 403],
    ];
    for (const [what, host, origin, status] of origins) {
      it(`${what} -> ${status}`, async () => {
        const req = request(d.app).post('/api/v1/servers/memory/check').set('Host', host).set('Cookie', cookie);
        const res = origin.startsWith('referer:')
          ? await req.set('Referer', origin.slice(8)).send({})
          : await req.set('Origin', origin).send({});
        expect(res.status).to.equal(status);
        if (status === 403) expect(res.body.error.code).to.equal('EORIGIN');
      });
    }

    it("a DNS-rebinding page (its Host and Origin both the attacker's name) is refused before the Origin check", async () => {
      const res = await request(d.app)
        .post('/api/v1/servers/memory/check')
        .set('Host', 'evil.example:10250')
        .set('Origin', 'http://evil.example:10250')
        .set('Cookie', cookie)
        .send({});
      expect(res.status).to.equal(421);
      const board = await request(d.app).get('/admin/queues/api/queues').set('Host', 'evil.example:10250').set('Cookie', cookie);
      expect(board.status).to.equal(421);
    });
  });

  it('answers a malformed session cookie with 401, not 500', async () => {
    const bad = `${SESSION_COOKIE}=%E0%A4%A`;
    const api = await request(d.app)
      .post('/api/v1/servers/memory/check')
      .set('Host', 'localhost')
      .set('Origin', 'http://localhost')
      .set('Cookie', bad)
      .send({});
    expect(api.status).to.equal(401);
    expect(api.body.error.code).to.equal('EUNAUTHORIZED');
    const board = await request(d.app).get('/admin/queues/api/queues').set('Cookie', bad).set('Accept', 'application/json');
    expect(board.status).to.equal(401);
    expect((await request(d.app).get('/').set('Cookie', bad)).status).to.equal(200);
  });
});

describe('security: Bull Board token guesses count against the login limit', function () {
  this.timeout(30_000);
  let d: Dashboard;

  before(async () => {
    d = await dashboard({ rateLimits: { login: 3 } });
  });

  after(async () => {
    await d?.close();
  });

  it('refused bearer tokens at the board use up the login budget; accepted ones and reads do not', async () => {
    const board = (token: string) =>
      request(d.app).get('/admin/queues/api/queues').set('Authorization', `Bearer ${token}`).set('Accept', 'application/json');
    for (let index = 0; index < 5; index++) expect((await board(TOKEN)).status, 'the right token').to.equal(200);
    const guesses: number[] = [];
    for (let index = 0; index < 4; index++) guesses.push((await board(`guess-${index}-guess-guess`)).status);
    expect(guesses).to.deep.equal([401, 401, 401, 429]);
    // One budget with the login form.
    expect((await request(d.app).post('/login').type('form').send({ token: 'another-guess' })).status).to.equal(429);
    // The read limit is another budget.
    expect((await request(d.app).get('/api/v1/servers')).status).to.equal(200);
  });
});
