/*
 * `mcp-updater import`: turn the MCP servers of a client config (Claude Desktop and Cursor
 * `mcpServers`, VS Code `servers` in .vscode/mcp.json or `mcp.servers` in settings.json) into
 * inventory entries. Pure functions: the command does the file I/O.
 *
 * Recognised: `npx [-y] <package>[@spec] [args…]`, the same through pnpx / `pnpm dlx` and bunx /
 * `bun x` (also `-p <package> <bin>`, and Windows' `cmd /c npx …`), and
 * `node …/node_modules/<package>/… [args…]`. Package specs are read by npm-package-arg, the
 * parser npm itself uses; client files by jsonc-parser. Python entries (uvx, `uv tool run`,
 * `pipx run`, `python -m` of a known server) become `pypi:` entries (cli/importPython.ts).
 * Everything else (docker, remote `url` servers, other commands) is listed with the reason it
 * cannot be managed.
 */
import * as jsonc from 'jsonc-parser';
import npa from 'npm-package-arg';
import semver from 'semver';
import YAML from 'yaml';
import { ValidationError } from '../shared/errors.js';
import { secretArguments } from '../shared/redact.js';
import { SERVER_NAME_PATTERN } from '../shared/schemas.js';
import { fromPipxRun, fromPythonModule, fromUvx } from './importPython.js';

export type ClientFormat = 'mcpServers' | 'servers' | 'mcp.servers';

/** A client entry mcp-updater can manage, and what it becomes in the inventory. */
export interface ImportedServer {
  /** Server name in the inventory (and bin/<name>). */
  name: string;
  /** The entry's name in the client config. */
  source: string;
  package: string;
  version?: string;
  channel?: string;
  range?: string;
  /** With `npx -p <package> <bin>`: which of the package's bins the client ran. */
  bin?: string;
  /** `pypi` for Python entries (then `package` is the project on the index). */
  ecosystem?: 'pypi';
  extras?: string[];
  /** Python: the console script the client ran, when not the project's own. */
  command?: string;
  /** Python: the interpreter the client asked for, as a PEP 440 specifier. */
  python?: string;
  /** Arguments after the package: the client keeps passing them to the launcher; the smoke test uses them too. */
  args: string[];
  env: Record<string, string>;
  /** env keys that look like secrets (stored in the inventory in plain text). */
  secretKeys: string[];
  warnings: string[];
}

/** A manageable entry that is not added, and which existing server covers it (if any). */
export interface SkippedEntry {
  source: string;
  name: string;
  reason: string;
  /** Server whose launcher the client entry can use instead, with the entry's own args. */
  useServer?: string;
  args: string[];
}

export interface UnsupportedEntry {
  source: string;
  reason: string;
}

export interface ClientImport {
  format: ClientFormat;
  servers: ImportedServer[];
  skipped: SkippedEntry[];
  unsupported: UnsupportedEntry[];
}

