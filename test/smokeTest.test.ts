import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SmokeTestError } from '../shared/errors.js';
import {
  EXIT_GRACE_MS,
  exitGraceMs,
  findListeningAddress,
  runSmokeTest,
  SANDBOXED_EXIT_GRACE_MS,
  smokeTestEnvironment,
  smokeTestFailureMessage,
  type FailureFacts,
  type SmokeTestOptions,
} from '../shared/smokeTest.js';
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

describe('exitGraceMs', () => {
  it('gives a failed server no grace, and a passed one less in the sandbox, where nothing it writes survives it', () => {
    expect(exitGraceMs({ passed: false, sandboxed: false })).to.equal(0);
    expect(exitGraceMs({ passed: false, sandboxed: true })).to.equal(0);
    expect(exitGraceMs({ passed: true, sandboxed: false })).to.equal(EXIT_GRACE_MS);
    expect(exitGraceMs({ passed: true, sandboxed: true })).to.equal(SANDBOXED_EXIT_GRACE_MS);
    expect(SANDBOXED_EXIT_GRACE_MS).to.be.below(EXIT_GRACE_MS);
  });
});

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

  it("compiles each tool's outputSchema as an SDK client does: a valid one passes, one that cannot compile fails tools/list", async () => {
    const tool = (outputSchema: Record<string, unknown>) => ({ name: 'sum', inputSchema: { type: 'object' }, outputSchema });
    const valid = await runSmokeTest(
      await surfaceServer({ tools: [tool({ type: 'object', properties: { total: { type: 'number', format: 'double' } } })] }),
    );
    expect(valid).to.include({ ok: true, toolCount: 1 });
    const error = await expectFailure(
      await surfaceServer({ tools: [tool({ type: 'object', properties: { total: { $ref: '#/definitions/missing' } } })] }),
    );
    expect(error.message).to.include('the server answered initialize, but tools/list failed: ');
    expect(error.message).to.include('#/definitions/missing');
    expect(error.details).to.include({ phase: 'tools/list' });
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
    expect(error.message).not.to.include('HTTP/SSE');
    expect(error.hint).to.include('did not answer initialize');
    expect(Date.now() - started).to.be.lessThan(5_000);
    expect(await loggedPids(logFile)).to.have.length(1);
  });

  it('fails a server whose tools/list errors, saying it did start and naming the error', async () => {
    const error = await expectFailure(fixture('mcp-bad-tools', 5_000));
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include('smoke test of mcp-bad-tools 1.0.0: the server answered initialize, but tools/list failed');
    expect(error.message).to.include('tool registry failed to load');
    expect(error.message).not.to.include('does not start');
    expect(error.hint).to.include('tools/list answer is an error or malformed');
    expect(error.details).to.include({ phase: 'tools/list' });
  });

  it('summarizes a malformed tools/list answer: the first 3 schema problems and a count of the rest', async () => {
    const error = await expectFailure(fixture('mcp-bad-schema', 5_000));
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include('the server answered initialize, but tools/list failed: the answer does not match the MCP schema (');
    expect(error.message).to.include('tools.0.name: ');
    expect(error.message).to.match(/; and \d+ more\)$/);
    expect(error.message.length).to.be.below(500);
    expect(error.hint).to.include('tools/list');
  });

  it('tells an HTTP/SSE-only server that announced its URL from one that hangs', async () => {
    const error = await expectFailure(fixture('mcp-http-only', 1_500));
    expect(error.code).to.equal('ESMOKETEST');
    expect(error.message).to.include(
      'smoke test of mcp-http-only 1.0.0: it printed http://localhost:3000/sse and waits there: it looks like an HTTP/SSE server, not a stdio one',
    );
    expect(error.hint).to.include('set smokeTest.command/args to start its stdio mode, or disable the smoke test');
    expect(await loggedPids(logFile)).to.have.length(1);
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

  it('keeps only the start and the end of a long stderr', async () => {
    const script = path.join(tmp, 'noisy.mjs');
    await fs.writeFile(
      script,
      "process.stderr.write('Error: set API_KEY\\n' + 'usage line\\n'.repeat(1000) + 'THE END\\n'); process.exit(3);\n",
    );
    const error = await expectFailure({ command: process.execPath, args: [script], timeoutMs: 5_000 });
    expect(error.message).to.include('exited with code 3');
    expect(error.message).to.include('stderr: Error: set API_KEY\nusage line').and.include('[…]').and.include('usage line\nTHE END');
    expect((error.details?.stderr as string).length).to.be.at.most(2048);
  });

  it('gives the server a minimal environment with the configured variables on top', async () => {
    process.env.MCPU_SMOKE_SECRET = 'do-not-pass';
    try {
      const env = await smokeTestEnvironment({ API_KEY: 'dummy' });
      expect(env.PATH).to.equal(process.env.PATH);
      expect(env.API_KEY).to.equal('dummy');
      expect(env).not.to.have.property('MCPU_SMOKE_SECRET');
    } finally {
      delete process.env.MCPU_SMOKE_SECRET;
    }
  });
});

