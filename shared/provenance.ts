/*
 * npm provenance attestations (docs/ARCHITECTURE.md "Provenance attestations"), the pure part: what
 * the in-toto statement of a version's SLSA provenance must say about the package (its subject),
 * which source it names (repository, commit, workflow), whether the signing certificate agrees,
 * and what `provenance` (off | warn | require) and an expected `repository` make of the outcome.
 * The Sigstore verification itself is shared/sigstore.ts; the check step is
 * workers/checking/provenance.ts.
 */
import ssri from 'ssri';
import type { ProvenanceMode } from './signatures.js';

/** Where a version was built, as its verified provenance says. Stored with the version. */
export interface ProvenanceSource {
  /** Normalized `host/owner/repo` (lower case, no scheme, no `.git`). */
  repository: string;
  /** The git commit the build ran on. */
  commit?: string;
  /** The workflow file that built it (`.github/workflows/release.yml`). */
  workflow?: string;
  /** The git ref the workflow ran for (`refs/heads/main`, `refs/tags/v1.2.3`). */
  ref?: string;
  /** The SLSA builder id. */
  builder?: string;
  /** OIDC issuer of the signing certificate. */
  issuer?: string;
  /** The in-toto predicate type that was verified. */
  predicateType: string;
}

export type AttestationResult =
  /** The provenance verified and names the package. */
  | 'attested'
  /** The version carries no provenance attestation. */
  | 'no-attestation'
  /** The bundle, its certificate, its log entry or its statement does not verify. */
  | 'attestation-invalid'
  /** The provenance names another repository than the inventory's `repository`. */
  | 'repository-mismatch'
  /** The attestations could not be read (the registry or the trust root failed). */
  | 'attestation-unverified';

export interface AttestationOutcome {
  result: AttestationResult;
  message: string;
  source?: ProvenanceSource;
}

/** The SLSA provenance predicate types npm publishes (v1 now, v0.2 for older versions). */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2';
const PROVENANCE_TYPES = new Set([SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02]);

export function isProvenancePredicate(predicateType: unknown): predicateType is string {
  return typeof predicateType === 'string' && PROVENANCE_TYPES.has(predicateType);
}

/** The package URL npm signs as the statement's subject: scoped names keep `%40` for the `@`. */
export function npmPurl(name: string, version: string): string {
  return `pkg:npm/${name.replace(/^@/, '%40')}@${version}`;
}

/** `https://github.com/Owner/Repo.git`, `git+https://…`, `github.com/owner/repo` -> `github.com/owner/repo`. */
export function normalizeRepository(value: string): string | undefined {
  const text = value
    .trim()
    .replace(/^git\+/, '')
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^@/]+@/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/i, '');
  const match = /^([a-z0-9.-]+\.[a-z]{2,}(?::\d+)?)\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/i.exec(text);
  if (!match) return undefined;
  return `${match[1]}/${match[2]}/${match[3]}`.toLowerCase();
}

interface StatementSubject {
  name?: unknown;
  digest?: Record<string, unknown>;
}

export interface InTotoStatement {
  _type?: unknown;
  subject?: StatementSubject[];
  predicateType?: unknown;
  predicate?: unknown;
}

/** Why the statement does not describe `name@version` with this integrity, or undefined. */
export function subjectProblem(statement: InTotoStatement, pkg: { name: string; version: string; integrity?: string }): string | undefined {
  const label = `${pkg.name}@${pkg.version}`;
  const purl = npmPurl(pkg.name, pkg.version);
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const subject = subjects.find((entry) => entry?.name === purl);
  if (!subject) {
    const named = subjects.map((entry) => String(entry?.name)).join(', ') || 'nothing';
    return `${label}: its provenance was signed for ${named}, not for ${purl}`;
  }
  const expected = sha512Hex(pkg.integrity);
  if (!expected) return `${label}: its integrity has no sha512 to compare with its provenance`;
  const signed = subject.digest?.sha512;
  if (signed !== expected) {
    return `${label}: its provenance was signed for a tarball with sha512 ${String(signed ?? 'none')}, not for the published one (${expected})`;
  }
  return undefined;
}

function sha512Hex(integrity: string | undefined): string | undefined {
  if (!integrity) return undefined;
  const parsed = ssri.parse(integrity);
  const hash = parsed?.sha512?.[0];
  return hash ? Buffer.from(hash.digest, 'base64').toString('hex') : undefined;
}

type Json = Record<string, unknown>;

function object(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * The source a SLSA provenance predicate names: v1 `buildDefinition.externalParameters.workflow`
 * and the first resolved dependency's git commit; v0.2 `invocation.configSource` (`uri` is
 * `git+https://host/owner/repo@refs/…`, `entryPoint` the workflow). Undefined when it names no
 * repository.
 */