/** JSON with comments and trailing commas (VS Code's settings.json and mcp.json are JSONC). */
export function parseJsonc(text: string): unknown {
  const errors: jsonc.ParseError[] = [];
  const value = jsonc.parse(text, errors, { allowTrailingComma: true, allowEmptyContent: false }) as unknown;
  const first = errors[0];
  if (first) {
    const before = text.slice(0, first.offset).split('\n');
    const where = `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
    throw new ValidationError(`not valid JSON: ${jsonc.printParseErrorCode(first.error)} at ${where}`, {
      hint: "pass the client's config file (claude_desktop_config.json, ~/.cursor/mcp.json, .vscode/mcp.json)",
    });
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The client's server map, wherever this client keeps it. */
export function clientServers(config: unknown): { format: ClientFormat; entries: Array<[string, unknown]> } {
  if (!isObject(config)) throw new ValidationError('the file must hold a JSON object');
  if (isObject(config.mcpServers)) return { format: 'mcpServers', entries: Object.entries(config.mcpServers) };
  if (isObject(config.servers)) return { format: 'servers', entries: Object.entries(config.servers) };
  if (isObject(config.mcp) && isObject(config.mcp.servers)) return { format: 'mcp.servers', entries: Object.entries(config.mcp.servers) };
  throw new ValidationError('no MCP servers found', {
    hint: 'expected "mcpServers" (Claude Desktop, Cursor), "servers" (VS Code .vscode/mcp.json) or "mcp": {"servers"} (VS Code settings.json)',
  });
}

/** `/usr/local/bin/npx.cmd` -> `npx`. */
function commandName(command: string): string {
  const base = command.split(/[\\/]/).pop() ?? command;
  return base.replace(/\.(cmd|exe|bat|ps1)$/i, '').toLowerCase();
}

/** How a package runner (npx, pnpm dlx, bunx) is called: its flags, and which of them take a value. */
interface RunnerSyntax {
  name: string;
  flags: ReadonlySet<string>;
  valueFlags: ReadonlySet<string>;
  /** Flags naming the package when the command to run is a bin of it (`-p <package> <bin>`). */
  packageFlags: ReadonlySet<string>;
  /** Flags that change how the package runs, and what the launcher does instead. */
  notes?: Record<string, string>;
}

const NPX: RunnerSyntax = {
  name: 'npx',
  flags: new Set(['-y', '--yes', '-q', '--quiet', '--silent', '--prefer-offline', '--prefer-online', '--no-install', '--ignore-existing']),
  valueFlags: new Set(['--registry', '--cache', '--userconfig', '--node-options', '--loglevel']),
  packageFlags: new Set(['-p', '--package']),
};

const PNPM_DLX: RunnerSyntax = {
  name: 'pnpm dlx',
  flags: new Set(['-s', '--silent', '-y', '--yes']),
  valueFlags: new Set(['--registry', '--reporter', '--allow-build', '--loglevel', '--dir', '-C']),
  packageFlags: new Set(['--package']),
};

const BUNX: RunnerSyntax = {
  name: 'bunx',
  flags: new Set(['--bun', '-b', '--silent', '--verbose', '--no-install']),
  valueFlags: new Set(['--registry']),
  packageFlags: new Set(['-p', '--package']),
  notes: {
    '--bun': 'it ran with --bun (the Bun runtime); the launcher runs the package with Node.js',
    '-b': 'it ran with -b (the Bun runtime); the launcher runs the package with Node.js',
  },
};

type Conversion = Omit<ImportedServer, 'name' | 'source' | 'env' | 'secretKeys'> | { unsupported: string };
type SpecFields = Pick<ImportedServer, 'package' | 'version' | 'channel' | 'range'>;

const NOT_FROM_REGISTRY: Partial<Record<npa.Result['type'], string>> = {
  git: 'a git repository',
  remote: 'a tarball URL',
  file: 'a local tarball',
  directory: 'a local directory',
  alias: 'an alias (npm:…)',
};

/**
 * "@scope/name@1.2" -> package and version, range or dist-tag, as npm reads the spec; refuses
 * paths, URLs, git and alias specs.
 */
export function parsePackageSpec(text: string): SpecFields | { unsupported: string } {
  let spec: npa.Result;
  try {
    spec = npa(text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EINVALIDPACKAGENAME') return { unsupported: `"${text}" is not a valid npm package name` };
    return { unsupported: `"${text}" is not a package spec npm accepts: ${(error as Error).message}` };
  }
  const kind = NOT_FROM_REGISTRY[spec.type];
  if (kind || !spec.name) return { unsupported: `"${text}" is ${kind ?? `a ${spec.type} spec`}, not a package from the registry` };
  const fetchSpec = spec.fetchSpec ?? '';
  if (spec.type === 'range')
    return fetchSpec === '*' || fetchSpec === '' ? { package: spec.name } : { package: spec.name, range: fetchSpec };
  const version = spec.type === 'version' ? semver.clean(fetchSpec, { loose: true }) : null;
  if (version) return { package: spec.name, version };
  if (fetchSpec === 'latest') return { package: spec.name };
  // The inventory's rule for a dist-tag name, so what is printed is what --write accepts.
  if (spec.type === 'tag' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(fetchSpec)) return { package: spec.name, channel: fetchSpec };
  return { unsupported: `"${spec.rawSpec}" of ${spec.name} is not a version, a range or a dist-tag` };
}

function fromRunner(runner: RunnerSyntax, args: string[]): Conversion {
  const warnings: string[] = [];
  let explicitPackage: string | undefined;
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === '--') {
      index++;
      break;
    }
    if (!arg.startsWith('-')) break;
    if (runner.flags.has(arg)) {
      const note = runner.notes?.[arg];
      if (note) warnings.push(note);
      continue;
    }
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (runner.packageFlags.has(flag)) {
      if (explicitPackage) return { unsupported: `${runner.name} with several ${flag} options (a server needs one package)` };
      explicitPackage = inline ?? args[++index];
      continue;
    }
    if (runner.valueFlags.has(flag)) {
      const value = inline ?? args[++index];
      if (flag === '--registry')
        warnings.push(`it used the registry ${value}; mcp-updater uses API_BASE_URL (npm's configured registry by default)`);
      continue;
    }
    return { unsupported: `${runner.name} option ${arg} is not understood` };
  }
  let packageText = explicitPackage;
  let bin: string | undefined;
  if (packageText) {
    bin = args[index++];
    if (!bin) return { unsupported: `${runner.name} ${[...runner.packageFlags].at(-1)} without a command to run` };
  } else {
    packageText = args[index++];
    if (!packageText) return { unsupported: `${runner.name} without a package` };
  }
  const parsed = parsePackageSpec(packageText);
  if ('unsupported' in parsed) return parsed;
  // `npx @smithery/cli run <server> --key …` connects to a server Smithery hosts: the CLI is a
  // client, and there is nothing of the server's to install, pin or smoke-test here.
  if (parsed.package === '@smithery/cli' && args[index] === 'run') {
    return {
      unsupported: `a server hosted by Smithery (${args[index + 1] ?? 'unnamed'}): nothing is installed locally, so there is nothing to update`,
    };
  }
  return { ...parsed, ...(bin ? { bin } : {}), args: args.slice(index), warnings };
}

