/*
 * Data a server writes next to its own code (server-memory's dist/memory.jsonl, credentials of
 * gdrive) must survive updates, rollbacks and cleanup. Staging records every file of a version
 * (`.mcp-updater/files.json`: path -> size); a regular file that is not on that list was written
 * by the server. Such a file is moved (a rename: an open file keeps its inode, so a running old
 * process keeps writing to the same file) into the per-server data directory `<name>/data/`,
 * with a symlink left at its old path, and every version that becomes current gets a symlink at
 * the same relative path, so the new version finds the same file. Cleanup never deletes data/.
 */
import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { META_DIR, writeFileAtomic, type InstallLayout } from './layout.js';

/** Inside data/: files a carry had to replace, kept rather than overwritten. */
export const REPLACED_DIR = '.replaced';

/** Where a package documents the setting that moves its data out of its own directory. */
export const DATA_SETTINGS: Record<string, string> = {
  '@modelcontextprotocol/server-memory': 'MEMORY_FILE_PATH',
};

export interface PresentEntry {
  /** Relative to the version directory, with `/`. */
  path: string;
  kind: 'file' | 'symlink' | 'other';
  size: number;
}

/** Files the server created: regular files not recorded at staging (our own links are symlinks). */
export function serverCreatedFiles(recorded: ReadonlyMap<string, number>, present: readonly PresentEntry[]): string[] {
  return present
    .filter((entry) => entry.kind === 'file' && !recorded.has(entry.path) && !entry.path.startsWith(`${META_DIR}/`))
    .map((entry) => entry.path)
    .sort();
}

/** Entries looked at between two turns of the event loop (see listTree). */
const WALK_BATCH = 256;

/**
 * Every entry below `dir` (files and symlinks; directories are walked, not listed). The calls are
 * synchronous, like shared/store.ts walkInodes: a promise per readdir and lstat cost a pipeline
 * update more CPU than the walk itself, and yielding to the event loop every WALK_BATCH entries
 * keeps a version of 27,000 files from holding up a worker's other jobs.
 */
