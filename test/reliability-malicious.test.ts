/*
 * Malicious and broken packages end to end: each server first installs a healthy 1.0.0, then the
 * registry publishes a hostile or broken 1.1.0 and real workers run check -> download -> stage on
 * it. Every one must be refused with its own error code (state.lastError and one update.failed
 * event; check refuses unusable registry data as EBADVERSION naming the cause), `current` must stay on 1.0.0, and the
 * file tree around the test (its root and the root's parent) must show no change outside the
 * staging directory, the backup store and the logs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { storeRoot } from '../shared/store.js';
import type { WorkerContext } from '../workers/context.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { fixturePackageDir, FixtureRegistry } from './support/registry.js';
import { snapshotTree, summary, treeDiff } from './support/reliability.js';
import { pipelineIdle } from './support/pipeline.js';
import { packEntries, type RawTarEntry } from './support/tarball.js';
import { waitUntil } from './support/wait.js';

const old = new Date(Date.now() - 30 * 86_400_000);
const escapee = `mcpu-escapee-${crypto.randomBytes(4).toString('hex')}`;
const SERVER_JS = await fs.readFile(path.join(fixturePackageDir('mcp-healthy'), 'server.js'));

/** Where a failure is caught: the check refuses the packument, the download or the stage refuses the bytes. */
type Step = 'check' | 'download' | 'stage';

interface Case {
  server: string;
  what: string;
  code: string;
  step: Step;
  /** Entries besides a correct package.json and server.js (`entries(name)` replaces them all when `replace`). */
  entries?: RawTarEntry[];
  replace?: (name: string) => RawTarEntry[];
  manifest?: Record<string, unknown>;
  /** dist.tarball in the packument: a function of the registry's port. */
  tarballUrl?: (port: string, name: string) => string;
  /** What the error must also say (check refuses unusable registry data with EBADVERSION, naming the cause). */
  mentions?: string;
}

