/**
 * Test helpers that build npm-style package tarballs (`.tgz`) at run time.
 *
 * - `packDirectory()` packs a fixture folder the way `npm pack` does (gzip tar,
 *   every entry under `package/`), with name/version/other package.json fields
 *   overridden.
 * - `packEntries()` writes raw tar headers, so that security tests can craft
 *   hostile tarballs (path traversal, absolute paths, symlinks/hardlinks
 *   pointing outside, FIFOs, character devices, ...). Nothing is sanitised.
 * - `integrityOf()` computes the `dist.integrity` / `dist.shasum` values.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';

/** Fixed mtime used for every entry so that packing is deterministic. */
export const FIXED_MTIME = new Date('2000-01-01T00:00:00.000Z');

export interface PackOverrides {
  name?: string;
  version?: string;
  /** Extra fields merged (shallowly) into package.json; `name`/`version` above win. */
  packageJson?: Record<string, unknown>;
}

export type RawTarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'chardev';

export interface RawTarEntry {
  /** Written verbatim into the header: `package/../../evil`, `/etc/x`, ... are allowed. */
  path: string;
  /** Default `'file'`. */
  type?: RawTarEntryType;
  /** File content (only used for `'file'`). */
  body?: string | Buffer;
  /** Target for `'symlink'` and `'hardlink'`. */
  linkpath?: string;
  /** Permission bits; defaults: file 0o644, directory 0o755, symlink 0o777, others 0o644. */
  mode?: number;
  /** Device numbers for `'chardev'` (default 1/3, i.e. /dev/null). */
  devmaj?: number;
  devmin?: number;
  /** Defaults to FIXED_MTIME. */
  mtime?: Date;
}

const TYPE_NAMES: Record<RawTarEntryType, 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO' | 'CharacterDevice'> = {
  file: 'File',
  directory: 'Directory',
  symlink: 'SymbolicLink',
  hardlink: 'Link',
  fifo: 'FIFO',
  chardev: 'CharacterDevice',
};

const DEFAULT_MODES: Record<RawTarEntryType, number> = {
  file: 0o644,
  directory: 0o755,
  symlink: 0o777,
  hardlink: 0o644,
  fifo: 0o644,
  chardev: 0o644,
};

/** sha512 SRI string and sha1 hex digest of a buffer, as found in `dist.integrity` / `dist.shasum`. */
export function integrityOf(buf: Buffer): { integrity: string; shasum: string } {
  return {
    integrity: `sha512-${createHash('sha512').update(buf).digest('base64')}`,
    shasum: createHash('sha1').update(buf).digest('hex'),
  };
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const dirents = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  for (const d of dirents) {
    if (d.name === 'node_modules' || d.name === '.git') continue;
    const relPath = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await listFiles(root, relPath)));
    else if (d.isFile() || d.isSymbolicLink()) out.push(relPath);
  }
  return out;
}

function binTargets(bin: unknown): string[] {
  if (typeof bin === 'string') return [bin];
  if (bin && typeof bin === 'object') {
    return Object.values(bin as Record<string, unknown>).filter((v): v is string => typeof v === 'string');
  }
  return [];
}

const copyFilter = (src: string) => !/[\\/](node_modules|\.git)$/.test(src);

async function readPackageJson(file: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return {};
  }
}

/**
 * Copy a fixture folder into `into` and return its package.json. A fixture whose package.json names
 * `"fixtureBase": "<folder>"` is that sibling fixture with its own files laid over it, so fixtures
 * that differ only in package.json or one extra file share one server implementation.
 */
async function copyFixture(dir: string, into: string): Promise<Record<string, unknown>> {
  const own = await readPackageJson(path.join(dir, 'package.json'));
  if (typeof own.fixtureBase === 'string') await copyFixture(path.join(path.dirname(dir), own.fixtureBase), into);
  await fs.cp(dir, into, { recursive: true, filter: copyFilter });
  return own;
}

/**
 * Pack a fixture folder into an npm-style `.tgz` (gzip tar, entries under
 * `package/`, no directory entries, fixed mtimes, portable headers).
 * package.json gets `{...original, ...overrides.packageJson, name, version}`;
 * `bin` targets are made executable (0755) in the tarball. See copyFixture for `fixtureBase`.
 */
export async function packDirectory(dir: string, overrides: PackOverrides = {}): Promise<Buffer> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-updater-pack-'));
  try {
    const pkgPath = path.join(tmp, 'package.json');
    const pkg = await copyFixture(dir, tmp);
    const merged: Record<string, unknown> = { ...pkg, ...(overrides.packageJson ?? {}) };
    delete merged.fixtureBase;
    if (overrides.name !== undefined) merged.name = overrides.name;
    if (overrides.version !== undefined) merged.version = overrides.version;
    await fs.writeFile(pkgPath, JSON.stringify(merged, null, 2) + '\n', { mode: 0o644 });

    for (const target of binTargets(merged.bin)) {
      const abs = path.resolve(tmp, target);
      if (abs.startsWith(tmp + path.sep)) await fs.chmod(abs, 0o755).catch(() => undefined);
    }

    const files = (await listFiles(tmp)).sort();
    const pack = tar.create({ gzip: true, cwd: tmp, portable: true, prefix: 'package/', mtime: FIXED_MTIME }, files);
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

function padTo512(buf: Buffer): Buffer {
  const rem = buf.length % 512;
  return rem === 0 ? buf : Buffer.concat([buf, Buffer.alloc(512 - rem)]);
}

/**
 * Build a gzip tarball from raw entry descriptions. Headers are written as
 * given (ustar, with a PAX extended header when a path/linkpath is too long);
 * no path sanitisation whatsoever, so hostile archives can be produced.
 */
export async function packEntries(entries: RawTarEntry[]): Promise<Buffer> {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const body = type === 'file' ? (Buffer.isBuffer(entry.body) ? entry.body : Buffer.from(entry.body ?? '', 'utf8')) : Buffer.alloc(0);
    if ((type === 'symlink' || type === 'hardlink') && entry.linkpath === undefined) {
      throw new Error(`packEntries: ${type} entry "${entry.path}" needs a linkpath`);
    }
    const data = {
      path: entry.path,
      type: TYPE_NAMES[type],
      mode: entry.mode ?? DEFAULT_MODES[type],
      size: body.length,
      linkpath: entry.linkpath ?? '',
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      mtime: entry.mtime ?? FIXED_MTIME,
      devmaj: type === 'chardev' ? (entry.devmaj ?? 1) : 0,
      devmin: type === 'chardev' ? (entry.devmin ?? 3) : 0,
    };
    const header = new tar.Header(data);
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    if (header.needPax) {
      // path or linkpath does not fit the ustar fields: precede with a PAX header.
      blocks.push(
        new tar.Pax({
          path: entry.path,
          linkpath: entry.linkpath,
          mtime: data.mtime,
          size: body.length,
          mode: data.mode,
        }).encode(),
      );
    }
    blocks.push(block);
    if (body.length) blocks.push(padTo512(body));
  }
  blocks.push(Buffer.alloc(1024)); // end-of-archive marker: two zero blocks
  return gzipSync(Buffer.concat(blocks));
}
