/*
 * The shared store on disk: identical files across versions and servers are kept once. After a
 * version directory is staged, each regular file in it is replaced by a hard link to
 * <store>/<aa>/<rest of its sha256>[-x] ($MCP_SERVERS_PATH/.store, so always on the same
 * filesystem), made read-only (0444, or 0555 when any exec bit was set: the mode belongs to the
 * inode, so the exec bit is part of the key). A server that tries to write into a shared file gets
 * EACCES instead of changing every version that shares it (root ignores modes: run as a user).
 * pruneStore removes entries nothing links to any more; treeUsage counts a tree's bytes with each
 * inode once, which is what a server really takes on disk.
 */
import crypto from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { META_DIR } from './layout.js';

export const STORE_DIR = '.store';
/** Files up to this size are hashed from one read; larger ones are streamed. */
const READ_WHOLE_BYTES = 1024 * 1024;
/** Files handled at once: hashing is I/O bound for small files, CPU bound for large ones. */
const PARALLEL = 8;
/** Link errors after which a file simply stays a copy of its own (other filesystem, too many links, no hard links). */
const KEEP_AS_COPY = new Set(['EXDEV', 'EMLINK', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP']);

export function storeRoot(serversPath: string): string {
  return path.join(serversPath, STORE_DIR);
}

export interface StoreReport {
  /** Regular files looked at. */
  files: number;
  /** Files now sharing an entry that was already in the store. */
  shared: number;
  /** Files that became a new store entry. */
  added: number;
  /** Files left as they were (already stored, or the filesystem refused a link). */
  unchanged: number;
  /** Bytes no longer taken twice (the shared files' sizes). */
  bytesSaved: number;
}

export interface PruneReport {
  removed: number;
  bytesFreed: number;
}

export interface TreeUsage {
  /** Paths of regular files (a file linked twice counts twice). */
  files: number;
  /** Sum of every regular file's size, links counted again: what full copies would take. */
  logicalBytes: number;
  /** Sizes of the distinct inodes of regular files: each file once however often it is linked. */
  bytes: number;
  /** Allocated blocks of the distinct inodes (files, directories, symlinks): du's figure. */
  allocatedBytes: number;
  /** Of `bytes`, what no path outside the tree (but the store) links to: freed if the tree went. */
  exclusiveBytes: number;
}

async function sha256(file: string, size: number): Promise<string> {
  const hash = crypto.createHash('sha256');
  if (size <= READ_WHOLE_BYTES) hash.update(await fs.readFile(file));
  else await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Every regular file below `dir` (symlinks are not followed), with its lstat. The version's own
 * record and run script (META_DIR) name the version, so they never match another file: skipped.
 * Synchronous calls, as in walkInodes: the consumer awaits each file's own work in between.
 */
async function* regularFiles(dir: string): AsyncGenerator<{ file: string; stat: Stats }> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== META_DIR) yield* regularFiles(full);
    else if (entry.isFile()) yield { file: full, stat: lstatSync(full) };
  }
}