export async function listTree(dir: string, skip: (relative: string) => boolean = () => false): Promise<PresentEntry[]> {
  const entries: PresentEntry[] = [];
  const pending = [''];
  let sinceYield = 0;
  while (pending.length > 0) {
    const relative = pending.pop()!;
    let children: Dirent[];
    try {
      children = readdirSync(path.join(dir, relative), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const subdirectories: string[] = [];
    for (const child of children) {
      const childPath = relative ? `${relative}/${child.name}` : child.name;
      if (skip(childPath)) continue;
      if (child.isDirectory()) {
        subdirectories.push(childPath);
        continue;
      }
      const kind = child.isFile() ? 'file' : child.isSymbolicLink() ? 'symlink' : 'other';
      const size = kind === 'file' ? lstatSync(path.join(dir, childPath)).size : 0;
      entries.push({ path: childPath, kind, size });
    }
    pending.push(...subdirectories.reverse());
    sinceYield += children.length;
    if (sinceYield >= WALK_BATCH) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return entries;
}

function filesListFile(versionDir: string): string {
  return path.join(versionDir, META_DIR, 'files.json');
}

/** Everything of a version but its `.mcp-updater/` record. */
export async function versionTree(versionDir: string): Promise<PresentEntry[]> {
  return listTree(versionDir, (relative) => relative === META_DIR);
}

/** Record what staging put into the version (before it is moved into place). */
export async function recordVersionFiles(versionDir: string, tree?: PresentEntry[]): Promise<number> {
  const entries = tree ?? (await versionTree(versionDir));
  const files = Object.fromEntries(entries.map((entry) => [entry.path, entry.size]));
  await writeFileAtomic(filesListFile(versionDir), `${JSON.stringify({ files })}\n`);
  return entries.length;
}

/** Remove files written since the list was recorded (by a smoke test); returns their paths. */
export async function removeUnrecordedFiles(versionDir: string): Promise<string[]> {
  const recorded = await readVersionFiles(versionDir);
  if (!recorded) return [];
  const created = serverCreatedFiles(recorded, await listTree(versionDir, (relative) => relative === META_DIR));
  for (const relative of created) await fs.rm(path.join(versionDir, relative), { force: true });
  return created;
}

/** The recorded list, or undefined for a version staged before lists were recorded. */
export async function readVersionFiles(versionDir: string): Promise<Map<string, number> | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(filesListFile(versionDir), 'utf8')) as { files?: Record<string, number> };
    return new Map(Object.entries(parsed.files ?? {}));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export interface DataCarry {
  /** Files moved from a version directory into data/ (relative paths). */
  moved: string[];
  /** Data files linked into the version that becomes current. */
  linked: string[];
  /** Paths where the version has a file of its own: the data stays in data/ (or was kept in data/.replaced/). */
  conflicts: Array<{ path: string; message: string }>;
}

async function lstatOrUndefined(file: string) {
  try {
    return await fs.lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Move the files the server created in versions/<version> into data/. With `leaveLinks`, a
 * symlink replaces each at its old path (a process still running from that version keeps its
 * file). A data file of the same path already in data/ is kept under data/.replaced/<time>/.
 */
export async function moveServerData(
  layout: InstallLayout,
  server: string,
  version: string,
  options: { leaveLinks: boolean; now: Date },
): Promise<Pick<DataCarry, 'moved' | 'conflicts'>> {
  const versionDir = layout.versionDir(server, version);
  const recorded = await readVersionFiles(versionDir);
  const result: Pick<DataCarry, 'moved' | 'conflicts'> = { moved: [], conflicts: [] };
  if (!recorded) return result;
  const dataDir = layout.dataDir(server);
  const created = serverCreatedFiles(recorded, await listTree(versionDir, (relative) => relative === META_DIR));
  for (const relative of created) {
    const source = path.join(versionDir, relative);
    const target = path.join(dataDir, relative);
    if (await lstatOrUndefined(target)) {
      // The version's own copy is the one its server wrote last; the older one is kept aside.
      const aside = path.join(dataDir, REPLACED_DIR, options.now.toISOString().replace(/[:.]/g, '-'), relative);
      await fs.mkdir(path.dirname(aside), { recursive: true });
      await fs.rename(target, aside);
      result.conflicts.push({
        path: relative,
        message: `${relative}: ${version} had its own copy; the earlier data file was kept as ${path.relative(dataDir, aside)}`,
      });
    }
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(source, target);
    if (options.leaveLinks) await fs.symlink(path.relative(path.dirname(source), target), source);
    result.moved.push(relative);
  }
  return result;
}

/** Link every file of data/ into versions/<version> at the same relative path, unless the version has its own. */
export async function linkServerData(
  layout: InstallLayout,
  server: string,
  version: string,
): Promise<Pick<DataCarry, 'linked' | 'conflicts'>> {
  const versionDir = layout.versionDir(server, version);
  const dataDir = layout.dataDir(server);
  const result: Pick<DataCarry, 'linked' | 'conflicts'> = { linked: [], conflicts: [] };
  const dataFiles = (await listTree(dataDir, (relative) => relative === REPLACED_DIR)).filter((entry) => entry.kind === 'file');
  for (const { path: relative } of dataFiles) {
    const link = path.join(versionDir, relative);
    const target = path.join(dataDir, relative);
    const wanted = path.relative(path.dirname(link), target);
    const existing = await lstatOrUndefined(link);
    if (existing?.isSymbolicLink() && (await fs.readlink(link)) === wanted) continue;
    if (existing) {
      result.conflicts.push({ path: relative, message: `${relative}: ${version} ships its own file there; the data stays in ${target}` });
      continue;
    }
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.symlink(wanted, link);
    result.linked.push(relative);
  }
  return result;
}

/** Carry the server's data from the version being left (if any) to the one becoming current. */
export async function carryServerData(
  layout: InstallLayout,
  server: string,
  to: string,
  from: string | undefined,
  now: Date,
): Promise<DataCarry> {
  const moved = from && from !== to ? await moveServerData(layout, server, from, { leaveLinks: true, now }) : { moved: [], conflicts: [] };
  const linked = await linkServerData(layout, server, to);
  return { moved: moved.moved, linked: linked.linked, conflicts: [...moved.conflicts, ...linked.conflicts] };
}

/** One line for people: which files, where they are now, and the package's own setting if it has one. */
export function dataPreservedMessage(input: {
  server: string;
  package?: string;
  version: string;
  dataDir: string;
  files: string[];
  when: 'activation' | 'cleanup';
}): string {
  const files = input.files.join(', ');
  const where =
    input.when === 'activation'
      ? `moved to ${input.dataDir} and linked into every version at the same path, so the new version uses the same data`
      : `moved to ${input.dataDir} before cleanup removed ${input.version}`;
  const setting = input.package ? DATA_SETTINGS[input.package] : undefined;
  const advice = setting
    ? `; ${input.package} reads this location from ${setting}: set it in the server's environment to keep the file outside mcp-updater`
    : '';
  return `${input.server} wrote ${files} into its version directory: ${where}${advice}`;
}
