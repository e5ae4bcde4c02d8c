/*
 * The smoke test: start a staged MCP server the way a client does (stdio, through the SDK's
 * StdioClientTransport), complete the initialize handshake and list its tools (for a stage, its
 * whole MCP surface: shared/surface.ts), all within one deadline. Whatever happens, the client is
 * closed and the child process is dead before this returns, so a hanging or crashing candidate
 * never outlives its test.
 *
 * The candidate is code nobody has approved yet, running as our uid: where bubblewrap works it
 * runs in a sandbox (see sandboxArguments) that cannot see the service's processes, environment,
 * secret files or anything on disk it was not given.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import { SmokeTestError } from './errors.js';
import { META_DIR, type SmokeTestRecord } from './layout.js';
import { redactString, secretFiles } from './redact.js';
import { findExecutable, NAMESPACE_FLAGS, sandboxStatus } from './sandbox.js';
import { buildSurfaceRecord, type RawSurface, type SurfaceRecord } from './surface.js';

export interface SmokeTestOptions {
  command: string;
  args?: string[];
  /** Merged over the minimal environment of `smokeTestEnvironment`. */
  env?: Record<string, string>;
  cwd?: string;
  /** One deadline for start, initialize and tools/list together. */
  timeoutMs: number;
  /** Names the candidate in error messages ("memory 1.2.3"). */
  label?: string;
  /** false: the sandbox gets no network (smokeTest.network). Default true. */
  network?: boolean;
  /**
   * false runs the command directly even where bubblewrap works: only for tests that watch the
   * server's own pid from outside. Default: sandboxed whenever sandboxStatus() says it can be.
   */
  sandbox?: boolean;
  /**
   * Also list prompts, resources and resource templates (when the server advertises them) and
   * read its instructions: the whole MCP surface, returned as `surface` (shared/surface.ts).
   */
  surface?: boolean;
}

/** What runSmokeTest resolves with: the record, plus the surface when it was asked for. */
export interface SmokeTestResult extends SmokeTestRecord {
  surface?: SurfaceRecord;
}

