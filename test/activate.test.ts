import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { UnrecoverableError } from 'bullmq';
import { planActivation, type ActivationFacts, type ActivationRequest } from '../shared/activation.js';
import { ConflictError, LockError, NotFoundError, ValidationError } from '../shared/errors.js';
import type { UpdateEvent } from '../shared/events.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { chainId, enqueue, requestChainId, type ActivateJobData } from '../shared/queues.js';
import { execActivateJob } from '../workers/activate.js';
import { serverLockKey, withServerLock } from '../workers/activation/lock.js';
import { execCleanupJob } from '../workers/cleanup.js';
import type { WorkerContext } from '../workers/context.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory } from './support/tarball.js';

const SERVER = 'memory';

const INVENTORY = ['servers:', `  ${SERVER}:`, '    package: mcp-healthy', '    keep: 1', '    smokeTest: { timeout: 15s }', ''].join('\n');

/**
 * Put a ready version directory in place, as stage leaves it: the package files, a version
 * record and an executable run script. `fixture` chooses the package's code (mcp-broken-crash
 * for a version that fails its post-activation check). The tarball goes into the backup store.
 */
async function installVersion(context: WorkerContext, version: string, fixture = 'mcp-healthy'): Promise<string> {
  const tarball = await packDirectory(fixturePackageDir(fixture), { name: 'mcp-healthy', version });
  const { integrity } = integrityOf(tarball);
  const backup = context.layout.backupFile(integrity);
  await fs.mkdir(path.dirname(backup), { recursive: true });
  await fs.writeFile(backup, tarball);

  const dir = context.layout.versionDir(SERVER, version);
  await fs.cp(fixturePackageDir(fixture), dir, { recursive: true });
  const pkgFile = path.join(dir, 'package.json');
  const pkg = JSON.parse(await fs.readFile(pkgFile, 'utf8')) as Record<string, unknown>;
  await fs.writeFile(pkgFile, JSON.stringify({ ...pkg, name: 'mcp-healthy', version }, null, 2));
  await fs.mkdir(path.join(dir, '.mcp-updater'), { recursive: true });
  await fs.writeFile(
    context.layout.versionRecordFile(dir),
    JSON.stringify({
      server: SERVER,
      package: 'mcp-healthy',
      version,
      integrity,
      bin: 'server.js',
      stagedAt: new Date().toISOString(),
    }),
  );
  await fs.writeFile(context.layout.runScript(dir), '#!/bin/sh\nexec node "$(cd "$(dirname "$0")/.." && pwd -P)/server.js" "$@"\n', {
    mode: 0o755,
  });
  return integrity;
}

type ActivateRequest = Omit<ActivateJobData, 'chain'>;

/**
 * A job as the pipeline adds it: its id is its chain. Each call is a chain of its own (as after a
 * new check), so a second activation of one version is not taken for a resumed run of the first.
 */
function job(request: ActivateRequest) {
  const chain =
    request.action === 'activate' ? chainId(request.server, request.version!, true) : requestChainId(request.server, request.action);
  return { id: chain, data: { ...request, chain }, attemptsMade: 0, opts: { attempts: 2 } };
}

const activate = (context: WorkerContext, request: ActivateRequest) => runProcessor('activate', job(request), context, execActivateJob);

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

async function events(context: WorkerContext, type?: UpdateEvent['type']): Promise<UpdateEvent[]> {
  return context.events.list({ server: SERVER, type, limit: 100 });
}

async function counter(context: WorkerContext, name: 'updates_total' | 'rollbacks_total', labels: string[]): Promise<number> {
  const values = await context.metrics.readCounter(name);
  return values.find((value) => value.labels.join('|') === labels.join('|'))?.value ?? 0;
}

/** MCP handshake through bin/<server>, as a client would start it. */
async function handshake(context: WorkerContext) {
  return runSmokeTest({ command: context.layout.launcher(SERVER), args: [], env: {}, cwd: context.layout.root, timeoutMs: 15_000 });
}

