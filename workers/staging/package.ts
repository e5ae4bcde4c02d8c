/*
 * Staging steps on the extracted package: read and check its package.json against what the
 * registry said, choose the bin the launcher runs, and write the version's run script. The package
 * lives in `node_modules/<name>` of its version directory (docs/ARCHITECTURE.md "Install layout").
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { StagingError } from '../../shared/errors.js';
import type { ServerSettings } from '../../shared/inventory.js';
import { label, type StageRequest } from './request.js';

export interface PackageManifest {
  name?: unknown;
  version?: unknown;
  bin?: unknown;
  dependencies?: unknown;
  optionalDependencies?: unknown;
  peerDependencies?: unknown;
  peerDependenciesMeta?: unknown;
  overrides?: unknown;
}

/** Where a package lives inside its version directory, relative and with `/`: `node_modules/@s/pkg`. */
export function packageDirOf(name: string): string {
  return `node_modules/${name}`;
}

export async function readManifest(dir: string, request: StageRequest): Promise<PackageManifest> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, 'package.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new StagingError('EPKGJSON', `the tarball of ${label(request)} has no package.json`, {
      hint: 'the tarball is not an npm package; it was not installed',
      retryable: false,
    });
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new StagingError('EPKGJSON', `package.json of ${label(request)} is not valid JSON (${(error as Error).message})`, {
      hint: 'the package is damaged; it was not installed',
      retryable: false,
    });
  }
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new StagingError('EPKGJSON', `package.json of ${label(request)} is not a JSON object`, {
      hint: 'the package is damaged; it was not installed',
      retryable: false,
    });
  }
  const { name, version } = manifest as PackageManifest;
  if (name !== request.package || version !== request.version) {
    throw new StagingError(
      'EPKGMISMATCH',
      `the tarball contains ${String(name)}@${String(version)}, but the registry said ${label(request)}`,
      {
        hint: 'the registry serves another package under this name or version; it was not installed (tell the registry operator)',
        retryable: false,
      },
    );
  }
  return manifest as PackageManifest;
}

