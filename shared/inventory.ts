/*
 * The inventory (`mcp-servers.yaml`): which MCP servers to keep up to date and how. `defaults` are
 * merged into every server. Anything invalid is refused whole with the path of the bad key, so a
 * running process can keep its current set when an edit is wrong.
 */
import fs from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import Joi from 'joi';
import semver from 'semver';
import YAML from 'yaml';
import validatePackageName from 'validate-npm-package-name';
import { isPypiSpecifier, normalizePypiVersion, satisfiesPypi } from './ecosystems/pep440.js';
import { ConfigurationError } from './errors.js';
import { registerSecret, registerSecretFile, secretArguments } from './redact.js';
import { cronSchema, RESERVED_SERVER_NAMES, SERVER_NAME_PATTERN, timezoneSchema } from './schemas.js';
import { parseCron, parseDuration } from './schedule.js';
import { normalizeRepository } from './provenance.js';
import { PROVENANCE_MODES, type ProvenanceMode } from './signatures.js';
import { DEFAULT_SURFACE_CHANGE, type SurfaceChangeSettings } from './surface.js';

export const POLICIES = ['patch', 'minor', 'major', 'pin'] as const;
export type Policy = (typeof POLICIES)[number];
export type Activation = 'auto' | 'manual';

export interface SmokeTestSettings {
  enabled: boolean;
  timeoutMs: number;
  /** Command to run instead of the package's bin (e.g. "node"); args follow. */
  command?: string;
  args: string[];
  env: Record<string, string>;
  /** false: the sandboxed smoke test gets no network (its own empty network namespace). */
  network: boolean;
}

/** Where a server's package comes from (docs/ARCHITECTURE.md "Ecosystems"). */
export type Ecosystem = 'npm' | 'pypi';

/** What only a Python server (`pypi:`) has. */
export interface PythonSettings {
  /** PEP 440 specifier the interpreter must satisfy (">=3.10"). */
  python?: string;
  extras: string[];
  /** Allow building an sdist when a release has no wheel (building runs the package's code). */
  allowSdist: boolean;
  /** Console script to run when the distribution has several. */
  command?: string;
}

export interface ServerSettings {
  name: string;
  /** Absent means npm. */
  ecosystem?: Ecosystem;
  /** npm package name, or the PyPI project name for `pypi:` servers. */
  package: string;
  /** Present exactly for `pypi:` servers. */
  python?: PythonSettings;
  /** What to install first / pin to. */
  version?: string;
  channel: string;
  range?: string;
  /** Which of the package's bins to launch when it has several. */
  bin?: string;
  schedule: string;
  timezone: string;
  policy: Policy;
  minReleaseAgeMs: number;
  activation: Activation;
  keep: number;
  smokeTest: SmokeTestSettings;
  /** Packages of the install whose install scripts run (npm's allowScripts idea); none when absent. */
  allowScripts?: string[];
  /** What the surface gate does with each class of MCP surface change (shared/surface.ts). */
  surfaceChange: SurfaceChangeSettings;
  /** npm registry signatures: off, warn (refuse bad ones, allow unsigned), require (refuse unsigned too). */
  provenance: ProvenanceMode;
  /** The source repository (`github.com/owner/repo`) every version's verified provenance must name (npm). */
  repository?: string;
}

export interface Inventory {
  file: string;
  /** sha256 of the file's text: schedulers and the CLI compare it to see a change. */
  digest: string;
  servers: Map<string, ServerSettings>;
}

export interface InventoryDefaults {
  schedule: string;
  timezone: string;
  /** Names taken by the install root besides the layout's own (a STAGING_DIR or BACKUP_DIR inside it). */
  reservedNames?: string[];
}