const NODE_VALUE_OPTIONS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file']);

function fromNode(args: string[]): Conversion {
  let index = 0;
  while (index < args.length && args[index]!.startsWith('-')) {
    index += NODE_VALUE_OPTIONS.has(args[index]!) ? 2 : 1;
  }
  const script = args[index];
  if (!script) return { unsupported: 'node without a script' };
  const parts = script.replace(/\\/g, '/').split('/');
  const at = parts.lastIndexOf('node_modules');
  const first = at === -1 ? undefined : parts[at + 1];
  if (!first || first === '.bin') {
    return { unsupported: `node runs ${script}, which is not inside an installed npm package (…/node_modules/<package>/…)` };
  }
  const name = first.startsWith('@') ? `${first}/${parts[at + 2] ?? ''}` : first;
  const parsed = parsePackageSpec(name);
  if ('unsupported' in parsed) return parsed;
  const inside = parts.slice(at + (first.startsWith('@') ? 3 : 2)).join('/');
  return {
    package: parsed.package,
    args: args.slice(index + 1),
    warnings: [`it ran ${inside || 'the package'} directly; the launcher runs the package's bin (set \`bin:\` if the package has several)`],
  };
}

const REFUSED_COMMANDS: Record<string, string> = {
  uv: 'runs through uv but not `uv tool run`: only uvx, uv tool run, pipx run and python -m entries are recognised; add the project by hand with pypi:',
  pipx: 'runs through pipx but not `pipx run`: add the project by hand with pypi:',
  docker: 'a container image (docker): not an npm package',
  podman: 'a container image (podman): not an npm package',
  pnpm: 'runs through pnpm but not `pnpm dlx`: only npx, pnpx, pnpm dlx, bunx and node entries are recognised; add the package by hand',
  bun: 'runs through bun but not `bun x`: only npx, pnpx, pnpm dlx, bunx and node entries are recognised; add the package by hand',
  yarn: 'runs through yarn: only npx, pnpx, pnpm dlx, bunx and node entries are recognised; add the package by hand',
  deno: 'a Deno program: mcp-updater manages npm packages run by Node.js',
};

