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
    await fs.writeFile(script, [
      "import { appendFileSync } from 'node:fs';",
      'appendFileSync(process.env.FIXTURE_MCP_LOG, `start pid=${process.pid}\\n`);',
      "process.on('SIGTERM', () => {});",
      "process.stdin.on('end', () => {});",
      'process.stdin.resume();',
      'setInterval(() => {}, 1000);',
    ].join('\n'));
    const error = await expectFailure({ command: process.execPath, args: [script], env: { FIXTURE_MCP_LOG: logFile }, timeoutMs: 1_000, sandbox: false });
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
