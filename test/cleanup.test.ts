import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { NotFoundError } from '../shared/errors.js';
import type { DiskHistory, HistoryEntry } from '../shared/layout.js';
import { enqueue } from '../shared/queues.js';
import { execCleanupJob } from '../workers/cleanup.js';
import type { WorkerContext } from '../workers/context.js';
import { runProcessor } from '../workers/worker.js';
import { storeRoot, storeTree } from '../shared/store.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory } from './support/tarball.js';

const HOUR = 60 * 60 * 1000;

const INVENTORY = [
  'servers:',
  '  memory:',
  '    package: mcp-healthy',
  '    keep: 2',
  '  other:',
  '    package: mcp-healthy',
  '    keep: 1',
  '',
].join('\n');

/** A version directory as stage leaves it, with its tarball in the backup store (mtime 2 hours ago). */
async function installVersion(context: WorkerContext, server: string, version: string, stagedAt: Date): Promise<string> {
  const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'mcp-healthy', version });
  const { integrity } = integrityOf(tarball);
  await writeBackup(context, integrity, tarball, new Date(Date.now() - 2 * HOUR));
  const dir = context.layout.versionDir(server, version);
  await fs.cp(fixturePackageDir('mcp-healthy'), dir, { recursive: true });
  await fs.mkdir(path.join(dir, '.mcp-updater'), { recursive: true });
  await fs.writeFile(
    context.layout.versionRecordFile(dir),
    JSON.stringify({
      server,
      package: 'mcp-healthy',
      version,
      integrity,
      bin: 'server.js',
      stagedAt: stagedAt.toISOString(),
    }),
  );
  return integrity;
}

async function writeBackup(context: WorkerContext, integrity: string, content: Buffer, mtime: Date): Promise<string> {
  const file = context.layout.backupFile(integrity);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  await fs.utimes(file, mtime, mtime);
  return file;
}

/** Activation history as activate records it: `versions` activated one after the other. */
async function writeHistory(
  context: WorkerContext,
  server: string,
  versions: string[],
  integrities: Record<string, string>,
): Promise<void> {
  const entries: HistoryEntry[] = versions.map((to, index) => ({
    action: index === 0 ? 'install' : 'activate',
    ...(index > 0 ? { from: versions[index - 1] } : {}),
    to,
    at: new Date(Date.now() - (versions.length - index) * HOUR).toISOString(),
    integrity: integrities[to],
  }));
  const current = versions[versions.length - 1];
  const previous = versions[versions.length - 2];
  const history: DiskHistory = { server, package: 'mcp-healthy', current, previous, integrities, entries };
  await context.layout.writeHistory(history);
  await context.layout.switchCurrent(server, current!);
  await context.state.update(server, { current, previous });
  for (const entry of entries) await context.state.appendHistory(server, entry);
}

async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      out.push(path.relative(root, full));
      if (entry.isDirectory()) await walk(full);
    }
  }
  await walk(root);
  return out.sort();
}

