/*
 * The registry client, pointed at API_BASE_URL. Requests go through make-fetch-happen — the
 * fetch layer of npm, pacote and npm-registry-fetch (keep-alive agents, gzip; retries off:
 * BullMQ retries) — without its on-disk HTTP cache: packuments are revalidated with
 * If-None-Match against a small in-memory cache, so a check of an unchanged package costs one
 * 304, and tarballs stream to disk while ssri verifies their SRI integrity and the size limit
 * holds, so memory does not grow with tarball size and only a verified file ever appears at its
 * final path.
 *
 * A hostile registry or packument is expected: redirects are followed by hand, each hop checked
 * against the allowed origins (scheme, host and port), and REGISTRY_TOKEN goes only to the
 * registry's own origin and path; a packument larger than MAX_PACKUMENT_SIZE is refused while it
 * streams; every download has an overall deadline (DOWNLOAD_TIMEOUT) besides the idle timeout;
 * large packuments are parsed off the event loop (see PackumentParser).
 * npm-registry-fetch is not used: it always follows redirects, and keeps the Authorization header
 * when only the port or the scheme changes.
 */
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import makeFetch, { type FetchResponse } from 'make-fetch-happen';
import { DEFAULT_MAX_PACKUMENT_BYTES, type Config } from './config.js';
import { IntegrityError, MCPError, RegistryError } from './errors.js';
import { fetchAgent } from './httpAgent.js';
import { writeVerifiedFile } from './verifiedFile.js';
import { redactUrl } from './redact.js';
import type { RegistryKey } from './signatures.js';

export interface PackumentVersion {
  name: string;
  version: string;
  deprecated?: string | boolean;
  dist?: {
    tarball?: string;
    integrity?: string;
    shasum?: string;
    unpackedSize?: number;
    signatures?: unknown;
    /** npm's provenance: `{ url, provenance: { predicateType } }` (shared/provenance.ts). */
    attestations?: unknown;
  };
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
}

export interface Packument {
  name: string;
  'dist-tags': Record<string, string>;
  versions: Record<string, PackumentVersion>;
  time?: Record<string, string>;
  modified?: string;
}

export interface TarballSpec {
  package: string;
  version: string;
  tarball: string;
  integrity: string;
}

export interface RegistryClientOptions {
  timeoutMs?: number;
  /** Characters of packument text kept for If-None-Match revalidation (default 8 MiB). */
  packumentCacheBytes?: number;
}

/** npm's Accept header for abbreviated ("corgi") packuments. */
const CORGI_ACCEPT = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';
const DEFAULT_PACKUMENT_CACHE_BYTES = 8 * 1024 * 1024;
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 600_000;
/** Hops of one request; npm's own limit is 20, registries and CDNs use one or two. */
const MAX_REDIRECTS = 5;
/** How long the registry's signing keys are reused before they are fetched again. */
const SIGNING_KEYS_TTL_MS = 60 * 60 * 1000;
/** The keys document is small; anything larger is not one. */
const MAX_KEYS_BYTES = 256 * 1024;
/** An attestations document holds two bundles of a few KiB each; anything this large is not one. */
const MAX_ATTESTATIONS_BYTES = 1024 * 1024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/**
 * Packuments at least this large are parsed in a worker thread. Measured (2 cores, Node 20): a
 * 150k-version packument (74 MB) takes 0.5-0.9 s of JSON.parse on the event loop; parsed off it,
 * the loop only builds the slim result (0.08-0.4 s).
 */
const OFF_THREAD_PARSE_BYTES = 1024 * 1024;

interface CachedPackument {
  etag: string;
  body: Buffer;
}

/**
 * A copy in memory of its own: Buffer.from puts a small body in one of Node's shared 8 KiB slabs,
 * and a cached body would keep alive its slab and whatever short-lived buffers shared it (a
 * 10,000-server sweep held 18 MB of buffer memory for an 8 MiB cache).
 */
function ownCopy(body: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(body.length);
  copy.set(body);
  return copy;
}

