/*
 * Sigstore verification of npm provenance bundles (docs/ARCHITECTURE.md "Provenance attestations")
 * with @sigstore/verify: the DSSE signature, the Fulcio certificate chain to the trust root and
 * its embedded SCT, and the Rekor entry (inclusion proof or promise, body matching the envelope);
 * then the in-toto statement's subject and source (shared/provenance.ts).
 *
 * The trust root is the Sigstore public-good instance's, read through TUF by @sigstore/tuf with
 * its built-in mirror and root, its metadata cached under CACHE_DIR/sigstore; or, for air-gapped
 * operators and tests, a trusted_root.json named by SIGSTORE_TRUSTED_ROOT.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { bundleFromJSON, isBundleWithDsseEnvelope, type SerializedBundle } from '@sigstore/bundle';
import { ASN1Obj } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { getTrustedRoot } from '@sigstore/tuf';
import { toSignedEntity, toTrustMaterial, Verifier, type Signer, type TrustMaterial } from '@sigstore/verify';
import type { Config } from './config.js';
import { ConfigurationError, RegistryError } from './errors.js';
import {
  identityProblem,
  sourceFromPredicate,
  subjectProblem,
  type AttestationOutcome,
  type CertificateIdentity,
  type InTotoStatement,
} from './provenance.js';

/** How long a trust root read through TUF is used before TUF is asked again. */
const TRUST_ROOT_TTL_MS = 24 * 60 * 60 * 1000;
const OID_SOURCE_REPOSITORY_URI = '1.3.6.1.4.1.57264.1.12';
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface AttestedPackage {
  name: string;
  version: string;
  /** `dist.integrity` as published. */
  integrity?: string;
}

export class ProvenanceVerifier {
  private trust?: { at: number; material: TrustMaterial };

  constructor(private readonly options: { trustedRootFile?: string; tufCacheDir: string; now?: () => number }) {}

  static fromConfig(config: Pick<Config, 'sigstoreTrustedRoot' | 'cacheDir'>): ProvenanceVerifier {
    return new ProvenanceVerifier({ trustedRootFile: config.sigstoreTrustedRoot, tufCacheDir: path.join(config.cacheDir, 'sigstore') });
  }

  /**
   * Verify one provenance bundle of `pkg`: 'attested' with the source it names, or
   * 'attestation-invalid' saying what failed. Throws (retryable) only when the trust root cannot
   * be read.
   */
  async verify(pkg: AttestedPackage, serialized: unknown): Promise<AttestationOutcome> {
    const label = `${pkg.name}@${pkg.version}`;
    const invalid = (why: string): AttestationOutcome => ({ result: 'attestation-invalid', message: `${label}: ${why}` });
    const material = await this.trustMaterial();
    let signer: Signer;
    let statement: InTotoStatement;
    try {
      const bundle = bundleFromJSON(serialized as SerializedBundle);
      if (!isBundleWithDsseEnvelope(bundle)) return invalid('its provenance bundle holds no DSSE envelope');
      const envelope = bundle.content.dsseEnvelope;
      if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE)
        return invalid(`its provenance envelope carries ${envelope.payloadType}, not an in-toto statement`);
      signer = new Verifier(material).verify(toSignedEntity(bundle));
      statement = JSON.parse(envelope.payload.toString('utf8')) as InTotoStatement;
    } catch (error) {
      return invalid(`its provenance bundle does not verify (${describeSigstoreError(error)})`);
    }
    const subject = subjectProblem(statement, pkg);
    if (subject) return { result: 'attestation-invalid', message: subject };
    const predicateType = typeof statement.predicateType === 'string' ? statement.predicateType : '';
    const source = sourceFromPredicate(predicateType, statement.predicate);
    if (!source) return invalid(`its provenance (${predicateType || 'no predicate type'}) names no source repository`);
    const certificate = certificateIdentity(signer);
    const identity = identityProblem(label, source, certificate);
    if (identity) return { result: 'attestation-invalid', message: identity };
    return {
      result: 'attested',
      message: `${label}: provenance verified (built from ${source.repository})`,
      source: { ...source, ...(certificate.issuer ? { issuer: certificate.issuer } : {}) },
    };
  }

  /** The trust root's keys and certificates, read once a day (a failed read is not kept). */
  private async trustMaterial(): Promise<TrustMaterial> {
    const now = this.options.now?.() ?? Date.now();
    if (this.trust && (this.options.trustedRootFile || now - this.trust.at < TRUST_ROOT_TTL_MS)) return this.trust.material;
    const root = this.options.trustedRootFile ? await readTrustedRoot(this.options.trustedRootFile) : await this.tufTrustedRoot();
    const material = toTrustMaterial(root);
    this.trust = { at: now, material };
    return material;
  }

  private async tufTrustedRoot(): Promise<TrustedRoot> {
    try {
      await fs.mkdir(this.options.tufCacheDir, { recursive: true });
      return await getTrustedRoot({ cachePath: this.options.tufCacheDir });
    } catch (error) {
      throw new RegistryError('ESIGSTORETRUST', `the Sigstore trust root could not be read through TUF (${describeSigstoreError(error)})`, {
        hint: 'the check is retried; without network access to the Sigstore TUF repository set SIGSTORE_TRUSTED_ROOT to a trusted_root.json, or provenance: off',
        retryable: true,
        cause: error,
      });
    }
  }
}

async function readTrustedRoot(file: string): Promise<TrustedRoot> {
  try {
    return TrustedRoot.fromJSON(JSON.parse(await fs.readFile(file, 'utf8')));
  } catch (error) {
    throw new ConfigurationError(`SIGSTORE_TRUSTED_ROOT ${file} is not a readable trusted_root.json (${(error as Error).message})`, {
      path: 'SIGSTORE_TRUSTED_ROOT',
      hint: 'point SIGSTORE_TRUSTED_ROOT at a Sigstore trusted_root.json, or unset it to use the public-good trust root',
    });
  }
}

/** Issuer, identity and the Fulcio source repository extension (a DER UTF8String) of the signer. */
function certificateIdentity(signer: Signer): CertificateIdentity {
  const identity = signer.identity;
  const sourceOid = identity?.oids?.find((entry) => entry.oid?.id.join('.') === OID_SOURCE_REPOSITORY_URI);
  let sourceRepository: string | undefined;
  if (sourceOid) {
    try {
      sourceRepository = ASN1Obj.parseBuffer(Buffer.from(sourceOid.value)).value.toString('utf8');
    } catch {
      sourceRepository = undefined;
    }
  }
  return { identity: identity?.subjectAlternativeName, issuer: identity?.extensions?.issuer, sourceRepository };
}

/** Sigstore errors carry a code (TLOG_ERROR, CERTIFICATE_ERROR…) and a message; both say what failed. */
function describeSigstoreError(error: unknown): string {
  const err = error as { code?: string; message?: string };
  const message = err.message ?? String(error);
  return err.code && !message.includes(err.code) ? `${err.code}: ${message}` : message;
}