describe('smokeTestFailureMessage', () => {
  const base: FailureFacts = {
    label: 'demo 1.0.0',
    command: '/srv/demo',
    timeoutMs: 2_000,
    phase: 'initialize',
    timedOut: false,
    error: new Error('boom'),
    stderr: '',
  };
  const zodDump = {
    name: 'ZodError',
    message: 'a 2 KB JSON dump',
    issues: [
      { path: ['tools', 0, 'name'], message: 'Invalid input: expected string, received number' },
      { path: ['tools', 0, 'inputSchema'], message: 'Invalid input: expected object, received undefined' },
      { path: ['tools', 1, 'name'], message: 'Invalid input: expected string, received number' },
      { path: ['tools', 1, 'inputSchema'], message: 'Invalid input: expected object, received undefined' },
      { path: [], message: 'root problem' },
    ],
  };
  const START_HINT = 'the package does not start as an MCP server; it was not activated';
  const cases: { name: string; facts: Partial<FailureFacts>; message: string; hint: string }[] = [
    {
      name: 'spawn failed',
      facts: { phase: 'start', error: Object.assign(new Error('spawn /srv/demo ENOENT'), { code: 'ENOENT' }) },
      message: 'smoke test of demo 1.0.0: spawn failed: could not start "/srv/demo" (ENOENT: spawn /srv/demo ENOENT)',
      hint: START_HINT,
    },
    {
      name: 'exited before answering initialize',
      facts: { exitCode: 1, stderr: 'fatal: no config' },
      message: 'smoke test of demo 1.0.0: the server exited with code 1 during initialize; stderr: fatal: no config',
      hint: START_HINT,
    },
    {
      name: 'killed before answering initialize',
      facts: { signal: 'SIGKILL' },
      message: 'smoke test of demo 1.0.0: the server was killed by SIGKILL during initialize',
      hint: START_HINT,
    },
    {
      name: 'initialize answered with an error',
      facts: { error: new Error("Server's protocol version is not supported: 1999-01-01") },
      message: "smoke test of demo 1.0.0: initialize failed: Server's protocol version is not supported: 1999-01-01",
      hint: 'the server started but its initialize answer was refused; check that it speaks a supported MCP protocol version, or report it upstream; it was not activated',
    },
    {
      name: 'tools/list answered with an error',
      facts: { phase: 'tools/list', error: new Error('MCP error -32603: registry down') },
      message: 'smoke test of demo 1.0.0: the server answered initialize, but tools/list failed: MCP error -32603: registry down',
      hint: 'the server starts but its tools/list answer is an error or malformed; check its configuration (smokeTest.env) or report it upstream; it was not activated',
    },
    {
      name: 'exited during tools/list',
      facts: { phase: 'tools/list', exitCode: 2 },
      message: 'smoke test of demo 1.0.0: the server answered initialize, then exited with code 2 during tools/list',
      hint: 'the server starts but dies when asked for tools/list; its stderr says why; it was not activated',
    },
    {
      name: 'a schema-validation dump of 5 issues',
      facts: { phase: 'tools/list', error: zodDump },
      message:
        'smoke test of demo 1.0.0: the server answered initialize, but tools/list failed: the answer does not match the MCP schema (tools.0.name: Invalid input: expected string, received number; tools.0.inputSchema: Invalid input: expected object, received undefined; tools.1.name: Invalid input: expected string, received number; and 2 more)',
      hint: 'the server starts but its tools/list answer is an error or malformed; check its configuration (smokeTest.env) or report it upstream; it was not activated',
    },
    {
      name: 'a schema-validation dump only in the message, 1 issue at the root',
      facts: { error: new Error(JSON.stringify([{ code: 'custom', path: [], message: 'bad result' }], null, 2)) },
      message: 'smoke test of demo 1.0.0: initialize failed: the answer does not match the MCP schema ((root): bad result)',
      hint: 'the server started but its initialize answer was refused; check that it speaks a supported MCP protocol version, or report it upstream; it was not activated',
    },
    {
      name: 'a hang',
      facts: { timedOut: true, stderr: 'loading...' },
      message: 'smoke test of demo 1.0.0: no answer to initialize within 2s; stderr: loading...',
      hint: 'the server started but did not answer initialize; check that smokeTest.command/args start it as a stdio MCP server that needs no input, or raise smokeTest.timeout if it is only slow; it was not activated',
    },
    {
      name: 'a hang after printing a URL on stderr',
      facts: { timedOut: true, stderr: 'Server listening on http://0.0.0.0:8080/mcp.' },
      message:
        'smoke test of demo 1.0.0: it printed http://0.0.0.0:8080/mcp and waits there: it looks like an HTTP/SSE server, not a stdio one (no answer to initialize within 2s); stderr: Server listening on http://0.0.0.0:8080/mcp.',
      hint: 'set smokeTest.command/args to start its stdio mode, or disable the smoke test (smokeTest.enabled: false); it was not activated',
    },
    {
      name: 'a hang after printing a URL on stdout',
      facts: { timedOut: true, stdoutNoise: 'SSE endpoint: http://127.0.0.1:3001/sse' },
      message:
        'smoke test of demo 1.0.0: it printed http://127.0.0.1:3001/sse and waits there: it looks like an HTTP/SSE server, not a stdio one (no answer to initialize within 2s)',
      hint: 'set smokeTest.command/args to start its stdio mode, or disable the smoke test (smokeTest.enabled: false); it was not activated',
    },
    {
      name: 'a hang in tools/list (it did answer on stdio)',
      facts: { timedOut: true, phase: 'tools/list', stderr: 'listening on http://localhost:3000' },
      message: 'smoke test of demo 1.0.0: no answer to tools/list within 2s; stderr: listening on http://localhost:3000',
      hint: 'the server answered initialize but not tools/list; raise smokeTest.timeout if it is only slow, otherwise report it upstream; it was not activated',
    },
  ];
  for (const { name, facts, message, hint } of cases) {
    it(name, () => {
      const built = smokeTestFailureMessage({ ...base, ...facts });
      expect(built.message).to.equal(message);
      expect(built.hint).to.equal(hint);
    });
  }
});

describe('findListeningAddress', () => {
  const cases: [string, string | undefined][] = [
    ['MCP server listening on http://localhost:3000/sse', 'http://localhost:3000/sse'],
    ['ready at https://[::1]:8443', 'https://[::1]:8443'],
    ['Listening on port 8080', 'port 8080'],
    ['started on ws://example.test:9000/mcp', 'ws://example.test:9000/mcp'],
    ['docs: https://example.test/readme', undefined],
    ['server started, docs at https://example.test/readme', undefined],
    ['loading tools...', undefined],
    ['', undefined],
  ];
  for (const [output, expected] of cases) {
    it(`${JSON.stringify(output)} -> ${String(expected)}`, () => {
      expect(findListeningAddress(output)).to.equal(expected);
    });
  }
});