const CASES: Case[] = [
  {
    server: 'm-traversal',
    what: '../ entries',
    code: 'EPATHTRAVERSAL',
    step: 'stage',
    entries: [
      { path: `package/../../../../../../../../../../tmp/${escapee}`, body: 'owned' },
      { path: `package/../../${escapee}`, body: 'owned' },
    ],
  },
  {
    server: 'm-backslash',
    what: '..\\ entries',
    code: 'EPATHTRAVERSAL',
    step: 'stage',
    entries: [{ path: `package/..\\..\\${escapee}`, body: 'owned' }],
  },
  {
    server: 'm-absolute',
    what: 'an absolute path',
    code: 'EABSPATH',
    step: 'stage',
    entries: [{ path: `/tmp/${escapee}`, body: 'owned' }],
  },
  {
    server: 'm-outside',
    what: 'an entry beside the package folder',
    code: 'EOUTSIDEROOT',
    step: 'stage',
    entries: [{ path: `other/${escapee}`, body: 'owned' }],
  },
  {
    server: 'm-symlink',
    what: 'a symlink pointing outside, then a file through it',
    code: 'ELINKESCAPE',
    step: 'stage',
    entries: [
      { path: 'package/out', type: 'symlink', linkpath: '../../../../../../../../../../tmp' },
      { path: `package/out/${escapee}`, body: 'owned' },
    ],
  },
  {
    server: 'm-symlink-abs',
    what: 'an absolute symlink',
    code: 'ELINKESCAPE',
    step: 'stage',
    entries: [{ path: 'package/etc', type: 'symlink', linkpath: '/etc' }],
  },
  {
    server: 'm-hardlink',
    what: 'a hard link to /etc/passwd',
    code: 'ELINKESCAPE',
    step: 'stage',
    entries: [{ path: 'package/passwd', type: 'hardlink', linkpath: '/etc/passwd' }],
  },
  {
    server: 'm-hardlink-up',
    what: 'a hard link climbing out',
    code: 'ELINKESCAPE',
    step: 'stage',
    entries: [{ path: 'package/passwd', type: 'hardlink', linkpath: 'package/../../../../../../etc/passwd' }],
  },
  {
    server: 'm-chain',
    what: 'a symlink chain that leaves only through another link',
    code: 'ELINKESCAPE',
    step: 'stage',
    entries: [
      { path: 'package/lib/', type: 'directory' },
      { path: 'package/lib/up', type: 'symlink', linkpath: '..' },
      { path: 'package/lib/away', type: 'symlink', linkpath: 'up/..' },
    ],
  },
  {
    server: 'm-loop',
    what: 'a symlink loop',
    code: 'ELINKLOOP',
    step: 'stage',
    entries: [
      { path: 'package/x', type: 'symlink', linkpath: 'y' },
      { path: 'package/y', type: 'symlink', linkpath: 'x' },
    ],
  },
  {
    server: 'm-through',
    what: 'a file written through an inside symlink',
    code: 'ELINKTHROUGH',
    step: 'stage',
    entries: [
      { path: 'package/lib', type: 'symlink', linkpath: 'real' },
      { path: 'package/lib/x.js', body: 'x' },
    ],
  },
  {
    server: 'm-duplicate',
    what: 'a file replaced by a symlink of the same path',
    code: 'EDUPLICATE',
    step: 'stage',
    entries: [
      { path: 'package/data.txt', body: 'x' },
      { path: 'package/data.txt', type: 'symlink', linkpath: 'server.js' },
    ],
  },
  { server: 'm-fifo', what: 'a FIFO', code: 'EDEVICE', step: 'stage', entries: [{ path: 'package/pipe', type: 'fifo' }] },
  { server: 'm-chardev', what: 'a character device', code: 'EDEVICE', step: 'stage', entries: [{ path: 'package/null', type: 'chardev' }] },
  {
    server: 'm-setuid',
    what: 'a set-user-id file',
    code: 'ESETID',
    step: 'stage',
    entries: [{ path: 'package/suid', body: '#!/bin/sh\n', mode: 0o4755 }],
  },
  {
    server: 'm-bigfile',
    what: 'a file over MAX_TARBALL_SIZE unpacked (64 kB; compresses to little)',
    code: 'ETOOBIG',
    step: 'stage',
    entries: [{ path: 'package/big.bin', body: Buffer.alloc(200 * 1024) }],
  },
  {
    server: 'm-bigpackage',
    what: 'files adding up over MAX_PACKAGE_SIZE (256 kB)',
    code: 'EPACKAGETOOBIG',
    step: 'stage',
    entries: Array.from({ length: 5 }, (_, index) => ({ path: `package/part${index}.bin`, body: Buffer.alloc(60 * 1024) })),
  },
  {
    server: 'm-manyfiles',
    what: '3000 tiny files past MAX_PACKAGE_FILES (200)',
    code: 'ETOOMANYFILES',
    step: 'stage',
    entries: Array.from({ length: 3000 }, (_, index) => ({ path: `package/f/${index}.js`, body: '1' })),
  },
  {
    server: 'm-bigtarball',
    what: 'a tarball over MAX_TARBALL_SIZE (64 kB of random bytes)',
    code: 'ETOOBIG',
    step: 'download',
    entries: [{ path: 'package/noise.bin', body: crypto.randomBytes(96 * 1024) }],
  },
  {
    server: 'm-name',
    what: 'package.json naming another package',
    code: 'EPKGMISMATCH',
    step: 'stage',
    manifest: { name: 'someone-else' },
  },
  { server: 'm-version', what: 'package.json naming another version', code: 'EPKGMISMATCH', step: 'stage', manifest: { version: '9.9.9' } },
  {
    server: 'm-nomanifest',
    what: 'no package.json',
    code: 'EPKGJSON',
    step: 'stage',
    replace: () => [{ path: 'package/server.js', body: SERVER_JS, mode: 0o755 }],
  },
  {
    server: 'm-badjson',
    what: 'package.json that is not JSON',
    code: 'EPKGJSON',
    step: 'stage',
    replace: () => [
      { path: 'package/package.json', body: '{"name": ' },
      { path: 'package/server.js', body: SERVER_JS, mode: 0o755 },
    ],
  },
  {
    server: 'm-bin',
    what: 'a bin escaping the package',
    code: 'EBINESCAPE',
    step: 'stage',
    manifest: { bin: { 'm-bin': '../../../../../bin/sh' } },
  },
  { server: 'm-bin-abs', what: 'an absolute bin', code: 'EBINESCAPE', step: 'stage', manifest: { bin: { 'm-bin-abs': '/bin/sh' } } },
  {
    server: 'm-host',
    what: 'a packument sending the tarball to another host',
    code: 'EBADVERSION',
    step: 'check',
    mentions: 'm-host@1.1.0: ETARBALLHOST: tarball URL http://127.0.0.2:',
    tarballUrl: (port, name) => `http://127.0.0.2:${port}/${name}/-/${name}-1.1.0.tgz`,
  },
];

