/*
 * The registry client, pointed at API_BASE_URL. Requests go through npm-registry-fetch — the
 * fetch layer of npm and pacote (keep-alive agents, proxies, auth, retries off: BullMQ retries)
 * — without its on-disk HTTP cache: packuments are revalidated with If-None-Match against a
 * small in-memory cache, so a check of an unchanged package costs one 304, and tarballs stream
 * to disk while ssri verifies their SRI integrity and the size limit holds, so memory does not
 * grow with tarball size and only a verified file ever appears at its final path.
 * Why not pacote itself: measured on the bench (2 cores), pacote spent ~2 ms of CPU per
 * packument and ~5 ms per tarball, mostly in its cacache copy of every answer (a second copy of
 * every tarball beside BACKUP_DIR); this path costs a fraction of that.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import npmFetch from 'npm-registry-fetch';
import ssri from 'ssri';
import type { Config } from './config.js';
import { IntegrityError, MCPError, RegistryError } from './errors.js';
import { redactUrl } from './redact.js';

export interface PackumentVersion {
  name: string;
  version: string;
  deprecated?: string | boolean;
  dist?: { tarball?: string; integrity?: string; shasum?: string; unpackedSize?: number };
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

interface CachedPackument {
  etag: string;
  text: string;
}

/**
 * Packument texts by URL and form, with their ETags, up to a total text length. A full cache
 * admits nothing new rather than evicting: checks sweep the same packages in the same order, and
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
    if (this.size + entry.text.length > this.maxBytes) return;
    this.entries.set(key, entry);
    this.size += entry.text.length;
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.size -= entry.text.length;
  }
}

/** A packument answer's status, ETag and body (gzip undone). */
interface PackumentAnswer {
  status: number;
  etag?: string;
  body: Buffer;
}

/** Nerf-darted auth key npm uses: //host/path/:_authToken. */
function authKey(registry: string): string {
  const url = new URL(registry);
  return `//${url.host}${url.pathname}:_authToken`;
}

export class RegistryClient {
  private readonly timeoutMs: number;
  private readonly packuments: PackumentCache;
  /** npm-registry-fetch options shared by every request; no `cache`: nothing is written to disk. */
  private readonly fetchOptions: npmFetch.Options;

  constructor(
    private readonly config: Pick<Config, 'apiBaseUrl' | 'registryToken' | 'tarballHosts' | 'maxTarballBytes'> & Partial<Pick<Config, 'registryTimeoutMs'>>,
    options: RegistryClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? config.registryTimeoutMs ?? 30_000;
    this.packuments = new PackumentCache(options.packumentCacheBytes ?? DEFAULT_PACKUMENT_CACHE_BYTES);
    this.fetchOptions = {
      registry: config.apiBaseUrl,
      userAgent: `mcp-updater node/${process.version}`,
      // BullMQ retries failed jobs with backoff; a second retry layer would multiply the waits.
      retry: { retries: 0 },
      // The token goes only to the registry's own host, keyed the way npm keys it (nerf dart).
      ...(config.registryToken ? { [authKey(config.apiBaseUrl)]: config.registryToken } : {}),
    };
  }

  get registry(): string { return this.config.apiBaseUrl; }

  /** The package's packument; `fullMetadata` adds `time` (needed for minReleaseAge). */
  async packument(name: string, fullMetadata: boolean): Promise<Packument> {
    let text: string;
    try {
      text = await this.fetchPackument(name, fullMetadata);
    } catch (error) {
      throw this.registryError(error, `${name}'s packument`);
    }
    let packument: Packument | undefined;
    try {
      packument = JSON.parse(text) as Packument;
    } catch {
      packument = undefined;
    }
    if (!packument || typeof packument !== 'object' || typeof packument.versions !== 'object' || packument.versions === null
      || typeof packument['dist-tags'] !== 'object' || packument['dist-tags'] === null) {
      throw new RegistryError('EBADPACKUMENT', `the registry answered for ${name} with something that is not a packument`, {
        hint: `check API_BASE_URL (${redactUrl(this.registry)}) points at an npm registry`,
        retryable: true,
      });
    }
    return packument;
  }

