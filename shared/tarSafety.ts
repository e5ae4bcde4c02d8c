/*
 * Is a package tarball safe to extract? Pure decisions over tar headers, made for every entry
 * BEFORE anything is written: `checkTarEntry` judges one entry on its own, `TarScan` adds what
 * only the whole archive shows (one top-level folder, counts and sizes, link chains, paths that
 * would be written through a symlink). workers/stage.ts refuses the tarball on the first problem.
 *
 * Paths are judged the way node-tar extracts with `strip: 1`: the first path segment is the
 * package folder (`package/` in npm tarballs); everything must live below it. Symlink targets
 * resolve from the link's own directory, hard-link targets from the archive root (tar semantics).
 */

export interface TarEntryInfo {
  path: string;
  /** node-tar entry type: File, OldFile, ContiguousFile, Directory, SymbolicLink, Link, FIFO... */
  type: string;
  size: number;
  linkpath?: string;
  mode?: number;
}

export interface TarLimits {
  /** Most entries an archive may hold. */
  maxFiles: number;
  /** Most bytes all files together may unpack to. */
  maxTotalBytes: number;
  /** Most bytes one file may unpack to. */
  maxFileBytes: number;
}

export type TarProblemCode =
  | 'EABSPATH'
  | 'EPATHTRAVERSAL'
  | 'EOUTSIDEROOT'
  | 'EPATHDEPTH'
  | 'ELINKESCAPE'
  | 'ELINKTARGET'
  | 'ELINKTHROUGH'
  | 'ELINKLOOP'
  | 'EDUPLICATE'
  | 'EDEVICE'
  | 'EENTRYTYPE'
  | 'ESETID'
  | 'ETOOBIG'
  | 'ETOOMANYFILES'
  | 'EPACKAGETOOBIG';

export interface TarEntryProblem {
  code: TarProblemCode;
  /** The entry's path as written in the archive. */
  path: string;
  message: string;
}

/** node-tar refuses deeper paths (its default maxDepth); refusing them here keeps the message ours. */
export const MAX_PATH_DEPTH = 1024;
/** Hops a symlink chain may take before it counts as a loop (Linux allows 40). */
export const MAX_LINK_HOPS = 40;

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const DIRECTORY_TYPES = new Set(['Directory', 'GNUDumpDir']);
const DEVICE_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO']);

type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink';

function entryKind(type: string): EntryKind | undefined {
  if (FILE_TYPES.has(type)) return 'file';
  if (DIRECTORY_TYPES.has(type)) return 'directory';
  if (type === 'SymbolicLink') return 'symlink';
  if (type === 'Link') return 'hardlink';
  return undefined;
}

/** `/x`, `\x`, `C:x`: anything node-tar or Windows would treat as rooted. */
function isAbsolute(p: string): boolean {
  return p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:/.test(p);
}

/** Segments of a tar path; backslashes count as separators so `..\\` cannot hide a traversal. */
function segments(p: string): string[] {
  return p.split(/[\\/]/).filter((segment) => segment !== '' && segment !== '.');
}

interface ParsedPath {
  /** The top-level folder (stripped by `strip: 1`). */
  top: string;
  /** Segments below the top folder. */
  rest: string[];
}

function problem(code: TarProblemCode, entry: Pick<TarEntryInfo, 'path'>, message: string): TarEntryProblem {
  return { code, path: entry.path, message: `${JSON.stringify(entry.path)}: ${message}` };
}

function parsePath(entry: TarEntryInfo): ParsedPath | TarEntryProblem {
  const p = entry.path;
  if (p === '') return problem('EOUTSIDEROOT', entry, 'entry has an empty path');
  if (isAbsolute(p)) return problem('EABSPATH', entry, 'absolute path');
  if (p.split(/[\\/]/).includes('..')) return problem('EPATHTRAVERSAL', entry, "path contains a '..' segment");
  const raw = p.split('/');
  const top = raw[0]!;
  if (top === '.' || top === '') {
    return problem('EOUTSIDEROOT', entry, 'path does not start with the package folder (such as package/)');
  }
  const rest = raw.slice(1).flatMap((segment) => segments(segment));
  if (rest.length + 1 > MAX_PATH_DEPTH) return problem('EPATHDEPTH', entry, `path is deeper than ${MAX_PATH_DEPTH} folders`);
  return { top, rest };
}

