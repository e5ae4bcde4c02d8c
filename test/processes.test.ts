/*
 * Worker processes as they run in production (`mcp-updater start --role worker`): two of them
 * racing on one server, and a SIGTERM in the middle of a stage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import type { WorkerContext } from '../workers/context.js';
import { FixtureRegistry } from './support/registry.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { pipelineIdle } from './support/pipeline.js';
import { waitUntil } from './support/wait.js';

const BIN = fileURLToPath(new URL('../bin/mcp-updater.js', import.meta.url));
const old = new Date(Date.now() - 30 * 86_400_000);

function startWorkerProcess(env: TestEnv): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, [BIN, 'start', '--role', 'worker'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: string[] };
  child.output = [];
  child.stdout!.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('worker processes', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let client: ProducerClient;
  const children: ChildProcess[] = [];

  async function setUp(inventory: string) {
    env = await createTestEnv({ registryUrl: registry.url, inventory });
    context = await env.context();
    client = ProducerClient.connect(env.config);
  }

  const settled = () => pipelineIdle(context.queues, ['check', 'download', 'stage', 'activate']);

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    await client?.close();
    await env?.cleanup();
    await registry.close();
  });

  it('two worker processes and 20 concurrent triggers produce one download, one stage, one activation', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('defaults: { minReleaseAge: 0 }\nservers:\n  demo: { package: demo-mcp }\n');
    children.push(startWorkerProcess(env), startWorkerProcess(env));
    const other = ProducerClient.connect(env.config);
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, index) => (index % 2 ? client : other).check('demo', { reason: `trigger ${index}` })),
      );
    } finally {
      await other.close();
    }
    await waitUntil('demo to be installed', async () => (await context.state.get('demo')).current === '1.0.0' && settled(), 60_000, 100);
    const events = await context.events.list({ server: 'demo', limit: 200 });
    const count = (type: string) => events.filter((event) => event.type === type).length;
    expect({ downloaded: count('update.downloaded'), staged: count('update.staged'), activated: count('update.activated') }).to.deep.equal({
      downloaded: 1,
      staged: 1,
      activated: 1,
    });
    expect(await context.queues.download.getCompletedCount()).to.equal(1);
    expect(await context.queues.stage.getCompletedCount()).to.equal(1);
    expect(await context.queues.activate.getCompletedCount()).to.equal(1);
    expect(await context.layout.installedVersions('demo')).to.deep.equal(['1.0.0']);
  });

  it('SIGTERM during a stage lets the job finish, exits 0, and never makes a partial version current', async () => {
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await setUp('defaults: { minReleaseAge: 0 }\nservers:\n  demo: { package: demo-mcp }\n');
    const first = startWorkerProcess(env);
    children.push(first);
    await client.check('demo');
    await waitUntil('1.0.0 to be installed', async () => (await context.state.get('demo')).current === '1.0.0' && settled(), 60_000, 100);

    // 1.1.0 answers its handshake only after 2.5 s: the stage is surely running when SIGTERM comes.
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await env.writeInventory(
      'defaults: { minReleaseAge: 0 }\nservers:\n  demo:\n    package: demo-mcp\n    smokeTest: { env: { FIXTURE_MCP_DELAY_MS: "2500" } }\n',
    );
    // The worker process re-reads the inventory by itself (file watch); give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 600));
    await client.check('demo');
    const stagingRoot = path.join(context.layout.stagingRoot, 'demo');
    await waitUntil('the stage to start', async () => (await fs.readdir(stagingRoot).catch(() => [])).length > 0, 30_000, 20);
    first.kill('SIGTERM');

    // While the process drains, `current` must always point at a complete, verified version.
    const seen = new Set<string>();
    while (first.exitCode === null) {
      const current = await context.layout.currentVersion('demo');
      if (current) {
        seen.add(current);
        const record = await context.layout.readVersionRecord('demo', current);
        expect(record?.version, `version.json of current ${current}`).to.equal(current);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(await exited(first)).to.equal(0);
    expect([...seen].every((version) => ['1.0.0', '1.1.0'].includes(version))).to.equal(true);
    const stage = (await context.queues.stage.getJobs(['completed', 'failed', 'active', 'waiting'])).find(
      (job) => job.data.version === '1.1.0',
    );
    expect(await stage?.getState()).to.equal('completed');

    // A new worker picks up whatever is left (the activation) and finishes the update.
    children.push(startWorkerProcess(env));
    await waitUntil('1.1.0 to be active', async () => (await context.state.get('demo')).current === '1.1.0' && settled(), 60_000, 100);
    expect(await context.layout.currentVersion('demo')).to.equal('1.1.0');
  });
});