/**
 * Packument bodies by URL and form, with their ETags, up to a total size. A full cache admits
 * nothing new rather than evicting: checks sweep the same packages in the same order, and
 * evicting the oldest entry would then miss on every request. Entries are replaced when the
 * registry answers 200, and dropped on an error answer.
 */
class PackumentCache {
  private readonly entries = new Map<string, CachedPackument>();
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): CachedPackument | undefined {
    return this.entries.get(key);
  }

  set(key: string, entry: CachedPackument): void {
    this.delete(key);
    if (this.size + entry.body.length > this.maxBytes) return;
    this.entries.set(key, entry);
    this.size += entry.body.length;
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.size -= entry.body.length;
  }
}

/**
 * The packument reduced to what checks read (dist-tags, time, and per version its name,
 * version, deprecation, dist, bin and dependencies), or undefined when `value` is not a
 * packument. Runs in the parser thread too (as source text), so it uses nothing from outside.
 */
function slimPackument(value: unknown): Packument | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const raw = value as Record<string, unknown>;
  const versions = raw.versions;
  const tags = raw['dist-tags'];
  if (versions === null || typeof versions !== 'object' || tags === null || typeof tags !== 'object') return undefined;
  const slim: Record<string, unknown> = {};
  for (const key of Object.keys(versions)) {
    const entry = (versions as Record<string, Record<string, unknown> | null>)[key];
    if (entry === null || typeof entry !== 'object') continue;
    const dist = entry.dist as Record<string, unknown> | undefined;
    slim[key] = {
      name: entry.name,
      version: entry.version,
      deprecated: entry.deprecated,
      dist:
        dist && typeof dist === 'object'
          ? {
              tarball: dist.tarball,
              integrity: dist.integrity,
              shasum: dist.shasum,
              unpackedSize: dist.unpackedSize,
              ...(dist.signatures !== undefined ? { signatures: dist.signatures } : {}),
              ...(dist.attestations !== undefined ? { attestations: dist.attestations } : {}),
            }
          : undefined,
      bin: entry.bin,
      dependencies: entry.dependencies,
    };
  }
  return { name: raw.name, 'dist-tags': tags, versions: slim, time: raw.time, modified: raw.modified } as Packument;
}

/**
 * One worker thread per process that parses large packuments and slims them, so a huge answer
 * of a hostile or merely busy registry does not stop the event loop (the dashboard shares it in
 * `--role all`). The thread is unref'd: it never keeps the process alive.
 */
class PackumentParser {
  private worker?: Worker;
  private readonly pending = new Map<number, { resolve: (value: Packument | undefined) => void; reject: (error: Error) => void }>();
  private nextId = 0;

