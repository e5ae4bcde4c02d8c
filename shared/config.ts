/*
 * The one configuration object: every environment variable of the README ("Environment"), validated with joi.
 * A bad value raises a ConfigurationError naming the variable; `mcp-updater` exits 78 on it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Joi from 'joi';
import { ConfigurationError } from './errors.js';
import { QUEUE_NAMES, type QueueName } from './queues.js';
import { registerSecret, registerSecretFile, registerWebhookUrl } from './redact.js';
import { cronSchema, timezoneSchema } from './schemas.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Config {
  redisUrl: string;
  queuePrefix: string;
  /** Registry base URL, always with a trailing slash. */
  apiBaseUrl: string;
  /** Bearer token for the registry (private registries); never logged. */
  registryToken?: string;
  /** Hosts besides the registry's own that packuments may point tarballs at. */
  tarballHosts: string[];
  serversConfig: string;
  serversPath: string;
  stagingDir: string;
  backupDir: string;
  /** npm's cache for staging installs (CACHE_DIR/npm) and the Sigstore TUF metadata (CACHE_DIR/sigstore). */
  cacheDir: string;
  /** A Sigstore trusted_root.json to verify provenance with instead of the public-good root read through TUF. */
  sigstoreTrustedRoot?: string;
  logDir: string;
  logLevel: LogLevel;
  maxRetries: number;
  /** First retry delay of a failed job (ms); exponential with jitter from there (RETRY_BACKOFF). */
  retryBackoffMs: number;
  /**
   * BullMQ job lock and stalled-job check interval for every queue (JOB_LOCK_DURATION, ms). Unset:
   * each queue keeps its own lock (30 s; 120 s download, stage, cleanup; 180 s activate). A job
   * whose worker died is taken up again only after its lock expires.
   */
  jobLockDurationMs?: number;
  /** TTL of the per-server activation lock in Redis (ACTIVATION_LOCK_TTL, ms); refreshed while held. */
  activationLockTtlMs: number;
  /** A registry request that sends nothing for this long fails and is retried (REGISTRY_TIMEOUT, ms). */
  registryTimeoutMs: number;
  /** Overall deadline of one registry download, packument or tarball, however fast bytes trickle in (DOWNLOAD_TIMEOUT, ms). */
  downloadTimeoutMs: number;
  host: string;
  port: number;
  /** Host names the dashboard answers besides HOST and the loopback names (ALLOWED_HOSTS), lower-case. */
  allowedHosts: string[];
  /** Per-client requests a minute: API reads, mutations, logins (RATE_LIMIT_*); 0 = no limit. */
  rateLimits: { read: number; mutation: number; login: number };
  /** express "trust proxy" (TRUST_PROXY): hops or addresses of reverse proxies in front of the dashboard. */
  trustProxy?: string;
  apiToken?: string;
  checkSchedule: string;
  cleanupSchedule: string;
  /** Timezone that cron schedules are read in. */
  timezone: string;
  workers: QueueName[];
  concurrency: Record<QueueName, number>;
  webhookUrls: string[];
  webhookSecret?: string;
  maxTarballBytes: number;
  /** Largest packument read from the registry (MAX_PACKUMENT_SIZE). */
  maxPackumentBytes: number;
  maxPackageFiles: number;
  maxPackageBytes: number;
}

const DEFAULT_CONCURRENCY: Record<QueueName, number> = {
  check: 50,
  download: 10,
  stage: 4,
  activate: 4,
  cleanup: 1,
  webhook: 10,
};

const WORKER_QUEUES = QUEUE_NAMES.filter((name) => name !== 'webhook');

const byteSize = Joi.string().custom((value: string, helpers) => {
  const match = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(value.trim());
  if (!match) return helpers.message({ custom: 'must be a size like 500kb, 100mb or 1gb' });
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit] ?? 1;
  return Number(match[1]) * factor;
});

const apiToken = Joi.string().min(16).messages({ 'string.min': 'must be at least 16 characters (use `openssl rand -hex 32`)' });

/** Large enough for the full metadata of packages with thousands of versions; a hostile registry cannot make a check hold more. */
export const DEFAULT_MAX_PACKUMENT_BYTES = 50 * 1024 ** 2;

