/*
 * Shared pieces of the reliability tests (test/reliability-*.test.ts): worker processes as
 * production runs them, "has the pipeline settled", file-tree snapshots for "nothing written
 * outside", and the one-line summaries that docs/RELIABILITY.md quotes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstallLayout } from '../../shared/layout.js';
import { HIDE_BWRAP_ENV } from '../../shared/sandbox.js';

export const BIN = fileURLToPath(new URL('../../bin/mcp-updater.js', import.meta.url));
export type ChildWithOutput = ChildProcess & { output: string[] };

/**
 * `mcp-updater start --role <role>` as a child process with exactly `env` (plus PATH, HOME and
 * the test switch that hides bubblewrap, so the child sees the machine this suite pretends to be).
 */
export function startRole(role: 'worker' | 'scheduler' | 'dashboard' | 'all', env: Record<string, string>): ChildWithOutput {
  const hideBwrap = process.env[HIDE_BWRAP_ENV];
  const child = spawn(process.execPath, [BIN, 'start', '--role', role], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...(hideBwrap ? { [HIDE_BWRAP_ENV]: hideBwrap } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildWithOutput;
  child.output = [];
  child.stdout!.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  return child;
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** SIGKILL a child we started and wait for it to be gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await exited(child);
}

export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mtimeMs: number;
  link?: string;
}

/** Every entry under `root` (not following symlinks); `skip` prunes whole subtrees by absolute path. */
export async function snapshotTree(root: string, skip: (absolute: string) => boolean = () => false): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  async function walk(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const absolute = path.join(dir, name);
      if (skip(absolute)) continue;
      let stat;
      try {
        stat = await fs.lstat(absolute);
      } catch {
        continue;
      }
      const type = stat.isSymbolicLink() ? 'symlink' : stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
      const entry: TreeEntry = { path: absolute, type, size: type === 'dir' ? 0 : stat.size, mtimeMs: type === 'dir' ? 0 : stat.mtimeMs };
      if (type === 'symlink') entry.link = await fs.readlink(absolute).catch(() => undefined);
      entries.set(absolute, entry);
      if (type === 'dir') await walk(absolute);
    }
  }
  await walk(root);
  return entries;
}

/** What changed between two snapshots: created, deleted and modified paths. */
export function treeDiff(
  before: Map<string, TreeEntry>,
  after: Map<string, TreeEntry>,
): { created: string[]; deleted: string[]; changed: string[] } {
  const created: string[] = [];
  const deleted: string[] = [];
  const changed: string[] = [];
  for (const [key, entry] of after) {
    const old = before.get(key);
    if (!old) created.push(key);
    else if (old.type !== entry.type || old.size !== entry.size || old.mtimeMs !== entry.mtimeMs || old.link !== entry.link)
      changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) deleted.push(key);
  return { created: created.sort(), deleted: deleted.sort(), changed: changed.sort() };
}

/** The one-line result a reliability test prints (docs/RELIABILITY.md quotes these lines). */
export function summary(scenario: string, facts: Record<string, unknown>): void {
  const text = Object.entries(facts)
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ');

  console.log(`      [reliability] ${scenario}: ${text}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Samples every `intervalMs` that each server's `current` points at a version whose record says
 * it passed its smoke test (and, when `integrityOf` knows it, holds the published integrity).
 */
export class CurrentVersionMonitor {
  readonly violations: string[] = [];
  samples = 0;
  private readonly timer: NodeJS.Timeout;
  private sampling = false;

  constructor(
    layout: InstallLayout,
    servers: readonly string[],
    intervalMs: number,
    integrityOf?: (server: string, version: string) => string | undefined,
  ) {
    this.timer = setInterval(() => {
      if (this.sampling) return;
      this.sampling = true;
      void (async () => {
        for (const server of servers) {
          const version = await layout.currentVersion(server).catch(() => undefined);
          if (!version) continue;
          const record = await layout.readVersionRecord(server, version).catch(() => undefined);
          const integrityOk = !integrityOf || record?.integrity === integrityOf(server, version);
          if (!record || record.version !== version || record.smokeTest?.ok !== true || !integrityOk) {
            this.violations.push(`${server} -> ${version}: ${JSON.stringify(record ?? null)}`);
          }
        }
        this.samples += 1;
      })().finally(() => {
        this.sampling = false;
      });
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
