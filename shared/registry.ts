/*
 * The registry client: pacote (npm's own fetcher) pointed at API_BASE_URL. Packuments come
 * abbreviated unless a minimum release age needs `time`; pacote's HTTP cache revalidates them with
 * If-None-Match. Tarballs stream to disk while their SRI integrity is verified, so memory does
 * not grow with tarball size, and only a verified file ever appears at its final path.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pacote from 'pacote';
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
  /** pacote's HTTP cache (packument revalidation, tarball cache). */
  cacheDir: string;
  timeoutMs?: number;
}

/** Nerf-darted auth key npm uses: //host/path/:_authToken. */
function authKey(registry: string): string {
  const url = new URL(registry);
  return `//${url.host}${url.pathname}:_authToken`;
}

export class RegistryClient {
  private readonly options: Record<string, unknown>;

  constructor(private readonly config: Pick<Config, 'apiBaseUrl' | 'registryToken' | 'tarballHosts' | 'maxTarballBytes'>, options: RegistryClientOptions) {
    this.options = {
      registry: config.apiBaseUrl,
      cache: options.cacheDir,
      // Revalidate cached packuments (ETag) every time: a check must see new publishes.
      preferOnline: true,
      timeout: options.timeoutMs ?? 30_000,
      fetchRetries: 0,
      userAgent: `mcp-updater node/${process.version}`,
      ...(config.registryToken ? { [authKey(config.apiBaseUrl)]: config.registryToken } : {}),
    };
  }

  get registry(): string { return this.config.apiBaseUrl; }

  /** The package's packument; `fullMetadata` adds `time` (needed for minReleaseAge). */
  async packument(name: string, fullMetadata: boolean): Promise<Packument> {
    let packument: Packument;
    try {
      packument = (await pacote.packument(name, { ...this.options, fullMetadata })) as unknown as Packument;
    } catch (error) {
      throw this.registryError(error, `${name}'s packument`);
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
      await pacote.tarball.stream(
        `${spec.package}@${spec.version}`,
        (stream) => pipeline(stream, meter, fs.createWriteStream(partial, { mode: 0o644 })),
        { ...this.options, resolved: spec.tarball, integrity: spec.integrity },
      );
      await fsp.rename(partial, destination);
      return { bytes, sha256: hash.digest('hex') };
    } catch (error) {
      await fsp.rm(partial, { force: true });
      if (error instanceof MCPError) throw error;
      throw this.registryError(error, `tarball of ${spec.package}@${spec.version}`);
    }
  }

  /** Turn pacote / npm-registry-fetch failures into errors with a code and a hint. */
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