/** Secrets that may come from a file instead (the Docker secrets convention: VAR_FILE=/run/secrets/var). */
export const SECRET_FILE_VARIABLES = ['API_TOKEN', 'REGISTRY_TOKEN', 'WEBHOOK_SECRET'] as const;

const envSchema = Joi.object({
  REDIS_URL: Joi.string()
    .uri({ scheme: ['redis', 'rediss'] })
    .default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: Joi.string()
    .pattern(/^[A-Za-z0-9_:{}-]{1,64}$/)
    .default('mcp')
    .messages({ 'string.pattern.base': 'must be 1-64 characters of letters, digits, _ : - \\{ }' }),
  API_BASE_URL: Joi.string().uri({ scheme: ['http', 'https'] }),
  REGISTRY_TOKEN: Joi.string(),
  REGISTRY_TOKEN_FILE: Joi.string().allow(''),
  TARBALL_HOSTS: Joi.string().allow('').default(''),
  MCP_SERVERS_CONFIG: Joi.string().default('./mcp-servers.yaml'),
  MCP_SERVERS_PATH: Joi.string().default('./data/servers'),
  STAGING_DIR: Joi.string(),
  BACKUP_DIR: Joi.string().default('./data/backups'),
  CACHE_DIR: Joi.string().default('./data/cache'),
  SIGSTORE_TRUSTED_ROOT: Joi.string(),
  LOG_DIR: Joi.string().default('./data/logs'),
  LOG_LEVEL: Joi.string().valid('error', 'warn', 'info', 'debug').default('info'),
  MAX_RETRIES: Joi.number().integer().min(1).max(50).default(3),
  RETRY_BACKOFF: Joi.number().integer().min(0).max(3_600_000).default(1_000),
  JOB_LOCK_DURATION: Joi.number().integer().min(1_000).max(3_600_000),
  ACTIVATION_LOCK_TTL: Joi.number().integer().min(1_000).max(3_600_000).default(120_000),
  REGISTRY_TIMEOUT: Joi.number().integer().min(100).max(600_000).default(30_000),
  DOWNLOAD_TIMEOUT: Joi.number().integer().min(100).max(86_400_000).default(600_000),
  HOST: Joi.string().hostname().default('127.0.0.1'),
  PORT: Joi.number().integer().min(0).max(65535).default(10250),
  ALLOWED_HOSTS: Joi.string().allow('').default(''),
  RATE_LIMIT_READ: Joi.number().integer().min(0).default(600),
  RATE_LIMIT_MUTATION: Joi.number().integer().min(0).default(30),
  RATE_LIMIT_LOGIN: Joi.number().integer().min(0).default(10),
  TRUST_PROXY: Joi.string(),
  API_TOKEN: apiToken,
  API_TOKEN_FILE: Joi.string().allow(''),
  CHECK_SCHEDULE: cronSchema.default('0 */6 * * *'),
  CLEANUP_SCHEDULE: cronSchema.default('30 3 * * *'),
  SCHEDULE_TZ: timezoneSchema.default('UTC'),
  WORKERS: Joi.string().default(WORKER_QUEUES.join(',')),
  CONCURRENCY: Joi.string().allow('').default(''),
  WEBHOOK_URLS: Joi.string().allow('').default(''),
  WEBHOOK_SECRET: Joi.string(),
  WEBHOOK_SECRET_FILE: Joi.string().allow(''),
  // Defaults in bytes: joi does not run custom() on a default, so '100mb' would stay a string.
  MAX_TARBALL_SIZE: byteSize.default(100 * 1024 ** 2),
  MAX_PACKAGE_SIZE: byteSize.default(500 * 1024 ** 2),
  MAX_PACKUMENT_SIZE: byteSize.default(DEFAULT_MAX_PACKUMENT_BYTES),
  MAX_PACKAGE_FILES: Joi.number().integer().min(1).default(100_000),
}).unknown(true);

function fail(variable: string, message: string, hint?: string): never {
  throw new ConfigurationError(`${variable}: ${message}`, {
    path: variable,
    hint: hint ?? `fix ${variable} in the environment (see README, "Environment")`,
  });
}

