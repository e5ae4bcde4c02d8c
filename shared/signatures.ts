/*
 * npm registry signatures (docs/ARCHITECTURE.md "Registry signatures"): the registry signs
 * `<name>@<version>:<dist.integrity>` of every version it publishes with ECDSA P-256 / SHA-256 and
 * publishes its public keys at `<registry>/-/npm/v1/keys`. The check and what `provenance`
 * (off | warn | require) makes of its outcome are pure functions here; the registry client fetches
 * and caches the keys.
 */
import crypto from 'node:crypto';

export const PROVENANCE_MODES = ['off', 'warn', 'require'] as const;
export type ProvenanceMode = (typeof PROVENANCE_MODES)[number];

/** One entry of `<registry>/-/npm/v1/keys`. */
export interface RegistryKey {
  keyid: string;
  /** Base64 of the DER-encoded SubjectPublicKeyInfo. */
  key: string;
  keytype?: string;
  scheme?: string;
  /** The key signs nothing published at or after this time. */
  expires?: string | null;
}

/** One entry of a version's `dist.signatures`. */
export interface RegistrySignature {
  keyid: string;
  /** Base64 DER ECDSA signature. */
  sig: string;
}

export type SignatureResult =
  /** Every signature verified with a published key. */
  | 'verified'
  /** The version carries no signature. */
  | 'unsigned'
  /** A signature does not verify: the registry data was altered, or signed with another key. */
  | 'invalid'
  /** A signature names a key id the registry does not publish. */
  | 'unknown-key'
  /** The key had expired when the version was published. */
  | 'expired-key'
  /** The registry's keys could not be read (warn mode goes on without them). */
  | 'unverified';

export interface SignatureOutcome {
  result: SignatureResult;
  message: string;
}

export interface SignedVersion {
  name: string;
  version: string;
  /** `dist.integrity` exactly as published (it is what was signed). */
  integrity?: string;
  signatures?: unknown;
  /** `time[version]` when the packument has it. */
  publishedAt?: string;
}

function signaturesOf(value: unknown): RegistrySignature[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter(
    (entry): entry is RegistrySignature =>
      entry !== null
      && typeof entry === 'object'
      && typeof (entry as RegistrySignature).keyid === 'string'
      && typeof (entry as RegistrySignature).sig === 'string',
  );
}

/**
 * The KeyObject of a published key (base64 DER SPKI), built once per key text: a check verifies
 * with the same one or two registry keys every time, and building one costs more than the verify.
 */
const publicKeys = new Map<string, crypto.KeyObject>();
const MAX_PUBLIC_KEYS = 64;

function publicKeyOf(spki: string): crypto.KeyObject {
  let publicKey = publicKeys.get(spki);
  if (!publicKey) {
    publicKey = crypto.createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
    // Keys come from the registry: a registry rotating through many keys cannot grow this.
    if (publicKeys.size >= MAX_PUBLIC_KEYS) publicKeys.clear();
    publicKeys.set(spki, publicKey);
  }
  return publicKey;
}

/** Verify every registry signature of a version against the registry's keys. */
export function verifyRegistrySignatures(version: SignedVersion, keys: readonly RegistryKey[]): SignatureOutcome {
  const label = `${version.name}@${version.version}`;
  const signatures = signaturesOf(version.signatures);
  if (!signatures || signatures.length === 0) return { result: 'unsigned', message: `${label} carries no registry signature` };
  const message = Buffer.from(`${label}:${version.integrity ?? ''}`);
  for (const signature of signatures) {
    const key = keys.find((candidate) => candidate.keyid === signature.keyid);
    if (!key) {
      return { result: 'unknown-key', message: `${label} is signed with key ${signature.keyid}, which the registry does not publish` };
    }
    if (key.expires && version.publishedAt && Date.parse(version.publishedAt) >= Date.parse(key.expires)) {
      return {
        result: 'expired-key',
        message: `${label} was published ${version.publishedAt}, after its signing key ${key.keyid} expired (${key.expires})`,
      };
    }
    let valid = false;
    try {
      valid = crypto.verify('sha256', message, publicKeyOf(key.key), Buffer.from(signature.sig, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid)
      return {
        result: 'invalid',
        message: `${label}: its registry signature (key ${key.keyid}) does not match its name, version and integrity`,
      };
  }
  return { result: 'verified', message: `${label}: registry signature verified` };
}

/** Why `provenance` refuses a version with this outcome, or undefined when it may be used. */
export function signatureRefusal(mode: ProvenanceMode, outcome: SignatureOutcome): string | undefined {
  if (mode === 'off') return undefined;
  switch (outcome.result) {
    case 'verified':
    case 'unverified':
      return undefined;
    case 'unsigned':
      return mode === 'require' ? `${outcome.message} (provenance: require)` : undefined;
    default:
      return outcome.message;
  }
}
