/*
 * Which digest of a published version mcp-updater verifies. npm accepts an SRI string with one or
 * several hashes (`sha512-… sha1-…`) and, for very old packages, only a hex `shasum` (SHA-1).
 * mcp-updater picks the strongest hash ssri finds and requires it to be SHA-256, SHA-384 or
 * SHA-512 with a digest of the right length: SHA-1 is broken for collisions, and every npm
 * version published since 2017 carries a sha512 integrity, so a SHA-1-only version of an MCP
 * server means a registry that rewrote its metadata, not an old package worth the risk.
 */
import ssri from 'ssri';

/** The digest length of each algorithm mcp-updater accepts. */
export const DIGEST_BYTES: Readonly<Record<string, number>> = { sha256: 32, sha384: 48, sha512: 64 };

export type IntegrityChoice = { ok: true; integrity: string } | { ok: false; code: 'EWEAKINTEGRITY' | 'EBADINTEGRITY'; problem: string };

/** The single strongest hash of `sri` (`sha512-…`), or why there is none mcp-updater accepts. */
export function strongestIntegrity(sri: unknown, shasum?: unknown): IntegrityChoice {
  if (typeof sri !== 'string' || sri.trim() === '') {
    return typeof shasum === 'string' && shasum !== ''
      ? {
          ok: false,
          code: 'EWEAKINTEGRITY',
          problem: 'the registry offers only a SHA-1 shasum and no integrity; mcp-updater requires sha256, sha384 or sha512',
        }
      : { ok: false, code: 'EBADINTEGRITY', problem: 'the registry gives no integrity for its tarball' };
  }
  const parsed = ssri.parse(sri);
  const algorithm = parsed ? parsed.pickAlgorithm() : undefined;
  if (!parsed || !algorithm) {
    return { ok: false, code: 'EBADINTEGRITY', problem: `its integrity ${JSON.stringify(sri.slice(0, 120))} is not an SRI string` };
  }
  const expected = DIGEST_BYTES[algorithm];
  if (expected === undefined) {
    return {
      ok: false,
      code: 'EWEAKINTEGRITY',
      problem: `its strongest integrity is ${algorithm}; mcp-updater requires sha256, sha384 or sha512`,
    };
  }
  const hash = parsed[algorithm]![0]!;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(hash.digest) || Buffer.from(hash.digest, 'base64').length !== expected) {
    return { ok: false, code: 'EBADINTEGRITY', problem: `its ${algorithm} integrity is not a ${expected}-byte base64 digest` };
  }
  return { ok: true, integrity: `${algorithm}-${hash.digest}` };
}