function parseList(variable: string, value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function parseWorkers(value: string): QueueName[] {
  const names = parseList('WORKERS', value);
  for (const name of names) {
    if (!(QUEUE_NAMES as readonly string[]).includes(name)) {
      fail('WORKERS', `"${name}" is not a queue; use a comma-separated list of ${WORKER_QUEUES.join(', ')}`);
    }
  }
  return names as QueueName[];
}

function parseConcurrency(value: string): Record<QueueName, number> {
  const result = { ...DEFAULT_CONCURRENCY };
  for (const item of parseList('CONCURRENCY', value)) {
    const match = /^([a-z]+)=(\d+)$/.exec(item);
    if (!match || !(QUEUE_NAMES as readonly string[]).includes(match[1]!) || Number(match[2]) < 1) {
      fail('CONCURRENCY', `"${item}" must look like check=50,stage=4 (queue=positive number)`);
    }
    result[match[1] as QueueName] = Number(match[2]);
  }
  return result;
}

function parseAllowedHosts(value: string): string[] {
  const hosts = parseList('ALLOWED_HOSTS', value).map((host) => host.toLowerCase());
  for (const host of hosts) {
    if (Joi.string().hostname().validate(host).error) {
      fail(
        'ALLOWED_HOSTS',
        `"${host}" is not a host name; list the names the dashboard is reached by, without scheme or port (dash.example.com,10.0.0.5)`,
      );
    }
  }
  return hosts;
}

function parseUrls(variable: string, value: string): string[] {
  const urls = parseList(variable, value);
  for (const url of urls) {
    const { error } = Joi.string()
      .uri({ scheme: ['http', 'https'] })
      .validate(url);
    if (error) fail(variable, `"${url}" is not an http(s) URL`);
  }
  return urls;
}

/** What `npm config get registry` answers: env first (set by `npm start`), then npm itself. */
export function npmConfiguredRegistry(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.npm_config_registry ?? env.NPM_CONFIG_REGISTRY;
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('npm', ['config', 'get', 'registry'], {
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch (error) {
    throw new ConfigurationError(`API_BASE_URL: not set and \`npm config get registry\` failed (${(error as Error).message})`, {
      path: 'API_BASE_URL',
      hint: 'set API_BASE_URL to your npm registry URL or install npm',
    });
  }
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * The environment with each VAR_FILE replaced by VAR read from that file (one trailing newline
 * trimmed, as `echo token > file` writes it). An empty VAR_FILE (compose's `${VAR_FILE:-}`) and
 * an empty file both leave VAR as the environment has it, so a compose secret can stay unused;
 * an unreadable file, or VAR and a non-empty VAR_FILE both set, is an error.
 */
function withSecretFiles(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; files: Map<string, string> } {
  const resolved: NodeJS.ProcessEnv = { ...env };
  /** VAR -> the file it was read from. */
  const files = new Map<string, string>();
  for (const variable of SECRET_FILE_VARIABLES) {
    const fileVariable = `${variable}_FILE`;
    const file = env[fileVariable];
    delete resolved[fileVariable];
    if (file === undefined || file === '') continue;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      fail(fileVariable, `cannot read ${file} (${code})`, `point ${fileVariable} at a file this process can read, holding ${variable}`);
    }
    const secret = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
    if (secret === '') continue;
    if (env[variable] !== undefined) {
      fail(fileVariable, `${variable} and ${fileVariable} are both set`, `set only one of ${variable} and ${fileVariable}`);
    }
    resolved[variable] = secret;
    files.set(variable, path.resolve(file));
  }
  return { env: resolved, files };
}

/** Validate and resolve the environment into a Config. Throws ConfigurationError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const secrets = withSecretFiles(env);
  const { value, error } = envSchema.validate(secrets.env, { abortEarly: true, convert: true });
  if (error) {
    const detail = error.details[0]!;
    const variable = String(detail.path[0] ?? detail.context?.key ?? 'environment');
    const message = detail.message.replace(/^"[^"]*" /, '');
    const file = secrets.files.get(variable);
    if (file) fail(`${variable}_FILE`, `the ${variable} in ${file} ${message}`);
    fail(variable, message);
  }
  const serversPath = path.resolve(value.MCP_SERVERS_PATH);
  const config: Omit<Config, 'apiBaseUrl'> = {
    redisUrl: value.REDIS_URL,
    queuePrefix: value.QUEUE_PREFIX,
    registryToken: value.REGISTRY_TOKEN,
    tarballHosts: parseList('TARBALL_HOSTS', value.TARBALL_HOSTS).map((host) => host.toLowerCase()),
    serversConfig: path.resolve(value.MCP_SERVERS_CONFIG),
    serversPath,
    stagingDir: path.resolve(value.STAGING_DIR ?? path.join(serversPath, '.staging')),
    backupDir: path.resolve(value.BACKUP_DIR),
    cacheDir: path.resolve(value.CACHE_DIR),
    ...(value.SIGSTORE_TRUSTED_ROOT ? { sigstoreTrustedRoot: path.resolve(value.SIGSTORE_TRUSTED_ROOT) } : {}),
    logDir: path.resolve(value.LOG_DIR),
    logLevel: value.LOG_LEVEL,
    maxRetries: value.MAX_RETRIES,
    retryBackoffMs: value.RETRY_BACKOFF,
    jobLockDurationMs: value.JOB_LOCK_DURATION,
    activationLockTtlMs: value.ACTIVATION_LOCK_TTL,
    registryTimeoutMs: value.REGISTRY_TIMEOUT,
    downloadTimeoutMs: value.DOWNLOAD_TIMEOUT,
    host: value.HOST,
    port: value.PORT,
    allowedHosts: parseAllowedHosts(value.ALLOWED_HOSTS),
    rateLimits: { read: value.RATE_LIMIT_READ, mutation: value.RATE_LIMIT_MUTATION, login: value.RATE_LIMIT_LOGIN },
    trustProxy: value.TRUST_PROXY,
    apiToken: value.API_TOKEN,
    checkSchedule: value.CHECK_SCHEDULE,
    cleanupSchedule: value.CLEANUP_SCHEDULE,
    timezone: value.SCHEDULE_TZ,
    workers: parseWorkers(value.WORKERS),
    concurrency: parseConcurrency(value.CONCURRENCY),
    webhookUrls: parseUrls('WEBHOOK_URLS', value.WEBHOOK_URLS),
    webhookSecret: value.WEBHOOK_SECRET,
    maxTarballBytes: value.MAX_TARBALL_SIZE,
    maxPackumentBytes: value.MAX_PACKUMENT_SIZE,
    maxPackageBytes: value.MAX_PACKAGE_SIZE,
    maxPackageFiles: value.MAX_PACKAGE_FILES,
  };
  // Every process (worker, dashboard, CLI) loads its config here: all of them redact the same secrets.
  for (const secret of [config.apiToken, config.registryToken, config.webhookSecret]) registerSecret(secret);
  for (const url of config.webhookUrls) registerWebhookUrl(url);
  for (const file of secrets.files.values()) registerSecretFile(file);
  // Loading only validates: npm's configured registry is asked for (one `npm config get
  // registry`) only when a role reads apiBaseUrl — see resolveRegistry.
  let registry: string | undefined = value.API_BASE_URL === undefined ? undefined : withTrailingSlash(value.API_BASE_URL);
  Object.defineProperty(config, 'apiBaseUrl', { enumerable: true, get: () => (registry ??= npmRegistry(env)) });
  return Object.freeze(config as Config);
}

/**
 * The registry the workers talk to: API_BASE_URL, else what npm is configured with. Roles that
 * need it (workers, `config check`) call this at start, so a bad registry stops start-up (78).
 */
export function resolveRegistry(config: Config): string {
  return config.apiBaseUrl;
}

function npmRegistry(env: NodeJS.ProcessEnv): string {
  const registry = npmConfiguredRegistry(env);
  if (
    Joi.string()
      .uri({ scheme: ['http', 'https'] })
      .validate(registry).error
  ) {
    fail('API_BASE_URL', `npm's configured registry "${registry}" is not an http(s) URL`);
  }
  return withTrailingSlash(registry);
}
