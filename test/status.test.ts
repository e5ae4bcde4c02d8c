/*
 * GET /status and the status page's queue summary on a real Redis (random QUEUE_PREFIX): the
 * JSON shape with servers counted by state, 503 with the reason when Redis does not answer, and
 * scheduled (delayed) check jobs shown as scheduled, not waiting.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createDashboardApp } from '../dashboard/app.js';
import type { RateLimits } from '../dashboard/rate-limit.js';
import { ProducerClient } from '../producers/client.js';
import { loadConfig, type Config } from '../shared/config.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { SERVER_STATES } from '../shared/stateMachine.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const INVENTORY = `
servers:
  alpha:
    package: alpha-mcp
  beta:
    package: beta-mcp
  gamma:
    package: gamma-mcp
`;

interface App {
  app: Express;
  producer: ProducerClient;
  close(): Promise<void>;
}

async function dashboard(config: Config, options: { connect?: boolean; rateLimits?: Partial<RateLimits> } = {}): Promise<App> {
  const inventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
  const redis: Redis = createRedis(config, 'producer');
  const producer = ProducerClient.connect(config);
  if (options.connect !== false) {
    await waitForRedis(redis, config.redisUrl);
    await producer.ready();
  }
  const app = createDashboardApp({
    config,
    inventory,
    redis,
    producer,
    processMetrics: false,
    serverCacheMs: 0,
    queueCountCacheMs: 0,
    rateLimits: { read: 10_000, mutation: 10_000, login: 10_000, ...options.rateLimits },
  });
  return {
    app,
    producer,
    async close() {
      inventory.close();
      await producer.close();
      redis.disconnect();
    },
  };
}

describe('GET /status and the status page queue summary', function () {
  this.timeout(30_000);
  let env: TestEnv;
  let h: App;

  before(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    h = await dashboard(env.config);
    const state = new StateStore(env.redis, env.config);
    await state.update('alpha', { current: '1.0.0', state: 'idle' });
    await state.update('beta', { state: 'failed', lastError: 'EINTEGRITY: tarball does not match' });
  });

  after(async () => {
    await h?.close();
    await env?.cleanup();
  });

  it('answers version, uptime, Redis, queue counts and servers by state', async () => {
    await h.producer.queue.check.add('check', { server: 'alpha' });
    await h.producer.queue.check.add('check', { server: 'gamma' }, { delay: 3_600_000 });
    const res = await request(h.app).get('/status');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/application\/json/);
    expect(res.headers['cache-control']).to.equal('no-store');
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const body = res.body as Record<string, unknown> & {
      servers: { total: number; byState: Record<string, number> };
      queues: Record<string, unknown>;
    };
    expect(Object.keys(body)).to.deep.equal([
      'status',
      'version',
      'startedAt',
      'uptimeSeconds',
      'smokeTests',
      'redis',
      'queues',
      'servers',
    ]);
    expect((body.smokeTests as { summary: string }).summary)
      .to.be.a('string')
      .and.to.match(/sandbox/);
    expect(body).to.include({ status: 'ok', version: manifest.version });
    expect(body.uptimeSeconds).to.be.a('number').and.to.be.at.least(0);
    expect(Date.parse(body.startedAt as string)).to.be.at.most(Date.now());
    expect(body.redis).to.deep.equal({ reachable: true, error: null });
    expect(Object.keys(body.queues)).to.deep.equal(['check', 'download', 'stage', 'activate', 'cleanup', 'webhook']);
    expect(body.queues.check).to.deep.equal({ waiting: 1, active: 0, delayed: 1, failed: 0, completed: 0 });
    expect(body.queues.stage).to.deep.equal({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 });
    expect(body.servers.total).to.equal(3);
    expect(Object.keys(body.servers.byState)).to.deep.equal([...SERVER_STATES]);
    expect(body.servers.byState).to.include({ idle: 2, failed: 1, checking: 0 });
    await h.producer.queue.check.obliterate({ force: true });
  });

  it('needs no token and is not counted against the read rate limit', async () => {
    const limited = await dashboard(Object.freeze({ ...env.config, apiToken: 'a-token-that-is-long-enough' }), { rateLimits: { read: 1 } });
    try {
      expect((await request(limited.app).get('/api/v1/servers')).status).to.equal(200);
      expect((await request(limited.app).get('/api/v1/servers')).status).to.equal(429);
      for (let attempt = 0; attempt < 3; attempt++) {
        const res = await request(limited.app).get('/status');
        expect(res.status, `attempt ${attempt}`).to.equal(200);
      }
    } finally {
      await limited.close();
    }
  });

  it('answers 503 with the reason, and null counts, when Redis does not answer', async () => {
    const down = await dashboard(loadConfig({ ...env.env, REDIS_URL: 'redis://127.0.0.1:1' }), { connect: false });
    try {
      const res = await request(down.app).get('/status');
      expect(res.status).to.equal(503);
      expect(res.body).to.include({ status: 'unavailable', queues: null, servers: null });
      expect(res.body.redis.reachable).to.equal(false);
      expect(res.body.redis.error).to.match(/^Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/);
      expect(res.body.version).to.be.a('string');
    } finally {
      await down.close();
    }
  });

  it('status page: a delayed check job is shown as scheduled, not waiting', async () => {
    await h.producer.queue.check.add('check', { server: 'gamma' }, { delay: 3_600_000 });
    await h.producer.queue.check.add('check', { server: 'beta' }, { delay: 3_600_000 });
    const scheduled = await request(h.app).get('/').set('Accept', 'text/html');
    expect(scheduled.status).to.equal(200);
    expect(scheduled.text).to.include('<span data-queue="check">check: 0 waiting, 2 scheduled, 0 active</span>');

    await h.producer.queue.check.add('check', { server: 'alpha' });
    const waiting = await request(h.app).get('/').set('Accept', 'text/html');
    expect(waiting.text).to.include('<span data-queue="check">check: 1 waiting, 2 scheduled, 0 active</span>');
    await h.producer.queue.check.obliterate({ force: true });
  });
});
