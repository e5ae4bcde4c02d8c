/**
 * A fixture npm registry for tests (node:http only, listens on 127.0.0.1).
 *
 * Serves packuments (abbreviated "corgi" form for
 * `Accept: application/vnd.npm.install-v1+json`, full form otherwise, both with
 * strong ETags and `If-None-Match` -> 304) and tarballs, in a shape that npm's
 * CLI, pacote and npm-registry-fetch accept. Faults can be injected to
 * simulate an unreliable or hostile registry.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import * as tar from 'tar';
import { provenanceStatement, type FixtureSigstore } from './sigstore.js';
import { integrityOf, packDirectory } from './tarball.js';

/** Absolute path of `test/fixtures/packages`. */
export const FIXTURE_PACKAGES_DIR = fileURLToPath(new URL('../fixtures/packages/', import.meta.url));

/** Absolute path of a fixture package folder, e.g. `fixturePackageDir('mcp-healthy')`. */
export function fixturePackageDir(name: string): string {
  return path.join(FIXTURE_PACKAGES_DIR, name);
}

const DEFAULT_FIXTURE_DIR = fixturePackageDir('mcp-healthy');

interface SigningKey {
  keyid: string;
  /** Base64 DER SubjectPublicKeyInfo, as `/-/npm/v1/keys` publishes it. */
  key: string;
  privateKey: KeyObject;
}

/** An ECDSA P-256 key pair named as npm names its keys (`SHA256:<base64 of the key's sha256>`). */
function signingKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { keyid: `SHA256:${createHash('sha256').update(der).digest('base64')}`, key: der.toString('base64'), privateKey };
}

/** The key the fixture registry signs with and publishes at /-/npm/v1/keys. */
export const FIXTURE_SIGNING_KEY = signingKey();
/** A key it signs `unknown-key` versions with and never publishes. */
const UNPUBLISHED_KEY = signingKey();

/** How publish() signs a version: validly, over other data, with an unpublished key, or not at all. */
export type SignatureMode = 'valid' | 'bad' | 'unknown-key' | 'none';
const CORGI_TYPE = 'application/vnd.npm.install-v1+json';

export interface PublishOptions {
  /** May be scoped: `@scope/pkg`. */
  name: string;
  version: string;
  /** Fixture folder to pack (default: test/fixtures/packages/mcp-healthy). */
  fromDir?: string;
  /** A ready tarball (e.g. from packEntries); integrity is computed from it. */
  tarball?: Buffer;
  /** Extra fields merged into package.json inside the tarball AND into the packument version entry. */
  packageJson?: Record<string, unknown>;
  /** Goes into packument.time[version]; default now. */
  publishedAt?: Date;
  deprecated?: string;
  /**
   * Dist-tag to move to this version. Default: 'latest', moved only if this
   * version is semver-greater than the current latest (or there is none).
   * An explicit tag is always moved. `false` = no tag.
   */
  tag?: string | false;
  /**
   * What the packument's `dist.tarball` says instead of this registry's own URL (a packument that
   * sends clients to another host). The registry still serves the tarball at its own URL.
   */
  tarballUrl?: string;
  /**
   * The registry signature in `dist.signatures` (over `name@version:integrity` as served, so an
   * editPackument integrity stays signed). Default 'valid'.
   */
  signature?: SignatureMode;
  /**
   * Publish with an npm SLSA provenance attestation signed by the fixture Sigstore (see
   * useSigstore), built from `repository` (`owner/repo`); `variant` makes it hostile.
   */
  provenance?: ProvenanceOptions;
}

/**
 * How publish() attests a version: validly, or with a subject digest of other bytes, a subject
 * naming another package, a bundle signed by a CA the trust root does not know, a bundle without
 * its Rekor entry, or a statement naming one repository signed by another repository's workflow.
 */
export type ProvenanceVariant = 'valid' | 'wrong-digest' | 'wrong-name' | 'untrusted-ca' | 'no-tlog' | 'other-signer';

export interface ProvenanceOptions {
  repository: string;
  commit?: string;
  variant?: ProvenanceVariant;
}

