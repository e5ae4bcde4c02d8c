/*
 * Python servers end to end (docs/ARCHITECTURE.md "Ecosystems"): real BullMQ workers on the real
 * Redis, the fixture package index on loopback serving real wheels of tiny MCP servers, real pip
 * for dependencies, real handshakes through bin/<name>.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureIndex } from './support/pypiIndex.js';
import { waitUntil } from './support/wait.js';

const DAY = 86_400_000;
const old = new Date(Date.now() - 30 * DAY);
const fresh = new Date(Date.now() - 60_000);

function inventory(servers: string, defaults = '  minReleaseAge: 0\n'): string {
  return `defaults:\n${defaults}  smokeTest: { timeout: 20s }\nservers:\n${servers}`;
}

describe('pypi servers end to end (workers, fixture index, real wheels, real pip)', function () {
  this.timeout(120_000);
  let index: FixtureIndex;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;
  let scratch: string;
  const savedIndex = process.env.PYPI_INDEX_URL;

  async function setUp(servers: string, defaults?: string): Promise<void> {
    env = await createTestEnv({ inventory: inventory(servers, defaults) });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
    client = ProducerClient.connect(env.config);
  }

  async function checkAndSettle(server: string, force = false): Promise<void> {
    await client.check(server, { force, reason: 'test' });
    await settle();
  }

  async function settle(): Promise<void> {
    await waitUntil('the pipeline to settle', async () => {
      for (const name of ['check', 'download', 'stage', 'activate', 'cleanup'] as const) {
        const counts = await context.queues[name].getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        if (Object.values(counts).some((count) => count > 0)) return false;
      }
      return true;
    }, 100_000, 100);
  }

  async function handshake(server: string) {
    return runSmokeTest({ command: context.layout.launcher(server), args: [], env: {}, cwd: env.root, timeoutMs: 15_000 });
  }

  beforeEach(async () => {
    scratch = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'mcpu-test-wheels-'));
    index = await FixtureIndex.start(scratch);
    process.env.PYPI_INDEX_URL = index.url;
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await client?.close();
    await env?.cleanup();
    await index.close();
    await fs.rm(scratch, { recursive: true, force: true });
    if (savedIndex === undefined) delete process.env.PYPI_INDEX_URL; else process.env.PYPI_INDEX_URL = savedIndex;
  });

  it('installs the newest stable release first, then updates; pre-releases and yanked releases are skipped', async () => {
    index.publish({ name: 'demo-py-mcp', version: '1.0.0', kind: 'healthy', uploadedAt: old });
    await setUp('  demo: { pypi: demo-py-mcp }\n');
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
    expect(await handshake('demo')).to.include({ ok: true, serverName: 'demo-py-mcp', serverVersion: '1.0.0', toolCount: 2 });
    const requirements = await fs.readFile(path.join(context.layout.versionDir('demo', '1.0.0'), '.mcp-updater', 'requirements.txt'), 'utf8');
    expect(requirements).to.match(/^demo-py-mcp==1\.0\.0 --hash=sha256:[0-9a-f]{64}$/m);

    index.publish({ name: 'demo-py-mcp', version: '1.1', kind: 'healthy', uploadedAt: old });
    index.publish({ name: 'demo-py-mcp', version: '1.2.0', kind: 'healthy', uploadedAt: old, yanked: true });
    index.publish({ name: 'demo-py-mcp', version: '1.3.0rc1', kind: 'healthy', uploadedAt: old });
    await checkAndSettle('demo');
    expect(await context.state.get('demo')).to.include({ current: '1.1', previous: '1.0.0', state: 'idle' });
    expect(await handshake('demo')).to.include({ ok: true, serverVersion: '1.1' });
  });
});