export function sourceFromPredicate(predicateType: string, predicate: unknown): Omit<ProvenanceSource, 'issuer'> | undefined {
  const root = object(predicate);
  if (!root) return undefined;
  if (predicateType === SLSA_PROVENANCE_V1) {
    const definition = object(root.buildDefinition);
    const workflow = object(object(definition?.externalParameters)?.workflow);
    const repository = text(workflow?.repository);
    const normalized = repository ? normalizeRepository(repository) : undefined;
    if (!normalized) return undefined;
    const dependencies = Array.isArray(definition?.resolvedDependencies) ? definition.resolvedDependencies : [];
    const commit = text(object(object(dependencies[0])?.digest)?.gitCommit);
    const builder = text(object(object(root.runDetails)?.builder)?.id);
    return compact({ repository: normalized, commit, workflow: text(workflow?.path), ref: text(workflow?.ref), builder, predicateType });
  }
  if (predicateType === SLSA_PROVENANCE_V02) {
    const configSource = object(object(root.invocation)?.configSource);
    const uri = text(configSource?.uri);
    if (!uri) return undefined;
    const at = uri.lastIndexOf('@');
    const normalized = normalizeRepository(at > 0 ? uri.slice(0, at) : uri);
    if (!normalized) return undefined;
    const commit = text(object(configSource?.digest)?.sha1);
    return compact({
      repository: normalized,
      commit,
      workflow: text(configSource?.entryPoint),
      ref: at > 0 ? uri.slice(at + 1) : undefined,
      builder: text(object(root.builder)?.id),
      predicateType,
    });
  }
  return undefined;
}

function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}

/** What the Fulcio certificate says about who signed: its identity, issuer and source repository. */
export interface CertificateIdentity {
  /** Subject alternative name (the workflow identity URI for CI builds). */
  identity?: string;
  issuer?: string;
  /** Fulcio's Source Repository URI extension, when the issuer sets it. */
  sourceRepository?: string;
}

/**
 * The certificate must be the build's own: an issuer, and the repository the provenance names
 * (Fulcio's source repository extension, else the identity URI's `host/owner/repo`). A statement
 * that names one repository, signed by another repository's workflow, is forged.
 */
export function identityProblem(
  label: string,
  source: Pick<ProvenanceSource, 'repository'>,
  certificate: CertificateIdentity,
): string | undefined {
  if (!certificate.issuer) return `${label}: its provenance certificate names no OIDC issuer`;
  const signedBy =
    (certificate.sourceRepository && normalizeRepository(certificate.sourceRepository))
    ?? (certificate.identity && normalizeRepository(certificate.identity.split('/').slice(0, 5).join('/').replace(/@.*$/, '')));
  if (!signedBy) return `${label}: its provenance certificate names no source repository`;
  if (signedBy !== source.repository) {
    return `${label}: its provenance names ${source.repository}, but was signed by a workflow of ${signedBy}`;
  }
  return undefined;
}

/** Why `provenance` (with an expected `repository`) refuses a version with this outcome, or undefined. */
export function attestationRefusal(mode: ProvenanceMode, outcome: AttestationOutcome): string | undefined {
  if (mode === 'off') return undefined;
  switch (outcome.result) {
    case 'attested':
      return undefined;
    case 'repository-mismatch':
      return outcome.message;
    case 'attestation-invalid':
      // An attestation that is there but does not verify is a forgery or a tampered copy, as an
      // invalid registry signature is: refused unless provenance is off.
      return `${outcome.message} (provenance: ${mode})`;
    default:
      return mode === 'require' ? `${outcome.message} (provenance: require)` : undefined;
  }
}

/** The outcome with the expected repository applied: a verified source from elsewhere is a mismatch. */
export function expectRepository(outcome: AttestationOutcome, expected: string | undefined, label: string): AttestationOutcome {
  if (!expected || outcome.result !== 'attested' || !outcome.source) return outcome;
  if (outcome.source.repository === expected) return outcome;
  return {
    result: 'repository-mismatch',
    message: `${label} was built from ${outcome.source.repository}, not from ${expected} (the inventory's repository)`,
    source: outcome.source,
  };
}

/** One line for people: `github.com/o/r@abc1234 (.github/workflows/release.yml, refs/tags/v1)`. */
export function describeSource(source: ProvenanceSource): string {
  const where = source.commit ? `${source.repository}@${source.commit.slice(0, 12)}` : source.repository;
  const how = [source.workflow, source.ref].filter(Boolean).join(', ');
  return how ? `${where} (${how})` : where;
}

/** What the check step asks of a Sigstore verifier (shared/sigstore.ts `ProvenanceVerifier`). */
export interface AttestationVerifier {
  verify(pkg: { name: string; version: string; integrity?: string }, bundle: unknown): Promise<AttestationOutcome>;
}

/**
 * A verifier whose Sigstore libraries load at its first verification: a worker none of whose
 * packages carries an attestation never loads them (about 20 MB of resident memory).
 */
export function lazyAttestationVerifier(create: () => Promise<AttestationVerifier>): AttestationVerifier {
  let verifier: Promise<AttestationVerifier> | undefined;
  return {
    async verify(pkg, bundle) {
      verifier ??= create();
      return (await verifier).verify(pkg, bundle);
    },
  };
}