/** One client entry -> the inventory fields it maps to, or why it cannot be managed. */
export function convertEntry(entry: unknown): Conversion {
  if (!isObject(entry)) return { unsupported: 'the entry is not an object' };
  const type = typeof entry.type === 'string' ? entry.type.toLowerCase() : undefined;
  if (typeof entry.url === 'string' || (type && type !== 'stdio')) {
    return {
      unsupported: `a remote server (${type ?? 'url'}${typeof entry.url === 'string' ? ` ${entry.url}` : ''}): there is nothing to install`,
    };
  }
  if (typeof entry.command !== 'string' || entry.command.trim() === '') return { unsupported: 'no command' };
  const rawArgs = entry.args === undefined ? [] : entry.args;
  if (!Array.isArray(rawArgs) || !rawArgs.every((arg) => typeof arg === 'string' || typeof arg === 'number')) {
    return { unsupported: '"args" must be a list of strings' };
  }
  let args = rawArgs.map(String);
  let command = commandName(entry.command);
  // Windows: "cmd /c npx -y pkg" runs the runner through the shell.
  if (command === 'cmd' && /^\/c$/i.test(args[0] ?? '') && args[1]) {
    command = commandName(args[1]);
    args = args.slice(2);
  }
  if (command === 'npx') return fromRunner(NPX, args);
  if (command === 'pnpx') return fromRunner(PNPM_DLX, args);
  if (command === 'pnpm' && args[0] === 'dlx') return fromRunner(PNPM_DLX, args.slice(1));
  if (command === 'bunx') return fromRunner(BUNX, args);
  if (command === 'bun' && args[0] === 'x') return fromRunner(BUNX, args.slice(1));
  if (command === 'node' || command === 'nodejs') return fromNode(args);
  if (command === 'uvx') return fromUvx(args);
  if (command === 'uv' && args[0] === 'tool' && args[1] === 'run') return fromUvx(args.slice(2), 'uv tool run');
  if (command === 'pipx' && args[0] === 'run') return fromPipxRun(args.slice(1));
  if (/^(python(3(\.\d+)?)?|py)$/.test(command)) return fromPythonModule(args, command);
  return {
    unsupported:
      REFUSED_COMMANDS[command]
      ?? `the command "${entry.command}" is not a package runner (npx, pnpx, pnpm dlx, bunx) nor node, nor a Python runner (uvx, uv tool run, pipx run, python -m)`,
  };
}

const SECRET_KEY = /(token|secret|passw(or)?d|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth|cookie|session|pat$)/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CLIENT_VARIABLE = /\$\{(input|env|workspaceFolder|userHome|config)[^}]*\}/;

function convertEnv(raw: unknown, warnings: string[]): { env: Record<string, string>; secretKeys: string[] } {
  const env: Record<string, string> = {};
  if (!isObject(raw)) return { env, secretKeys: [] };
  for (const [key, value] of Object.entries(raw)) {
    if (!ENV_NAME.test(key)) {
      warnings.push(`env ${JSON.stringify(key)} left out: not a valid environment variable name`);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      env[key] = String(value);
      if (CLIENT_VARIABLE.test(String(value))) {
        warnings.push(
          `env ${key} uses the client variable ${CLIENT_VARIABLE.exec(String(value))![0]}, which mcp-updater cannot resolve: put a real value in smokeTest.env`,
        );
      }
    } else {
      warnings.push(`env ${key} left out: its value is not a string`);
    }
  }
  // A client variable (${input:…}) is a placeholder, not a secret written into the inventory.
  return {
    env,
    secretKeys: Object.keys(env)
      .filter((key) => SECRET_KEY.test(key) && !CLIENT_VARIABLE.test(env[key]!))
      .sort(),
  };
}

