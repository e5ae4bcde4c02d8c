/*
 * Issue 11, item 4: a rollback holds. After rolling back from 4.1.1 to 3.2.5, plain checks stay on
 * 3.2.5 — also after Redis lost the server's record — until a version newer than 4.1.1 is
 * published; a forced check lifts the hold at once.
 */
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { appKey } from '../shared/redis.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { FixtureRegistry } from './support/registry.js';

const old = new Date(Date.now() - 30 * 86_400_000);

describe('install: a rollback holds until a newer version is published', function () {
  this.timeout(120_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers;
  let client: ProducerClient;

  before(async () => {
    registry = await FixtureRegistry.start();
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: 'defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\nservers:\n  held: { package: mcp-held, policy: major }\n',
    });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate']);
    client = ProducerClient.connect(env.config);
  });

  after(async () => {
    await workers?.close();
    await client?.close();
    await env?.cleanup();
    await registry?.close();
  });

  async function settle(): Promise<void> {
    await settlePipeline(context.queues, { queues: ['check', 'download', 'stage', 'activate'] });
  }

  async function check(force = false) {
    const { jobId } = await client.check('held', { force, reason: 'hold test' });
    const result = await client.waitFor('check', jobId, 60_000);
    await settle();
    return result;
  }

  const current = async () => (await context.state.get('held')).current;

  it('stays on 3.2.5 after a rollback from 4.1.1, also after a rebuild from disk, and moves on to 4.1.2', async () => {
    await registry.publish({ name: 'mcp-held', version: '3.2.5', publishedAt: old });
    await check();
    expect(await current()).to.equal('3.2.5');
    await registry.publish({ name: 'mcp-held', version: '4.1.0', publishedAt: old });
    await registry.publish({ name: 'mcp-held', version: '4.1.1', publishedAt: old });
    await check();
    expect(await current()).to.equal('4.1.1');

    const { jobId } = await client.rollback('held', { version: '3.2.5', reason: '4.1.1 breaks our client' });
    expect(await client.waitFor('activate', jobId, 60_000)).to.include({ outcome: 'activated', version: '3.2.5', from: '4.1.1' });
    expect((await context.state.get('held')).hold).to.equal('4.1.1');
    expect((await context.layout.readHistory('held'))?.hold).to.equal('4.1.1');
    const rolledBack = await context.events.list({ server: 'held', type: 'update.rolled-back' });
    expect(rolledBack[0]?.details).to.deep.include({ hold: '4.1.1' });

    const held = await check();
    expect(held.candidate).to.equal(undefined);
    expect(held.summary).to.include('held at 3.2.5 after a rollback from 4.1.1');
    expect(await current()).to.equal('3.2.5');
    // `servers` offers nothing: the allowed version is the current one.
    expect((await context.state.get('held')).candidate).to.equal('3.2.5');

    // Redis loses the record: the rebuild from history.json keeps the hold.
    await env.redis.del(appKey(env.config, 'server', 'held'), appKey(env.config, 'failed', 'held'));
    expect((await context.state.get('held')).hold).to.equal('4.1.1');
    await check();
    expect(await current()).to.equal('3.2.5');

    await registry.publish({ name: 'mcp-held', version: '4.1.2', publishedAt: old });
    await check();
    expect(await current()).to.equal('4.1.2');
    expect((await context.state.get('held')).hold).to.equal(undefined);
    expect((await context.layout.readHistory('held'))?.hold).to.equal(undefined);
  });

  it('a forced check lifts the hold', async () => {
    const { jobId } = await client.rollback('held', { version: '3.2.5' });
    await client.waitFor('activate', jobId, 60_000);
    expect((await context.state.get('held')).hold).to.equal('4.1.2');
    await check();
    expect(await current()).to.equal('3.2.5');
    await check(true);
    expect(await current()).to.equal('4.1.2');
    expect((await context.state.get('held')).hold).to.equal(undefined);
    expect((await context.layout.readHistory('held'))?.hold).to.equal(undefined);
  });
});