export interface PublishResult {
  name: string;
  version: string;
  integrity: string;
  shasum: string;
  tarballUrl: string;
  size: number;
}

export type FaultKind = 'status' | 'delay' | 'drop' | 'corrupt' | 'truncate' | 'invalid-json';

export type Fault = {
  /** Which requests the fault applies to; default 'any'. A RegExp is tested against the raw request URL (path + query). */
  match?: 'packument' | 'tarball' | 'any' | RegExp;
  kind: FaultKind;
  /** For 'status' (e.g. 500, 503, 404); default 500. */
  status?: number;
  /** For 'delay': wait this long, then serve normally (or apply the next matching fault). */
  delayMs?: number;
  /** Apply to the next N matching requests (default: unlimited). */
  times?: number;
  /** 0..1, apply at random to matching requests (default 1). */
  probability?: number;
};

export interface RequestLogEntry {
  method: string;
  /** Raw request URL (path + query) as received. */
  url: string;
  accept?: string;
  /** HTTP status sent; 0 when no response was sent (dropped or client went away). */
  status: number;
  /** Fault kinds that were applied to this request, in order (absent if none). */
  faults?: FaultKind[];
}

interface VersionRecord {
  manifest: Record<string, unknown>;
  tarball: Buffer;
  tarballFile: string;
  integrity: string;
  shasum: string;
  publishedAt: Date;
  /** Overrides dist.tarball in packuments. */
  tarballUrl?: string;
  signature: SignatureMode;
  /** The attestations document served for this version (`dist.attestations`), when it has one. */
  attestations?: { attestations: Array<{ predicateType: string; bundle: unknown }> };
}

interface PackageRecord {
  name: string;
  versions: Map<string, VersionRecord>;
  distTags: Record<string, string>;
  created: Date;
  modified: Date;
}

interface ActiveFault {
  fault: Fault;
  remaining: number;
}

type Route =
  | { kind: 'packument'; name: string }
  | { kind: 'tarball'; name: string; file: string }
  | { kind: 'ping' }
  | { kind: 'keys' }
  | { kind: 'attestations'; name: string; version: string }
  | { kind: 'other' };

interface PreparedResponse {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

const NAME_RE = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9~][a-z0-9._~-]*$/i;

/** `@scope/name` -> `name`; `name` -> `name`. */
function basenameOf(name: string): string {
  return name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
}

function sha1(data: string | Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

function normalizeBin(name: string, bin: unknown): unknown {
  if (typeof bin === 'string') return { [basenameOf(name)]: bin };
  return bin;
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

/** Read `<top>/package.json` out of a (gzipped) package tarball; `{}` if absent or unreadable. */
async function readPackageJsonFromTarball(tgz: Buffer): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let found: Buffer[] | undefined;
    let done = false;
    const finish = (value: Record<string, unknown>): void => {
      if (!done) {
        done = true;
        resolve(value);
      }
    };
    const parseFound = (): Record<string, unknown> => {
      if (!found) return {};
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(found).toString('utf8'));
        return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
      } catch {
        return {};
      }
    };
    try {
      const parser = new tar.Parser({
        onReadEntry: (entry) => {
          if (!found && entry.type === 'File' && /^[^/]+\/package\.json$/.test(entry.path)) {
            const chunks: Buffer[] = [];
            found = chunks;
            entry.on('data', (c: Buffer) => chunks.push(c));
          } else {
            entry.resume();
          }
        },
      });
      parser.on('error', () => finish({}));
      parser.on('abort', () => finish({}));
      parser.on('end', () => finish(parseFound()));
      parser.on('close', () => finish(parseFound()));
      parser.end(tgz);
    } catch {
      finish({});
    }
  });
}

export class FixtureRegistry {
  /** Base URL with trailing slash, e.g. `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /** Every request received, in the order responses were sent. */
  readonly requests: RequestLogEntry[] = [];

  readonly #server: http.Server;
  readonly #packages = new Map<string, PackageRecord>();
  #faults: ActiveFault[] = [];
  readonly #edits = new Map<string, (packument: Record<string, unknown>) => void>();
  readonly #pendingDelays = new Set<() => void>();
  #closed = false;

