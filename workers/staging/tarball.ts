/*
 * Staging steps on the verified tarball: check the backup still matches its integrity, judge
 * every tar entry (shared/tarSafety.ts) before anything is extracted, then extract it safely.
 * A small tarball (up to 1 MB) is read once: the bytes that matched the integrity are the ones
 * judged and extracted. A larger one is streamed from the file each time, its integrity checked again
 * while it is extracted.
 */
import fs from 'node:fs/promises';
import { createReadStream, type Stats } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ssri from 'ssri';
import * as tar from 'tar';
import { IntegrityError, StagingError } from '../../shared/errors.js';
import { TarScan, type TarEntryProblem, type TarLimits } from '../../shared/tarSafety.js';
import { label, type StageRequest } from './request.js';

/** Tarballs up to this size are read into memory once (verified, scanned and extracted from there). */
const READ_WHOLE_BYTES = 1024 * 1024;

/** A backup tarball that matched its integrity: its path, and its bytes when it was small enough to keep. */
export interface VerifiedTarball {
  file: string;
  integrity: string;
  bytes?: Buffer;
}

function tarballSource(tarball: VerifiedTarball): Readable {
  return tarball.bytes ? Readable.from([tarball.bytes]) : createReadStream(tarball.file);
}

/** The backup must exist and still match its integrity (disk corruption, tampering). */
export async function verifyBackup(file: string, request: StageRequest): Promise<VerifiedTarball> {
  let bytes: Buffer | undefined;
  try {
    const handle = await fs.open(file, 'r');
    try {
      if ((await handle.stat()).size <= READ_WHOLE_BYTES) bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new StagingError('EBACKUPMISSING', `the verified tarball of ${label(request)} is not in the backup store (${file})`, {
      hint: `the next check of ${request.server} downloads it again (mcp-updater check ${request.server}); no --force is needed`,
      retryable: false,
    });
  }
  try {
    if (bytes) ssri.checkData(bytes, request.integrity, { error: true });
    else await ssri.checkStream(createReadStream(file), request.integrity);
    return { file, integrity: request.integrity, ...(bytes ? { bytes } : {}) };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'EINTEGRITY' && code !== 'EBADSIZE') throw error;
    // The file is named by its digest, so a mismatch means the bytes rotted; it is useless now
    // and would stop a new download (download keeps an existing backup).
    await fs.rm(file, { force: true });
    throw new IntegrityError(
      `the backup tarball of ${label(request)} no longer matches its integrity ${request.integrity}; it was removed`,
      {
        hint: `check the disk under BACKUP_DIR, then run a forced check of ${request.server} to download it again`,
        cause: error,
      },
    );
  }
}

/** Judge every entry before anything is extracted; throws the first problem. */
export async function scanTarball(tarball: VerifiedTarball, limits: TarLimits, request: StageRequest): Promise<void> {
  const scan = new TarScan(limits);
  const controller = new AbortController();
  let problem: TarEntryProblem | undefined;
  const judge = (entry: tar.ReadEntry) => {
    if (problem) return;
    problem = scan.add(entry);
    if (problem) controller.abort();
  };
  const parser = tar.t({ strict: true, onReadEntry: judge });
  // Entries of unknown types never reach onReadEntry; node-tar skips them on extraction too.
  parser.on('ignoredEntry', (entry: tar.ReadEntry) => judge(entry));
  try {
    await pipeline(tarballSource(tarball), parser, { signal: controller.signal });
  } catch (error) {
    if (!problem) {
      throw new StagingError('ETARBALL', `the tarball of ${label(request)} is not a readable tar archive (${(error as Error).message})`, {
        hint: 'the package is damaged on the registry; it was not installed',
        retryable: false,
        cause: error,
      });
    }
  }
  problem ??= scan.finish();
  if (problem) {
    throw new StagingError(problem.code, `the tarball of ${label(request)} is unsafe and was not extracted: ${problem.message}`, {
      hint: 'nothing was written; report the package to its maintainers or pin another version',
      retryable: false,
      details: { entry: problem.path },
    });
  }
}

/**
 * Extract with strip:1 and without owners or odd modes. A streamed tarball's integrity is verified
 * again on the way; bytes kept in memory are the ones verifyBackup checked.
 */
export async function extractTarball(tarball: VerifiedTarball, dir: string, request: StageRequest): Promise<void> {
  const options = {
    cwd: dir,
    strip: 1,
    // Any warning (an entry node-tar would skip or alter) fails the extraction: the scan
    // judged the archive as it is, so nothing may change silently now.
    strict: true,
    // node-tar preserves owners by default when running as root.
    preserveOwner: false,
    noMtime: true,
    filter: (_path: string, entry: tar.ReadEntry | Stats) => {
      const readEntry = entry as tar.ReadEntry;
      // Like npm: owner may always read and write, nobody else may write.
      if (readEntry.type === 'Directory') readEntry.mode = 0o755;
      else if (readEntry.mode !== undefined) readEntry.mode = (readEntry.mode & 0o755) | 0o644;
      return true;
    },
  };
  try {
    if (tarball.bytes) extractSync(tarball.bytes, options);
    else await pipeline(createReadStream(tarball.file), ssri.integrityStream({ integrity: tarball.integrity }), tar.x(options));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EINTEGRITY' || code === 'EBADSIZE') {
      throw new IntegrityError(`the backup tarball of ${label(request)} changed while it was extracted`, {
        hint: `check the disk under BACKUP_DIR, then run a forced check of ${request.server}`,
        cause: error,
      });
    }
    throw new StagingError('EEXTRACT', `extracting ${label(request)} failed: ${(error as Error).message}`, {
      hint: code?.startsWith('TAR_') ? 'the tarball is damaged; it was not installed' : 'check free space and permissions of STAGING_DIR',
      retryable: !code?.startsWith('TAR_'),
      cause: error,
    });
  }
}

/**
 * A small tarball kept in memory is extracted with node-tar's synchronous unpacker: its few
 * files cost a thread-pool trip per open, write, chmod and close otherwise. Throws the first error.
 */
function extractSync(bytes: Buffer, options: tar.TarOptionsWithAliases): void {
  let failure: unknown;
  const unpack = new tar.UnpackSync({ ...options, sync: true });
  unpack.on('error', (error: unknown) => {
    failure ??= error;
  });
  unpack.end(bytes);
  if (failure) throw failure;
}
