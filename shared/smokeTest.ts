/*
 * The smoke test: start a staged MCP server the way a client does (stdio, through the SDK's
 * StdioClientTransport), complete the initialize handshake and list its tools, all within one
 * deadline. Whatever happens, the client is closed and the child process is dead before this
 * returns, so a hanging or crashing candidate never outlives its test.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { SmokeTestError } from './errors.js';
import type { SmokeTestRecord } from './layout.js';
import { redactString } from './redact.js';

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
}

/** How much of the server's stderr is kept for the error message. */
export const STDERR_TAIL_BYTES = 2048;
/** Variables passed on besides the SDK's safe defaults (HOME, LOGNAME, PATH, SHELL, TERM, USER). */
const EXTRA_INHERITED_ENV = ['LANG', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TZ', 'MCP_UPDATER_NODE'];
/** Pages of tools/list followed; a server that pages forever still passes on what it listed. */
const MAX_TOOL_PAGES = 20;
const CLIENT_INFO = { name: 'mcp-updater-smoke-test', version: '1.0.0' };
const HINT = 'the package does not start as an MCP server; it was not activated';

type Phase = 'start' | 'initialize' | 'tools/list';

/** A minimal environment (no secrets of ours) with the configured variables on top. */
export function smokeTestEnvironment(env: Record<string, string> = {}): Record<string, string> {
  const base = getDefaultEnvironment();
  for (const key of EXTRA_INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) base[key] = value;
  }
  return { ...base, ...env };
}

class DeadlineExceeded extends Error {}

/** Keeps the last `limit` bytes written. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}

  push(chunk: Buffer | string): void {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    this.chunks.push(buffer);
    this.size += buffer.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }

  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8').trim();
  }
}

/** Run the smoke test; resolves with what the server said, or throws SmokeTestError. */
export async function runSmokeTest(options: SmokeTestOptions): Promise<SmokeTestRecord> {
  const started = performance.now();
  const stderr = new Tail(STDERR_TAIL_BYTES);
  const transport = new StdioClientTransport({
    command: options.command,
    args: options.args ?? [],
    env: smokeTestEnvironment(options.env),
    cwd: options.cwd,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

  let phase: Phase = 'start';
  let protocolVersion: string | undefined;
  let child: ChildProcess | undefined;
  // The client hands the negotiated version to transports that want it (HTTP ones do).
  (transport as Transport).setProtocolVersion = (version: string) => { protocolVersion = version; };
  // The SDK keeps the child private; holding it lets us report its exit code and make sure it
  // is dead. Without it (a future SDK), messages only lose the exit code.
  const start = transport.start.bind(transport);
  transport.start = async () => {
    await start();
    child = (transport as unknown as { _process?: ChildProcess })._process;
    phase = 'initialize';
  };

  const client = new Client(CLIENT_INFO, { capabilities: {} });
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new DeadlineExceeded());
      controller.abort();
    }, options.timeoutMs);
  });
  const request = { signal: controller.signal, timeout: options.timeoutMs };
  const handshake = async (): Promise<number> => {
    await client.connect(transport, request);
    phase = 'tools/list';
    let toolCount = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = await client.listTools(cursor ? { cursor } : undefined, request);
      toolCount += result.tools.length;
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return toolCount;
  };

  let passed = false;
  try {
    const toolCount = await Promise.race([handshake(), deadline]);
    passed = true;
    const server = client.getServerVersion();
    return {
      ok: true,
      serverName: server?.name,
      serverVersion: server?.version,
      protocolVersion,
      toolCount,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    // A crash surfaces as "connection closed" a moment before the exit status and the last
    // stderr lines are in; wait for them briefly so the message can name both.
    if (child && error instanceof McpError && error.code === ErrorCode.ConnectionClosed) {
      await exited(child, 500);
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw describeFailure(error, { options, phase, child, stderr: stderr.toString(), durationMs: Math.round(performance.now() - started) });
  } finally {
    clearTimeout(timer);
    await Promise.all([
      client.close().catch(() => undefined),
      child ? stopProcess(child, passed ? 2_000 : 0) : undefined,
    ]);
  }
}

function describeFailure(
  error: unknown,
  facts: { options: SmokeTestOptions; phase: Phase; child?: ChildProcess; stderr: string; durationMs: number },
): SmokeTestError {
  const { options, phase, child, durationMs } = facts;
  const subject = options.label ? `smoke test of ${options.label}` : 'smoke test';
  const cause = error as { code?: unknown; message?: string };
  const exitCode = child?.exitCode ?? undefined;
  const signal = child?.signalCode ?? undefined;
  let what: string;
  if (error instanceof DeadlineExceeded) {
    what = `no answer to ${phase} within ${formatSeconds(options.timeoutMs)}`;
  } else if (phase === 'start') {
    what = `spawn failed: could not start ${JSON.stringify(options.command)} (${typeof cause.code === 'string' ? `${cause.code}: ` : ''}${cause.message ?? String(error)})`;
  } else if (exitCode !== undefined) {
    what = `the server exited with code ${exitCode} during ${phase}`;
  } else if (signal) {
    what = `the server was killed by ${signal} during ${phase}`;
  } else {
    what = `${phase} failed: ${cause.message ?? String(error)}`;
  }
  const stderr = redactString(facts.stderr);
  const message = `${subject}: ${what}${stderr ? `; stderr: ${stderr}` : ''}`;
  return new SmokeTestError(message, {
    hint: HINT,
    cause: error,
    details: { phase, exitCode, signal, durationMs, timeoutMs: options.timeoutMs, stderr: stderr || undefined },
  });
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

/** Give the child `graceMs` to leave on its own (stdin closed), then SIGTERM, then SIGKILL. */
async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (await exited(child, graceMs)) return;
  child.kill('SIGTERM');
  if (await exited(child, 1_000)) return;
  child.kill('SIGKILL');
  await exited(child, 5_000);
}