  private constructor(server: http.Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  /** Start a registry on 127.0.0.1 with a random port. */
  static async start(): Promise<FixtureRegistry> {
    // Assigned once the server listens; the handler below reads it before then, so it cannot be const.
    // eslint-disable-next-line prefer-const
    let registry: FixtureRegistry | undefined;
    const server = http.createServer((req, res) => {
      if (!registry) {
        res.destroy();
        return;
      }
      registry.#handle(req, res).catch(() => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else {
          res.destroy();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    registry = new FixtureRegistry(server, `http://127.0.0.1:${port}/`);
    return registry;
  }

  /** URL of a packument as npm requests it (`@scope%2fname` for scoped packages). */
  packumentUrl(name: string): string {
    return `${this.url}${name.replace('/', '%2f')}`;
  }

  /** URL of a tarball: `<url><name>/-/<basename>-<version>.tgz`. */
  tarballUrl(name: string, version: string): string {
    return `${this.url}${name}/-/${basenameOf(name)}-${version}.tgz`;
  }

  /** Publish a version (packed from a fixture folder, or a ready tarball). */
  async publish(opts: PublishOptions): Promise<PublishResult> {
    const { name, version } = opts;
    if (!NAME_RE.test(name)) throw new Error(`FixtureRegistry.publish: invalid package name "${name}"`);
    if (semver.valid(version) !== version) throw new Error(`FixtureRegistry.publish: invalid version "${version}"`);
    this.#assertNotPublished(name, version);

    const tarball =
      opts.tarball ?? (await packDirectory(opts.fromDir ?? DEFAULT_FIXTURE_DIR, { name, version, packageJson: opts.packageJson }));
    const fromTarball = await readPackageJsonFromTarball(tarball);
    this.#assertNotPublished(name, version); // re-check after the awaits

    const { integrity, shasum } = integrityOf(tarball);
    const attestations = opts.provenance ? await this.#attest(name, version, tarball, opts.provenance) : undefined;
    const tarballFile = `${basenameOf(name)}-${version}.tgz`;
    const manifest: Record<string, unknown> = { ...fromTarball, ...(opts.packageJson ?? {}), name, version };
    for (const key of Object.keys(manifest)) {
      if (key.startsWith('_') || key === 'dist') delete manifest[key];
    }
    if (manifest.bin !== undefined) manifest.bin = normalizeBin(name, manifest.bin);
    if (opts.deprecated) manifest.deprecated = opts.deprecated;

    const publishedAt = opts.publishedAt ?? new Date();
    let pkg = this.#packages.get(name);
    if (!pkg) {
      pkg = { name, versions: new Map(), distTags: {}, created: publishedAt, modified: publishedAt };
      this.#packages.set(name, pkg);
    }
    pkg.versions.set(version, {
      manifest,
      tarball,
      tarballFile,
      integrity,
      shasum,
      publishedAt,
      tarballUrl: opts.tarballUrl,
      signature: opts.signature ?? 'valid',
      ...(attestations ? { attestations } : {}),
    });
    if (publishedAt < pkg.created) pkg.created = publishedAt;

    if (opts.tag === undefined) {
      const current = pkg.distTags.latest;
      if (!current || semver.gt(version, current)) pkg.distTags.latest = version;
    } else if (opts.tag !== false) {
      pkg.distTags[opts.tag] = version;
    }
    this.#touch(pkg, publishedAt);

    return { name, version, integrity, shasum, tarballUrl: opts.tarballUrl ?? this.tarballUrl(name, version), size: tarball.length };
  }

  #sigstore?: { trusted: FixtureSigstore; untrusted: FixtureSigstore };

  /** The Sigstore that signs provenance (`trusted`) and the one a hostile publisher uses (`untrusted`). */
  useSigstore(trusted: FixtureSigstore, untrusted: FixtureSigstore): void {
    this.#sigstore = { trusted, untrusted };
  }

  /** The attestations document of a version: its SLSA provenance, signed as the variant says. */
  async #attest(
    name: string,
    version: string,
    tarball: Buffer,
    options: ProvenanceOptions,
  ): Promise<NonNullable<VersionRecord['attestations']>> {
    if (!this.#sigstore) throw new Error('FixtureRegistry.publish: provenance needs useSigstore() first');
    const variant = options.variant ?? 'valid';
    const bytes = variant === 'wrong-digest' ? Buffer.concat([tarball, Buffer.from('tampered')]) : tarball;
    const statement = provenanceStatement({
      name: variant === 'wrong-name' ? `${name}-evil` : name,
      version,
      sha512Hex: createHash('sha512').update(bytes).digest('hex'),
      repository: options.repository,
      commit: options.commit,
    });
    const signer = variant === 'untrusted-ca' ? this.#sigstore.untrusted : this.#sigstore.trusted;
    const identity = { repository: variant === 'other-signer' ? `${options.repository}-fork` : options.repository };
    const bundle = (await signer.attest(statement, identity)) as { verificationMaterial?: Record<string, unknown> };
    if (variant === 'no-tlog' && bundle.verificationMaterial) bundle.verificationMaterial.tlogEntries = [];
    return { attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', bundle }] };
  }

  /** Point a dist-tag at an existing version. */
  setDistTag(name: string, tag: string, version: string): void {
    const pkg = this.#requireVersion(name, version);
    pkg.distTags[tag] = version;
    this.#touch(pkg);
  }

  /** Remove a dist-tag (no-op if absent). */
  removeDistTag(name: string, tag: string): void {
    const pkg = this.#requirePackage(name);
    if (tag in pkg.distTags) {
      delete pkg.distTags[tag];
      this.#touch(pkg);
    }
  }

  /**
   * Deprecate a version (or every version matching a semver range).
   * An empty message un-deprecates, like `npm deprecate pkg@v ""`.
   */
  deprecate(name: string, version: string, message: string): void {
    const pkg = this.#requirePackage(name);
    const targets = semver.valid(version)
      ? [version]
      : [...pkg.versions.keys()].filter((v) => semver.satisfies(v, version, { includePrerelease: true }));
    if (targets.length === 0 || targets.some((v) => !pkg.versions.has(v))) {
      throw new Error(`FixtureRegistry.deprecate: no version of ${name} matches "${version}"`);
    }
    for (const v of targets) {
      const rec = pkg.versions.get(v)!;
      if (message) rec.manifest.deprecated = message;
      else delete rec.manifest.deprecated;
    }
    this.#touch(pkg);
  }

  /**
   * Unpublish one version (or the whole package when `version` is omitted).
   * Dist-tags pointing at a removed version are dropped; `latest` then moves to
   * the highest remaining non-prerelease version (or highest remaining).
   * A package with no versions left answers 404.
   */
  unpublish(name: string, version?: string): void {
    const pkg = this.#requirePackage(name);
    if (version === undefined) {
      this.#packages.delete(name);
      return;
    }
    if (!pkg.versions.delete(version)) throw new Error(`FixtureRegistry.unpublish: ${name}@${version} not found`);
    if (pkg.versions.size === 0) {
      this.#packages.delete(name);
      return;
    }
    const hadLatest = pkg.distTags.latest === version;
    for (const [tag, v] of Object.entries(pkg.distTags)) if (v === version) delete pkg.distTags[tag];
    if (hadLatest) {
      const remaining = [...pkg.versions.keys()];
      const best = semver.maxSatisfying(remaining, '*') ?? semver.rsort(remaining)[0];
      if (best) pkg.distTags.latest = best;
    }
    this.#touch(pkg);
  }

  /**
   * Rewrite every packument of `name` as it is served (full and abbreviated): a registry that
   * serves values a client must refuse (a weak integrity, a bad URL, an odd version key).
   */
  editPackument(name: string, edit: (packument: Record<string, unknown>) => void): void {
    this.#edits.set(name, edit);
  }

  /** Add a fault; faults are evaluated in insertion order. */
  injectFault(fault: Fault): void {
    this.#faults.push({ fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  resetRequests(): void {
    this.requests.length = 0;
  }

  /** Stop listening, close idle keep-alive and in-flight connections, release pending delays. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const release of [...this.#pendingDelays]) release();
    this.#pendingDelays.clear();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------

  #assertNotPublished(name: string, version: string): void {
    if (this.#packages.get(name)?.versions.has(version)) {
      throw new Error(`FixtureRegistry.publish: cannot publish over the previously published version ${name}@${version}`);
    }
  }

  #requirePackage(name: string): PackageRecord {
    const pkg = this.#packages.get(name);
    if (!pkg) throw new Error(`FixtureRegistry: package ${name} not found`);
    return pkg;
  }

  #requireVersion(name: string, version: string): PackageRecord {
    const pkg = this.#requirePackage(name);
    if (!pkg.versions.has(version)) throw new Error(`FixtureRegistry: ${name}@${version} not found`);
    return pkg;
  }

  #touch(pkg: PackageRecord, atLeast?: Date): void {
    const now = Date.now();
    pkg.modified = new Date(Math.max(now, pkg.modified.getTime(), atLeast?.getTime() ?? 0));
  }

  #sortedVersions(pkg: PackageRecord): VersionRecord[] {
    return [...pkg.versions.values()].sort((a, b) => semver.compare(a.manifest.version as string, b.manifest.version as string));
  }

  /** ECDSA signatures are randomised: one per signed text, so ETags (and 304s) stay stable. */
  readonly #signatures = new Map<string, string>();

  /** Add `dist.signatures` to every served version whose publish asked for one. */
  #sign(pkg: PackageRecord, document: Record<string, unknown>): void {
    const versions = document.versions as Record<string, { dist?: Record<string, unknown> } | null> | undefined;
    for (const [version, entry] of Object.entries(versions ?? {})) {
      const rec = pkg.versions.get(version);
      const dist = entry?.dist;
      if (!rec || rec.signature === 'none' || !dist || typeof dist !== 'object' || typeof dist.integrity !== 'string') continue;
      const signer = rec.signature === 'unknown-key' ? UNPUBLISHED_KEY : FIXTURE_SIGNING_KEY;
      const text = `${pkg.name}@${version}:${rec.signature === 'bad' ? `${dist.integrity}-tampered` : dist.integrity}`;
      const cacheKey = `${signer.keyid} ${text}`;
      let sig = this.#signatures.get(cacheKey);
      if (!sig) {
        sig = sign('sha256', Buffer.from(text), signer.privateKey).toString('base64');
        this.#signatures.set(cacheKey, sig);
      }
      dist.signatures = [{ keyid: signer.keyid, sig }];
    }
  }

  #dist(pkg: PackageRecord, rec: VersionRecord): Record<string, unknown> {
    return {
      integrity: rec.integrity,
      shasum: rec.shasum,
      tarball: rec.tarballUrl ?? `${this.url}${pkg.name}/-/${rec.tarballFile}`,
      ...(rec.attestations
        ? {
            attestations: {
              url: `${this.url}-/npm/v1/attestations/${pkg.name}@${rec.manifest.version as string}`,
              provenance: { predicateType: 'https://slsa.dev/provenance/v1' },
            },
          }
        : {}),
    };
  }

  #fullPackument(pkg: PackageRecord): Record<string, unknown> {
    const versions: Record<string, unknown> = {};
    const time: Record<string, string> = {
      created: pkg.created.toISOString(),
      modified: pkg.modified.toISOString(),
    };
    for (const rec of this.#sortedVersions(pkg)) {
      const v = rec.manifest.version as string;
      versions[v] = {
        ...rec.manifest,
        _id: `${pkg.name}@${v}`,
        _hasShrinkwrap: false,
        dist: this.#dist(pkg, rec),
      };
      time[v] = rec.publishedAt.toISOString();
    }
    const latest = pkg.distTags.latest ? pkg.versions.get(pkg.distTags.latest) : undefined;
    const doc: Record<string, unknown> = {
      _id: pkg.name,
      name: pkg.name,
      'dist-tags': { ...pkg.distTags },
      versions,
      time,
    };
    if (latest?.manifest.description !== undefined) doc.description = latest.manifest.description;
    if (latest?.manifest.license !== undefined) doc.license = latest.manifest.license;
    return doc;
  }

  #abbreviatedPackument(pkg: PackageRecord): Record<string, unknown> {
    const keep = [
      'name',
      'version',
      'deprecated',
      'dependencies',
      'optionalDependencies',
      'peerDependencies',
      'peerDependenciesMeta',
      'bundleDependencies',
      'bin',
      'engines',
      'os',
      'cpu',
    ];
    const versions: Record<string, unknown> = {};
    for (const rec of this.#sortedVersions(pkg)) {
      const m = rec.manifest;
      const out: Record<string, unknown> = {};
      for (const key of keep) if (m[key] !== undefined) out[key] = m[key];
      const scripts = m.scripts as Record<string, unknown> | undefined;
      if (scripts && (scripts.preinstall || scripts.install || scripts.postinstall)) out.hasInstallScript = true;
      out._hasShrinkwrap = false;
      out.dist = this.#dist(pkg, rec);
      versions[m.version as string] = out;
    }
    return {
      name: pkg.name,
      'dist-tags': { ...pkg.distTags },
      modified: pkg.modified.toISOString(),
      versions,
    };
  }