/** A package's bins as npm reads them: a string means one bin named like the package. */
export function packageBins(manifest: { name?: unknown; bin?: unknown }): Record<string, string> {
  if (typeof manifest.bin === 'string') return { [packageBasename(String(manifest.name ?? ''))]: manifest.bin };
  if (manifest.bin && typeof manifest.bin === 'object' && !Array.isArray(manifest.bin)) {
    return Object.fromEntries(Object.entries(manifest.bin).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  }
  return {};
}

function packageBasename(name: string): string {
  return name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
}

export type BinChoice = { ok: true; name: string; path: string } | { ok: false; code: 'ENOBIN' | 'EBINESCAPE'; reason: string };

/**
 * Which bin the launcher runs: the one named in the inventory, else the only one, else the one
 * named like the package. Its path (package-relative, normalised) must stay inside the package.
 */
export function choosePackageBin(manifest: { name?: unknown; bin?: unknown }, wanted?: string): BinChoice {
  const bins = packageBins(manifest);
  const names = Object.keys(bins);
  let name: string | undefined;
  if (wanted !== undefined) {
    if (!(wanted in bins)) {
      return {
        ok: false,
        code: 'ENOBIN',
        reason: `has no bin named ${JSON.stringify(wanted)} (${names.length ? `it has: ${names.join(', ')}` : 'it has none'})`,
      };
    }
    name = wanted;
  } else if (names.length === 1) {
    name = names[0];
  } else if (names.length === 0) {
    return { ok: false, code: 'ENOBIN', reason: 'declares no bin' };
  } else {
    name = names.find((candidate) => candidate === packageBasename(String(manifest.name ?? '')));
    if (!name) return { ok: false, code: 'ENOBIN', reason: `has several bins (${names.join(', ')}) and none is named like the package` };
  }
  const raw = bins[name!]!;
  const normalized = path.posix.normalize(raw.replaceAll('\\', '/'));
  if (
    raw === ''
    || path.posix.isAbsolute(normalized)
    || /^[A-Za-z]:/.test(normalized)
    || normalized === '..'
    || normalized.startsWith('../')
    || normalized === '.'
  ) {
    return { ok: false, code: 'EBINESCAPE', reason: `bin ${JSON.stringify(name)} points outside the package (${JSON.stringify(raw)})` };
  }
  return { ok: true, name: name!, path: normalized };
}

/**
 * What `.mcp-updater/run` starts. `dir` is the package's directory relative to the version
 * directory; `bin` is relative to the package (a configured command runs in the package).
 */
export type RunTarget =
  | { kind: 'node'; dir: string; bin: string }
  | { kind: 'exec'; dir: string; bin: string }
  | { kind: 'command'; dir: string; command: string; args: string[] };

/** A shebang that does not mention node means the bin is not JavaScript: run it as it is. */
export function runsWithNode(firstLine: string): boolean {
  return !firstLine.startsWith('#!') || /\bnode(js)?\b/.test(firstLine);
}

/** `versionDir/packageDir` is the installed package; the bin must stay inside it. */
export async function resolveRunTarget(
  versionDir: string,
  packageDir: string,
  manifest: PackageManifest,
  settings: ServerSettings,
  request: StageRequest,
): Promise<RunTarget> {
  const dir = path.join(versionDir, packageDir);
  const command = settings.smokeTest.command;
  const choice = choosePackageBin(manifest, settings.bin);
  if (!choice.ok) {
    // A configured command replaces the bin, but an escaping bin is refused all the same.
    if (command && choice.code === 'ENOBIN' && settings.bin === undefined)
      return { kind: 'command', dir: packageDir, command, args: settings.smokeTest.args };
    throw new StagingError(choice.code, `${label(request)} ${choice.reason}`, {
      hint:
        choice.code === 'ENOBIN'
          ? `set smokeTest.command or bin for ${request.server} in the inventory`
          : 'the package is unsafe; it was not installed',
      retryable: false,
    });
  }
  if (command) return { kind: 'command', dir: packageDir, command, args: settings.smokeTest.args };
  const file = path.join(dir, choice.path);
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch {
    throw new StagingError(
      'EBINMISSING',
      `${label(request)}: bin ${JSON.stringify(choice.name)} points at ${choice.path}, which the package does not contain`,
      {
        hint: `set bin or smokeTest.command for ${request.server} in the inventory`,
        retryable: false,
      },
    );
  }
  const root = await fs.realpath(dir);
  if (!real.startsWith(`${root}${path.sep}`)) {
    throw new StagingError('EBINESCAPE', `${label(request)}: bin ${JSON.stringify(choice.name)} resolves outside the package`, {
      hint: 'the package is unsafe; it was not installed',
      retryable: false,
    });
  }
  const handle = await fs.open(real, 'r');
  let firstLine: string;
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    firstLine = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
  } finally {
    await handle.close();
  }
  if (runsWithNode(firstLine)) return { kind: 'node', dir: packageDir, bin: choice.path };
  await fs.chmod(real, 0o755);
  return { kind: 'exec', dir: packageDir, bin: choice.path };
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The text of `.mcp-updater/run`: it finds its version directory itself, so it can be moved. */
export function runScriptText(target: RunTarget, about: string, fallbackNode = process.execPath): string {
  const lines = [
    '#!/bin/sh',
    `# Starts ${about.replaceAll('\n', ' ')}.`,
    '# Written by mcp-updater when the version was staged; MCP_UPDATER_NODE picks another node.',
    // Shell built-ins only, besides the one subshell for pwd -P: each external command (dirname)
    // or subshell would cost every start of the server, and every smoke test, a fork and an exec.
    'case $0 in */*) here=${0%/*} ;; *) here=. ;; esac',
    'here="$(cd "$here/.." && pwd -P)"',
  ];
  const inPackage = (file: string) => shellQuote(path.posix.join(target.dir, file));
  if (target.kind === 'node') {
    // MCP_UPDATER_NODE when set (a wrong one fails here, naming it), else node from PATH, else this node.
    lines.push('NODE=${MCP_UPDATER_NODE:-node}');
    lines.push(`[ -n "\${MCP_UPDATER_NODE:-}" ] || command -v node >/dev/null || NODE=${shellQuote(fallbackNode)}`);
    lines.push(`exec "$NODE" "$here"/${inPackage(target.bin)} "$@"`);
  } else if (target.kind === 'exec') {
    lines.push(`exec "$here"/${inPackage(target.bin)} "$@"`);
  } else {
    lines.push(`cd "$here"/${shellQuote(target.dir)} || exit 127`);
    lines.push(`exec ${[target.command, ...target.args].map(shellQuote).join(' ')} "$@"`);
  }
  return `${lines.join('\n')}\n`;
}

/** Does installing the package need npm (anything to fetch besides the package itself)? */
export function hasDependencies(manifest: PackageManifest): boolean {
  const names = (value: unknown) => (value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : []);
  const meta = (
    manifest.peerDependenciesMeta && typeof manifest.peerDependenciesMeta === 'object' ? manifest.peerDependenciesMeta : {}
  ) as Record<string, { optional?: unknown }>;
  // npm installs required peer dependencies too; optional ones it leaves alone.
  const peers = names(manifest.peerDependencies).filter((name) => meta[name]?.optional !== true);
  return names(manifest.dependencies).length + names(manifest.optionalDependencies).length + peers.length > 0;
}
