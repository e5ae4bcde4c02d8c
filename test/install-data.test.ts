/*
 * Issue 11, item 3: never lose a server's data. A fixture server writes lib/memory.jsonl next to
 * its own code (as @modelcontextprotocol/server-memory does); the file survives an update (the old
 * process keeps its open file, the new version sees the same file), a rollback and a cleanup.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { dataPreservedMessage, readVersionFiles, serverCreatedFiles, type PresentEntry } from '../shared/serverData.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';

const old = new Date(Date.now() - 30 * 86_400_000);
const PKG = '@modelcontextprotocol/server-memory';
const MEMORY = `node_modules/${PKG}/lib/memory.jsonl`;

describe('install: which files a server created', () => {
  const recorded = new Map([
    ['node_modules/p/dist/server.js', 10],
    ['node_modules/p/package.json', 5],
    ['node_modules/.bin/p', 0],
  ]);
  const entry = (p: string, kind: PresentEntry['kind'] = 'file'): PresentEntry => ({ path: p, kind, size: 1 });
  const cases: Array<[string, PresentEntry[], string[]]> = [
    ['nothing new', [entry('node_modules/p/dist/server.js'), entry('node_modules/p/package.json')], []],
    [
      'a new file next to the code',
      [entry('node_modules/p/dist/server.js'), entry('node_modules/p/dist/memory.jsonl')],
      ['node_modules/p/dist/memory.jsonl'],
    ],
    ['a new file in a new folder', [entry('node_modules/p/credentials/token.json')], ['node_modules/p/credentials/token.json']],
    ["a recorded file that grew is the package's, not data", [{ path: 'node_modules/p/package.json', kind: 'file', size: 99 }], []],
    ['our own links into data/ are not data', [entry('node_modules/p/dist/memory.jsonl', 'symlink')], []],
    ['the version record is ours', [entry('.mcp-updater/version.json'), entry('.mcp-updater/files.json')], []],
    ['sockets and fifos are not data', [entry('node_modules/p/dist/ipc.sock', 'other')], []],
  ];
  for (const [name, present, expected] of cases) it(name, () => expect(serverCreatedFiles(recorded, present)).to.deep.equal(expected));

  it("the message names the file, where it went and the package's own setting", () => {
    const message = dataPreservedMessage({
      server: 'memory',
      package: PKG,
      version: '1.0.0',
      dataDir: '/srv/memory/data',
      files: ['dist/memory.jsonl'],
      when: 'activation',
    });
    expect(message).to.include('dist/memory.jsonl').and.include('/srv/memory/data').and.include('MEMORY_FILE_PATH');
    expect(dataPreservedMessage({ server: 'x', package: 'other', version: '1.0.0', dataDir: '/d', files: ['a'], when: 'cleanup' }))
      .to.include('before cleanup removed 1.0.0')
      .and.not.include('MEMORY_FILE_PATH');
  });
});

describe("install: a server's data survives update, rollback and cleanup", function () {
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
      inventory: `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\nservers:\n  memory: { package: '${PKG}', policy: major, keep: 1 }\n`,
    });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
    client = ProducerClient.connect(env.config);
  });

  after(async () => {
    await workers?.close();
    await client?.close();
    await env?.cleanup();
    await registry?.close();
  });

  const publish = (version: string) =>
    registry.publish({ name: PKG, version, fromDir: fixturePackageDir('mcp-data-writer'), publishedAt: old });
  const versionFile = (version: string) => path.join(context.layout.versionDir('memory', version), MEMORY);
  const dataFile = () => path.join(context.layout.dataDir('memory'), MEMORY);
  const lines = async (file: string) =>
    (await fs.readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { version: string; note: string | null });

  async function settle(): Promise<void> {
    await settlePipeline(context.queues);
  }

  async function check(): Promise<void> {
    const { jobId } = await client.check('memory', { reason: 'data test' });
    await client.waitFor('check', jobId, 60_000);
    await settle();
  }

  /** A client starts the server through the launcher (the server appends a line with the note). */
  async function use(note: string): Promise<void> {
    // An MCP client, not a smoke test: it runs the server as it is, outside the sandbox.
    const answer = await runSmokeTest({
      command: context.layout.launcher('memory'),
      env: { FIXTURE_NOTE: note },
      cwd: env.root,
      timeoutMs: 10_000,
      sandbox: false,
    });
    expect(answer.ok).to.equal(true);
  }

  it('keeps the data file through an update (one inode, seen by the old process and the new version), a rollback and a cleanup', async () => {
    await publish('1.0.0');
    await check();
    expect((await context.state.get('memory')).current).to.equal('1.0.0');
    // The stage's smoke test wrote nothing that stayed (or was recorded as the package's own).
    expect([...(await readVersionFiles(context.layout.versionDir('memory', '1.0.0')))!.keys()])
      .to.include(`node_modules/${PKG}/lib/server.js`)
      .and.not.include(MEMORY);
    await use('first conversation');
    const before = await lines(versionFile('1.0.0'));
    expect(before.map((line) => line.note)).to.include('first conversation');
    expect((await fs.lstat(versionFile('1.0.0'))).isFile()).to.equal(true);
    // A server process of 1.0.0 that keeps its file open across the update.
    const openByOldProcess = await fs.open(versionFile('1.0.0'), 'a');
    const inode = (await openByOldProcess.stat()).ino;

    try {
      await publish('1.1.0');
      await check();
      expect((await context.state.get('memory')).current).to.equal('1.1.0');
      expect((await fs.stat(dataFile())).ino, 'moved by rename: the same inode').to.equal(inode);
      expect((await fs.lstat(versionFile('1.0.0'))).isSymbolicLink()).to.equal(true);
      expect((await fs.lstat(versionFile('1.1.0'))).isSymbolicLink()).to.equal(true);
      expect(await fs.realpath(versionFile('1.1.0'))).to.equal(await fs.realpath(dataFile()));
      await openByOldProcess.appendFile(`${JSON.stringify({ version: '1.0.0', note: 'written by the old process after the update' })}\n`);
    } finally {
      await openByOldProcess.close();
    }
    await use('second conversation');
    const notes = (await lines(dataFile())).map((line) => line.note);
    expect(notes).to.include.members(['first conversation', 'written by the old process after the update', 'second conversation']);
    const [preserved] = await context.events.list({ server: 'memory', type: 'update.data-preserved' });
    expect(preserved).to.include({ version: '1.1.0', from: '1.0.0' });
    expect(preserved!.reason).to.include(MEMORY).and.include('MEMORY_FILE_PATH');
    expect(preserved!.details).to.deep.include({ moved: [MEMORY] });

    const { jobId } = await client.rollback('memory', { version: '1.0.0' });
    await client.waitFor('activate', jobId, 60_000);
    await use('after the rollback');
    expect((await lines(versionFile('1.0.0'))).map((line) => line.note)).to.include.members([
      'first conversation',
      'second conversation',
      'after the rollback',
    ]);

    // A newer version moves on from the rollback; an old 1.1.0 process then writes another file.
    await publish('1.2.0');
    await check();
    expect((await context.state.get('memory')).current).to.equal('1.2.0');
    const late = path.join(context.layout.versionDir('memory', '1.1.0'), `node_modules/${PKG}/lib/late.json`);
    await fs.writeFile(late, '{"late":true}\n');

    // keep: 1 — 1.2.0 is current and 1.0.0 previous: cleanup removes 1.1.0, but not its data.
    const cleanup = await client.cleanup({ server: 'memory' });
    await client.waitFor('cleanup', cleanup.jobId, 60_000);
    expect(await context.layout.installedVersions('memory')).to.have.members(['1.0.0', '1.2.0']);
    expect(await fs.readFile(path.join(context.layout.dataDir('memory'), `node_modules/${PKG}/lib/late.json`), 'utf8')).to.equal(
      '{"late":true}\n',
    );
    expect((await lines(dataFile())).map((line) => line.note)).to.include.members(['first conversation', 'after the rollback']);
    await use('after the cleanup');
    expect((await lines(versionFile('1.2.0'))).map((line) => line.note)).to.include.members(['first conversation', 'after the cleanup']);
    const events = await context.events.list({ server: 'memory', type: 'update.data-preserved' });
    expect(events.some((event) => event.version === '1.1.0' && event.reason?.includes('late.json'))).to.equal(true);
  });
});