// Any number reaches parseDuration so `minReleaseAge: 5` gets the duration message (only 0 is valid).
const duration = Joi.alternatives(Joi.string(), Joi.number()).custom((value: string | number, helpers) => {
  try {
    return parseDuration(String(value));
  } catch (error) {
    return helpers.message({ custom: (error as Error).message.replace(/^"[^"]*" is not a duration; /, 'must be a duration: ') });
  }
});

const cron = cronSchema;
const timezone = timezoneSchema;

const smokeTest = Joi.object({
  enabled: Joi.boolean(),
  timeout: duration,
  command: Joi.string().min(1),
  args: Joi.array().items(Joi.string()),
  env: Joi.object()
    .pattern(Joi.string().pattern(/^[A-Za-z_][A-Za-z0-9_]*$/), Joi.string().allow(''))
    .messages({ 'object.unknown': 'must be an environment variable name' }),
  network: Joi.boolean(),
});

const gateAction = Joi.string().valid('auto', 'approve');
const surfaceChange = Joi.object({ additive: gateAction, changed: gateAction, breaking: gateAction });

const settingKeys = {
  schedule: cron,
  timezone,
  policy: Joi.string().valid(...POLICIES),
  minReleaseAge: duration,
  activation: Joi.string().valid('auto', 'manual'),
  keep: Joi.number().integer().min(1).max(100),
  smokeTest,
  surfaceChange,
  provenance: Joi.string().valid(...PROVENANCE_MODES),
};

const packageName = Joi.string().custom((value: string, helpers) => {
  const result = validatePackageName(value);
  if (!result.validForNewPackages && !result.validForOldPackages) {
    return helpers.message({ custom: `is not a valid npm package name (${(result.errors ?? result.warnings ?? []).join('; ')})` });
  }
  return value;
});

// YAML reads `version: 1.2` as a number: check its text like any other, and store the clean form ("v1.2.3" -> "1.2.3").
const exactVersion = Joi.alternatives(Joi.string(), Joi.number()).custom(
  (value: string | number, helpers) =>
    semver.valid(String(value)) ?? helpers.message({ custom: 'must be an exact semver version such as 1.2.3' }),
);

// PEP 508 project and extra names.
const PYPI_NAME = /^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]{0,198}[A-Za-z0-9])$/;
const pypiName = Joi.string().pattern(PYPI_NAME).messages({
  'string.pattern.base': 'must be a Python project name (letters, digits, ".", "_", "-"; starting and ending with a letter or digit)',
});
const pypiVersion = Joi.alternatives(Joi.string(), Joi.number()).custom(
  (value: string | number, helpers) =>
    normalizePypiVersion(String(value))
    ?? helpers.message({ custom: 'must be an exact PEP 440 version such as 1.2.3 or 2.0rc1 (no epoch, no local part)' }),
);
const pypiSpecifier = Joi.string().custom((value: string, helpers) =>
  isPypiSpecifier(value) ? value : helpers.message({ custom: 'must be a PEP 440 specifier such as ">=1.2,<2"' }),
);
const isPypi = { is: Joi.exist(), then: Joi.forbidden().messages({ 'any.unknown': 'is an npm key; a pypi server does not take it' }) };
const onlyPypi = (schema: Joi.Schema) =>
  Joi.when('pypi', {
    is: Joi.exist(),
    then: schema,
    otherwise: Joi.forbidden().messages({ 'any.unknown': 'is a key of pypi servers only (this server has package:)' }),
  });

const serverSchema = Joi.object({
  package: packageName.when('pypi', { not: Joi.exist(), then: Joi.required() }),
  pypi: pypiName,
  version: Joi.when('pypi', { is: Joi.exist(), then: pypiVersion, otherwise: exactVersion }),
  channel: Joi.string()
    .pattern(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
    .messages({ 'string.pattern.base': 'must be a dist-tag name such as latest or next' })
    .when('pypi', isPypi),
  range: Joi.when('pypi', {
    is: Joi.exist(),
    then: pypiSpecifier,
    otherwise: Joi.string().custom((value: string, helpers) =>
      semver.validRange(value) ? value : helpers.message({ custom: 'must be a semver range such as ">=1.2.0 <2"' }),
    ),
  }),
  bin: Joi.string().when('pypi', isPypi),
  python: onlyPypi(pypiSpecifier),
  extras: onlyPypi(Joi.array().items(pypiName).max(20)),
  allowSdist: onlyPypi(Joi.boolean()),
  command: onlyPypi(
    Joi.string()
      .pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)
      .messages({ 'string.pattern.base': 'must be a console script name' }),
  ),
  allowScripts: Joi.array().items(packageName).unique().when('pypi', isPypi),
  repository: Joi.string()
    .custom(
      (value: string, helpers) =>
        normalizeRepository(value) ?? helpers.message({ custom: 'must be a source repository such as github.com/owner/repo' }),
    )
    .when('pypi', isPypi),
  ...settingKeys,
})
  .nand('package', 'pypi')
  .messages({
    'object.nand': 'has both package: and pypi:; a server comes from one ecosystem',
  });

