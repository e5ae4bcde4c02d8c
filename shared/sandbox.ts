/*
 * Can smoke tests run in a bubblewrap sandbox here? Probed once per process. Apart from the smoke
 * test itself (shared/smokeTest.ts) so that `mcp-updater status` and GET /status can say so
 * without loading the MCP SDK.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from './logger.js';

/** Whether smoke tests run sandboxed in this process, decided once (see sandboxStatus). */
export interface SandboxStatus {
  sandboxed: boolean;
  /** The sandbox can also take the network away (smokeTest.network: false). */
  networkIsolation: boolean;
  /** bwrap's path when sandboxed. */
  bwrap?: string;
  /** Why smoke tests run unsandboxed. */
  reason?: string;
  /** One line for start-up, `mcp-updater status` and GET /status. */
  summary: string;
}

/** Namespaces every sandbox gets; the probe tries exactly these. */
export const NAMESPACE_FLAGS = [
  '--unshare-pid',
  '--unshare-ipc',
  '--unshare-uts',
  '--unshare-cgroup-try',
  '--die-with-parent',
  '--new-session',
];
/**
 * Tests only: `1` makes this process (and the workers it starts) look for bwrap nowhere, so the
 * suite proves the unsandboxed behaviour of a machine without bubblewrap on one that has it.
 */
export const HIDE_BWRAP_ENV = 'MCP_UPDATER_TEST_HIDE_BWRAP';

let status: SandboxStatus | undefined;

export function findExecutable(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here; next PATH entry
    }
  }
  return undefined;
}

function probe(bwrap: string, extra: string[]): { ok: boolean; why: string } {
  const run = spawnSync(bwrap, [...extra, ...NAMESPACE_FLAGS, '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const why = run.error?.message ?? (run.stderr.trim().split('\n')[0] || `exit code ${run.status ?? run.signal}`);
  return { ok: run.status === 0, why };
}

/**
 * Can smoke tests be sandboxed here? Decided once per process by starting `bwrap` with the
 * namespaces it will use (missing bwrap, or a kernel or container that refuses namespaces, means
 * unsandboxed; said by logSandboxStatus at start-up, `mcp-updater status` and GET /status).
 */
export function sandboxStatus(): SandboxStatus {
  status ??= detectSandbox(process.env[HIDE_BWRAP_ENV] === '1' ? '' : undefined);
  return status;
}

/** The probe behind sandboxStatus, with bwrap looked up on `searchPath`. */
export function detectSandbox(searchPath = process.env.PATH ?? ''): SandboxStatus {
  const bwrap = findExecutable('bwrap', searchPath);
  if (!bwrap) {
    const reason = 'bubblewrap (bwrap) is not installed';
    return { sandboxed: false, networkIsolation: false, reason, summary: `smoke tests run unsandboxed: ${reason}` };
  }
  const base = probe(bwrap, []);
  if (!base.ok) {
    const reason = `bwrap cannot create namespaces here (${base.why})`;
    return { sandboxed: false, networkIsolation: false, reason, summary: `smoke tests run unsandboxed: ${reason}` };
  }
  const networkIsolation = probe(bwrap, ['--unshare-net']).ok;
  return {
    sandboxed: true,
    networkIsolation,
    bwrap,
    summary: `smoke tests run sandboxed (bubblewrap)${networkIsolation ? '' : '; smokeTest.network: false is not possible here (no network namespaces)'}`,
  };
}

/** The start-up line: a plain warning when smoke tests run unsandboxed. */
export function logSandboxStatus(log = createLogger('orchestration')): SandboxStatus {
  const current = sandboxStatus();
  if (current.sandboxed) {
    log.info(current.summary);
  } else {
    log.warn(
      `${current.summary}. A staged (possibly never approved) version runs as this user and can read this service's environment and files; install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow user namespaces.`,
    );
  }
  return current;
}