describe('activate worker', function () {
  this.timeout(60_000);
  let env: TestEnv;
  let context: WorkerContext;

  beforeEach(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    context = await env.context();
  });

  afterEach(async () => {
    await env.cleanup();
  });

  it('installs the first version, writes the launcher once and answers MCP through bin/<server> before and after an update', async () => {
    const integrity = await installVersion(context, '1.0.0');
    const first = await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    expect(first).to.include({ outcome: 'activated', version: '1.0.0', restaged: false });
    expect(first.from).to.equal(undefined);
    expect(first.smokeTest?.ok).to.equal(true);
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.0.0');
    expect((await handshake(context)).serverVersion).to.equal('1.0.0');
    const launcher = await fs.stat(context.layout.launcher(SERVER));
    expect(launcher.mode & 0o111).to.not.equal(0);

    await installVersion(context, '1.1.0');
    const second = await activate(context, { server: SERVER, action: 'activate', version: '1.1.0' });
    expect(second).to.include({ outcome: 'activated', version: '1.1.0', from: '1.0.0' });
    expect((await handshake(context)).serverVersion).to.equal('1.1.0');
    const launcherAfter = await fs.stat(context.layout.launcher(SERVER));
    expect(launcherAfter.ino).to.equal(launcher.ino);
    expect(launcherAfter.mtimeMs).to.equal(launcher.mtimeMs);

    const state = await context.state.get(SERVER);
    expect(state).to.include({ current: '1.1.0', previous: '1.0.0', state: 'idle', package: 'mcp-healthy' });
    expect(state.lastError).to.equal(undefined);

    const redisHistory = await context.state.history(SERVER);
    expect(redisHistory.map((entry) => [entry.action, entry.from, entry.to])).to.deep.equal([
      ['activate', '1.0.0', '1.1.0'],
      ['install', undefined, '1.0.0'],
    ]);
    expect(redisHistory[1]).to.include({ integrity });
    expect(redisHistory[1]!.jobId).to.match(/^memory@1\.0\.0#[0-9a-z]+$/);
    expect(redisHistory[0]!.jobId).to.match(/^memory@1\.1\.0#[0-9a-z]+$/);
    const disk = await context.layout.readHistory(SERVER);
    expect(disk).to.include({ server: SERVER, package: 'mcp-healthy', current: '1.1.0', previous: '1.0.0' });
    expect(disk?.integrities['1.0.0']).to.equal(integrity);
    expect(disk?.entries.map((entry) => entry.to)).to.deep.equal(['1.0.0', '1.1.0']);

    const activated = await events(context, 'update.activated');
    expect(activated.map((event) => [event.version, event.from])).to.deep.equal([
      ['1.1.0', '1.0.0'],
      ['1.0.0', undefined],
    ]);
    expect(await counter(context, 'updates_total', [SERVER, 'activated'])).to.equal(2);
  });

  it('rewrites a launcher a crash cut short, whole, at the next activation', async () => {
    await installVersion(context, '1.0.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    const launcher = context.layout.launcher(SERVER);
    const whole = await fs.readFile(launcher, 'utf8');
    await fs.writeFile(launcher, whole.slice(0, 20));

    await installVersion(context, '1.1.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.1.0' });
    expect(await fs.readFile(launcher, 'utf8')).to.equal(whole);
    expect((await fs.stat(launcher)).mode & 0o111).to.not.equal(0);
    expect((await handshake(context)).serverVersion).to.equal('1.1.0');
    expect((await fs.readdir(path.dirname(launcher))).filter((name) => name.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('does nothing when the target already is current', async () => {
    await installVersion(context, '1.0.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    const again = await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    expect(again).to.include({ outcome: 'unchanged', version: '1.0.0' });
    expect(await context.state.history(SERVER)).to.have.length(1);
    expect(await events(context, 'update.activated')).to.have.length(1);
  });

  it('rolls back by itself when the new version fails its post-activation check, recording it exactly once', async () => {
    await installVersion(context, '1.0.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    await installVersion(context, '1.1.0', 'mcp-broken-crash');

    const error = await rejection(activate(context, { server: SERVER, action: 'activate', version: '1.1.0' }));
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error.code).to.equal('EPOSTACTIVATION');
    expect(error.message).to.contain('rolled back to 1.0.0');
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.0.0');
    expect((await handshake(context)).serverVersion).to.equal('1.0.0');

    const state = await context.state.get(SERVER);
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.previous).to.equal(undefined);
    expect(state.lastError).to.contain('1.1.0 failed its post-activation check');
    expect(state.failedVersions).to.deep.equal(['1.1.0']);

    // The switch back is recorded by activate, the failure by the one failure path: once each.
    const failed = await events(context, 'update.failed');
    expect(failed).to.have.length(1);
    expect(failed[0]).to.include({ version: '1.1.0' });
    expect(failed[0]!.reason).to.contain('1.1.0 failed its post-activation check and was rolled back to 1.0.0');
    expect(failed[0]!.details).to.include({ step: 'activate' });
    const rolledBack = await events(context, 'update.rolled-back');
    expect(rolledBack).to.have.length(1);
    expect(rolledBack[0]).to.include({ version: '1.0.0', from: '1.1.0' });
    expect(await counter(context, 'rollbacks_total', [SERVER])).to.equal(1);
    expect(await counter(context, 'updates_total', [SERVER, 'failed'])).to.equal(1);

    const history = await context.state.history(SERVER);
    expect(history.map((entry) => [entry.action, entry.from, entry.to])).to.deep.equal([
      ['auto-rollback', '1.1.0', '1.0.0'],
      ['activate', '1.0.0', '1.1.0'],
      ['install', undefined, '1.0.0'],
    ]);
    const disk = await context.layout.readHistory(SERVER);
    expect(disk?.current).to.equal('1.0.0');
    expect(disk?.previous).to.equal(undefined);
  });

  it('leaves nothing active when the first install fails its post-activation check', async () => {
    await installVersion(context, '1.0.0', 'mcp-broken-crash');
    const error = await rejection(activate(context, { server: SERVER, action: 'activate', version: '1.0.0' }));
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error.code).to.equal('EPOSTACTIVATION');
    expect(await context.layout.currentVersion(SERVER)).to.equal(undefined);
    const state = await context.state.get(SERVER);
    expect(state.state).to.equal('failed');
    expect(state.current).to.equal(undefined);
    expect(state.lastError).to.contain('1.0.0 failed its post-activation check; nothing is active');
    expect(state.failedVersions).to.deep.equal(['1.0.0']);
    expect(await events(context, 'update.failed')).to.have.length(1);
    expect(await counter(context, 'updates_total', [SERVER, 'failed'])).to.equal(1);
    expect(await events(context, 'update.rolled-back')).to.have.length(0);
    expect((await context.layout.readHistory(SERVER))?.current).to.equal(undefined);
  });

  it('approves a staged version and refuses one that is not staged', async () => {
    await installVersion(context, '1.0.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });

    const refused = await rejection(execActivateJob(job({ server: SERVER, action: 'approve', version: '1.2.0' }), context));
    expect(refused).to.be.instanceOf(ConflictError);
    expect(refused.message).to.equal('memory 1.2.0 is not staged (nothing is staged)');
    // Through the worker path it is final at once and recorded once.
    const viaWorker = await rejection(activate(context, { server: SERVER, action: 'approve', version: '1.2.0' }));
    expect(viaWorker).to.be.instanceOf(UnrecoverableError);
    expect(viaWorker.code).to.equal('ECONFLICT');
    expect(await events(context, 'update.failed')).to.have.length(1);
    expect(await context.state.get(SERVER)).to.include({ state: 'failed' });
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.0.0');

    await installVersion(context, '1.1.0');
    await context.state.update(SERVER, { staged: '1.1.0', state: 'awaiting-approval' });
    const approved = await activate(context, { server: SERVER, action: 'approve', version: '1.1.0', requestedBy: 'operator' });
    expect(approved).to.include({ outcome: 'activated', version: '1.1.0', from: '1.0.0' });
    const state = await context.state.get(SERVER);
    expect(state.staged).to.equal(undefined);
    expect(state.state).to.equal('idle');
    expect(state.lastError).to.equal(undefined);
    expect((await context.state.history(SERVER))[0]).to.include({ action: 'approve', from: '1.0.0', to: '1.1.0' });
    expect((await events(context, 'update.activated'))[0]).to.include({ version: '1.1.0', actor: 'operator' });
  });

  it('rolls back to the previous version and to a named version', async () => {
    for (const version of ['1.0.0', '1.1.0', '1.2.0']) {
      await installVersion(context, version);
      await activate(context, { server: SERVER, action: 'activate', version });
    }
    const back = await activate(context, { server: SERVER, action: 'rollback', reason: 'bad answers' });
    expect(back).to.include({ outcome: 'activated', version: '1.1.0', from: '1.2.0' });
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.1.0');
    expect(await context.state.get(SERVER)).to.include({ current: '1.1.0', previous: '1.2.0' });

    const named = await activate(context, { server: SERVER, action: 'rollback', version: '1.0.0' });
    expect(named).to.include({ version: '1.0.0', from: '1.1.0' });
    expect((await handshake(context)).serverVersion).to.equal('1.0.0');

    const rolledBack = await events(context, 'update.rolled-back');
    expect(rolledBack.map((event) => [event.version, event.from])).to.deep.equal([
      ['1.0.0', '1.1.0'],
      ['1.1.0', '1.2.0'],
    ]);
    expect(rolledBack[1]?.reason).to.equal('bad answers');
    expect(await counter(context, 'rollbacks_total', [SERVER])).to.equal(2);
    expect(await counter(context, 'updates_total', [SERVER, 'activated'])).to.equal(3);
    const history = await context.state.history(SERVER);
    expect(history.slice(0, 2).map((entry) => [entry.action, entry.from, entry.to])).to.deep.equal([
      ['rollback', '1.1.0', '1.0.0'],
      ['rollback', '1.2.0', '1.1.0'],
    ]);
  });

  it('refuses a rollback without a previous version, one to a version it has no backup of, and one whose backup is gone', async () => {
    const integrity = await installVersion(context, '1.0.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });
    const none = await rejection(execActivateJob(job({ server: SERVER, action: 'rollback' }), context));
    expect(none).to.be.instanceOf(ConflictError);
    expect(none.message).to.contain('no previous version to roll back to');

    const unknown = await rejection(execActivateJob(job({ server: SERVER, action: 'rollback', version: '0.1.0' }), context));
    expect(unknown).to.be.instanceOf(ConflictError);
    expect(unknown.message).to.contain('no backup of it is known');
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.0.0');

    // history.json knows 1.0.0's integrity, but both its directory and its backup are gone.
    await installVersion(context, '1.1.0');
    await activate(context, { server: SERVER, action: 'activate', version: '1.1.0' });
    await fs.rm(context.layout.versionDir(SERVER, '1.0.0'), { recursive: true });
    await fs.rm(context.layout.backupFile(integrity));
    const gone = await rejection(execActivateJob(job({ server: SERVER, action: 'rollback', version: '1.0.0' }), context));
    expect(gone).to.be.instanceOf(NotFoundError);
    expect(gone.message).to.contain('its backup');
    expect(gone.message).to.contain('is gone');
    expect(await context.layout.currentVersion(SERVER)).to.equal('1.1.0');
  });

  it('re-stages a version cleanup removed from its backup tarball when rolling back to it', async () => {
    for (const version of ['1.0.0', '1.1.0', '1.2.0']) {
      await installVersion(context, version);
      await activate(context, { server: SERVER, action: 'activate', version });
    }
    // keep: 1 -> 1.2.0 (current, newest) and 1.1.0 (previous) stay; 1.0.0 goes, its backup stays.
    const cleaned = await execCleanupJob({ id: 'cleanup-1', data: {} }, context);
    expect(cleaned.plan.removeVersions).to.deep.equal([{ server: SERVER, version: '1.0.0' }]);
    expect(cleaned.plan.removeBackups).to.deep.equal([]);
    expect(await context.layout.installedVersions(SERVER)).to.have.members(['1.1.0', '1.2.0']);

    const result = await activate(context, { server: SERVER, action: 'rollback', version: '1.0.0' });
    expect(result).to.include({ outcome: 'activated', version: '1.0.0', from: '1.2.0', restaged: true });
    expect(await context.layout.installedVersions(SERVER)).to.include('1.0.0');
    const record = await context.layout.readVersionRecord(SERVER, '1.0.0');
    expect(record).to.include({ version: '1.0.0', package: 'mcp-healthy' });
    expect((await handshake(context)).serverVersion).to.equal('1.0.0');
  });

  it('serializes concurrent activations of one server from two processes', async () => {
    const other = await env.context();
    for (const version of ['1.0.0', '1.1.0', '1.2.0']) await installVersion(context, version);
    await activate(context, { server: SERVER, action: 'activate', version: '1.0.0' });

    const results = await Promise.all([
      activate(context, { server: SERVER, action: 'activate', version: '1.1.0' }),
      activate(other, { server: SERVER, action: 'activate', version: '1.2.0' }),
    ]);
    expect(results.map((result) => result.outcome)).to.deep.equal(['activated', 'activated']);
    const history = (await context.state.history(SERVER)).reverse();
    expect(history).to.have.length(3);
    // Each switch starts where the one before ended: no two activations read the same `from`.
    expect(history[1]!.from).to.equal(history[0]!.to);
    expect(history[2]!.from).to.equal(history[1]!.to);
    const disk = await context.layout.readHistory(SERVER);
    expect(disk?.entries.map((entry) => entry.to)).to.deep.equal(history.map((entry) => entry.to));
    expect(disk?.current).to.equal(history[2]!.to);
    expect(await context.layout.currentVersion(SERVER)).to.equal(history[2]!.to);
    expect(await env.redis.exists(serverLockKey(env.config, SERVER))).to.equal(0);
  });

  it('withServerLock: a second holder gets a LockError; the lock is released even when the work throws', async () => {
    const other = await env.context();
    let release!: () => void;
    const held = withServerLock(
      context,
      SERVER,
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const locked = await rejection(withServerLock(other, SERVER, async () => 'never', { acquireTimeoutMs: 200 }));
    expect(locked).to.be.instanceOf(LockError);
    expect(locked.code).to.equal('ELOCKED');
    release();
    await held;

    const failed = await rejection(
      withServerLock(context, SERVER, async () => {
        throw new Error('boom');
      }),
    );
    expect(failed.message).to.equal('boom');
    expect(await withServerLock(other, SERVER, async () => 'free', { acquireTimeoutMs: 200 })).to.equal('free');
  });

  describe('planActivation', () => {
    const base: ActivationFacts = { installed: [], restorable: [] };
    const cases: Array<{
      name: string;
      request: Omit<ActivationRequest, 'server'>;
      facts: Partial<ActivationFacts>;
      expected: { kind: 'switch' | 'resume' | 'unchanged'; target: string; from?: string; historyAction?: string } | 'conflict';
    }> = [
      {
        name: 'activate names its version',
        request: { action: 'activate', version: '2.0.0' },
        facts: { current: '1.0.0', installed: ['1.0.0', '2.0.0'] },
        expected: { kind: 'switch', target: '2.0.0', from: '1.0.0', historyAction: 'activate' },
      },
      {
        name: 'the first activation is an install',
        request: { action: 'activate', version: '1.0.0' },
        facts: { installed: ['1.0.0'] },
        expected: { kind: 'switch', target: '1.0.0', historyAction: 'install' },
      },
      {
        name: 'activate without a version',
        request: { action: 'activate' },
        facts: { current: '1.0.0', installed: ['1.0.0'] },
        expected: 'conflict',
      },
      {
        name: 'the target already is current',
        request: { action: 'activate', version: '1.0.0' },
        facts: { current: '1.0.0', installed: ['1.0.0'] },
        expected: { kind: 'unchanged', target: '1.0.0' },
      },
      {
        name: 'rollback to a named version',
        request: { action: 'rollback', version: '0.9.0' },
        facts: { current: '1.0.0', previous: '0.8.0', installed: ['0.8.0', '0.9.0', '1.0.0'] },
        expected: { kind: 'switch', target: '0.9.0', from: '1.0.0', historyAction: 'rollback' },
      },
      {
        name: 'rollback to the previous of Redis',
        request: { action: 'rollback' },
        facts: { current: '1.0.0', previous: '0.9.0', historyPrevious: '0.8.0', installed: ['0.8.0', '0.9.0', '1.0.0'] },
        expected: { kind: 'switch', target: '0.9.0', from: '1.0.0', historyAction: 'rollback' },
      },
      {
        name: 'rollback falls back to history.json',
        request: { action: 'rollback' },
        facts: { current: '1.0.0', historyPrevious: '0.8.0', installed: ['0.8.0', '1.0.0'] },
        expected: { kind: 'switch', target: '0.8.0', from: '1.0.0', historyAction: 'rollback' },
      },
      {
        name: 'a previous equal to current does not count',
        request: { action: 'rollback' },
        facts: { current: '1.0.0', previous: '1.0.0', historyPrevious: '0.8.0', installed: ['0.8.0', '1.0.0'] },
        expected: { kind: 'switch', target: '0.8.0', from: '1.0.0', historyAction: 'rollback' },
      },
      {
        name: 'rollback without any previous',
        request: { action: 'rollback' },
        facts: { current: '1.0.0', installed: ['1.0.0'] },
        expected: 'conflict',
      },
      {
        name: 'a version cleanup removed is re-staged from its backup',
        request: { action: 'rollback', version: '0.9.0' },
        facts: { current: '1.0.0', installed: ['1.0.0'], restorable: ['0.9.0', '1.0.0'] },
        expected: { kind: 'switch', target: '0.9.0', from: '1.0.0', historyAction: 'rollback' },
      },
      {
        name: 'a version neither installed nor backed up',
        request: { action: 'rollback', version: '0.1.0' },
        facts: { current: '1.0.0', installed: ['1.0.0'] },
        expected: 'conflict',
      },
      {
        name: 'approve without a version takes the staged one',
        request: { action: 'approve' },
        facts: { current: '1.0.0', staged: '1.1.0', installed: ['1.0.0', '1.1.0'] },
        expected: { kind: 'switch', target: '1.1.0', from: '1.0.0', historyAction: 'approve' },
      },
      {
        name: 'approve with nothing staged and no version',
        request: { action: 'approve' },
        facts: { current: '1.0.0', installed: ['1.0.0'] },
        expected: 'conflict',
      },
      {
        name: 'approve of a version that is neither staged nor installed',
        request: { action: 'approve', version: '1.2.0' },
        facts: { current: '1.0.0', staged: '1.1.0', installed: ['1.0.0', '1.1.0'], restorable: ['1.2.0'] },
        expected: 'conflict',
      },
      {
        name: 'the same job after it switched and died is resumed',
        request: { action: 'activate', version: '1.1.0', jobId: 'memory@1.1.0' },
        facts: {
          current: '1.1.0',
          installed: ['1.0.0', '1.1.0'],
          lastEntry: { action: 'activate', from: '1.0.0', to: '1.1.0', at: '2026-01-01T00:00:00.000Z', jobId: 'memory@1.1.0' },
        },
        expected: { kind: 'resume', target: '1.1.0', from: '1.0.0' },
      },
      {
        name: 'another job of a version that is current is unchanged, not resumed',
        request: { action: 'activate', version: '1.1.0', jobId: 'memory@1.1.0#other' },
        facts: {
          current: '1.1.0',
          installed: ['1.0.0', '1.1.0'],
          lastEntry: { action: 'activate', from: '1.0.0', to: '1.1.0', at: '2026-01-01T00:00:00.000Z', jobId: 'memory@1.1.0' },
        },
        expected: { kind: 'unchanged', target: '1.1.0' },
      },
      {
        name: 'a rollback job whose switch was undone since is not resumed',
        request: { action: 'rollback', jobId: 'memory~rollback~x' },
        facts: {
          current: '1.1.0',
          previous: '1.0.0',
          installed: ['1.0.0', '1.1.0'],
          lastEntry: { action: 'rollback', from: '1.1.0', to: '1.0.0', at: '2026-01-01T00:00:00.000Z', jobId: 'memory~rollback~x' },
        },
        expected: { kind: 'switch', target: '1.0.0', from: '1.1.0', historyAction: 'rollback' },
      },
    ];
    for (const testCase of cases) {
      it(testCase.name, () => {
        const request: ActivationRequest = { server: SERVER, ...testCase.request };
        const facts: ActivationFacts = { ...base, ...testCase.facts };
        if (testCase.expected === 'conflict') {
          expect(() => planActivation(request, facts)).to.throw(ConflictError);
          return;
        }
        expect(planActivation(request, facts)).to.deep.include(testCase.expected);
      });
    }
  });

  it('enqueue: one auto activation per chain, unique operator jobs, validated payloads', async () => {
    const chain = chainId(SERVER, '1.1.0');
    const auto = await enqueue(context.queues, 'activate', { server: SERVER, chain, action: 'activate', version: '1.1.0' });
    const again = await enqueue(context.queues, 'activate', { server: SERVER, chain, action: 'activate', version: '1.1.0' });
    expect(auto.id).to.equal('memory@1.1.0');
    expect(again.id).to.equal('memory@1.1.0');
    const rollback = await enqueue(context.queues, 'activate', {
      server: SERVER,
      chain: requestChainId(SERVER, 'rollback'),
      action: 'rollback',
    });
    expect(rollback.id).to.match(/^memory~rollback~[0-9a-z]+$/);
    const forced = await enqueue(context.queues, 'activate', {
      server: SERVER,
      chain: chainId(SERVER, '1.1.0', true),
      action: 'activate',
      version: '1.1.0',
      force: true,
    });
    expect(forced.id).to.match(/^memory@1\.1\.0#[0-9a-z]+$/);
    expect(forced.data.force).to.equal(true);
    expect(await context.queues.activate.count()).to.equal(3);
    const invalid = await rejection(
      enqueue(context.queues, 'activate', { server: SERVER, chain: requestChainId(SERVER, 'approve'), action: 'approve' }),
    );
    expect(invalid).to.be.instanceOf(ValidationError);
    const loose = await rejection(enqueue(context.queues, 'activate', { server: SERVER, chain, action: 'activate', version: '1.1.0 ' }));
    expect(loose).to.be.instanceOf(ValidationError);
    expect(loose.message).to.contain('exact semver');
    expect(await context.queues.activate.count()).to.equal(3);
  });
});