const inventorySchema = Joi.object({
  defaults: Joi.object(settingKeys),
  servers: Joi.object().pattern(Joi.string(), serverSchema).required(),
});

function refuse(file: string, keyPath: string, message: string): never {
  throw new ConfigurationError(`${keyPath}: ${message}`, {
    path: keyPath,
    hint: `fix ${keyPath} in ${file}; a running service keeps the servers of its last valid inventory until then`,
  });
}

function describeJoiError(detail: Joi.ValidationErrorItem): { path: string; message: string } {
  const keyPath = detail.path.join('.');
  const context = detail.context ?? {};
  switch (detail.type) {
    case 'any.only':
      return { path: keyPath, message: `must be one of ${(context.valids as unknown[]).join(', ')}` };
    case 'object.unknown':
      // A schema's own message wins (smokeTest.env: "must be an environment variable name").
      if (!/ is not allowed$/.test(detail.message)) return { path: keyPath, message: detail.message };
      return { path: keyPath, message: "is not a known key (check its spelling against the README's inventory reference)" };
    case 'any.required':
      return { path: keyPath, message: 'is required' };
    default:
      return { path: keyPath, message: detail.message.replace(/^"[^"]*" /, '') };
  }
}

interface RawSettings {
  schedule?: string;
  timezone?: string;
  policy?: Policy;
  minReleaseAge?: number;
  activation?: Activation;
  keep?: number;
  smokeTest?: { enabled?: boolean; timeout?: number; command?: string; args?: string[]; env?: Record<string, string>; network?: boolean };
  surfaceChange?: Partial<SurfaceChangeSettings>;
  provenance?: ProvenanceMode;
}

interface RawServer extends RawSettings {
  package?: string;
  pypi?: string;
  python?: string;
  extras?: string[];
  allowSdist?: boolean;
  command?: string;
  version?: string;
  channel?: string;
  range?: string;
  bin?: string;
  allowScripts?: string[];
  repository?: string;
}

/** Parse and validate inventory text. Throws ConfigurationError with the bad key's path. */
export function parseInventory(text: string, file: string, base: InventoryDefaults): Inventory {
  const lineCounter = new YAML.LineCounter();
  // yaml's own uniqueKeys compares each key with every earlier one of its map: 2.4 s for 10,000
  // servers, on every load and reload. duplicateKey checks each key once, and also catches keys
  // yaml tells apart but the loaded object would merge (1 and "1").
  const document = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter });
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    const line = first.linePos?.[0];
    refuse(file, line ? `line ${line.line}` : 'yaml', `not valid YAML (${first.message.split('\n')[0]})`);
  }
  const duplicate = duplicateKey(document);
  if (duplicate !== undefined) {
    const { line, col } = lineCounter.linePos(duplicate);
    refuse(file, `line ${line}`, `not valid YAML (Map keys must be unique at line ${line}, column ${col})`);
  }
  let data: unknown;
  try {
    data = document.toJS();
  } catch (error) {
    // Aliases expanding past yaml's maxAliasCount ("billion laughs") fail only here.
    refuse(file, 'yaml', `not valid YAML (${(error as Error).message})`);
  }
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) {
    refuse(file, 'servers', 'is required: the file must be a mapping with a `servers:` key');
  }
  const { value, error } = inventorySchema.validate(data, { abortEarly: true, convert: true });
  if (error) {
    const { path: keyPath, message } = describeJoiError(error.details[0]!);
    refuse(file, keyPath, message);
  }
  const defaults = (value.defaults ?? {}) as RawSettings;
  const servers = new Map<string, ServerSettings>();
  const reserved = new Set([...RESERVED_SERVER_NAMES, ...(base.reservedNames ?? [])]);
  // Most servers share the defaults' schedule: each schedule and timezone is parsed once.
  const cronProblems = new Map<string, string | undefined>();
  for (const [name, raw] of Object.entries(value.servers as Record<string, RawServer>)) {
    if (reserved.has(name)) {
      refuse(
        file,
        `servers.${name}`,
        `"${name}" is a name the install layout uses (reserved: ${[...reserved].join(', ')}); rename the server`,
      );
    }
    if (!SERVER_NAME_PATTERN.test(name)) {
      refuse(file, `servers.${name}`, 'server names must match [a-z0-9][a-z0-9-]{0,62} (lower-case letters, digits, dashes)');
    }
    servers.set(name, resolveServer(name, raw, defaults, base, file, cronProblems));
  }
  registerSmokeTestSecrets(servers.values());
  const digest = crypto.createHash('sha256').update(text).digest('hex');
  return { file, digest, servers };
}

