/*
 * /metrics: every metric of the README under mcp_updater_, with values read from the Redis
 * counters that any worker process writes (MetricsRecorder), plus Node's process metrics.
 */
import { expect } from 'chai';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createDashboardApp } from '../dashboard/app.js';
import { ProducerClient } from '../producers/client.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { MetricsRecorder, STAGE_DURATION_BUCKETS } from '../shared/metrics.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const INVENTORY = `
servers:
  memory:
    package: "@modelcontextprotocol/server-memory"
  github:
    package: mcp-github
  fetch:
    pypi: mcp-server-fetch
`;

/** Sample lines of one scrape: `name{labels}` -> value. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const index = line.lastIndexOf(' ');
    map.set(line.slice(0, index), Number(line.slice(index + 1)));
  }
  return map;
}

describe('metrics endpoint', function () {
  this.timeout(30_000);
  let env: TestEnv;
  let app: Express;
  let inventory: InventoryWatcher;
  let redis: Redis;
  let producer: ProducerClient;
  let text: string;
  let scraped: Map<string, number>;
  const checkedAt = new Date('2026-03-01T10:00:00.000Z');

  before(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    inventory = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
    redis = createRedis(env.config, 'producer');
    producer = ProducerClient.connect(env.config);
    await waitForRedis(redis, env.config.redisUrl);
    app = createDashboardApp({ config: env.config, inventory, redis, producer });

    const recorder = new MetricsRecorder(env.redis, env.config);
    await recorder.checked('memory', 'up-to-date', checkedAt);
    await recorder.checked('memory', 'up-to-date', checkedAt);
    await recorder.checked('memory', 'update', checkedAt);
    await recorder.checked('github', 'error', new Date(checkedAt.getTime() + 1500));
    await recorder.increment('updates_total', ['memory', 'activated']);
    await recorder.increment('updates_total', ['memory', 'failed']);
    await recorder.increment('updates_total', ['memory', 'activated']);
    await recorder.increment('rollbacks_total', ['memory']);
    await recorder.checked('fetch', 'update', checkedAt);
    await recorder.increment('updates_total', ['fetch', 'activated']);
    await recorder.increment('rollbacks_total', ['fetch']);
    // A server no longer in the inventory keeps its counts, labelled ecosystem="unknown".
    await recorder.increment('updates_total', ['gone', 'activated']);
    for (const seconds of [0.2, 0.7, 3, 45, 400]) await recorder.observeStageDuration(seconds);

    const state = new StateStore(env.redis, env.config);
    await state.update('memory', { current: '1.2.0', candidate: '1.3.0', latest: '1.3.0' });
    await state.update('github', { current: '0.4.1', candidate: '0.4.1', latest: '0.4.1' });
    await state.update('fetch', { current: '2025.4.7', candidate: '2025.4.7', latest: '2025.4.7' });
    await producer.check('memory');
    await producer.cleanup({ dryRun: true });

    const res = await request(app).get('/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    text = res.text;
    scraped = samples(text);
  });

  after(async () => {
    inventory?.close();
    await producer?.close();
    redis?.disconnect();
    await env?.cleanup();
  });

  it('names every metric of the README with its type', () => {
    const expected: Array<[string, string]> = [
      ['mcp_updater_checks_total', 'counter'],
      ['mcp_updater_updates_total', 'counter'],
      ['mcp_updater_rollbacks_total', 'counter'],
      ['mcp_updater_stage_duration_seconds', 'histogram'],
      ['mcp_updater_server_info', 'gauge'],
      ['mcp_updater_server_update_available', 'gauge'],
      ['mcp_updater_queue_jobs', 'gauge'],
      ['mcp_updater_last_check_timestamp_seconds', 'gauge'],
    ];
    for (const [name, type] of expected) {
      expect(text, name).to.include(`# TYPE ${name} ${type}\n`);
      expect(text, name).to.include(`# HELP ${name} `);
    }
  });

  it('includes the default process metrics', () => {
    expect(text).to.include('# TYPE process_cpu_user_seconds_total counter');
    expect(text).to.include('nodejs_eventloop_lag_seconds');
  });

  it('reads the counters written by workers in any process, labelled with the ecosystem', () => {
    expect(scraped.get('mcp_updater_checks_total{server="memory",result="up-to-date",ecosystem="npm"}')).to.equal(2);
    expect(scraped.get('mcp_updater_checks_total{server="memory",result="update",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_checks_total{server="github",result="error",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_updates_total{server="memory",result="activated",ecosystem="npm"}')).to.equal(2);
    expect(scraped.get('mcp_updater_updates_total{server="memory",result="failed",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_rollbacks_total{server="memory",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_checks_total{server="fetch",result="update",ecosystem="pypi"}')).to.equal(1);
    expect(scraped.get('mcp_updater_updates_total{server="fetch",result="activated",ecosystem="pypi"}')).to.equal(1);
    expect(scraped.get('mcp_updater_rollbacks_total{server="fetch",ecosystem="pypi"}')).to.equal(1);
    expect(scraped.get('mcp_updater_updates_total{server="gone",result="activated",ecosystem="unknown"}')).to.equal(1);
  });

  it('writes the stage duration histogram with cumulative buckets, +Inf, sum and count', () => {
    const observations = [0.2, 0.7, 3, 45, 400];
    for (const bound of STAGE_DURATION_BUCKETS) {
      const expected = observations.filter((seconds) => seconds <= bound).length;
      expect(scraped.get(`mcp_updater_stage_duration_seconds_bucket{le="${bound}"}`), `le=${bound}`).to.equal(expected);
    }
    expect(scraped.get('mcp_updater_stage_duration_seconds_bucket{le="+Inf"}')).to.equal(5);
    expect(scraped.get('mcp_updater_stage_duration_seconds_count')).to.equal(5);
    expect(scraped.get('mcp_updater_stage_duration_seconds_sum')).to.be.closeTo(448.9, 1e-9);
    // Bucket lines come in ascending order of their bound, as Prometheus expects.
    const order = text.split('\n').filter((line) => line.startsWith('mcp_updater_stage_duration_seconds_bucket'));
    expect(order).to.have.length(STAGE_DURATION_BUCKETS.length + 1);
    expect(order.at(-1)).to.match(/le="\+Inf"/);
  });

  it("reports each server's active version, update availability and last check time", () => {
    expect(scraped.get('mcp_updater_server_info{server="memory",version="1.2.0",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_server_info{server="github",version="0.4.1",ecosystem="npm"}')).to.equal(1);
    expect(scraped.get('mcp_updater_server_info{server="fetch",version="2025.4.7",ecosystem="pypi"}')).to.equal(1);
    expect(scraped.get('mcp_updater_server_update_available{server="memory"}')).to.equal(1);
    expect(scraped.get('mcp_updater_server_update_available{server="github"}')).to.equal(0);
    expect(scraped.get('mcp_updater_last_check_timestamp_seconds{server="memory"}')).to.equal(checkedAt.getTime() / 1000);
    expect(scraped.get('mcp_updater_last_check_timestamp_seconds{server="github"}')).to.equal(checkedAt.getTime() / 1000 + 1.5);
  });

  it('counts jobs per queue and state', () => {
    expect(scraped.get('mcp_updater_queue_jobs{queue="check",state="waiting"}')).to.equal(1);
    expect(scraped.get('mcp_updater_queue_jobs{queue="cleanup",state="waiting"}')).to.equal(1);
    expect(scraped.get('mcp_updater_queue_jobs{queue="download",state="waiting"}')).to.equal(0);
    for (const queue of ['check', 'download', 'stage', 'activate', 'cleanup', 'webhook']) {
      expect(scraped.has(`mcp_updater_queue_jobs{queue="${queue}",state="failed"}`), queue).to.equal(true);
    }
  });

  it('follows the counters between scrapes, and answers concurrent scrapes consistently', async () => {
    await new MetricsRecorder(env.redis, env.config).increment('rollbacks_total', ['memory']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [first, second] = await Promise.all([request(app).get('/metrics'), request(app).get('/metrics')]);
    for (const res of [first, second]) {
      expect(samples(res.text).get('mcp_updater_rollbacks_total{server="memory",ecosystem="npm"}')).to.equal(2);
      expect(samples(res.text).get('mcp_updater_checks_total{server="memory",result="up-to-date",ecosystem="npm"}')).to.equal(2);
    }
  });
});
