import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SmokeTestError } from '../shared/errors.js';
import { runSmokeTest, smokeTestEnvironment, type SmokeTestOptions } from '../shared/smokeTest.js';
import { fixturePackageDir } from './support/registry.js';

/** Pids the fixture servers wrote to FIXTURE_MCP_LOG. */
async function loggedPids(logFile: string): Promise<number[]> {
  const text = await fs.readFile(logFile, 'utf8').catch(() => '');
  return [...text.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1]));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function expectFailure(options: SmokeTestOptions): Promise<SmokeTestError> {
  try {
    await runSmokeTest(options);
  } catch (error) {
    expect(error).to.be.instanceOf(SmokeTestError);
    return error as SmokeTestError;
  }
  expect.fail('the smoke test passed');
}

describe('runSmokeTest', function () {
  this.timeout(20_000);
  let tmp: string;
  let logFile: string;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-smoke-'));
    logFile = path.join(tmp, 'pids.log');
  });

  afterEach(async () => {
    for (const pid of await loggedPids(logFile)) {
      expect(isRunning(pid), `fixture server pid ${pid} is still running`).to.equal(false);
    }
    await fs.rm(tmp, { recursive: true, force: true });
  });

  function fixture(name: string, timeoutMs: number): SmokeTestOptions {
    return {
      command: process.execPath,
      args: [path.join(fixturePackageDir(name), 'server.js')],
      env: { FIXTURE_MCP_LOG: logFile },
      timeoutMs,
      label: `${name} 1.0.0`,
      // These tests watch the server's host pid; the sandboxed runs are in security-sandbox.test.ts.
      sandbox: false,
    };
  }

  it('passes a healthy server and records what it said', async () => {
    const record = await runSmokeTest(fixture('mcp-healthy', 5_000));
    expect(record).to.include({ ok: true, serverName: 'mcp-healthy', serverVersion: '1.0.0', toolCount: 2 });
    expect(record.protocolVersion).to.match(/^\d{4}-\d{2}-\d{2}$/);
    expect(record.durationMs).to.be.a('number').and.at.least(0);
    expect(await loggedPids(logFile)).to.have.length(1);
  });

  /** A copy of the mcp-surface fixture serving `surface` (its package.json's fixtureSurface). */
  async function surfaceServer(surface: Record<string, unknown>): Promise<SmokeTestOptions> {
    const dir = path.join(tmp, 'surface');
    await fs.mkdir(dir, { recursive: true });
    await fs.copyFile(path.join(fixturePackageDir('mcp-surface'), 'server.js'), path.join(dir, 'server.js'));
    await fs.writeFile(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'mcp-surface', version: '1.0.0', type: 'module', fixtureSurface: surface }),
    );
    return { command: process.execPath, args: [path.join(dir, 'server.js')], timeoutMs: 5_000, label: 'mcp-surface 1.0.0', sandbox: false };
  }

  it('records the whole MCP surface when asked: tools, prompts, resources, templates, instructions', async () => {
    const options = await surfaceServer({
      instructions: 'Be brief.',
      tools: [
        {
          name: 'echo',
          description: 'Echoes.',
          inputSchema: { type: 'object' },
          annotations: { readOnlyHint: true },
          _meta: { ignored: true },
        },
      ],
      prompts: [{ name: 'review', description: 'Reviews.', arguments: [{ name: 'code', required: true }] }],
      resources: [{ uri: 'file:///notes', name: 'notes' }],
      resourceTemplates: [{ uriTemplate: 'file:///{path}', name: 'files' }],
    });
    const record = await runSmokeTest({ ...options, surface: true });
    expect(record).to.include({ ok: true, toolCount: 1 });
    expect(record.surface!.items.map((item) => `${item.kind}:${item.key}`)).to.deep.equal([
      'tool:echo',
      'prompt:review',
      'resource:file:///notes',
      'resourceTemplate:file:///{path}',
      'instructions:instructions',
    ]);
    expect(record.surface!.items[0]!.value).to.deep.equal({
      name: 'echo',
      description: 'Echoes.',
      inputSchema: { type: 'object' },
      annotations: { readOnlyHint: true },
    });
    expect(record.surface!.hash).to.match(/^[0-9a-f]{64}$/);
    expect((await runSmokeTest(options)).surface).to.equal(undefined);
  });

  it('takes a list method the server does not implement (resources without templates) as an empty list', async () => {
    const record = await runSmokeTest({
      ...(await surfaceServer({ tools: [], resources: [{ uri: 'file:///a', name: 'a' }] })),
      surface: true,
    });
    expect(record.surface!.items.map((item) => item.kind)).to.deep.equal(['resource']);
  });

  it('fails a server that crashes at start, naming the exit code and its stderr', async () => {
    const error = await expectFailure(fixture('mcp-broken-crash', 5_000));
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include('smoke test of mcp-broken-crash 1.0.0: the server exited with code 1 during initialize');
    expect(error.message).to.include('fatal: simulated startup crash');
    expect(error.hint).to.equal('the package does not start as an MCP server; it was not activated');
    expect(error.details).to.include({ phase: 'initialize', exitCode: 1 });
  });

  it('fails a silent server at the deadline and kills it', async () => {
    const started = Date.now();
    const error = await expectFailure(fixture('mcp-broken-silent', 1_500));
    expect(error.message).to.include('no answer to initialize within 1.5s');
    expect(Date.now() - started).to.be.lessThan(5_000);
    expect(await loggedPids(logFile)).to.have.length(1);
  });

  it('fails a server whose tools/list errors', async () => {
    const error = await expectFailure(fixture('mcp-bad-tools', 5_000));
    expect(error.message).to.include('tools/list failed');
    expect(error.message).to.include('tool registry failed to load');
    expect(error.details).to.include({ phase: 'tools/list' });
  });

  it('fails when the command cannot be spawned', async () => {
    const error = await expectFailure({ command: path.join(tmp, 'no-such-server'), timeoutMs: 2_000 });
    expect(error.message).to.include('spawn failed');
    expect(error.message).to.include('ENOENT');
  });

  it('kills a server that ignores SIGTERM after the deadline', async () => {
    const script = path.join(tmp, 'stubborn.mjs');
    await fs.writeFile(
      script,
      [
        "import { appendFileSync } from 'node:fs';",
        'appendFileSync(process.env.FIXTURE_MCP_LOG, `start pid=${process.pid}\\n`);',
        "process.on('SIGTERM', () => {});",
        "process.stdin.on('end', () => {});",
        'process.stdin.resume();',
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const error = await expectFailure({
      command: process.execPath,
      args: [script],
      env: { FIXTURE_MCP_LOG: logFile },
      timeoutMs: 1_000,
      sandbox: false,
    });
    expect(error.message).to.include('no answer to initialize within 1s');
    expect(await loggedPids(logFile)).to.have.length(1);
  });

  it('keeps only the tail of a long stderr', async () => {
    const script = path.join(tmp, 'noisy.mjs');
    await fs.writeFile(script, "process.stderr.write('x'.repeat(10000) + 'THE END\\n'); process.exit(3);\n");
    const error = await expectFailure({ command: process.execPath, args: [script], timeoutMs: 5_000 });
    expect(error.message).to.include('exited with code 3');
    expect(error.message).to.include('THE END');
    expect((error.details?.stderr as string).length).to.be.at.most(2048);
  });

  it('gives the server a minimal environment with the configured variables on top', () => {
    process.env.MCPU_SMOKE_SECRET = 'do-not-pass';
    try {
      const env = smokeTestEnvironment({ API_KEY: 'dummy' });
      expect(env.PATH).to.equal(process.env.PATH);
      expect(env.API_KEY).to.equal('dummy');
      expect(env).not.to.have.property('MCPU_SMOKE_SECRET');
    } finally {
      delete process.env.MCPU_SMOKE_SECRET;
    }
  });
});