/** How much of the server's stderr is kept for the error message (its start and its end). */
export const STDERR_TAIL_BYTES = 2048;
/** Variables passed on besides the SDK's safe defaults (HOME, LOGNAME, PATH, SHELL, TERM, USER). */
const EXTRA_INHERITED_ENV = ['LANG', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TZ', 'MCP_UPDATER_NODE'];
/** Pages of each list followed; a server that pages forever still passes on what it listed. */
const MAX_TOOL_PAGES = 20;
const CLIENT_INFO = { name: 'mcp-updater-smoke-test', version: '1.0.0' };
/** After a passed test, how long an unsandboxed server gets to exit once its stdin is closed (exitGraceMs). */
export const EXIT_GRACE_MS = 2_000;
/** The same in the sandbox, where nothing the server writes survives it. */
export const SANDBOXED_EXIT_GRACE_MS = 250;

type Phase = 'start' | 'initialize' | 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

/**
 * The MCP SDK's client, with zod under it (~150 modules, several MB of heap), is loaded by the
 * first smoke test rather than by every process that imports this module: a check-only worker, the
 * dashboard and the CLI never need it. Loaded once per process; every later smoke test reuses it.
 */
let sdk: ReturnType<typeof importSdk> | undefined;

async function importSdk() {
  const [{ Client }, { getDefaultEnvironment, StdioClientTransport }, { ErrorCode, McpError }, { AjvJsonSchemaValidator }] =
    await Promise.all([
      import('@modelcontextprotocol/sdk/client/index.js'),
      import('@modelcontextprotocol/sdk/client/stdio.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      import('@modelcontextprotocol/sdk/validation/ajv'),
    ]);
  return { Client, getDefaultEnvironment, StdioClientTransport, ErrorCode, McpError, AjvJsonSchemaValidator };
}

function loadSdk(): ReturnType<typeof importSdk> {
  sdk ??= importSdk().catch((error: unknown) => {
    sdk = undefined;
    throw error;
  });
  return sdk;
}

/** A minimal environment (no secrets of ours) with the configured variables on top. */
export async function smokeTestEnvironment(env: Record<string, string> = {}): Promise<Record<string, string>> {
  const base = (await loadSdk()).getDefaultEnvironment();
  for (const key of EXTRA_INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  return { ...base, ...env };
}

/** Read-only system directories; /bin, /lib... may be symlinks into /usr (merged /usr). */
const SYSTEM_DIRS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** The sandbox's private home (a tmpfs, like /tmp). */
export const SANDBOX_HOME = '/home/mcp-smoke-test';

function exists(target: string): boolean {
  try {
    fs.statSync(target);
    return true;
  } catch {
    return false;
  }
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Existing paths an argument or env value names (relative ones against cwd): a directory itself,
 * a file with its directory (`node ./srv/server.js` needs `./srv/package.json`).
 */
function namedPaths(values: readonly string[], cwd: string): string[] {
  const found: string[] = [];
  for (const value of values) {
    const candidates = [value, /^--?[A-Za-z0-9][A-Za-z0-9_.-]*=(.+)$/s.exec(value)?.[1]];
    for (const candidate of candidates) {
      if (
        !candidate
        || !(candidate.startsWith('/') || candidate.startsWith('./') || candidate.startsWith('../') || candidate.includes('/'))
      )
        continue;
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(candidate)) continue;
      const absolute = path.resolve(cwd, candidate);
      if (absolute === '/' || !exists(absolute)) continue;
      found.push(fs.statSync(absolute).isDirectory() ? absolute : path.dirname(absolute));
    }
  }
  return found;
}

/**
 * What the candidate may see besides the system: the directory it runs from, read-only. A run
 * script (`<version>/.mcp-updater/run`) gets its version directory; a launcher
 * (`$MCP_SERVERS_PATH/bin/<name>`) gets itself and `$MCP_SERVERS_PATH/<name>` (current and the
 * versions it resolves to); any other executable gets itself.
 */
function commandPaths(command: string): string[] {
  if (path.basename(path.dirname(command)) === META_DIR) return [path.dirname(path.dirname(command))];
  const sibling = path.join(path.dirname(path.dirname(command)), path.basename(command));
  if (path.basename(path.dirname(command)) === 'bin' && exists(sibling)) return [command, sibling];
  return [command];
}

/** The path itself and, when a symlink leads elsewhere, its real path too (the launcher resolves with `pwd -P`). */
function withRealPath(target: string): string[] {
  try {
    const real = fs.realpathSync(target);
    return real === target ? [target] : [target, real];
  } catch {
    return [target];
  }
}

/**
 * bwrap's arguments: new pid, ipc, uts (and cgroup) namespaces, so the service's processes and
 * their /proc/<pid>/environ are invisible; a new /proc and /dev; /usr, /etc and the other system
 * directories, node's install prefix, PATH's directories, the version directory (or launcher) and
 * the existing paths smokeTest.args/env name, all read-only; a private tmpfs for /tmp, the home
 * directory and the working directory (at its real path, so relative arguments mean what they
 * meant); files registered as secrets (API_TOKEN_FILE..., the inventory) covered by /dev/null (reads empty);
 * no network when `network` is false. The environment is the bwrap process's own, which is
 * exactly the smoke test's (see runSmokeTest): values never appear in a command line.
 */
/** Interpreters' install prefixes besides node's (a Python under /opt or a home directory), read-only in the sandbox. */
const runtimeDirs = new Set<string>();

export function registerRuntimeDir(dir: string): void {
  if (path.isAbsolute(dir)) runtimeDirs.add(dir);
}

export function sandboxArguments(
  options: SmokeTestOptions & {
    cwd: string;
    command: string;
    /** Directories bound read-write (an sdist build's output directory); nothing else is writable. */
    writable?: string[];
  },
): string[] {
  const args = [...NAMESPACE_FLAGS];
  if (options.network === false) args.push('--unshare-net');
  for (const dir of SYSTEM_DIRS) {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(dir), dir);
    else if (stat.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  const privateDirs = ['/tmp', SANDBOX_HOME];
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', SANDBOX_HOME);
  if (options.cwd !== '/' && !isInside(options.cwd, '/tmp')) {
    args.push('--tmpfs', options.cwd);
    privateDirs.push(options.cwd);
  }
  args.push('--dir', options.cwd);
  // Already there: inside a system directory and not under one of the private tmpfs mounts.
  const visible = (target: string) => SYSTEM_DIRS.some((dir) => isInside(target, dir)) && !privateDirs.some((dir) => isInside(target, dir));

  const readOnly: string[] = [];
  for (const executable of [process.execPath, process.env.MCP_UPDATER_NODE]) {
    if (!executable) continue;
    try {
      readOnly.push(path.dirname(path.dirname(fs.realpathSync(executable))));
    } catch {
      // a MCP_UPDATER_NODE that does not exist fails the run script, which says so
    }
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (path.isAbsolute(dir) && exists(dir)) readOnly.push(dir);
  readOnly.push(...runtimeDirs);
  if (options.command.includes('/')) readOnly.push(...commandPaths(path.resolve(options.cwd, options.command)).flatMap(withRealPath));
  readOnly.push(...namedPaths([...(options.args ?? []), ...Object.values(options.env ?? {})], options.cwd));

  const bound: string[] = [];
  for (const target of readOnly) {
    if (target === '/' || visible(target) || bound.includes(target)) continue;
    args.push('--ro-bind-try', target, target);
    bound.push(target);
  }
  for (const target of options.writable ?? []) {
    args.push('--bind', target, target);
    bound.push(target);
  }
  // Last, so they cover whatever bind brought them in. A device bind: plain binds are nodev, and
  // a /dev/null that cannot be opened would say "something is here" louder than an empty file.
  for (const file of secretFiles()) {
    if ((visible(file) || bound.some((dir) => isInside(file, dir))) && exists(file)) args.push('--dev-bind', '/dev/null', file);
  }
  args.push('--chdir', options.cwd);
  return args;
}

/** The smoke test's environment inside the sandbox: the minimal one, with a private HOME and /tmp. */
async function sandboxEnvironment(env: Record<string, string> = {}): Promise<Record<string, string>> {
  return { ...(await smokeTestEnvironment()), HOME: SANDBOX_HOME, TMPDIR: '/tmp', ...env };
}

/** Where bwrap would only say "execvp ... failed" after starting, fail the way an unsandboxed spawn does. */
function assertExecutable(command: string, cwd: string, searchPath: string | undefined): void {
  const resolved = command.includes('/') ? path.resolve(cwd, command) : findExecutable(command, searchPath);
  let code = 'ENOENT';
  if (resolved) {
    try {
      fs.accessSync(resolved, fs.constants.X_OK);
      return;
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code ?? code;
    }
  }
  throw Object.assign(new Error(`spawn ${command} ${code}`), { code });
}

class DeadlineExceeded extends Error {}

/**
 * Keeps the first and the last bytes written, up to `limit` in all. A server that fails at start
 * often says why in its first line and then prints its usage text ("No access token; pass
 * --access-token or set …" then 60 lines of options): the head keeps the reason, the tail the
 * last words of a crash.
 */
export class OutputExcerpt {
  private head = Buffer.alloc(0);
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly headLimit: number;
  private readonly tailLimit: number;
  /** Bytes between the head and the tail were let go. */
  private dropped = false;

  constructor(limit: number) {
    this.headLimit = Math.floor(limit / 4);
    this.tailLimit = limit - this.headLimit;
  }

  push(chunk: Buffer | string): void {
    let buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    if (this.head.length < this.headLimit) {
      const taken = buffer.subarray(0, this.headLimit - this.head.length);
      this.head = Buffer.concat([this.head, taken]);
      buffer = buffer.subarray(taken.length);
      if (buffer.length === 0) return;
    }
    this.chunks.push(buffer);
    this.size += buffer.length;
    while (this.size - this.chunks[0]!.length >= this.tailLimit) {
      this.size -= this.chunks.shift()!.length;
      this.dropped = true;
    }
  }

  toString(): string {
    const tail = Buffer.concat(this.chunks);
    if (!this.dropped && tail.length <= this.tailLimit) return Buffer.concat([this.head, tail]).toString('utf8').trim();
    // Cut at whitespace on both sides of the gap: no half-word, and no half of a secret that the
    // redaction could no longer recognise.
    const head = this.head.toString('utf8');
    const end = tail.subarray(Math.max(0, tail.length - this.tailLimit)).toString('utf8');
    const headCut = head.search(/\s\S*$/);
    const tailCut = end.search(/\s/);
    const before = headCut < 0 ? '' : head.slice(0, headCut).trim();
    const after = tailCut < 0 ? '' : end.slice(tailCut).trim();
    return `${before}\n[…]\n${after}`.trim();
  }
}

/** Run the smoke test; resolves with what the server said, or throws SmokeTestError. */
export async function runSmokeTest(options: SmokeTestOptions): Promise<SmokeTestResult> {
  const { Client, StdioClientTransport, ErrorCode, McpError, AjvJsonSchemaValidator } = await loadSdk();
  const started = performance.now();
  const stderr = new OutputExcerpt(STDERR_TAIL_BYTES);
  const stdout = new OutputExcerpt(STDERR_TAIL_BYTES);
  const sandbox = options.sandbox === false ? undefined : sandboxStatus();
  if (options.network === false && !(sandbox?.sandboxed && sandbox.networkIsolation)) {
    throw new SmokeTestError(
      `${options.label ? `smoke test of ${options.label}` : 'smoke test'}: smokeTest.network is false, but ${sandbox?.sandboxed ? 'this host cannot create network namespaces' : (sandbox?.summary ?? 'the sandbox is off')}`,
      {
        hint: 'install bubblewrap and allow user namespaces, or remove smokeTest.network: false from the inventory',
        details: { phase: 'start' },
      },
    );
  }
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const bwrap = sandbox?.sandboxed ? sandbox.bwrap : undefined;
  const sandboxed = bwrap !== undefined;
  let launch: { command: string; args: string[]; env: Record<string, string> };
  if (bwrap) {
    const env = await sandboxEnvironment(options.env);
    try {
      assertExecutable(options.command, cwd, env.PATH);
    } catch (error) {
      throw describeFailure(error, { options, phase: 'start', stderr: '', durationMs: 0 });
    }
    launch = { command: bwrap, args: [...sandboxArguments({ ...options, cwd }), '--', options.command, ...(options.args ?? [])], env };
  } else {
    launch = { command: options.command, args: options.args ?? [], env: await smokeTestEnvironment(options.env) };
  }
  const transport = new StdioClientTransport({ ...launch, cwd, stderr: 'pipe' });
  transport.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

  let phase: Phase = 'start';
  let protocolVersion: string | undefined;
  let child: ChildProcess | undefined;
  // The client hands the negotiated version to transports that want it (HTTP ones do).
  (transport as Transport).setProtocolVersion = (version: string) => {
    protocolVersion = version;
  };
  // The SDK keeps the child private; holding it lets us report its exit code and make sure it
  // is dead. Without it (a future SDK), messages only lose the exit code.
  const start = transport.start.bind(transport);
  transport.start = async () => {
    await start();
    child = (transport as unknown as { _process?: ChildProcess })._process;
    // A second reader: the SDK keeps its own; this one only sees what an HTTP server announces there.
    child?.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    phase = 'initialize';
  };

  // listTools compiles each tool's outputSchema with Ajv (one it cannot compile fails tools/list,
  // as it would in a client); the Ajv instance, costly to set up, is made only when a tool has one.
  let ajv: InstanceType<typeof AjvJsonSchemaValidator> | undefined;
  const jsonSchemaValidator: jsonSchemaValidator = {
    getValidator: (schema) => (ajv ??= new AjvJsonSchemaValidator()).getValidator(schema),
  };
  const client = new Client(CLIENT_INFO, { capabilities: {}, jsonSchemaValidator });
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new DeadlineExceeded());
      controller.abort();
    }, options.timeoutMs);
  });
  const request = { signal: controller.signal, timeout: options.timeoutMs };
  /** Every page of one list request (`cursor` in, `nextCursor` out). */
  const listAll = async <T>(
    next: Phase,
    list: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string }>,
  ): Promise<T[]> => {
    phase = next;
    const items: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = await list(cursor);
      items.push(...result.items);
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return items;
  };
  const params = (cursor: string | undefined) => (cursor ? { cursor } : undefined);
  // Servers that advertise resources often implement resources/list only: a list method the
  // server does not have is an empty list, not a broken server.
  const orEmpty = async <T>(list: Promise<T[]>): Promise<T[]> =>
    list.catch((error: unknown) => {
      if (error instanceof McpError && error.code === ErrorCode.MethodNotFound) return [];
      throw error;
    });
  const handshake = async (): Promise<{ toolCount: number; surface?: SurfaceRecord }> => {
    await client.connect(transport, request);
    const tools = await listAll('tools/list', async (cursor) => {
      const result = await client.listTools(params(cursor), request);
      return { items: result.tools, nextCursor: result.nextCursor };
    });
    if (!options.surface) return { toolCount: tools.length };
    const capabilities = client.getServerCapabilities() ?? {};
    const raw: RawSurface = { tools, prompts: [], resources: [], resourceTemplates: [], instructions: client.getInstructions() };
    if (capabilities.prompts) {
      raw.prompts = await orEmpty(
        listAll('prompts/list', async (cursor) => {
          const result = await client.listPrompts(params(cursor), request);
          return { items: result.prompts, nextCursor: result.nextCursor };
        }),
      );
    }
    if (capabilities.resources) {
      raw.resources = await orEmpty(
        listAll('resources/list', async (cursor) => {
          const result = await client.listResources(params(cursor), request);
          return { items: result.resources, nextCursor: result.nextCursor };
        }),
      );
      raw.resourceTemplates = await orEmpty(
        listAll('resources/templates/list', async (cursor) => {
          const result = await client.listResourceTemplates(params(cursor), request);
          return { items: result.resourceTemplates, nextCursor: result.nextCursor };
        }),
      );
    }
    return { toolCount: tools.length, surface: buildSurfaceRecord(raw) };
  };

  let passed = false;
  try {
    const { toolCount, surface } = await Promise.race([handshake(), deadline]);
    passed = true;
    const server = client.getServerVersion();
    return {
      ok: true,
      serverName: server?.name,
      serverVersion: server?.version,
      protocolVersion,
      toolCount,
      durationMs: Math.round(performance.now() - started),
      ...(surface ? { surface } : {}),
    };
  } catch (error) {
    // A crash surfaces as "connection closed" a moment before the exit status and the last
    // stderr lines are in; wait for them briefly so the message can name both.
    if (child && error instanceof McpError && error.code === ErrorCode.ConnectionClosed) {
      await exited(child, 500);
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw describeFailure(error, {
      options,
      phase,
      child,
      stderr: stderr.toString(),
      stdout: stdout.toString(),
      durationMs: Math.round(performance.now() - started),
    });
  } finally {
    clearTimeout(timer);
    await Promise.all([client.close().catch(() => undefined), child ? stopProcess(child, exitGraceMs({ passed, sandboxed })) : undefined]);
  }
}