/** A valid server name from a client entry's name: lower-case, other characters -> dashes, ≤ 63. */
export function serverNameFor(source: string, packageName: string): string {
  const clean = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/-{2,}/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63)
      .replace(/-+$/, '');
  const fromSource = clean(source);
  if (SERVER_NAME_PATTERN.test(fromSource)) return fromSource;
  const fromPackage = clean(packageName.replace(/^@[^/]+\//, ''));
  return SERVER_NAME_PATTERN.test(fromPackage) ? fromPackage : 'server';
}

/** `name`, else `name-2`, `name-3`… within 63 characters. */
function uniqueName(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let counter = 2; ; counter++) {
    const suffix = `-${counter}`;
    const candidate = `${base.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/**
 * Convert a client config. `existing` maps the inventory's server names to their packages: an
 * entry whose package is already managed, or whose name is taken, is skipped, never overwritten.
 */
export function importClientConfig(config: unknown, existing: ReadonlyMap<string, string> = new Map()): ClientImport {
  const { format, entries } = clientServers(config);
  const result: ClientImport = { format, servers: [], skipped: [], unsupported: [] };
  const taken = new Set(existing.keys());
  const packages = new Map([...existing].map(([name, pkg]) => [pkg, name] as const));
  // npm and the index are separate namespaces: a pypi project is keyed as `pypi:<normalized name>`.
  const keyOf = (conversion: { package: string; ecosystem?: 'pypi' }) =>
    conversion.ecosystem === 'pypi' ? pypiKey(conversion.package) : conversion.package;
  for (const [source, entry] of entries) {
    const conversion = convertEntry(entry);
    if ('unsupported' in conversion) {
      result.unsupported.push({ source, reason: conversion.unsupported });
      continue;
    }
    const owner = packages.get(keyOf(conversion));
    const name = serverNameFor(source, conversion.package);
    if (owner) {
      const where = existing.has(owner) ? 'in the inventory' : 'in this import';
      result.skipped.push({
        source,
        name: owner,
        reason: `${conversion.package} is already ${where} as "${owner}"`,
        useServer: owner,
        args: conversion.args,
      });
      continue;
    }
    if (existing.has(name)) {
      result.skipped.push({
        source,
        name,
        reason: `the inventory already has a server "${name}" (package ${existing.get(name)}); add this one by hand under another name`,
        args: conversion.args,
      });
      continue;
    }
    const unique = uniqueName(name, taken);
    taken.add(unique);
    packages.set(keyOf(conversion), unique);
    const warnings = [...conversion.warnings];
    const { env, secretKeys } = convertEnv(isObject(entry) ? entry.env : undefined, warnings);
    // Secret-looking arguments (`--api-key=…`, `--token ghp_…`, a URL with a password) are secrets too.
    const argSecrets = secretArguments(conversion.args).length;
    if (argSecrets > 0) secretKeys.push(`smokeTest.args (${argSecrets} secret value${argSecrets === 1 ? '' : 's'})`);
    if (conversion.args.some((arg) => CLIENT_VARIABLE.test(arg))) {
      warnings.push('its args use client variables (${…}) that mcp-updater cannot resolve: put real values in smokeTest.args');
    }
    if (isObject(entry) && entry.envFile !== undefined)
      warnings.push('its envFile is not read: put the variables the smoke test needs in smokeTest.env');
    result.servers.push({ ...conversion, name: unique, source, env, secretKeys, warnings });
  }
  return result;
}

/** What goes under `servers.<name>` in the inventory. */
export function inventoryEntry(server: ImportedServer): Record<string, unknown> {
  const smokeTest: Record<string, unknown> = {};
  if (server.args.length > 0) smokeTest.args = server.args;
  if (Object.keys(server.env).length > 0) smokeTest.env = server.env;
  if (server.ecosystem === 'pypi') {
    return {
      pypi: server.package,
      ...(server.version ? { version: server.version } : {}),
      ...(server.range ? { range: server.range } : {}),
      ...(server.extras ? { extras: server.extras } : {}),
      ...(server.command ? { command: server.command } : {}),
      ...(server.python ? { python: server.python } : {}),
      ...(Object.keys(smokeTest).length > 0 ? { smokeTest } : {}),
    };
  }
  return {
    package: server.package,
    ...(server.version ? { version: server.version } : {}),
    ...(server.channel ? { channel: server.channel } : {}),
    ...(server.range ? { range: server.range } : {}),
    ...(server.bin ? { bin: server.bin } : {}),
    ...(Object.keys(smokeTest).length > 0 ? { smokeTest } : {}),
  };
}

function entryText(server: ImportedServer, origin: string, indent: string): string {
  const body = YAML.stringify({ [server.name]: inventoryEntry(server) }, { indent: 2, lineWidth: 0 });
  const secrets = server.secretKeys.length > 0 ? ` (${server.secretKeys.join(', ')} stored here in plain text)` : '';
  return (
    [`# imported from ${origin} entry "${server.source}"${secrets}`, ...body.trimEnd().split('\n')]
      .map((line) => `${indent}${line}`)
      .join('\n') + '\n'
  );
}