/**
 * Where the first key that repeats an earlier key of its map starts, or undefined. Scalar keys
 * are the same when they name the same property of the object the mapping becomes: `1` and `"1"`
 * too, which yaml's uniqueKeys lets through and toJS then merges, the last one silently winning.
 */
function duplicateKey(document: YAML.Document): number | undefined {
  let offset: number | undefined;
  YAML.visit(document, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!YAML.isScalar(pair.key)) continue;
        const property = String(pair.key.value);
        if (seen.has(property)) {
          offset = pair.key.range?.[0] ?? 0;
          return YAML.visit.BREAK;
        }
        seen.add(property);
      }
      return undefined;
    },
  });
  return offset;
}

/** Why `schedule` is not a cron expression in `timezone`, or undefined when it is one. */
function cronProblem(schedule: string, timezone: string): string | undefined {
  try {
    parseCron(schedule, timezone);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function resolveServer(
  name: string,
  raw: RawServer,
  defaults: RawSettings,
  base: InventoryDefaults,
  file: string,
  cronProblems: Map<string, string | undefined>,
): ServerSettings {
  const pick = <K extends keyof RawSettings>(key: K): RawSettings[K] => raw[key] ?? defaults[key];
  const smoke = { ...defaults.smokeTest, ...raw.smokeTest, env: { ...defaults.smokeTest?.env, ...raw.smokeTest?.env } };
  const policy = pick('policy') ?? 'minor';
  if (policy === 'pin' && !raw.version) {
    refuse(file, `servers.${name}.version`, 'is required when policy is pin (the version to pin to)');
  }
  const inRange = (version: string, range: string) =>
    raw.pypi ? satisfiesPypi(version, range, true) : semver.satisfies(version, range, { includePrerelease: true });
  if (raw.version && raw.range && !inRange(raw.version, raw.range)) {
    refuse(file, `servers.${name}.version`, `${raw.version} is outside servers.${name}.range "${raw.range}"`);
  }
  const timezoneSetting = pick('timezone') ?? base.timezone;
  const schedule = pick('schedule') ?? base.schedule;
  const cronKey = `${schedule}\n${timezoneSetting}`;
  if (!cronProblems.has(cronKey)) cronProblems.set(cronKey, cronProblem(schedule, timezoneSetting));
  const problem = cronProblems.get(cronKey);
  if (problem) refuse(file, `servers.${name}.schedule`, `must be a valid cron expression (${problem})`);
  return {
    name,
    package: raw.pypi ?? raw.package!,
    ...(raw.pypi
      ? {
          ecosystem: 'pypi' as const,
          python: { python: raw.python, extras: raw.extras ?? [], allowSdist: raw.allowSdist ?? false, command: raw.command },
        }
      : {}),
    version: raw.version,
    channel: raw.channel ?? 'latest',
    range: raw.range,
    bin: raw.bin,
    schedule,
    timezone: timezoneSetting,
    policy,
    minReleaseAgeMs: pick('minReleaseAge') ?? parseDuration('3d'),
    activation: pick('activation') ?? 'auto',
    keep: pick('keep') ?? 3,
    smokeTest: {
      enabled: smoke.enabled ?? true,
      timeoutMs: smoke.timeout ?? parseDuration('30s'),
      command: smoke.command,
      args: smoke.args ?? [],
      env: smoke.env,
      network: smoke.network ?? true,
    },
    ...(raw.allowScripts ? { allowScripts: raw.allowScripts } : {}),
    surfaceChange: { ...DEFAULT_SURFACE_CHANGE, ...defaults.surfaceChange, ...raw.surfaceChange },
    provenance: pick('provenance') ?? 'warn',
    ...(raw.repository ? { repository: raw.repository } : {}),
  };
}

/**
 * Operator secrets are secrets: every smokeTest.env value and every secret-looking smokeTest
 * argument is registered for redaction. Parsing is where every process (worker, dashboard, CLI)
 * meets the inventory, so all of them scrub the same values from what they show and log.
 */
function registerSmokeTestSecrets(servers: Iterable<ServerSettings>): void {
  for (const server of servers) {
    for (const value of Object.values(server.smokeTest.env)) registerSecret(value);
    for (const value of secretArguments(server.smokeTest.args)) registerSecret(value);
  }
}

/** Read and validate the inventory file. */
export async function loadInventory(file: string, base: InventoryDefaults): Promise<Inventory> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigurationError(`MCP_SERVERS_CONFIG: cannot read ${file} (${code ?? (error as Error).message})`, {
      path: 'MCP_SERVERS_CONFIG',
      hint: 'create the inventory file or point MCP_SERVERS_CONFIG at it',
    });
  }
  // It holds every smokeTest.env value: the smoke-test sandbox must not show it to a candidate.
  registerSecretFile(path.resolve(file));
  return parseInventory(text, file, base);
}

