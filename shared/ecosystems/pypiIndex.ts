/*
 * The package-index client for Python servers (docs/ARCHITECTURE.md "Ecosystems"): the index's
 * JSON API (`<index>/pypi/<project>/json`) for releases, per-file upload times, yanked flags and
 * sha256 digests, and file downloads verified against the digest while they stream. Requests go
 * through make-fetch-happen as in shared/registry.ts and follow its rules: redirects are followed
 * by hand and only to the index's origin or a TARBALL_HOSTS origin, credentials (the index URL's
 * user info) go only to the index's origin, the JSON is read up to MAX_PACKUMENT_SIZE and files
 * up to MAX_TARBALL_SIZE, every request has DOWNLOAD_TIMEOUT as its overall deadline.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Joi from 'joi';
import makeFetch, { type FetchResponse } from 'make-fetch-happen';
import { DEFAULT_MAX_PACKUMENT_BYTES, type Config } from '../config.js';
import { ConfigurationError, IntegrityError, MCPError, RegistryError } from '../errors.js';
import { fetchAgent } from '../httpAgent.js';
import { redactUrl } from '../redact.js';
import { writeVerifiedFile } from '../verifiedFile.js';
import type { PypiFile, PypiProject } from './pypiPolicy.js';
import { pythonCommand } from './python.js';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 600_000;

export type PypiIndexConfig = Pick<Config, 'tarballHosts' | 'maxTarballBytes'>
  & Partial<Pick<Config, 'registryTimeoutMs' | 'downloadTimeoutMs' | 'maxPackumentBytes'>>;

/** PEP 503 normalized project name: the form index URLs use. */
export function normalizeProjectName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** Where the index URL came from, as `start` and `config check` say it (and a bad one is named). */
export type IndexSource = 'PYPI_INDEX_URL' | 'PIP_INDEX_URL' | "pip's global.index-url";

export interface ResolvedIndex {
  /** The simple API URL, credentials included (never logged: see redactUrl). */
  url: string;
  source: IndexSource;
}

/**
 * The index to use and where it came from: PYPI_INDEX_URL, else pip's configured index
 * (PIP_INDEX_URL, then `pip config get global.index-url`). Never a built-in public host: with
 * none, refuse. The URL obeys the rule of npm's registry (API_BASE_URL): an http(s) URL with a host.
 */
export async function resolveIndex(env: NodeJS.ProcessEnv = process.env, python = pythonCommand(env)): Promise<ResolvedIndex> {
  const fromEnv = (['PYPI_INDEX_URL', 'PIP_INDEX_URL'] as const).find((name) => env[name]?.trim());
  const configured = fromEnv ? env[fromEnv]!.trim() : await pipConfiguredIndex(env, python);
  if (!configured) {
    throw new ConfigurationError('no Python package index is configured for pypi servers', {
      path: 'PYPI_INDEX_URL',
      hint: "set PYPI_INDEX_URL (or PIP_INDEX_URL, or pip's global.index-url) to your index's simple API, e.g. https://pypi.internal/simple/",
    });
  }
  const source: IndexSource = fromEnv ?? "pip's global.index-url";
  if (
    Joi.string()
      .uri({ scheme: ['http', 'https'] })
      .validate(configured).error
  ) {
    throw new ConfigurationError(`${source}: "${redactUrl(configured)}" is not an http(s) URL`, {
      path: source,
      hint: `set ${source === "pip's global.index-url" ? "PYPI_INDEX_URL (it wins over pip's configuration)" : source} to the index's simple API URL, e.g. https://pypi.internal/simple/`,
    });
  }
  return { url: new URL(configured).href, source };
}

/** resolveIndex's URL. */
export async function resolveIndexUrl(env: NodeJS.ProcessEnv = process.env, python = pythonCommand(env)): Promise<string> {
  return (await resolveIndex(env, python)).url;
}