async function inParallel<T>(items: AsyncIterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  for await (const item of items) {
    const task = work(item).finally(() => running.delete(task));
    running.add(task);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** The store entry for a file: <store>/<aa>/<62 more hex digits>[-x]. */
export function storeEntry(store: string, hash: string, executable: boolean): string {
  return path.join(store, hash.slice(0, 2), `${hash.slice(2)}${executable ? '-x' : ''}`);
}

type Outcome = 'shared' | 'added' | 'unchanged';

/** Replace `file` by a link to `entry` (same content): a new link beside it, renamed over it. */
async function linkOver(entry: string, file: string): Promise<'done' | 'no entry' | 'refused'> {
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.store`;
  try {
    await fs.link(entry, temporary);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'no entry';
    if (KEEP_AS_COPY.has(errorCode(error) ?? '')) return 'refused';
    throw error;
  }
  try {
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw error;
  }
  return 'done';
}

async function storeFile(store: string, file: string, stat: Stats): Promise<Outcome> {
  const executable = (stat.mode & 0o111) !== 0;
  const entry = storeEntry(store, await sha256(file, stat.size), executable);
  // A file with one link cannot be its own store entry (a freshly staged file never is).
  if (stat.nlink > 1) {
    const entryStat = await fs.lstat(entry).catch(() => undefined);
    if (entryStat && entryStat.ino === stat.ino && entryStat.dev === stat.dev) return 'unchanged';
  }
  // A few rounds at most: an entry (or its folder) may appear (another stage) or vanish (a
  // prune) between two steps.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const linked = await linkOver(entry, file);
    if (linked === 'done') return 'shared';
    if (linked === 'refused') return 'unchanged';
    await fs.chmod(file, executable ? 0o555 : 0o444);
    try {
      await fs.link(file, entry);
      return 'added';
    } catch (error) {
      if (KEEP_AS_COPY.has(errorCode(error) ?? '')) return 'unchanged';
      // No folder for this prefix yet (or a prune just removed it): make it, then go round again.
      if (errorCode(error) === 'ENOENT') await fs.mkdir(path.dirname(entry), { recursive: true });
      else if (errorCode(error) !== 'EEXIST') throw error;
    }
  }
  return 'unchanged';
}

/**
 * Move every regular file of `dir` into the store at `store` (see the header). Contents never
 * change: each file is swapped for an identical one by an atomic rename, so a process reading the
 * tree meanwhile sees the same bytes. Calling it again on a stored tree changes nothing.
 */
export async function storeTree(dir: string, store: string): Promise<StoreReport> {
  const report: StoreReport = { files: 0, shared: 0, added: 0, unchanged: 0, bytesSaved: 0 };
  await fs.mkdir(store, { recursive: true });
  await inParallel(regularFiles(dir), PARALLEL, async ({ file, stat }) => {
    report.files += 1;
    const outcome = await storeFile(store, file, stat);
    report[outcome] += 1;
    if (outcome === 'shared') report.bytesSaved += stat.size;
  });
  return report;
}

/** Remove store entries that no version links to any more (link count 1), and emptied folders. */
export async function pruneStore(store: string): Promise<PruneReport> {
  const report: PruneReport = { removed: 0, bytesFreed: 0 };
  let folders: string[];
  try {
    folders = await fs.readdir(store);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return report;
    throw error;
  }
  for (const folder of folders) {
    const dir = path.join(store, folder);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const entry = path.join(dir, name);
      const stat = await fs.lstat(entry).catch(() => undefined);
      if (!stat?.isFile() || stat.nlink !== 1) continue;
      await fs.rm(entry, { force: true });
      report.removed += 1;
      report.bytesFreed += stat.size;
    }
    await fs.rmdir(dir).catch(() => undefined);
  }
  return report;
}

interface InodeWalk {
  /** Each inode met under the roots, with how many of the paths walked lead to it. */
  inodes: Map<string, { stat: Stats; seen: number }>;
  files: number;
  logicalBytes: number;
}

/** Entries looked at between two turns of the event loop (see walkInodes). */
const WALK_BATCH = 256;

/**
 * Walk `roots` (trees or single files; missing ones take nothing), meeting each inode once. The
 * calls are synchronous: a promise per lstat cost ~20 times the CPU (a pipeline update paid ~4 ms
 * for walking its server's tree), and the walk yields to the event loop every WALK_BATCH entries
 * so a tree of 27,000 files does not hold up a worker's other jobs.
 */
async function walkInodes(roots: string[]): Promise<InodeWalk> {
  const walk: InodeWalk = { inodes: new Map(), files: 0, logicalBytes: 0 };
  const pending = [...roots];
  let sinceYield = 0;
  while (pending.length > 0) {
    const target = pending.pop()!;
    let stat: Stats;
    try {
      stat = lstatSync(target);
    } catch (error) {
      // Gone meanwhile (or never there): it takes nothing.
      if (errorCode(error) === 'ENOENT') continue;
      throw error;
    }
    const key = `${stat.dev}:${stat.ino}`;
    const known = walk.inodes.get(key);
    if (known) known.seen += 1;
    else walk.inodes.set(key, { stat, seen: 1 });
    if (stat.isFile()) {
      walk.files += 1;
      walk.logicalBytes += stat.size;
    } else if (stat.isDirectory()) {
      try {
        for (const name of readdirSync(target)) pending.push(path.join(target, name));
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
    }
    if (++sinceYield >= WALK_BATCH) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return walk;
}

/**
 * Links to this file that are no user of it: its store entry. A read-only file is linked from the
 * store (staging leaves owner write on every file it extracts); the entry goes at the next prune.
 */
function storeLinks(stat: Stats): number {
  return stat.mode & 0o222 ? 0 : 1;
}

/** What `dir` takes on disk, each inode counted once (see TreeUsage). A missing tree takes nothing. */
export async function treeUsage(dir: string): Promise<TreeUsage> {
  const { inodes, files, logicalBytes } = await walkInodes([dir]);
  const usage: TreeUsage = { files, logicalBytes, bytes: 0, allocatedBytes: 0, exclusiveBytes: 0 };
  for (const { stat, seen } of inodes.values()) {
    usage.allocatedBytes += stat.blocks * 512;
    if (!stat.isFile()) continue;
    usage.bytes += stat.size;
    if (seen >= stat.nlink - storeLinks(stat)) usage.exclusiveBytes += stat.size;
  }
  return usage;
}

/**
 * Bytes that deleting `targets` (trees or files) frees: the files whose every link is inside them
 * (a file still linked from the store or from another version frees nothing). With
 * `pruneAfter`, a store entry that would be a file's last other link counts as freed too, since
 * the next pruneStore removes it: what a cleanup dry run can promise.
 */
export async function bytesFreedByRemoving(targets: string[], options: { pruneAfter?: boolean } = {}): Promise<number> {
  let freed = 0;
  for (const { stat, seen } of (await walkInodes(targets)).inodes.values()) {
    if (!stat.isFile()) continue;
    const others = stat.nlink - seen - (options.pruneAfter ? storeLinks(stat) : 0);
    if (others <= 0) freed += stat.size;
  }
  return freed;
}

/**
 * What one server takes on disk ($MCP_SERVERS_PATH/<name>: its versions, data and history), kept
 * in its record (measured after stage, activate and cleanup, never on a request). A file its
 * versions share through the store counts once; a file other servers link too counts in full for
 * each of them (a server's figure does not depend on its neighbours), and `sharedBytes` says how
 * much of it that is: removing the server would free `bytes - sharedBytes`.
 */
export interface ServerDiskUsage {
  /** Each inode of the server's tree once. */
  bytes: number;
  /** Of `bytes`, files another server links too. */
  sharedBytes: number;
  /** What the same files would take as full copies (every link counted). */
  fullCopyBytes: number;
  measuredAt: string;
}

export async function serverDiskUsage(serverDir: string, now = new Date()): Promise<ServerDiskUsage> {
  const usage = await treeUsage(serverDir);
  return {
    bytes: usage.bytes,
    sharedBytes: usage.bytes - usage.exclusiveBytes,
    fullCopyBytes: usage.logicalBytes,
    measuredAt: now.toISOString(),
  };
}