  parse(body: Buffer): Promise<Packument | undefined> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // Transfer the bytes when they are the buffer's whole memory; a copy otherwise.
    const bytes =
      body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
        ? (body.buffer as ArrayBuffer)
        : (body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, bytes }, [bytes]);
    });
  }

  private start(): Worker {
    const source = [
      "const { parentPort } = require('node:worker_threads');",
      `const slimPackument = ${slimPackument.toString()};`,
      'parentPort.on("message", ({ id, bytes }) => {',
      '  let packument;',
      '  try { packument = slimPackument(JSON.parse(Buffer.from(bytes).toString("utf8"))); } catch { packument = undefined; }',
      '  parentPort.postMessage({ id, packument });',
      '});',
    ].join('\n');
    const worker = new Worker(source, { eval: true });
    worker.unref();
    worker.on('message', ({ id, packument }: { id: number; packument?: Packument }) => {
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      waiting?.resolve(packument);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the packument parser thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}

const parser = new PackumentParser();

/** A response's status, ETag and body. */
interface PackumentAnswer {
  status: number;
  etag?: string;
  body: Buffer;
}

/** Why a request stopped: the overall deadline, if that was it. */
class Deadline {
  readonly controller = new AbortController();
  expired = false;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly ms: number) {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** `https://host:port` of an allowed-host entry: a bare `host[:port]` takes the registry's scheme. */
function entryOrigin(entry: string, registry: URL): string | undefined {
  try {
    return new URL(entry.includes('://') ? entry : `${registry.protocol}//${entry}`).origin;
  } catch {
    return undefined;
  }
}

export class RegistryClient {
  private readonly timeoutMs: number;
  private readonly downloadTimeoutMs: number;
  private readonly maxPackumentBytes: number;
  private readonly packuments: PackumentCache;
  private readonly registryUrl: URL;
  /** The registry's origin and every TARBALL_HOSTS origin: where requests and redirects may go. */
  private readonly allowedOrigins: Set<string>;

  constructor(
    private readonly config: Pick<Config, 'apiBaseUrl' | 'registryToken' | 'tarballHosts' | 'maxTarballBytes'>
      & Partial<Pick<Config, 'registryTimeoutMs' | 'downloadTimeoutMs' | 'maxPackumentBytes'>>,
    options: RegistryClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? config.registryTimeoutMs ?? 30_000;
    this.downloadTimeoutMs = config.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
    this.maxPackumentBytes = config.maxPackumentBytes ?? DEFAULT_MAX_PACKUMENT_BYTES;
    this.packuments = new PackumentCache(options.packumentCacheBytes ?? DEFAULT_PACKUMENT_CACHE_BYTES);
    this.registryUrl = new URL(config.apiBaseUrl);
    this.allowedOrigins = new Set([this.registryUrl.origin]);
    for (const entry of config.tarballHosts) {
      const origin = entryOrigin(entry, this.registryUrl);
      if (origin) this.allowedOrigins.add(origin);
    }
  }

  get registry(): string {
    return this.config.apiBaseUrl;
  }

  private signingKeysCache?: { at: number; keys: RegistryKey[] };

  /**
   * The registry's signing keys (`<registry>/-/npm/v1/keys`), fetched once an hour per process;
   * a failed fetch is not cached. Throws a retryable RegistryError when they cannot be read.
   */
  async signingKeys(now = Date.now()): Promise<RegistryKey[]> {
    if (this.signingKeysCache && now - this.signingKeysCache.at < SIGNING_KEYS_TTL_MS) return this.signingKeysCache.keys;
    const url = `${this.registry}-/npm/v1/keys`;
    const what = "the registry's signing keys";
    const keys = ((await this.smallJson(url, what, MAX_KEYS_BYTES)) as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) {
      throw new RegistryError('EREGISTRYKEYS', `${what} at ${redactUrl(url)} are not a keys document ({"keys": [...]})`, {
        hint: 'set provenance: off for a registry that signs nothing',
        retryable: true,
      });
    }
    const valid = keys.filter(
      (key): key is RegistryKey =>
        key !== null
        && typeof key === 'object'
        && typeof (key as RegistryKey).keyid === 'string'
        && typeof (key as RegistryKey).key === 'string',
    );
    this.signingKeysCache = { at: now, keys: valid };
    return valid;
  }

  /**
   * A version's attestations document (`dist.attestations.url`): always read from this registry,
   * at the URL's path (as npm does), so a packument cannot send the request elsewhere. Throws a
   * RegistryError when it cannot be read or is not `{ attestations: [...] }`.
   */
  async attestations(url: string, label: string): Promise<Array<{ predicateType?: unknown; bundle?: unknown }>> {
    let target: string;
    try {
      const given = new URL(url);
      target = new URL(`${given.pathname}${given.search}`, this.registryUrl.origin).href;
    } catch {
      throw new RegistryError('EATTESTATIONURL', `${label}: its attestations URL "${redactUrl(url)}" is not a URL`, { retryable: false });
    }
    const what = `the attestations of ${label}`;
    const list = ((await this.smallJson(target, what, MAX_ATTESTATIONS_BYTES)) as { attestations?: unknown } | null)?.attestations;
    if (!Array.isArray(list)) {
      throw new RegistryError(
        'EATTESTATIONS',
        `${what} at ${redactUrl(target)} are not an attestations document ({"attestations": [...]})`,
        {
          retryable: false,
        },
      );
    }
    return list.filter((entry): entry is { predicateType?: unknown; bundle?: unknown } => entry !== null && typeof entry === 'object');
  }

  /** GET a small JSON document of the registry within DOWNLOAD_TIMEOUT, reading at most `maxBytes`. */
  private async smallJson(url: string, what: string, maxBytes: number): Promise<unknown> {
    const deadline = new Deadline(this.downloadTimeoutMs);
    try {
      const response = await this.get(url, { accept: 'application/json' }, deadline, what);
      if (response.status < 200 || response.status > 299) {
        response.body.resume();
        throw Object.assign(new Error(`${response.status} from ${redactUrl(url)}`), { statusCode: response.status });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) {
          response.body.destroy();
          throw new Error(`${what} are larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk);
      }
      return JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch (error) {
      throw deadline.expired ? this.deadlineError(what, deadline) : this.registryError(error, what);
    } finally {
      deadline.clear();
    }
  }

  /** The package's packument; `fullMetadata` adds `time` (needed for minReleaseAge). */
  async packument(name: string, fullMetadata: boolean): Promise<Packument> {
    let body: Buffer;
    try {
      body = await this.fetchPackument(name, fullMetadata);
    } catch (error) {
      throw this.registryError(error, `${name}'s packument`);
    }
    const packument = await parsePackument(body);
    if (!packument) {
      throw new RegistryError('EBADPACKUMENT', `the registry answered for ${name} with something that is not a packument`, {
        hint: `check API_BASE_URL (${redactUrl(this.registry)}) points at an npm registry`,
        retryable: true,
      });
    }
    return packument;
  }

  /** The packument's bytes: a 200's body, or the cached body on a 304 to our If-None-Match. */
  private async fetchPackument(name: string, fullMetadata: boolean): Promise<Buffer> {
    // Scoped names keep their @ and escape the slash, as npm requests them.
    const url = `${this.registry}${name.replace('/', '%2f')}`;
    const key = `${fullMetadata ? 'full' : 'corgi'} ${url}`;
    const cached = this.packuments.get(key);
    const headers = {
      accept: fullMetadata ? 'application/json' : CORGI_ACCEPT,
      ...(cached ? { 'if-none-match': cached.etag } : {}),
    };
    const answer = await this.getPackument(url, headers, name);
    // A copy: the parser thread takes the bytes it is given.
    if (answer.status === 304 && cached) return Buffer.from(cached.body);
    if (answer.status < 200 || answer.status > 299) {
      this.packuments.delete(key);
      throw Object.assign(new Error(`${answer.status} from ${redactUrl(url)}`), { statusCode: answer.status });
    }
    if (answer.etag && answer.status === 200) this.packuments.set(key, { etag: answer.etag, body: ownCopy(answer.body) });
    else this.packuments.delete(key);
    return answer.body;
  }

  /** GET a packument within DOWNLOAD_TIMEOUT, reading at most MAX_PACKUMENT_SIZE bytes of it. */
  private async getPackument(url: string, headers: Record<string, string>, name: string): Promise<PackumentAnswer> {
    const deadline = new Deadline(this.downloadTimeoutMs);
    try {
      const response = await this.get(url, headers, deadline, `${name}'s packument`);
      const status = response.status;
      const etag = response.headers.get('etag') ?? undefined;
      if (status < 200 || status > 299) {
        response.body.resume();
        return { status, etag, body: Buffer.alloc(0) };
      }
      const tooBig = () =>
        new RegistryError(
          'EPACKUMENTTOOBIG',
          `${name}'s packument is larger than MAX_PACKUMENT_SIZE (${this.maxPackumentBytes} bytes); it was not read`,
          {
            hint: 'raise MAX_PACKUMENT_SIZE if your registry really serves packuments this large (packages with many thousands of versions)',
            retryable: false,
          },
        );
      const declared = Number(response.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > this.maxPackumentBytes) {
        response.body.destroy();
        throw tooBig();
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        // Counted after gzip is undone: a small compressed body cannot unpack past the limit.
        if (size > this.maxPackumentBytes) {
          response.body.destroy();
          throw tooBig();
        }
        chunks.push(chunk);
      }
      return { status, etag, body: Buffer.concat(chunks, size) };
    } catch (error) {
      throw deadline.expired ? this.deadlineError(`${name}'s packument`, deadline) : error;
    } finally {
      deadline.clear();
    }
  }

  /**
   * GET `url`, following redirects by hand: every hop must stay on an allowed origin, and the
   * registry token is sent only to the registry's origin and path (npm's nerf-dart rule).
   */
  private async get(url: string, headers: Record<string, string>, deadline: Deadline, what: string): Promise<FetchResponse> {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      const response = await makeFetch(current.href, {
        headers: {
          'user-agent': `mcp-updater node/${process.version}`,
          ...headers,
          ...(this.sendsCredentials(current) ? { authorization: `Bearer ${this.config.registryToken}` } : {}),
        },
        redirect: 'manual',
        // BullMQ retries failed jobs with backoff; a second retry layer would multiply the waits.
        retry: { retries: 0 },
        timeout: this.timeoutMs,
        agent: fetchAgent(current, this.timeoutMs),
        signal: deadline.signal,
      });
      if (!REDIRECT_STATUSES.has(response.status)) return response;
      response.body.resume();
      const location = response.headers.get('location');
      if (!location) {
        throw new RegistryError('EBADREDIRECT', `${what}: ${redactUrl(current.href)} answered ${response.status} without a Location`, {
          retryable: true,
        });
      }
      if (hop + 1 > MAX_REDIRECTS) {
        throw new RegistryError('EMAXREDIRECT', `${what}: more than ${MAX_REDIRECTS} redirects from ${redactUrl(url)}`, {
          retryable: false,
        });
      }
      const next = new URL(location, current);
      this.assertAllowedOrigin(next, `${what}: ${redactUrl(current.href)} redirects to ${redactUrl(next.href)}, which`);
      current = next;
    }
  }

  /** REGISTRY_TOKEN only to the registry's scheme, host, port and path (a TARBALL_HOSTS CDN gets none). */
  private sendsCredentials(url: URL): boolean {
    return (
      this.config.registryToken !== undefined
      && url.origin === this.registryUrl.origin
      && url.pathname.startsWith(this.registryUrl.pathname)
    );
  }

  private assertAllowedOrigin(url: URL, what: string): void {
    if ((url.protocol === 'https:' || url.protocol === 'http:') && this.allowedOrigins.has(url.origin)) return;
    const schemeOnly = url.host === this.registryUrl.host && url.protocol !== this.registryUrl.protocol;
    throw new RegistryError(
      'ETARBALLHOST',
      `${what} points at ${url.origin}, not at the registry ${this.registryUrl.origin}${schemeOnly ? ' (another scheme)' : ''}; nothing was sent there`,
      {
        hint: `if ${url.origin} serves your registry's files, add it to TARBALL_HOSTS (host[:port] for the registry's scheme, or scheme://host[:port])`,
        retryable: false,
      },
    );
  }

  /**
   * Refuse tarball URLs that leave the registry's origin — scheme, host and port — (a packument
   * must not send us elsewhere, nor to plain http for an https registry) unless TARBALL_HOSTS
   * allows that origin.
   */
  assertTarballHost(tarballUrl: string): void {
    let url: URL;
    try {
      url = new URL(tarballUrl);
    } catch {
      throw new RegistryError('EBADTARBALLURL', `tarball URL "${redactUrl(tarballUrl)}" is not a URL`, { retryable: false });
    }
    this.assertAllowedOrigin(url, `tarball URL ${redactUrl(url.href)}`);
  }

  /**
   * Stream the tarball to `destination`, verifying SRI integrity and the size limit on the way,
   * within DOWNLOAD_TIMEOUT. The file appears (atomic rename) only when verified; on any failure
   * nothing is left behind.
   */
  async downloadTarball(spec: TarballSpec, destination: string): Promise<{ bytes: number; sha256: string }> {
    this.assertTarballHost(spec.tarball);
    const limit = this.config.maxTarballBytes;
    const hash = crypto.createHash('sha256');
    const what = `tarball of ${spec.package}@${spec.version}`;
    const deadline = new Deadline(this.downloadTimeoutMs);
    try {
      const body = await this.tarballBody(spec, deadline, what);
      const { bytes } = await writeVerifiedFile(body, {
        destination,
        integrity: spec.integrity,
        maxBytes: limit,
        tooBig: () =>
          new MCPError('ETOOBIG', `tarball of ${spec.package}@${spec.version} is larger than MAX_TARBALL_SIZE (${limit} bytes)`, {
            hint: 'raise MAX_TARBALL_SIZE if this package really is that large',
            retryable: false,
          }),
        signal: deadline.signal,
        onChunk: (chunk) => hash.update(chunk),
      });
      return { bytes, sha256: hash.digest('hex') };
    } catch (error) {
      if (deadline.expired) throw this.deadlineError(what, deadline);
      if (error instanceof MCPError) throw error;
      throw this.registryError(error, what);
    } finally {
      deadline.clear();
    }
  }

  /** The tarball's bytes as they arrive. */
  private async tarballBody(spec: TarballSpec, deadline: Deadline, what: string): Promise<Readable> {
    const response = await this.get(spec.tarball, {}, deadline, what);
    if (response.status < 200 || response.status > 299) {
      response.body.resume();
      throw Object.assign(new Error(`${response.status} from ${redactUrl(response.url)}`), { statusCode: response.status });
    }
    return response.body;
  }

  private deadlineError(what: string, deadline: Deadline): RegistryError {
    return new RegistryError('EDOWNLOADTIMEOUT', `${what}: not complete within DOWNLOAD_TIMEOUT (${deadline.ms} ms); abandoned`, {
      hint: 'the registry sends too slowly (or not at all); the job is retried with backoff. Raise DOWNLOAD_TIMEOUT for very large packages on slow links',
      retryable: true,
    });
  }

  /** Turn HTTP, socket, timeout and integrity failures into errors with a code and a hint. */
  private registryError(error: unknown, what: string): Error {
    if (error instanceof MCPError) return error;
    const err = error as { code?: string; statusCode?: number; message?: string };
    const message = redactUrl(err.message ?? String(error));
    if (err.code === 'EINTEGRITY') {
      return new IntegrityError(`${what} does not match its published integrity (${message})`, {
        hint: 'the download was corrupted or the registry serves different bytes than it published; nothing was installed',
        cause: error,
      });
    }
    const status = err.statusCode ?? (err.code && /^E\d{3}$/.test(err.code) ? Number(err.code.slice(1)) : undefined);
    if (status === 404) {
      return new RegistryError('E404', `${what}: not found in the registry ${redactUrl(this.registry)}`, {
        hint: 'check the package name in the inventory and API_BASE_URL',
        retryable: false,
        cause: error,
      });
    }
    if (status === 401 || status === 403) {
      return new RegistryError(`E${status}`, `${what}: the registry refused access (${status})`, {
        hint: 'set REGISTRY_TOKEN for a private registry',
        retryable: false,
        cause: error,
      });
    }
    const retryable = status === undefined || status >= 500 || status === 408 || status === 429;
    return new RegistryError(err.code ?? (status ? `E${status}` : 'EREGISTRY'), `${what}: ${message}`, {
      hint: retryable ? 'the registry or the network failed; the job is retried with backoff' : undefined,
      retryable,
      cause: error,
    });
  }
}

/** JSON.parse + slimPackument, off the event loop for large bodies. */
async function parsePackument(body: Buffer): Promise<Packument | undefined> {
  if (body.length >= OFF_THREAD_PARSE_BYTES) return parser.parse(body);
  try {
    return slimPackument(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}