async function pipConfiguredIndex(env: NodeJS.ProcessEnv, python: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)(python, ['-m', 'pip', 'config', 'get', 'global.index-url'], { env, timeout: 30_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `…/simple/` -> `…/pypi/<project>/json`, as the index software beside pip lays them out. */
export function jsonApiUrl(indexUrl: string, project: string): string {
  const url = new URL(indexUrl);
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  const base = url.pathname.replace(/\/+$/, '').replace(/\/simple$/, '');
  url.pathname = `${base}/pypi/${encodeURIComponent(normalizeProjectName(project))}/json`;
  return url.href;
}

/** The JSON API answer reduced to a PypiProject, or undefined when it is not one. */
export function parseProjectJson(value: unknown): PypiProject | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const raw = value as { info?: { name?: unknown; version?: unknown }; releases?: unknown };
  if (!raw.info || typeof raw.info.name !== 'string' || raw.releases === null || typeof raw.releases !== 'object') return undefined;
  const releases: Record<string, PypiFile[]> = {};
  for (const [version, files] of Object.entries(raw.releases as Record<string, unknown>)) {
    if (!Array.isArray(files)) continue;
    releases[version] = files
      .filter((file): file is Record<string, unknown> => file !== null && typeof file === 'object')
      .flatMap((file) => {
        if (typeof file.filename !== 'string' || typeof file.url !== 'string') return [];
        const digests = file.digests as Record<string, unknown> | undefined;
        const uploaded =
          typeof file.upload_time_iso_8601 === 'string'
            ? file.upload_time_iso_8601
            : // upload_time is UTC without a zone.
              typeof file.upload_time === 'string'
              ? /[zZ]|[+-]\d\d:?\d\d$/.test(file.upload_time)
                ? file.upload_time
                : `${file.upload_time}Z`
              : undefined;
        return [
          {
            filename: file.filename,
            url: file.url,
            sha256: typeof digests?.sha256 === 'string' ? digests.sha256.toLowerCase() : undefined,
            uploadTime: uploaded,
            yanked: file.yanked === true,
            packagetype: typeof file.packagetype === 'string' ? file.packagetype : '',
            requiresPython: typeof file.requires_python === 'string' ? file.requires_python : undefined,
          },
        ];
      });
  }
  return { name: raw.info.name, latest: typeof raw.info.version === 'string' ? raw.info.version : undefined, releases };
}

/** `https://host:port` of a TARBALL_HOSTS entry: a bare `host[:port]` takes the index's scheme. */
function entryOrigin(entry: string, index: URL): string | undefined {
  try {
    return new URL(entry.includes('://') ? entry : `${index.protocol}//${entry}`).origin;
  } catch {
    return undefined;
  }
}

export class PypiIndexClient {
  private readonly indexUrl: URL;
  /** The index as configured, credentials included: only for pip's environment. */
  private readonly configured: string;
  private readonly authorization?: string;
  private readonly allowedOrigins: Set<string>;
  private readonly timeoutMs: number;
  private readonly downloadTimeoutMs: number;
  private readonly maxJsonBytes: number;

  constructor(
    index: string,
    private readonly config: PypiIndexConfig,
  ) {
    const url = new URL(index);
    this.configured = url.href;
    if (url.username || url.password) {
      this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    }
    url.username = '';
    url.password = '';
    this.indexUrl = url;
    this.allowedOrigins = new Set([url.origin]);
    for (const entry of config.tarballHosts) {
      const origin = entryOrigin(entry, url);
      if (origin) this.allowedOrigins.add(origin);
    }
    this.timeoutMs = config.registryTimeoutMs ?? 30_000;
    this.downloadTimeoutMs = config.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
    this.maxJsonBytes = config.maxPackumentBytes ?? DEFAULT_MAX_PACKUMENT_BYTES;
  }

  /** The index's simple API URL without credentials (for messages and pip). */
  get index(): string {
    return this.indexUrl.href;
  }

  get origin(): string {
    return this.indexUrl.origin;
  }

  /** The URL with its credentials, for PIP_INDEX_URL in pip's environment (never a command line or a message). */
  get urlForPip(): string {
    return this.configured;
  }

  /** Why a file URL may not be fetched, or undefined when it may. */
  fileProblem(fileUrl: string): string | undefined {
    try {
      this.assertAllowed(new URL(fileUrl), `file URL ${redactUrl(fileUrl)}`);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  async project(name: string): Promise<PypiProject> {
    const url = jsonApiUrl(this.indexUrl.href, name);
    const what = `${name}'s JSON API answer`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.downloadTimeoutMs);
    let body: Buffer;
    try {
      const response = await this.get(url, { accept: 'application/json' }, controller.signal, what);
      if (response.status !== 200) {
        response.body.resume();
        throw this.statusError(response.status, what, url);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.maxJsonBytes) {
          response.body.destroy();
          throw new RegistryError(
            'EPACKUMENTTOOBIG',
            `${what} is larger than MAX_PACKUMENT_SIZE (${this.maxJsonBytes} bytes); it was not read`,
            {
              hint: 'raise MAX_PACKUMENT_SIZE if your index really serves answers this large',
              retryable: false,
            },
          );
        }
        chunks.push(chunk);
      }
      body = Buffer.concat(chunks, size);
    } catch (error) {
      throw this.requestError(error, what, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
    let parsed: PypiProject | undefined;
    try {
      parsed = parseProjectJson(JSON.parse(body.toString('utf8')));
    } catch {
      parsed = undefined;
    }
    if (!parsed) {
      throw new RegistryError('EBADPACKUMENT', `the index answered for ${name} with something that is not a JSON API project`, {
        hint: `check that ${this.index} is a Python package index with the JSON API beside its simple API`,
        retryable: true,
      });
    }
    return parsed;
  }

  /**
   * Stream a file to `destination`, verifying its sha256 integrity and MAX_TARBALL_SIZE on the way;
   * the file appears (atomic rename) only when verified, nothing is left behind otherwise.
   */
  async download(fileUrl: string, integrity: string, destination: string, label: string): Promise<{ bytes: number }> {
    const problem = this.fileProblem(fileUrl);
    if (problem)
      throw new RegistryError('ETARBALLHOST', problem, {
        retryable: false,
        hint: "add the file host to TARBALL_HOSTS if it serves your index's files",
      });
    const limit = this.config.maxTarballBytes;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.downloadTimeoutMs);
    try {
      const response = await this.get(fileUrl, {}, controller.signal, label);
      if (response.status !== 200) {
        response.body.resume();
        throw this.statusError(response.status, label, fileUrl);
      }
      return await writeVerifiedFile(response.body, {
        destination,
        integrity,
        maxBytes: limit,
        tooBig: () =>
          new MCPError('ETOOBIG', `${label} is larger than MAX_TARBALL_SIZE (${limit} bytes)`, {
            hint: 'raise MAX_TARBALL_SIZE if this file really is that large',
            retryable: false,
          }),
        signal: controller.signal,
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'EINTEGRITY') {
        throw new IntegrityError(`${label} does not match the sha256 digest the index published (${integrity})`, {
          hint: 'the download was corrupted or the index serves different bytes than it published; nothing was installed',
          cause: error,
        });
      }
      throw this.requestError(error, label, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
  }

  /** GET with redirects followed by hand: each hop on an allowed origin, credentials only to the index's. */
  private async get(url: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<FetchResponse> {
    let current = new URL(url);
    this.assertAllowed(current, `${what}: ${redactUrl(current.href)}`);
    for (let hop = 0; ; hop++) {
      const response = await makeFetch(current.href, {
        headers: {
          'user-agent': `mcp-updater node/${process.version}`,
          ...headers,
          ...(this.authorization && current.origin === this.indexUrl.origin ? { authorization: this.authorization } : {}),
        },
        redirect: 'manual',
        retry: { retries: 0 },
        timeout: this.timeoutMs,
        agent: fetchAgent(current, this.timeoutMs),
        signal,
      });
      if (!REDIRECT_STATUSES.has(response.status)) return response;
      response.body.resume();
      const location = response.headers.get('location');
      if (!location)
        throw new RegistryError('EBADREDIRECT', `${what}: ${redactUrl(current.href)} answered ${response.status} without a Location`, {
          retryable: true,
        });
      if (hop + 1 > MAX_REDIRECTS)
        throw new RegistryError('EMAXREDIRECT', `${what}: more than ${MAX_REDIRECTS} redirects from ${redactUrl(url)}`, {
          retryable: false,
        });
      const next = new URL(location, current);
      this.assertAllowed(next, `${what}: ${redactUrl(current.href)} redirects to ${redactUrl(next.href)}, which`);
      current = next;
    }
  }

  private assertAllowed(url: URL, what: string): void {
    if ((url.protocol === 'https:' || url.protocol === 'http:') && this.allowedOrigins.has(url.origin)) return;
    throw new RegistryError(
      'ETARBALLHOST',
      `${what} points at ${url.origin}, not at the index ${this.indexUrl.origin}; nothing was sent there`,
      {
        hint: `if ${url.origin} serves your index's files, add it to TARBALL_HOSTS`,
        retryable: false,
      },
    );
  }

  private statusError(status: number, what: string, url: string): RegistryError {
    if (status === 404)
      return new RegistryError('E404', `${what}: not found on the index (${redactUrl(url)})`, {
        hint: 'check the pypi: name in the inventory and PYPI_INDEX_URL',
        retryable: false,
      });
    if (status === 401 || status === 403)
      return new RegistryError(`E${status}`, `${what}: the index refused access (${status})`, {
        hint: 'put the index credentials in PYPI_INDEX_URL (https://user:token@host/simple/)',
        retryable: false,
      });
    const retryable = status >= 500 || status === 408 || status === 429;
    return new RegistryError(`E${status}`, `${what}: the index answered ${status}`, {
      retryable,
      hint: retryable ? 'the index failed; the job is retried with backoff' : undefined,
    });
  }

  private requestError(error: unknown, what: string, timedOut: boolean): Error {
    if (error instanceof MCPError) return error;
    if (timedOut) {
      return new RegistryError(
        'EDOWNLOADTIMEOUT',
        `${what}: not complete within DOWNLOAD_TIMEOUT (${this.downloadTimeoutMs} ms); abandoned`,
        { retryable: true, hint: 'the index sends too slowly; the job is retried with backoff' },
      );
    }
    const err = error as { code?: string; message?: string };
    return new RegistryError(err.code ?? 'EREGISTRY', `${what}: ${redactUrl(err.message ?? String(error))}`, {
      retryable: true,
      hint: 'the index or the network failed; the job is retried with backoff',
      cause: error,
    });
  }
}

const clients = new WeakMap<object, Promise<PypiIndexClient>>();

/** One index client per config object (per worker process), the index resolved on first use. */
export function pypiIndexFor(config: PypiIndexConfig): Promise<PypiIndexClient> {
  let client = clients.get(config);
  if (!client) {
    client = resolveIndexUrl().then((index) => new PypiIndexClient(index, config));
    // A refusal is not cached: pip's configuration is read again on the next use.
    client.catch(() => clients.delete(config));
    clients.set(config, client);
  }
  return client;
}
