import fs from 'node:fs/promises';
import { expect } from 'chai';
import { UnrecoverableError } from 'bullmq';
import { execCheckJob } from '../workers/check.js';
import { execDownloadJob } from '../workers/download.js';
import { runProcessor } from '../workers/worker.js';
import type { WorkerContext } from '../workers/context.js';
import { FixtureRegistry } from './support/registry.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY);

function inventory(extra = ''): string {
  return ['defaults:', '  minReleaseAge: 0', 'servers:', '  demo:', '    package: demo-mcp', '    policy: minor', extra].join('\n');
}

describe('check and download workers (fixture registry, real Redis)', () => {
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: daysAgo(30) });
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: daysAgo(10) });
    await registry.publish({ name: 'demo-mcp', version: '2.0.0', publishedAt: daysAgo(5) });
    env = await createTestEnv({ registryUrl: registry.url, inventory: inventory() });
    context = await env.context();
  });

  afterEach(async () => {
    await env.cleanup();
    await registry.close();
  });

  const check = (data: { server: string; force?: boolean }, ctx = context) =>
    runProcessor('check', { id: 'c1', data, attemptsMade: 0, opts: { attempts: 2 } }, ctx, execCheckJob);

  it('first check installs the newest version the policy allows and starts one chain', async () => {
    const result = await check({ server: 'demo' });
    expect(result.candidate).to.equal('2.0.0');
    expect(result.chain).to.equal('demo@2.0.0');
    const state = await context.state.get('demo');
    // Only the step that runs a job sets its state: the check ends idle, download sets downloading.
    expect(state).to.include({
      latest: '2.0.0',
      candidate: '2.0.0',
      state: 'idle',
      package: 'demo-mcp',
      chain: 'demo@2.0.0',
      chainVersion: '2.0.0',
    });
    expect(state.lastCheck).to.be.a('string');
    const job = await context.queues.download.getJob('demo@2.0.0');
    expect(job?.data).to.include({ server: 'demo', chain: 'demo@2.0.0', version: '2.0.0', package: 'demo-mcp' });
    expect(job?.data.integrity).to.match(/^sha512-[A-Za-z0-9+/]+={0,2}$/);
    expect(job?.data.force).to.equal(undefined);
    expect(job?.data.tarball.startsWith(registry.url)).to.equal(true);

    const again = await check({ server: 'demo' });
    expect(again.chain).to.equal('demo@2.0.0');
    expect(await context.queues.download.count()).to.equal(1);
    const events = await context.events.list({ server: 'demo' });
    expect(events.filter((event) => event.type === 'update.available')).to.have.length(1);
  });

  it('respects the policy relative to the current version', async () => {
    await context.state.update('demo', { current: '1.0.0' });
    const result = await check({ server: 'demo' });
    expect(result.candidate).to.equal('1.1.0');
    expect(result.latest).to.equal('2.0.0');
  });

  it('minimum release age uses the injected clock and the full packument', async () => {
    await env.writeInventory(inventory('    minReleaseAge: 7d'));
    await context.state.update('demo', { current: '1.0.0' });
    registry.resetRequests();
    const early = await env.context({ now: () => daysAgo(4) });
    // 4 days ago, 1.1.0 was 6 days old: too young for 7d.
    const result = await check({ server: 'demo' }, early);
    expect(result.candidate).to.equal(undefined);
    expect(result.summary).to.match(/too-young/);
    expect(registry.requests.some((request) => request.accept === 'application/json')).to.equal(true);
    const now = await check({ server: 'demo' });
    expect(now.candidate).to.equal('1.1.0');
  });

  it('uses the abbreviated packument when no release age is needed', async () => {
    registry.resetRequests();
    await check({ server: 'demo' });
    const packumentRequest = registry.requests.find((request) => request.url === '/demo-mcp');
    expect(packumentRequest?.accept).to.include('application/vnd.npm.install-v1+json');
  });

  it('an unknown package fails the check without retry and records the error', async () => {
    await env.writeInventory('servers:\n  ghost:\n    package: no-such-package\n');
    const error = await check({ server: 'ghost' }).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error!.message).to.match(/not found in the registry/);
    const state = await context.state.get('ghost');
    expect(state.lastError).to.match(/^E404/);
    expect(state.state).to.equal('failed');
    expect(await context.events.list({ server: 'ghost', type: 'update.failed' })).to.have.length(1);
  });

  it('a server missing from the inventory fails at once', async () => {
    const error = await check({ server: 'nobody' }).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error!.message).to.match(/not in the inventory/);
  });

  it('a bad payload fails at once without retries', async () => {
    const error = await runProcessor('check', { id: 'bad', data: { server: 'Bad Name!' } as never }, context, execCheckJob).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error!.message).to.match(/invalid check job data: "server" must be 1-63 lower-case/);
  });

  it('download stores the verified tarball content-addressed and queues the stage job of its chain', async () => {
    await check({ server: 'demo' });
    const job = (await context.queues.download.getJob('demo@2.0.0'))!;
    const result = await runProcessor(
      'download',
      { id: job.id, data: job.data, attemptsMade: 0, opts: { attempts: 2 } },
      context,
      execDownloadJob,
    );
    expect(result.cached).to.equal(false);
    expect(result.file).to.equal(context.layout.backupFile(job.data.integrity));
    expect((await fs.stat(result.file)).size).to.equal(result.bytes);
    const stage = await context.queues.stage.getJob('demo@2.0.0');
    expect(stage?.data).to.include({ server: 'demo', chain: 'demo@2.0.0', version: '2.0.0', integrity: job.data.integrity });
    expect(result.chain).to.equal('demo@2.0.0');
    expect(await context.state.get('demo')).to.include({ state: 'downloading' });
    const again = await runProcessor('download', { id: job.id, data: job.data }, context, execDownloadJob);
    expect(again.cached).to.equal(true);
  });

  it('a corrupted tarball is refused with EINTEGRITY, leaves nothing and marks the version failed', async () => {
    await check({ server: 'demo' });
    const job = (await context.queues.download.getJob('demo@2.0.0'))!;
    registry.injectFault({ match: 'tarball', kind: 'corrupt' });
    const error = await runProcessor(
      'download',
      { id: job.id, data: job.data, attemptsMade: 0, opts: { attempts: 3 } },
      context,
      execDownloadJob,
    ).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error!.message).to.match(/does not match its published integrity/);
    const backupDir = context.config.backupDir;
    const files = await fs.readdir(backupDir, { recursive: true }).catch(() => []);
    expect(files.filter((file) => String(file).endsWith('.tgz') || String(file).includes('partial'))).to.deep.equal([]);
    const state = await context.state.get('demo');
    expect(state.state).to.equal('failed');
    expect(state.failedVersions).to.deep.equal(['2.0.0']);
    expect(state.lastError).to.match(/EINTEGRITY/);
    const events = await context.events.list({ server: 'demo', type: 'update.failed' });
    expect(events).to.have.length(1);
    expect(events[0]?.reason).to.match(/EINTEGRITY/);
    // The next unforced check skips the failed version; a forced one tries it again.
    registry.clearFaults();
    const next = await check({ server: 'demo' });
    expect(next.candidate).to.equal('1.1.0');
    // A plain check of a failed server that starts a new chain ends idle, never `checking`.
    expect((await context.state.get('demo')).state).to.equal('idle');
    const forced = await check({ server: 'demo', force: true });
    expect(forced.candidate).to.equal('2.0.0');
    // A forced check starts a chain of its own; the flag travels in the data, not in the id.
    expect(forced.chain).to.match(/^demo@2\.0\.0#[0-9a-z]+$/);
    const forcedJob = await context.queues.download.getJob(forced.chain!);
    expect(forcedJob?.data).to.include({ chain: forced.chain, version: '2.0.0', force: true });
    expect((await context.state.get('demo')).failedVersions).to.deep.equal([]);
  });

  it('a plain check of a failed server with nothing new to do leaves it failed, with its error', async () => {
    await context.state.update('demo', { current: '2.0.0', state: 'failed', lastError: 'EINTEGRITY: the last update failed' });
    const result = await check({ server: 'demo' });
    expect(result.candidate).to.equal(undefined);
    expect(result.summary).to.equal('up to date');
    const state = await context.state.get('demo');
    expect(state).to.include({ state: 'failed', lastError: 'EINTEGRITY: the last update failed', lastCheckResult: 'up to date' });
  });

  it('server errors are retryable, and a tarball on another host is refused', async () => {
    await check({ server: 'demo' });
    const job = (await context.queues.download.getJob('demo@2.0.0'))!;
    registry.injectFault({ match: 'tarball', kind: 'status', status: 503, times: 1 });
    const error = await runProcessor(
      'download',
      { id: job.id, data: job.data, attemptsMade: 0, opts: { attempts: 3 } },
      context,
      execDownloadJob,
    ).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(error).to.not.be.instanceOf(UnrecoverableError);
    const foreign = { ...job.data, tarball: 'http://127.0.0.2:1/demo-mcp/-/demo-mcp-2.0.0.tgz' };
    const refused = await runProcessor('download', { id: 'x', data: foreign }, context, execDownloadJob).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(refused).to.be.instanceOf(UnrecoverableError);
    expect(refused!.message).to.match(/not at the registry.*TARBALL_HOSTS/);
  });
});