/** What the failure message is built from: what happened, as runSmokeTest saw it. */
export interface FailureFacts {
  label?: string;
  command: string;
  timeoutMs: number;
  phase: Phase;
  /** The one deadline passed. */
  timedOut: boolean;
  exitCode?: number;
  signal?: string;
  error: unknown;
  /** Redacted start and end of the server's stderr. */
  stderr: string;
  /** Redacted start and end of what the server wrote to stdout that is not JSON-RPC. */
  stdoutNoise?: string;
}

/** Schema problems named in full; the rest are counted. */
const SCHEMA_ISSUES_SHOWN = 3;
const START_HINT = 'the package does not start as an MCP server; it was not activated';

interface SchemaIssue {
  path: readonly PropertyKey[];
  message: string;
}

function isSchemaIssues(value: unknown): value is SchemaIssue[] {
  return (
    Array.isArray(value)
    && value.length > 0
    && value.every((issue: unknown) => {
      const candidate = issue as Partial<SchemaIssue> | null;
      return typeof candidate === 'object' && candidate !== null && Array.isArray(candidate.path) && typeof candidate.message === 'string';
    })
  );
}

/** The issues of a schema-validation error (zod's `issues`, or its message, which is their JSON dump). */
function schemaIssues(error: unknown): SchemaIssue[] | undefined {
  const candidate = error as { issues?: unknown; message?: unknown } | null;
  if (typeof candidate !== 'object' || candidate === null) return undefined;
  if (isSchemaIssues(candidate.issues)) return candidate.issues;
  if (typeof candidate.message === 'string' && candidate.message.trimStart().startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(candidate.message);
      if (isSchemaIssues(parsed)) return parsed;
    } catch {
      // not a dump of issues: the message is used as it is
    }
  }
  return undefined;
}

