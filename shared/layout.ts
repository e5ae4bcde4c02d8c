/*
 * The install layout MCP clients rely on (docs/ARCHITECTURE.md "Install layout"):
 *   $MCP_SERVERS_PATH/<name>/versions/<version>/   generated package.json + node_modules/<package>, never modified after activation
 *   $MCP_SERVERS_PATH/<name>/current -> versions/<version>
 *   $MCP_SERVERS_PATH/<name>/data/                  files servers wrote into their version directory (shared/serverData.ts)
 *   $MCP_SERVERS_PATH/bin/<name>                    launcher, written once
 * plus where staging directories, backups and the on-disk history live. Only paths and small
 * file-system primitives here; the stages decide what to do with them.
 */
import crypto from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from './config.js';
import { StagingError } from './errors.js';
import type { ProvenanceSource } from './provenance.js';

/** Metadata written into every staged version (`<version>/.mcp-updater/version.json`). */
export interface VersionRecord {
  server: string;
  package: string;
  version: string;
  integrity: string;
  /** Package-relative path of the bin the launcher runs (undefined when a command is configured). */
  bin?: string;
  /**
   * Where the package lives, relative to the version directory (`node_modules/<package>`): the
   * package is installed as the one dependency of a generated project. Absent in versions staged
   * before that, whose package files sit at the top of the version directory.
   */
  packageDir?: string;
  stagedAt: string;
  jobId?: string;
  smokeTest?: SmokeTestRecord;
  /** Where it was built, as its verified provenance said at check time (npm). */
  provenance?: ProvenanceSource;
}

export interface SmokeTestRecord {
  ok: boolean;
  serverName?: string;
  serverVersion?: string;
  protocolVersion?: string;
  toolCount?: number;
  durationMs: number;
  skipped?: boolean;
  /** sha256 of the MCP surface recorded at this test (`.mcp-updater/surface.json`). */
  surfaceHash?: string;
}

/** One switch of `current`, kept in Redis and in `<name>/history.json`. */
export interface HistoryEntry {
  action: 'install' | 'activate' | 'approve' | 'rollback' | 'auto-rollback';
  from?: string;
  to: string;
  at: string;
  jobId?: string;
  integrity?: string;
  reason?: string;
  /** The MCP surface (shared/surface.ts) `to` had when it was switched to; for approve, the one approved. */
  surfaceHash?: string;
  /** Who approved (approve only). */
  approvedBy?: string;
  /** Where `to` was built, as its verified provenance said (npm). */
  provenance?: ProvenanceSource;
}

/** What `<name>/history.json` holds, so state can be rebuilt without Redis. */
export interface DiskHistory {
  server: string;
  package: string;
  current?: string;
  previous?: string;
  /** version -> integrity of every version ever staged (for re-staging from backups). */
  integrities: Record<string, string>;
  /** The version an operator rolled back from, while checks hold the server below it. */
  hold?: string;
  entries: HistoryEntry[];
}

export const HISTORY_LIMIT = 100;
export const META_DIR = '.mcp-updater';

/** This host in staging directory names: processes of another host are never judged dead here. */
const HOST_TAG = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

function stagingJobPrefix(version: string, jobId: string): string {
  return `${version}-${jobId.replace(/[^A-Za-z0-9._-]/g, '_')}-`;
}

/**
 * Did the run that made this staging directory (named by stagingDir) die, on this host? False
 * for a live process, another host's run, or a name stagingDir did not make.
 */
export function stagingRunDied(name: string): boolean {
  const run = /-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}$/.exec(name);
  return run !== null && run[1] === HOST_TAG && !processAlive(Number(run[2]));
}