describe('cleanup worker', function () {
  this.timeout(60_000);
  let env: TestEnv;
  let context: WorkerContext;
  const integrities: Record<string, string> = {};
  const versions = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0'];

  beforeEach(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    context = await env.context();
    const base = Date.now() - 10 * HOUR;
    for (const [index, version] of versions.entries()) {
      integrities[version] = await installVersion(context, 'memory', version, new Date(base + index * HOUR));
    }
  });

  afterEach(async () => {
    await env.cleanup();
  });

  const cleanup = (data: { dryRun?: boolean; server?: string } = {}) =>
    runProcessor('cleanup', { id: 'cleanup-test', data, attemptsMade: 0, opts: { attempts: 1 } }, context, execCleanupJob);

  it('keeps the active, the previous and the newest `keep` versions, and reports bytes freed', async () => {
    // Rolled back to 1.2.0 from 1.5.0: current 1.2.0, previous 1.5.0; keep 2 = 1.5.0, 1.4.0.
    await writeHistory(context, 'memory', ['1.0.0', '1.1.0', '1.3.0', '1.5.0', '1.2.0'], integrities);
    const result = await cleanup();
    expect(result.dryRun).to.equal(false);
    expect(result.plan.removeVersions).to.have.deep.members([
      { server: 'memory', version: '1.0.0' },
      { server: 'memory', version: '1.1.0' },
      { server: 'memory', version: '1.3.0' },
    ]);
    expect(await context.layout.installedVersions('memory')).to.have.members(['1.2.0', '1.4.0', '1.5.0']);
    expect(await context.layout.currentVersion('memory')).to.equal('1.2.0');
    expect(result.bytesFreed).to.be.greaterThan(0);
    expect(result.bytesFreed).to.equal(result.bytesPlanned);

    const done = await context.events.list({ type: 'cleanup.done' });
    expect(done).to.have.length(1);
    expect(done[0]).to.include({ server: '*', jobId: 'cleanup-test' });
    expect(done[0]!.details).to.include({ bytesFreed: result.bytesFreed });
    expect(done[0]!.details?.removedVersions).to.have.members(['memory@1.0.0', 'memory@1.1.0', 'memory@1.3.0']);
    // Nothing half-deleted is left in staging.
    expect(await tree(path.join(context.layout.stagingRoot, 'memory'))).to.deep.equal([]);
  });

  it('counts only bytes it frees: a file a kept version shares through the store frees nothing, a store entry whose last version went is freed once', async () => {
    await writeHistory(context, 'memory', ['1.0.0', '1.1.0', '1.3.0', '1.5.0', '1.2.0'], integrities);
    const unique = 'only in 1.0.0\n'.repeat(100);
    await fs.writeFile(path.join(context.layout.versionDir('memory', '1.0.0'), 'unique.txt'), unique);
    // Every version holds the same package files: stored, each of them is one inode for all six.
    for (const version of versions) await storeTree(context.layout.versionDir('memory', version), storeRoot(context.layout.root));
    let records = 0;
    for (const version of ['1.0.0', '1.1.0', '1.3.0']) {
      records += (await fs.stat(context.layout.versionRecordFile(context.layout.versionDir('memory', version)))).size;
    }
    const dryRun = await cleanup({ dryRun: true });
    let backups = 0;
    for (const file of dryRun.plan.removeBackups) backups += (await fs.stat(file)).size;
    // The removed versions' own records (never stored), the one file no kept version has, the old backups.
    const freed = records + Buffer.byteLength(unique) + backups;
    expect(dryRun.bytesPlanned).to.equal(freed);

    const result = await cleanup();
    expect(result.plan.removeVersions.map((item) => item.version)).to.have.members(['1.0.0', '1.1.0', '1.3.0']);
    expect(result.bytesFreed).to.equal(freed);
    expect(result.bytesPlanned).to.equal(freed);
    const done = await context.events.list({ type: 'cleanup.done' });
    expect(done).to.have.length(1);
    expect(done[0]!.details).to.include({ bytesFreed: freed });
  });

  it('a dry run returns the plan and changes nothing', async () => {
    await writeHistory(context, 'memory', ['1.4.0', '1.5.0'], integrities);
    const old = path.join(context.layout.stagingRoot, 'memory', '1.9.0-old');
    await fs.mkdir(old, { recursive: true });
    await fs.utimes(old, new Date(Date.now() - 3 * HOUR), new Date(Date.now() - 3 * HOUR));
    const before = [...(await tree(env.config.serversPath)), ...(await tree(env.config.backupDir))];

    const result = await cleanup({ dryRun: true });
    expect(result.dryRun).to.equal(true);
    expect(result.bytesFreed).to.equal(0);
    expect(result.bytesPlanned).to.be.greaterThan(0);
    expect(result.plan.removeVersions.map((item) => item.version)).to.have.members(['1.0.0', '1.1.0', '1.2.0', '1.3.0']);
    expect(result.plan.removeStaging).to.deep.equal([old]);
    expect([...(await tree(env.config.serversPath)), ...(await tree(env.config.backupDir))]).to.deep.equal(before);
    expect(await context.events.list({ type: 'cleanup.done' })).to.have.length(0);
  });

  it('removes staging leftovers older than an hour and keeps younger ones', async () => {
    await writeHistory(context, 'memory', ['1.5.0'], integrities);
    const old = path.join(context.layout.stagingRoot, 'memory', '2.0.0-crashed');
    const fresh = path.join(context.layout.stagingRoot, 'memory', '2.0.1-running');
    for (const dir of [old, fresh]) {
      await fs.mkdir(path.join(dir, 'package'), { recursive: true });
      await fs.writeFile(path.join(dir, 'package', 'index.js'), 'x'.repeat(1000));
    }
    await fs.utimes(old, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    const result = await cleanup();
    expect(result.plan.removeStaging).to.deep.equal([old]);
    expect(result.plan.kept.staging).to.deep.equal([fresh]);
    await fs.access(fresh);
    expect(
      await fs.access(old).then(
        () => true,
        () => false,
      ),
    ).to.equal(false);
    const done = (await context.events.list({ type: 'cleanup.done' }))[0]!;
    expect(done.details?.removedStaging).to.deep.equal([old]);
  });

  it('removes at once a staging leftover whose run died on this host, and keeps a young one of a live run', async () => {
    await writeHistory(context, 'memory', ['1.5.0'], integrities);
    // Named as stagingDir names a run: <version>-<job>-<host>-<pid>-<random>.
    const [, host] = /-([0-9a-f]{8})-\d+-[0-9a-f]{8}$/.exec(context.layout.stagingDir('memory', '2.0.0', 'memory@2.0.0'))!;
    const gone = await new Promise<number>((resolve) => {
      const child = execFile(process.execPath, ['-e', '0'], () => resolve(child.pid!));
    });
    const died = path.join(context.layout.stagingRoot, 'memory', `2.0.0-memory_2.0.0-${host}-${gone}-0000beef`);
    const live = path.join(context.layout.stagingRoot, 'memory', `2.0.0-memory_2.0.0-${host}-${process.pid}-0000cafe`);
    for (const dir of [died, live]) await fs.mkdir(path.join(dir, 'package'), { recursive: true });
    const result = await cleanup();
    expect(result.plan.removeStaging).to.deep.equal([died]);
    expect(result.plan.kept.staging).to.deep.equal([live]);
    await fs.rm(live, { recursive: true, force: true });
  });

  it('keeps backups a rollback may need and removes the rest once they are old', async () => {
    // History, newest first: 1.5.0 1.4.0 1.3.0 1.2.0 1.1.0 1.0.0; keep 2 -> 4 recent versions keep their backups.
    await writeHistory(context, 'memory', versions, integrities);
    const unknownOld = await writeBackup(
      context,
      `sha512-${Buffer.from('unknown-old').toString('base64')}`,
      Buffer.from('a'),
      new Date(Date.now() - 2 * HOUR),
    );
    const unknownFresh = await writeBackup(
      context,
      `sha512-${Buffer.from('unknown-new').toString('base64')}`,
      Buffer.from('b'),
      new Date(),
    );
    const partial = `${unknownOld}.123.abcd.partial`;
    await fs.writeFile(partial, 'downloading');

    const result = await cleanup();
    const backupOf = (version: string) => context.layout.backupFile(integrities[version]!);
    expect(result.plan.removeBackups).to.have.members([backupOf('1.0.0'), backupOf('1.1.0'), unknownOld]);
    for (const version of ['1.2.0', '1.3.0', '1.4.0', '1.5.0']) await fs.access(backupOf(version));
    await fs.access(unknownFresh);
    await fs.access(partial);
    for (const gone of [backupOf('1.0.0'), backupOf('1.1.0'), unknownOld]) {
      expect(
        await fs.access(gone).then(
          () => true,
          () => false,
        ),
      ).to.equal(false);
    }
    expect(result.plan.kept.backups.find((backup) => backup.file === backupOf('1.2.0'))?.reason).to.equal('recent-history');
    expect(result.plan.kept.backups.find((backup) => backup.file === backupOf('1.5.0'))?.reason).to.equal('kept-version');
  });

  it('checks the live state once more before deleting: a version Redis calls current is never deleted', async () => {
    await writeHistory(context, 'memory', ['1.4.0', '1.5.0'], integrities);
    // Redis disagrees with the link (another process is mid-way): the plan goes by the link,
    // the deletion re-checks Redis, the link and history.json under the lock.
    await context.state.update('memory', { current: '1.1.0' });
    const result = await cleanup();
    expect(result.plan.removeVersions.map((item) => item.version)).to.have.members(['1.0.0', '1.1.0', '1.2.0', '1.3.0']);
    expect(result.skipped).to.deep.equal([{ server: 'memory', version: '1.1.0', reason: 'became current, previous or staged' }]);
    expect(await context.layout.installedVersions('memory')).to.have.members(['1.1.0', '1.4.0', '1.5.0']);
  });

  it('keeps a staged version awaiting approval', async () => {
    await writeHistory(context, 'memory', ['1.4.0', '1.5.0'], integrities);
    await context.state.update('memory', { staged: '1.0.0', state: 'awaiting-approval' });
    const result = await cleanup();
    expect(result.plan.removeVersions.map((item) => item.version)).to.have.members(['1.1.0', '1.2.0', '1.3.0']);
    expect(await context.layout.installedVersions('memory')).to.include('1.0.0');
  });

  it('a run for one server touches only that server and keeps backups other servers use', async () => {
    await writeHistory(context, 'memory', ['1.5.0'], integrities);
    // other@1.0.0 packs to the same tarball as memory@1.0.0: one shared backup.
    const shared = await installVersion(context, 'other', '1.0.0', new Date(Date.now() - 5 * HOUR));
    expect(shared).to.equal(integrities['1.0.0']);
    const only = await installVersion(context, 'other', '2.0.0', new Date(Date.now() - 4 * HOUR));
    await installVersion(context, 'other', '3.0.0', new Date(Date.now() - 3 * HOUR));
    await context.layout.switchCurrent('other', '3.0.0');
    const stale = path.join(context.layout.stagingRoot, 'memory', '9.9.9-stale');
    await fs.mkdir(stale, { recursive: true });
    await fs.utimes(stale, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));

    const result = await cleanup({ server: 'other' });
    expect(result.plan.removeVersions).to.have.deep.members([
      { server: 'other', version: '1.0.0' },
      { server: 'other', version: '2.0.0' },
    ]);
    expect(result.plan.removeStaging).to.deep.equal([]);
    expect(result.plan.removeBackups).to.deep.equal([context.layout.backupFile(only)]);
    expect(result.plan.kept.backups).to.deep.include({ file: context.layout.backupFile(shared), reason: 'protected' });
    // memory's own backups are not even candidates in a run for `other`.
    expect(result.plan.kept.backups.map((backup) => backup.file)).to.not.include(context.layout.backupFile(integrities['1.3.0']!));
    expect(await context.layout.installedVersions('memory')).to.have.length(versions.length);
    expect(await context.layout.installedVersions('other')).to.deep.equal(['3.0.0']);
    await fs.access(stale);
    const done = (await context.events.list({ type: 'cleanup.done' }))[0]!;
    expect(done.server).to.equal('other');

    const unknown = await execCleanupJob({ id: 'c2', data: { server: 'nope' } }, context).catch((error: unknown) => error);
    expect(unknown).to.be.instanceOf(NotFoundError);
  });

  it('leaves servers that left the inventory alone, with their backups', async () => {
    await writeHistory(context, 'memory', ['1.5.0'], integrities);
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), { name: 'gone-pkg', version: '0.1.0' });
    const { integrity } = integrityOf(tarball);
    const backup = await writeBackup(context, integrity, tarball, new Date(Date.now() - 5 * HOUR));
    await fs.mkdir(context.layout.versionDir('gone', '0.1.0'), { recursive: true });
    await context.layout.switchCurrent('gone', '0.1.0');
    await context.layout.writeHistory({
      server: 'gone',
      package: 'gone-pkg',
      current: '0.1.0',
      integrities: { '0.1.0': integrity },
      entries: [],
    });
    const result = await cleanup();
    expect(result.plan.removeVersions.map((item) => item.server)).to.not.include('gone');
    expect(result.plan.kept.backups).to.deep.include({ file: backup, reason: 'protected' });
    await fs.access(backup);
  });

  it('enqueue validates and adds a cleanup job under an id of its own', async () => {
    const job = await enqueue(context.queues, 'cleanup', { dryRun: true, reason: 'test' });
    expect(job.id).to.match(/^cleanup-dry-run-all-[0-9a-z]+$/);
    expect(job.data).to.deep.equal({ dryRun: true, reason: 'test' });
    const scoped = await enqueue(context.queues, 'cleanup', { server: 'memory' });
    expect(scoped.id).to.match(/^cleanup-memory-[0-9a-z]+$/);
    const invalid = await enqueue(context.queues, 'cleanup', { server: 'Bad Name' }).catch((error: unknown) => error);
    expect((invalid as { code?: string }).code).to.equal('EVALIDATION');
    expect(await context.queues.cleanup.count()).to.equal(2);
  });
});