/** An error in one line: a schema-validation dump becomes its first few problems and a count of the rest. */
function summarizeError(error: unknown): string {
  const issues = schemaIssues(error);
  if (issues) {
    const shown = issues.slice(0, SCHEMA_ISSUES_SHOWN).map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    const rest = issues.length - shown.length;
    return `the answer does not match the MCP schema (${shown.join('; ')}${rest > 0 ? `; and ${rest} more` : ''})`;
  }
  const cause = error as { code?: unknown; message?: unknown } | null;
  return typeof cause?.message === 'string' ? cause.message : String(error);
}

/**
 * Where a server says it waits for HTTP: a loopback or any-address URL, a URL with a port on a line
 * that says it listens there (a docs link does not count), or "listening on port N".
 */
export function findListeningAddress(output: string): string | undefined {
  const url = /\b(?:https?|wss?):\/\/(?:\[[^\]\s]*\])?[^\s'"<>`)\]]*/gi;
  const waiting = /\b(?:listen\w*|serv(?:er|ing)|running|started|ready|available|waiting|open(?:ed)?|sse|endpoint)\b/i;
  const local = /^[a-z]+:\/\/(?:localhost|127(?:\.\d+){3}|0\.0\.0\.0|\[::1?\])(?::\d+)?(?:[/?#]|$)/i;
  for (const line of output.split('\n')) {
    for (const match of line.matchAll(url)) {
      const found = match[0].replace(/[.,;:]+$/, '');
      if (local.test(found) || (waiting.test(line) && /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/?#]*):\d+/i.test(found))) return found;
    }
  }
  const port = /\b(?:listen\w*|serving|running|started)\b[^\n]*?\bport\s*:?\s*(\d{2,5})\b/i.exec(output)?.[1];
  return port ? `port ${port}` : undefined;
}

/** The message and hint of a failed smoke test: what happened, and what to do about it. */
export function smokeTestFailureMessage(facts: FailureFacts): { message: string; hint: string } {
  const { phase, exitCode, signal } = facts;
  const subject = facts.label ? `smoke test of ${facts.label}` : 'smoke test';
  const answeredInitialize = phase !== 'start' && phase !== 'initialize';
  let what: string;
  let hint: string;
  if (facts.timedOut) {
    const address = findListeningAddress(`${facts.stderr}\n${facts.stdoutNoise ?? ''}`);
    if (address && !answeredInitialize) {
      what = `it printed ${address} and waits there: it looks like an HTTP/SSE server, not a stdio one (no answer to ${phase} within ${formatSeconds(facts.timeoutMs)})`;
      hint =
        'set smokeTest.command/args to start its stdio mode, or disable the smoke test (smokeTest.enabled: false); it was not activated';
    } else {
      what = `no answer to ${phase} within ${formatSeconds(facts.timeoutMs)}`;
      hint = answeredInitialize
        ? `the server answered initialize but not ${phase}; raise smokeTest.timeout if it is only slow, otherwise report it upstream; it was not activated`
        : 'the server started but did not answer initialize; check that smokeTest.command/args start it as a stdio MCP server that needs no input, or raise smokeTest.timeout if it is only slow; it was not activated';
    }
  } else if (phase === 'start') {
    const cause = facts.error as { code?: unknown } | null;
    what = `spawn failed: could not start ${JSON.stringify(facts.command)} (${typeof cause?.code === 'string' ? `${cause.code}: ` : ''}${summarizeError(facts.error)})`;
    hint = START_HINT;
  } else if (exitCode !== undefined || signal) {
    const ended = exitCode !== undefined ? `exited with code ${exitCode}` : `was killed by ${signal}`;
    what = answeredInitialize ? `the server answered initialize, then ${ended} during ${phase}` : `the server ${ended} during ${phase}`;
    hint = answeredInitialize
      ? `the server starts but dies when asked for ${phase}; its stderr says why; it was not activated`
      : START_HINT;
  } else if (answeredInitialize) {
    what = `the server answered initialize, but ${phase} failed: ${summarizeError(facts.error)}`;
    hint = `the server starts but its ${phase} answer is an error or malformed; check its configuration (smokeTest.env) or report it upstream; it was not activated`;
  } else {
    what = `initialize failed: ${summarizeError(facts.error)}`;
    hint =
      'the server started but its initialize answer was refused; check that it speaks a supported MCP protocol version, or report it upstream; it was not activated';
  }
  return { message: `${subject}: ${what}${facts.stderr ? `; stderr: ${facts.stderr}` : ''}`, hint };
}

function describeFailure(
  error: unknown,
  facts: { options: SmokeTestOptions; phase: Phase; child?: ChildProcess; stderr: string; stdout?: string; durationMs: number },
): SmokeTestError {
  const { options, phase, child, durationMs } = facts;
  const exitCode = child?.exitCode ?? undefined;
  const signal = child?.signalCode ?? undefined;
  const stderr = redactString(facts.stderr);
  const { message, hint } = smokeTestFailureMessage({
    label: options.label,
    command: options.command,
    timeoutMs: options.timeoutMs,
    phase,
    timedOut: error instanceof DeadlineExceeded,
    exitCode,
    signal,
    error,
    stderr,
    stdoutNoise: redactString(nonProtocolLines(facts.stdout ?? '')),
  });
  return new SmokeTestError(message, {
    hint,
    cause: error,
    details: { phase, exitCode, signal, durationMs, timeoutMs: options.timeoutMs, stderr: stderr || undefined },
  });
}

/** Lines of stdout that are not JSON-RPC messages (a server announcing its URL there). */
function nonProtocolLines(stdout: string): string {
  return stdout
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('{'))
    .join('\n');
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolve true once the child has exited, false after `ms`. */
async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return true;
  if (ms <= 0) return false;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    await once(child, 'exit', { signal: controller.signal });
    return true;
  } catch {
    return hasExited(child);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * How long a server gets to leave on its own once its stdin is closed, before SIGTERM. A failed
 * one gets none. One that passed gets EXIT_GRACE_MS unsandboxed, where it may still be writing
 * its files; in the sandbox nothing it writes outlives it (read-only binds, tmpfs), so a server
 * that ignores the closed stdin is stopped after SANDBOXED_EXIT_GRACE_MS rather than holding its
 * stage or activation for seconds. A server that exits on end of input (most do) is never
 * signalled either way.
 */
export function exitGraceMs(test: { passed: boolean; sandboxed: boolean }): number {
  if (!test.passed) return 0;
  return test.sandboxed ? SANDBOXED_EXIT_GRACE_MS : EXIT_GRACE_MS;
}

/** Give the child `graceMs` to leave on its own (stdin closed), then SIGTERM, then SIGKILL. */
async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (await exited(child, graceMs)) return;
  child.kill('SIGTERM');
  if (await exited(child, 1_000)) return;
  child.kill('SIGKILL');
  await exited(child, 5_000);
}