/** Does a process with this id run on this host? (EPERM: it does, as another user.) */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class InstallLayout {
  constructor(private readonly config: Pick<Config, 'serversPath' | 'stagingDir' | 'backupDir'>) {}

  get root(): string {
    return this.config.serversPath;
  }
  get binDir(): string {
    return path.join(this.config.serversPath, 'bin');
  }
  get stagingRoot(): string {
    return this.config.stagingDir;
  }
  get backupRoot(): string {
    return this.config.backupDir;
  }

  serverDir(server: string): string {
    return path.join(this.root, server);
  }
  versionsDir(server: string): string {
    return path.join(this.serverDir(server), 'versions');
  }
  versionDir(server: string, version: string): string {
    return path.join(this.versionsDir(server), version);
  }
  currentLink(server: string): string {
    return path.join(this.serverDir(server), 'current');
  }
  launcher(server: string): string {
    return path.join(this.binDir, server);
  }
  historyFile(server: string): string {
    return path.join(this.serverDir(server), 'history.json');
  }
  /** Data a server wrote next to its code, shared by every version; cleanup never deletes it. */
  dataDir(server: string): string {
    return path.join(this.serverDir(server), 'data');
  }
  versionRecordFile(dir: string): string {
    return path.join(dir, META_DIR, 'version.json');
  }
  /** The MCP surface the version's smoke test recorded (shared/surface.ts). */
  surfaceFile(dir: string): string {
    return path.join(dir, META_DIR, 'surface.json');
  }
  /** Script inside a version that starts its server; the launcher execs it. */
  runScript(dir: string): string {
    return path.join(dir, META_DIR, 'run');
  }
  /**
   * A new staging directory for one run of a stage (or re-stage) job:
   * `<version>-<job id>-<host>-<pid>-<random>`. Its own for every run: the same job can run twice
   * at once (a job Redis lost in a restart is added again while the first run goes on; a worker
   * that stalls past its lock sees its job handed to another), and two runs sharing a directory
   * would delete each other's files and fail the version for nothing.
   */
  stagingDir(server: string, version: string, jobId: string): string {
    return path.join(
      this.stagingRoot,
      server,
      `${stagingJobPrefix(version, jobId)}${HOST_TAG}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
    );
  }

  /**
   * Staging directories of `jobId`'s earlier runs whose process is gone (killed mid-stage, OOM):
   * on this host, by process id. A run in a live process, or on another host, is never listed;
   * cleanup removes what is left after its grace period.
   */
  deadStagingRuns(server: string, version: string, jobId: string): string[] {
    const prefix = stagingJobPrefix(version, jobId);
    let names: string[];
    try {
      names = readdirSync(path.join(this.stagingRoot, server));
    } catch {
      return [];
    }
    return names
      .filter((name) => name.startsWith(prefix) && /^[0-9a-f]{8}-\d+-[0-9a-f]{8}$/.test(name.slice(prefix.length)) && stagingRunDied(name))
      .map((name) => path.join(this.stagingRoot, server, name));
  }

  /** Content-addressed backup tarball: BACKUP_DIR/<algorithm>/<hex digest>.tgz. */
  backupFile(integrity: string): string {
    const match = /^(sha\d+)-([A-Za-z0-9+/=]+)/.exec(integrity.trim().split(/\s+/)[0] ?? '');
    if (!match) throw new StagingError('EBADINTEGRITY', `"${integrity}" is not an SRI integrity string`);
    const hex = Buffer.from(match[2]!, 'base64').toString('hex');
    return path.join(this.backupRoot, match[1]!, `${hex}.tgz`);
  }

  /** Version `current` points at, or undefined when nothing is active. */
  async currentVersion(server: string): Promise<string | undefined> {
    try {
      const target = readlinkSync(this.currentLink(server));
      return path.basename(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async installedVersions(server: string): Promise<string[]> {
    try {
      const entries = await fs.readdir(this.versionsDir(server), { withFileTypes: true });
      return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async readVersionRecord(server: string, version: string): Promise<VersionRecord | undefined> {
    return readJson<VersionRecord>(this.versionRecordFile(this.versionDir(server, version)));
  }

  async readHistory(server: string): Promise<DiskHistory | undefined> {
    return readJson<DiskHistory>(this.historyFile(server));
  }

  async writeHistory(history: DiskHistory): Promise<void> {
    const trimmed = { ...history, entries: history.entries.slice(-HISTORY_LIMIT) };
    await writeFileAtomic(this.historyFile(history.server), `${JSON.stringify(trimmed, null, 2)}\n`);
  }

  /** Point `current` at versions/<version> by renaming a new relative symlink over it (atomic). */
  async switchCurrent(server: string, version: string): Promise<void> {
    const link = this.currentLink(server);
    const temporary = `${link}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    symlinkSync(path.join('versions', version), temporary, 'dir');
    try {
      renameSync(temporary, link);
    } catch (error) {
      await fs.rm(temporary, { force: true });
      throw error;
    }
  }

  /**
   * Write bin/<server> once. It resolves `current` a single time and execs that version's run
   * script, so a switch during start-up can never mix two versions.
   */
  async ensureLauncher(server: string): Promise<boolean> {
    const file = this.launcher(server);
    const script = [
      '#!/bin/sh',
      `# Launcher for the MCP server "${server}", written by mcp-updater. It always runs the active`,
      '# version; point your MCP client at this file once and never change it.',
      'set -e',
      'root="$(cd "$(dirname "$0")/.." && pwd -P)"',
      `target="$(readlink "$root/${server}/current")" || { echo "mcp-updater: no active version of ${server} under $root" >&2; exit 127; }`,
      `exec "$root/${server}/$target/${META_DIR}/run" "$@"`,
      '',
    ].join('\n');
    // Every activation asks. A launcher of another size was cut short (a crash while it was
    // written) or changed by hand: it is written whole beside it and renamed over it.
    let existing: Stats | undefined;
    try {
      existing = await fs.stat(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (existing?.isFile() && existing.size === Buffer.byteLength(script)) return false;
    await writeFileAtomic(file, script, 0o755);
    return true;
  }
}

/*
 * The records below (history.json, version.json, files.json, the run script, the `current` link)
 * are small files read and written a few times per update. Their calls are synchronous, like the
 * tree walks of shared/store.ts: through the promise API each of them took a trip through libuv's
 * thread pool (four threads shared by every job of the process) and cost more CPU than the call.
 */

export async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}

/**
 * Write a file so readers see the old or the new content, never a torn one: a temporary file
 * beside it, renamed over it. Its directory is made only when the write finds none (most writes
 * go into a directory that is there, and a mkdir each cost a system call).
 */
export async function writeFileAtomic(file: string, content: string, mode = 0o644): Promise<void> {
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(temporary, content, { mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(temporary, content, { mode });
  }
  renameSync(temporary, file);
}