export function inventoryDefaults(config: {
  checkSchedule: string;
  timezone: string;
  serversPath?: string;
  stagingDir?: string;
  backupDir?: string;
  logDir?: string;
}): InventoryDefaults {
  // A STAGING_DIR, BACKUP_DIR or LOG_DIR directly inside MCP_SERVERS_PATH takes its name there too.
  const { serversPath } = config;
  const inside =
    serversPath === undefined
      ? []
      : [config.stagingDir, config.backupDir, config.logDir]
          .filter((dir): dir is string => dir !== undefined && path.dirname(dir) === serversPath)
          .map((dir) => path.basename(dir));
  return { schedule: config.checkSchedule, timezone: config.timezone, ...(inside.length > 0 ? { reservedNames: inside } : {}) };
}

/**
 * The inventory a long-running process works from: re-read when the file changes (and on
 * `reload()`, e.g. SIGHUP). A bad edit is refused whole and the last good inventory is kept.
 */
export class InventoryWatcher {
  private current: Inventory;
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private readonly listeners: Array<(inventory: Inventory, previous: Inventory) => void> = [];
  private readonly errorListeners: Array<(error: unknown) => void> = [];

  private constructor(
    initial: Inventory,
    private readonly base: InventoryDefaults,
  ) {
    this.current = initial;
  }

  static async open(file: string, base: InventoryDefaults): Promise<InventoryWatcher> {
    return new InventoryWatcher(await loadInventory(file, base), base);
  }

  /** A fixed inventory (tests, benchmarks) that never reloads. */
  static fixed(inventory: Inventory): InventoryWatcher {
    return new InventoryWatcher(inventory, { schedule: '0 */6 * * *', timezone: 'UTC' });
  }

  get inventory(): Inventory {
    return this.current;
  }

  server(name: string): ServerSettings | undefined {
    return this.current.servers.get(name);
  }

  onChange(listener: (inventory: Inventory, previous: Inventory) => void): void {
    this.listeners.push(listener);
  }
  onError(listener: (error: unknown) => void): void {
    this.errorListeners.push(listener);
  }

  /** Re-read the file; returns true when it changed. Throws (and keeps the old set) when invalid. */
  async reload(): Promise<boolean> {
    const next = await loadInventory(this.current.file, this.base);
    if (next.digest === this.current.digest) return false;
    const previous = this.current;
    this.current = next;
    for (const listener of this.listeners) listener(next, previous);
    return true;
  }

  /** Watch the file's directory (editors replace files by rename, which a file watch misses). */
  watch(): void {
    const directory = path.dirname(this.current.file);
    const basename = path.basename(this.current.file);
    this.watcher = watch(directory, (_event, changed) => {
      if (changed && changed !== basename) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.reload().catch((error: unknown) => {
          for (const listener of this.errorListeners) listener(error);
        });
      }, 200);
    });
    this.watcher.on('error', (error) => {
      for (const listener of this.errorListeners) listener(error);
    });
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}