/**
 * Resolve `target` (a link target) from the directory `base` (segments below the package root),
 * following the symlinks in `links` like the kernel would. Undefined when it leaves the root;
 * 'loop' when a chain is too long.
 */
function resolveBelowRoot(
  base: string[],
  target: string[],
  links: ReadonlyMap<string, { dir: string[]; target: string[] }>,
  followLast: boolean,
  hops = 0,
): string[] | undefined | 'loop' {
  let current = [...base];
  for (let index = 0; index < target.length; index++) {
    const segment = target[index]!;
    if (segment === '..') {
      if (current.length === 0) return undefined;
      current.pop();
      continue;
    }
    current.push(segment);
    const link = links.get(current.join('/'));
    if (link && (followLast || index < target.length - 1)) {
      if (hops >= MAX_LINK_HOPS) return 'loop';
      const resolved = resolveBelowRoot(current.slice(0, -1), link.target, links, true, hops + 1);
      if (resolved === undefined || resolved === 'loop') return resolved;
      current = resolved;
    }
  }
  return current;
}

/**
 * Judge one entry on its own: path shape, type, set-id bits, size, and (lexically) where its
 * link points. Cross-entry rules (one top folder, counts, chains) belong to TarScan.
 */
export function checkTarEntry(entry: TarEntryInfo, limits: Pick<TarLimits, 'maxFileBytes'>): TarEntryProblem | undefined {
  const parsed = parsePath(entry);
  if ('code' in parsed) return parsed;
  const kind = entryKind(entry.type);
  if (!kind) {
    if (DEVICE_TYPES.has(entry.type)) return problem('EDEVICE', entry, `${entry.type} entries are not allowed in a package`);
    return problem('EENTRYTYPE', entry, `entry type ${entry.type} is not allowed (only files, directories and links)`);
  }
  if (parsed.rest.length === 0 && kind !== 'directory') {
    return problem('EOUTSIDEROOT', entry, 'entry is not inside the package folder');
  }
  if (entry.mode !== undefined && (entry.mode & 0o6000) !== 0) {
    return problem('ESETID', entry, `mode ${entry.mode.toString(8)} has the set-user-id or set-group-id bit`);
  }
  if (kind === 'file' && entry.size > limits.maxFileBytes) {
    return problem('ETOOBIG', entry, `file of ${entry.size} bytes is larger than the limit of ${limits.maxFileBytes} bytes`);
  }
  if (kind === 'symlink' || kind === 'hardlink') return checkLinkTarget(entry, kind, parsed);
  return undefined;
}

function checkLinkTarget(entry: TarEntryInfo, kind: 'symlink' | 'hardlink', parsed: ParsedPath): TarEntryProblem | undefined {
  const linkpath = entry.linkpath ?? '';
  const what = kind === 'symlink' ? 'symbolic link' : 'hard link';
  if (linkpath === '') return problem('ELINKESCAPE', entry, `${what} has no target`);
  if (isAbsolute(linkpath)) return problem('ELINKESCAPE', entry, `${what} points at the absolute path ${JSON.stringify(linkpath)}`);
  if (kind === 'hardlink') {
    // Hard-link targets name another archive entry, from the archive root.
    const target = hardLinkTarget(linkpath, parsed.top);
    if (!target) return problem('ELINKESCAPE', entry, `hard link points outside the package folder (${JSON.stringify(linkpath)})`);
    return undefined;
  }
  const resolved = resolveBelowRoot(parsed.rest.slice(0, -1), segments(linkpath), new Map(), false);
  if (resolved === undefined || resolved === 'loop') {
    return problem('ELINKESCAPE', entry, `symbolic link points outside the package folder (${JSON.stringify(linkpath)})`);
  }
  return undefined;
}

/** Segments below the package root a hard link names, or undefined when it names something else. */
function hardLinkTarget(linkpath: string, top: string): string[] | undefined {
  if (linkpath.split(/[\\/]/).includes('..')) return undefined;
  const raw = linkpath.split('/');
  if (raw[0] !== top) return undefined;
  const rest = raw.slice(1).flatMap((segment) => segments(segment));
  return rest.length > 0 ? rest : undefined;
}