/** The imported servers as an inventory document (`servers:` only), for printing. */
export function renderServers(servers: ImportedServer[], origin: string): string {
  if (servers.length === 0) return 'servers: {}\n';
  return `servers:\n${servers.map((server) => entryText(server, origin, '  ')).join('')}`;
}

/**
 * Add servers to inventory text, keeping everything else (comments, alignment) byte for byte:
 * the new entries are inserted as text at the end of the `servers` block. When the file has no
 * block-style `servers` map to append to, the yaml Document API writes it (comments kept, layout
 * normalised). Names already present are skipped.
 */
export function mergeIntoInventory(
  text: string,
  servers: ImportedServer[],
  origin: string,
): { text: string; added: string[]; skipped: string[] } {
  const document = YAML.parseDocument(text);
  if (document.errors.length > 0)
    throw new ValidationError(`the inventory is not valid YAML: ${document.errors[0]!.message.split('\n')[0]}`);
  const fresh = servers.filter((server) => !document.hasIn(['servers', server.name]));
  const skipped = servers.filter((server) => !fresh.includes(server)).map((server) => server.name);
  if (fresh.length === 0) return { text, added: [], skipped };

  const block = document.get('servers', true);
  // The Document API result is the reference the textual insert must match.
  if (!YAML.isMap(block)) document.set('servers', document.createNode({}));
  const map = document.get('servers', true) as YAML.YAMLMap;
  map.flow = false;
  for (const server of fresh) {
    const node = document.createNode(inventoryEntry(server));
    const pair = document.createPair(server.name, node);
    (pair.key as YAML.Scalar).commentBefore = ` imported from ${origin} entry "${server.source}"`;
    map.items.push(pair);
  }
  const viaDocument = document.toString({ lineWidth: 0 });

  if (YAML.isMap(block) && !block.flow && block.items.length > 0 && block.range) {
    const firstKey = block.items[0]!.key as YAML.Node;
    const keyStart = firstKey.range?.[0] ?? 0;
    const indent = ' '.repeat(keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1));
    const at = block.range[1];
    const before = text.slice(0, at);
    const spliced = `${before}${before.endsWith('\n') ? '' : '\n'}${fresh.map((server) => entryText(server, origin, indent)).join('')}${text.slice(at)}`;
    const same = JSON.stringify(YAML.parse(spliced)) === JSON.stringify(YAML.parse(viaDocument));
    if (same) return { text: spliced, added: fresh.map((server) => server.name), skipped };
  }
  return { text: viaDocument, added: fresh.map((server) => server.name), skipped };
}

/** Server names already in inventory text (tolerant: used before the file is validated). */
export function inventoryPackages(text: string): Map<string, string> {
  const data = YAML.parse(text) as unknown;
  const servers = isObject(data) && isObject(data.servers) ? data.servers : {};
  return new Map(
    Object.entries(servers).map(([name, value]) => {
      if (isObject(value) && typeof value.pypi === 'string') return [name, pypiKey(value.pypi)];
      return [name, isObject(value) && typeof value.package === 'string' ? value.package : ''];
    }),
  );
}

/** How import keys a project of the index among npm package names (PEP 503 normalized). */
export function pypiKey(project: string): string {
  return `pypi:${project.toLowerCase().replace(/[-_.]+/g, '-')}`;
}