/** The same registry under another host name, allowed by TARBALL_HOSTS: must install. */
const ALLOWED_HOST = 'm-allowed-host';

function healthyEntries(name: string, manifest: Record<string, unknown> = {}): RawTarEntry[] {
  return [
    {
      path: 'package/package.json',
      body: JSON.stringify({ name, version: '1.1.0', type: 'module', bin: { [name]: 'server.js' }, ...manifest }),
    },
    { path: 'package/server.js', body: SERVER_JS, mode: 0o755 },
  ];
}

describe('reliability: malicious and broken packages through check -> download -> stage', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let outer: string;
  let root: string;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;
  const servers = [...CASES.map((item) => item.server), ALLOWED_HOST];

  before(async () => {
    registry = await FixtureRegistry.start();
    const port = new URL(registry.url).port;
    // Everything this test writes lives in root; root's parent is private too, so a snapshot of
    // it sees any escape one level up without other tests' files in the way.
    outer = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-malicious-'));
    root = path.join(outer, 'root');
    for (const server of servers) await registry.publish({ name: server, version: '1.0.0', publishedAt: old });
    const inventory = `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 20s }\nservers:\n${servers.map((name) => `  ${name}: { package: ${name} }\n`).join('')}`;
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory,
      env: {
        MCP_SERVERS_PATH: path.join(root, 'servers'),
        BACKUP_DIR: path.join(root, 'backups'),
        LOG_DIR: path.join(root, 'logs'),
        MAX_TARBALL_SIZE: '64kb',
        MAX_PACKAGE_SIZE: '256kb',
        MAX_PACKAGE_FILES: '200',
        TARBALL_HOSTS: `localhost:${port}`,
        MAX_RETRIES: '2',
        RETRY_BACKOFF: '50',
        LOG_LEVEL: 'info',
      },
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
    if (outer) await fs.rm(outer, { recursive: true, force: true });
  });

  async function checkAllAndSettle(): Promise<void> {
    await client.checkAll(servers, { reason: 'malicious packages test' });
    await waitUntil('the pipeline to settle', () => pipelineIdle(context.queues), 60_000, 100);
  }

  it(`refuses each of ${CASES.length} hostile or broken 1.1.0 versions with its own code, leaving 1.0.0 current and nothing written outside staging`, async () => {
    const started = Date.now();
    await checkAllAndSettle();
    for (const server of servers) expect(await context.layout.currentVersion(server), `${server} installed`).to.equal('1.0.0');

    const port = new URL(registry.url).port;
    for (const item of CASES) {
      const tarball = await packEntries(
        item.replace ? item.replace(item.server) : [...healthyEntries(item.server, item.manifest), ...(item.entries ?? [])],
      );
      await registry.publish({
        name: item.server,
        version: '1.1.0',
        publishedAt: old,
        tarball,
        tarballUrl: item.tarballUrl?.(port, item.server),
      });
    }
    await registry.publish({
      name: ALLOWED_HOST,
      version: '1.1.0',
      publishedAt: old,
      tarball: await packEntries(healthyEntries(ALLOWED_HOST)),
      tarballUrl: `http://localhost:${port}/${ALLOWED_HOST}/-/${ALLOWED_HOST}-1.1.0.tgz`,
    });

    const staging = context.layout.stagingRoot;
    const allowed = [staging, env.config.backupDir, env.config.logDir].map((dir) => `${dir}${path.sep}`);
    const isAllowed = (file: string) =>
      allowed.some((dir) => file.startsWith(dir)) || [staging, env.config.backupDir, env.config.logDir].includes(file);
    const before = await snapshotTree(outer);
    await checkAllAndSettle();
    const after = await snapshotTree(outer);

    const outcomes: Record<string, string> = {};
    for (const item of CASES) {
      const state = await context.state.get(item.server);
      expect(state.lastError, `${item.server} (${item.what}) lastError`).to.match(new RegExp(`^${item.code}: `));
      if (item.mentions) expect(state.lastError, `${item.server} lastError`).to.include(item.mentions);
      expect(state.state, `${item.server} state`).to.equal('failed');
      outcomes[item.server] = item.code;
      // One failure each, through the one failure path, and the version is skipped from now on.
      const failed = await context.events.list({ server: item.server, type: 'update.failed' });
      expect(failed, `${item.server} update.failed`).to.have.length(1);
      expect(failed[0]!.reason, `${item.server} update.failed reason`).to.match(new RegExp(`^${item.code}: `));
      expect(state.failedVersions, `${item.server} failed versions`).to.deep.equal(['1.1.0']);
      if (item.step !== 'check') {
        expect(
          failed.map((event) => event.version),
          `${item.server} update.failed version`,
        ).to.deep.equal(['1.1.0']);
        const job = await context.queues[item.step].getJob(`${item.server}@1.1.0`);
        expect(await job?.getState(), `${item.server} ${item.step} job`).to.equal('failed');
        expect(job!.attemptsMade, `${item.server} ${item.step} attempts (refusals are final)`).to.equal(1);
        expect(job!.failedReason, `${item.server} failedReason`).to.match(new RegExp(`^${item.code}: `));
      } else {
        expect(await context.queues.download.getJob(`${item.server}@1.1.0`), `${item.server} download job`).to.equal(undefined);
      }
      expect(await context.layout.currentVersion(item.server), `${item.server} current`).to.equal('1.0.0');
      expect(await context.layout.installedVersions(item.server), `${item.server} versions`).to.deep.equal(['1.0.0']);
      expect(await fs.readdir(path.join(staging, item.server)).catch(() => []), `${item.server} staging leftovers`).to.deep.equal([]);
    }
    // The control: the same bytes from a host TARBALL_HOSTS allows install normally.
    expect(await context.layout.currentVersion(ALLOWED_HOST), 'allowed tarball host').to.equal('1.1.0');

    const diff = treeDiff(before, after);
    // The control's new version shares its files through the store (only a placed version gets there).
    const store = storeRoot(context.layout.root);
    const outside = {
      created: diff.created.filter(
        (file) =>
          !isAllowed(file)
          && !file.startsWith(context.layout.serverDir(ALLOWED_HOST) + path.sep)
          && file !== store
          && !file.startsWith(store + path.sep),
      ),
      changed: diff.changed.filter((file) => !isAllowed(file) && !file.startsWith(context.layout.serverDir(ALLOWED_HOST) + path.sep)),
      deleted: diff.deleted.filter((file) => !isAllowed(file)),
    };
    expect(outside, 'file changes outside staging, backups and logs').to.deep.equal({ created: [], changed: [], deleted: [] });
    for (const place of ['/tmp', os.tmpdir(), outer, root, path.dirname(staging), staging, '/etc']) {
      expect(
        await fs.lstat(path.join(place, escapee)).then(
          () => true,
          () => false,
        ),
        `${place}/${escapee}`,
      ).to.equal(false);
    }
    summary('malicious', {
      cases: CASES.length,
      refused: Object.values(outcomes).length,
      codes: [...new Set(Object.values(outcomes))].sort().join(','),
      byStep: Object.fromEntries(
        (['check', 'download', 'stage'] as Step[]).map((step) => [step, CASES.filter((item) => item.step === step).length]),
      ),
      allowedHostInstalled: true,
      treeEntries: after.size,
      changesInStagingBackupsLogs:
        diff.created.length
        + diff.changed.length
        + diff.deleted.length
        - outside.created.length
        - outside.changed.length
        - outside.deleted.length,
      filesChangedOutside: 0,
      seconds: Math.round((Date.now() - started) / 1000),
    });
  });
});