/**
 * Accumulates a whole archive: `add` every entry in order (it returns the first problem of that
 * entry, including count and size limits), then `finish` for what needs every entry: link chains
 * resolved hop by hop and entries that would be written through a symlink.
 */
export class TarScan {
  /** Entries seen so far. */
  files = 0;
  /** Bytes the files unpack to. */
  bytes = 0;
  /** The single top-level folder, once seen. */
  root?: string;

  private readonly kinds = new Map<string, EntryKind>();
  private readonly symlinks = new Map<string, { dir: string[]; target: string[]; path: string }>();
  private readonly hardlinks: Array<{ path: string; target: string[] }> = [];
  private readonly paths: Array<{ path: string; rest: string[] }> = [];

  constructor(private readonly limits: TarLimits) {}

  add(entry: TarEntryInfo): TarEntryProblem | undefined {
    this.files += 1;
    if (this.files > this.limits.maxFiles) {
      return problem('ETOOMANYFILES', entry, `the package has more than ${this.limits.maxFiles} entries`);
    }
    const single = checkTarEntry(entry, this.limits);
    if (single) return single;
    const { top, rest } = parsePath(entry) as ParsedPath;
    this.root ??= top;
    if (top !== this.root) {
      return problem('EOUTSIDEROOT', entry, `entry is outside the package folder ${JSON.stringify(`${this.root}/`)}`);
    }
    const kind = entryKind(entry.type)!;
    if (kind === 'file') {
      this.bytes += entry.size;
      if (this.bytes > this.limits.maxTotalBytes) {
        return problem('EPACKAGETOOBIG', entry, `the package unpacks to more than the limit of ${this.limits.maxTotalBytes} bytes`);
      }
    }
    const key = rest.join('/');
    // A later entry replaces an earlier one on extraction; with a link involved that would make
    // the checks above judge something other than what ends up on disk.
    const previous = this.kinds.get(key);
    if (previous && (isLink(previous) || isLink(kind))) {
      return problem('EDUPLICATE', entry, `the path appears twice (as a ${previous}, then as a ${kind})`);
    }
    if (kind === 'hardlink') {
      const target = hardLinkTarget(entry.linkpath!, top)!;
      const targetKind = this.kinds.get(target.join('/'));
      if (targetKind === undefined || targetKind === 'directory') {
        return problem('ELINKTARGET', entry, `hard link target ${JSON.stringify(entry.linkpath)} is not an earlier file of the archive`);
      }
      this.hardlinks.push({ path: entry.path, target });
    }
    if (kind === 'symlink') {
      this.symlinks.set(key, { dir: rest.slice(0, -1), target: segments(entry.linkpath!), path: entry.path });
    }
    this.kinds.set(key, kind);
    this.paths.push({ path: entry.path, rest });
    return undefined;
  }

  /** Problems only the complete archive shows; call after the last `add`. */
  finish(): TarEntryProblem | undefined {
    for (const { path, rest } of this.paths) {
      for (let length = 1; length < rest.length; length++) {
        const prefix = rest.slice(0, length).join('/');
        if (this.symlinks.has(prefix)) {
          return problem(
            'ELINKTHROUGH',
            { path },
            `entry would be written through the symbolic link ${JSON.stringify(this.symlinks.get(prefix)!.path)}`,
          );
        }
      }
    }
    for (const link of this.symlinks.values()) {
      const resolved = resolveBelowRoot(link.dir, link.target, this.symlinks, true);
      if (resolved === 'loop') return problem('ELINKLOOP', link, `symbolic link chain is longer than ${MAX_LINK_HOPS} hops or loops`);
      if (resolved === undefined) {
        return problem('ELINKESCAPE', link, 'symbolic link resolves outside the package folder through another link');
      }
    }
    for (const link of this.hardlinks) {
      // link(2) follows symlinks in the target's folders but not in its last segment.
      const resolved = resolveBelowRoot([], link.target, this.symlinks, false);
      if (resolved === 'loop')
        return problem('ELINKLOOP', link, `hard link target goes through a symbolic link chain longer than ${MAX_LINK_HOPS} hops`);
      if (resolved === undefined) return problem('ELINKESCAPE', link, 'hard link target resolves outside the package folder');
    }
    return undefined;
  }
}

function isLink(kind: EntryKind): boolean {
  return kind === 'symlink' || kind === 'hardlink';
}