  #route(rawUrl: string): Route {
    const pathname = rawUrl.split('?')[0] ?? '/';
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname.replace(/%2f/gi, '/'));
    } catch {
      return { kind: 'other' };
    }
    if (decoded === '/-/ping') return { kind: 'ping' };
    if (decoded === '/-/npm/v1/keys') return { kind: 'keys' };
    const attestation = /^\/-\/npm\/v1\/attestations\/((?:@[^/]+\/)?[^/@]+)@([^/@]+)$/.exec(decoded);
    if (attestation) return { kind: 'attestations', name: attestation[1]!, version: attestation[2]! };
    let m = /^\/((?:@[^/]+\/)?[^/@][^/]*)$/.exec(decoded);
    if (m && !decoded.startsWith('/-/')) return { kind: 'packument', name: m[1]! };
    m = /^\/((?:@[^/]+\/)?[^/]+)\/-\/([^/]+\.tgz)$/.exec(decoded);
    if (m) return { kind: 'tarball', name: m[1]!, file: m[2]! };
    return { kind: 'other' };
  }

  #json(status: number, value: unknown, extra: Record<string, string> = {}): PreparedResponse {
    const body = Buffer.from(JSON.stringify(value));
    return {
      status,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length, ...extra },
      body,
    };
  }

  #prepare(req: http.IncomingMessage, route: Route): PreparedResponse {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      return this.#json(405, { error: 'Method not allowed' }, { Allow: 'GET, HEAD' });
    }
    if (route.kind === 'ping') return this.#json(200, {});
    if (route.kind === 'keys') {
      const { keyid, key } = FIXTURE_SIGNING_KEY;
      return this.#json(200, { keys: [{ expires: null, keyid, keytype: 'ecdsa-sha2-nistp256', scheme: 'ecdsa-sha2-nistp256', key }] });
    }
    if (route.kind === 'other') return this.#json(404, { error: 'Not found' });
    if (route.kind === 'attestations') {
      const document = this.#packages.get(route.name)?.versions.get(route.version)?.attestations;
      return document ? this.#json(200, document) : this.#json(404, { error: 'Not found' });
    }

    const pkg = this.#packages.get(route.name);
    if (!pkg) return this.#json(404, { error: 'Not found' });

    if (route.kind === 'packument') {
      const accept = req.headers.accept ?? '';
      const corgi = accept.includes(CORGI_TYPE);
      const document = corgi ? this.#abbreviatedPackument(pkg) : this.#fullPackument(pkg);
      this.#edits.get(pkg.name)?.(document);
      this.#sign(pkg, document);
      const body = Buffer.from(JSON.stringify(document));
      const etag = `"${sha1(body)}"`;
      const common = {
        ETag: etag,
        'Cache-Control': 'no-cache',
        Vary: 'Accept',
        'Last-Modified': pkg.modified.toUTCString(),
      };
      if (etagMatches(req.headers['if-none-match'], etag)) {
        return { status: 304, headers: common, body: Buffer.alloc(0) };
      }
      return {
        status: 200,
        headers: {
          ...common,
          'Content-Type': corgi ? CORGI_TYPE : 'application/json',
          'Content-Length': body.length,
        },
        body,
      };
    }

    const rec = [...pkg.versions.values()].find((r) => r.tarballFile === route.file);
    if (!rec) return this.#json(404, { error: 'Not found' });
    const etag = `"${rec.shasum}"`;
    const common = { ETag: etag, 'Cache-Control': 'public, max-age=31536000, immutable' };
    if (etagMatches(req.headers['if-none-match'], etag)) {
      return { status: 304, headers: common, body: Buffer.alloc(0) };
    }
    return {
      status: 200,
      headers: { ...common, 'Content-Type': 'application/octet-stream', 'Content-Length': rec.tarball.length },
      body: rec.tarball,
    };
  }

  #matchingFaults(route: Route, rawUrl: string): Fault[] {
    const applied: Fault[] = [];
    for (const active of this.#faults) {
      if (active.remaining <= 0) continue;
      const { match = 'any', probability = 1 } = active.fault;
      let matches: boolean;
      if (match instanceof RegExp) {
        match.lastIndex = 0;
        matches = match.test(rawUrl);
      } else {
        matches = match === 'any' || match === route.kind;
      }
      if (!matches) continue;
      if (probability < 1 && !(Math.random() < probability)) continue;
      active.remaining -= 1;
      applied.push(active.fault);
    }
    this.#faults = this.#faults.filter((f) => f.remaining > 0);
    return applied;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const release = (): void => {
        clearTimeout(timer);
        this.#pendingDelays.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.#pendingDelays.add(release);
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const accept = req.headers.accept;
    const route = this.#route(rawUrl);
    const appliedKinds: FaultKind[] = [];
    const log = (status: number): void => {
      const entry: RequestLogEntry = { method, url: rawUrl, status };
      if (accept !== undefined) entry.accept = accept;
      if (appliedKinds.length) entry.faults = [...appliedKinds];
      this.requests.push(entry);
    };
    req.resume(); // we never read request bodies

    // Faults are applied in insertion order: 'delay' waits and continues,
    // 'status' / 'drop' / 'invalid-json' end the request, 'corrupt' / 'truncate'
    // alter the response that is eventually sent.
    let corrupt = false;
    let truncate = false;
    for (const fault of this.#matchingFaults(route, rawUrl)) {
      appliedKinds.push(fault.kind);
      switch (fault.kind) {
        case 'delay':
          await this.#sleep(fault.delayMs ?? 0);
          if (res.destroyed || req.socket.destroyed || this.#closed) {
            log(0);
            res.destroy();
            return;
          }
          break;
        case 'drop':
          log(0);
          req.socket.destroy();
          return;
        case 'status': {
          const status = fault.status ?? 500;
          const prepared = this.#json(status, { error: `Injected fault: HTTP ${status}` });
          log(status);
          res.writeHead(prepared.status, prepared.headers);
          res.end(method === 'HEAD' ? undefined : prepared.body);
          return;
        }
        case 'invalid-json': {
          const body = Buffer.from('{"name":');
          log(200);
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
          res.end(method === 'HEAD' ? undefined : body);
          return;
        }
        case 'corrupt':
          corrupt = true;
          break;
        case 'truncate':
          truncate = true;
          break;
      }
    }

    const prepared = this.#prepare(req, route);
    let body = prepared.body;
    if (corrupt && body.length > 0) {
      body = Buffer.from(body);
      const mid = Math.floor(body.length / 2);
      body[mid] = body[mid]! ^ 0xff;
    }
    log(prepared.status);
    res.writeHead(prepared.status, prepared.headers);
    if (method === 'HEAD' || body.length === 0) {
      res.end();
      return;
    }
    if (truncate) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        res.destroy();
      });
      return;
    }
    res.end(body);
  }
}
