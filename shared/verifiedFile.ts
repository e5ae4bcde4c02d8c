/*
 * A download's bytes to a file that appears only once verified: the body streams through ssri's
 * integrity check and a size meter into `<destination>.<pid>.<random>.partial`, which is renamed
 * into place when the stream ends well. On any failure the partial file is gone before this
 * returns, even when the write stream was still opening it as the pipeline failed (removed before
 * it closed, the file would come back). Used for npm tarballs and for Python wheels and sdists.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ssri from 'ssri';

export interface VerifiedFileOptions {
  destination: string;
  /** SRI string the bytes must match (ssri's EINTEGRITY otherwise). */
  integrity: string;
  maxBytes: number;
  /** The error for a body larger than maxBytes. */
  tooBig: () => Error;
  signal: AbortSignal;
  /** Sees every chunk that passed the size check (e.g. for another digest). */
  onChunk?: (chunk: Buffer) => void;
}

export async function writeVerifiedFile(body: Readable, options: VerifiedFileOptions): Promise<{ bytes: number }> {
  const { destination, maxBytes, tooBig, onChunk } = options;
  // Nothing awaited before the body is piped: a response body that ended or failed meanwhile
  // would leave the pipeline waiting for an event that already went by.
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  const partial = `${destination}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.partial`;
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        callback(tooBig());
        return;
      }
      onChunk?.(chunk);
      callback(null, chunk);
    },
  });
  const file = fs.createWriteStream(partial, { mode: 0o644 });
  try {
    await pipeline(body, ssri.integrityStream({ integrity: options.integrity }), meter, file, { signal: options.signal });
    await fsp.rename(partial, destination);
    return { bytes };
  } catch (error) {
    if (!file.closed) await new Promise<void>((resolve) => file.destroy().once('close', () => resolve()));
    await fsp.rm(partial, { force: true });
    throw error;
  }
}