  /** The packument's text: a 200's body, or the cached text on a 304 to our If-None-Match. */
  private async fetchPackument(name: string, fullMetadata: boolean): Promise<string> {
    // Scoped names keep their @ and escape the slash, as npm requests them.
    const url = `${this.registry}${name.replace('/', '%2f')}`;
    const key = `${fullMetadata ? 'full' : 'corgi'} ${url}`;
    const cached = this.packuments.get(key);
    const headers = {
      accept: fullMetadata ? 'application/json' : CORGI_ACCEPT,
      ...(cached ? { 'if-none-match': cached.etag } : {}),
    };
    const answer = await this.npmGet(url, headers);
    if (answer.status === 304 && cached) return cached.text;
    if (answer.status < 200 || answer.status > 299) {
      this.packuments.delete(key);
      throw Object.assign(new Error(`${answer.status} from ${redactUrl(url)}`), { statusCode: answer.status });
    }
    const text = answer.body.toString('utf8');
    if (answer.etag && answer.status === 200) this.packuments.set(key, { etag: answer.etag, text }); else this.packuments.delete(key);
    return text;
  }

  /** GET through npm-registry-fetch (proxies, redirects); it throws on an error status itself. */
  private async npmGet(url: string, headers: Record<string, string>): Promise<PackumentAnswer> {
    const response = await npmFetch(url, { ...this.fetchOptions, timeout: this.timeoutMs, headers });
    return { status: response.status, etag: response.headers.get('etag') ?? undefined, body: await response.buffer() };
  }

  /**
   * Refuse tarball URLs that leave the registry (a packument must not send us to another host)
   * unless TARBALL_HOSTS allows that host.
   */
  assertTarballHost(tarballUrl: string): void {
    let host: string;
    try {
      host = new URL(tarballUrl).host.toLowerCase();
    } catch {
      throw new RegistryError('EBADTARBALLURL', `tarball URL "${redactUrl(tarballUrl)}" is not a URL`, { retryable: false });
    }
    const registryHost = new URL(this.registry).host.toLowerCase();
    if (host !== registryHost && !this.config.tarballHosts.includes(host)) {
      throw new RegistryError('ETARBALLHOST', `tarball URL points at ${host}, not at the registry ${registryHost}`, {
        hint: `if ${host} is your registry's tarball host, add it to TARBALL_HOSTS`,
        retryable: false,
      });
    }
  }

  /**
   * Stream the tarball to `destination`, verifying SRI integrity and the size limit on the way.
   * The file appears (atomic rename) only when verified; on any failure nothing is left behind.
   */
  async downloadTarball(spec: TarballSpec, destination: string): Promise<{ bytes: number; sha256: string }> {
    this.assertTarballHost(spec.tarball);
    await fsp.mkdir(path.dirname(destination), { recursive: true });
    const partial = `${destination}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.partial`;
    const limit = this.config.maxTarballBytes;
    let bytes = 0;
    const hash = crypto.createHash('sha256');
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > limit) {
          callback(new MCPError('ETOOBIG', `tarball of ${spec.package}@${spec.version} is larger than MAX_TARBALL_SIZE (${limit} bytes)`, {
            hint: 'raise MAX_TARBALL_SIZE if this package really is that large',
            retryable: false,
          }));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      const body = await this.tarballBody(spec);
      await pipeline(body, ssri.integrityStream({ integrity: spec.integrity }), meter, fs.createWriteStream(partial, { mode: 0o644 }));
      await fsp.rename(partial, destination);
      return { bytes, sha256: hash.digest('hex') };
    } catch (error) {
      await fsp.rm(partial, { force: true });
      if (error instanceof MCPError) throw error;
      throw this.registryError(error, `tarball of ${spec.package}@${spec.version}`);
    }
  }

  /** The tarball's bytes as they arrive (npm-registry-fetch: keep-alive, proxies, redirects). */
  private async tarballBody(spec: TarballSpec): Promise<NodeJS.ReadableStream> {
    // A tarball may take long on a slow link: the timeout guards a stalled one, not a big one.
    const response = await npmFetch(spec.tarball, { ...this.fetchOptions, timeout: Math.max(this.timeoutMs, 300_000) });
    return response.body as unknown as NodeJS.ReadableStream;
  }

  /** Turn HTTP, socket, timeout and integrity failures into errors with a code and a hint. */
  private registryError(error: unknown, what: string): Error {
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
        hint: 'check the package name in the inventory and API_BASE_URL', retryable: false, cause: error,
      });
    }
    if (status === 401 || status === 403) {
      return new RegistryError(`E${status}`, `${what}: the registry refused access (${status})`, {
        hint: 'set REGISTRY_TOKEN for a private registry', retryable: false, cause: error,
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
