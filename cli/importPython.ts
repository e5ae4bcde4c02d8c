/*
 * `mcp-updater import` for Python entries (docs/ARCHITECTURE.md "Ecosystems"): `uvx <pkg>[==ver|@ver]`,
 * `uvx --from <pkg> <command>`, `uv tool run …` (the same as uvx), `pipx run [--spec <pkg>] <app>`
 * and `python -m <module>` when the module is a known server's, into `pypi:` inventory entries.
 * Versions and specifiers are judged by PEP 440 (@renovatebot/pep440).
 */
import { isPypiSpecifier, normalizePypiVersion } from '../shared/ecosystems/pep440.js';

/** What a Python client entry maps to (the import's Conversion for `pypi:` servers). */
export interface PythonConversion {
  ecosystem: 'pypi';
  package: string;
  version?: string;
  range?: string;
  extras?: string[];
  /** The console script the client ran, when it is not the one named like the project. */
  command?: string;
  /** `python:` when the client asked for an interpreter (`uvx --python 3.12`). */
  python?: string;
  args: string[];
  warnings: string[];
}

type Result = PythonConversion | { unsupported: string };

// PEP 508 names; extras in brackets; then `==1.0`, `@1.0` (uvx) or another specifier.
const REQUIREMENT = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[([A-Za-z0-9._,\s-]*)\])?\s*(.*)$/s;

/** `mcp-server-fetch[cli]==2025.4.7` -> project, extras and version or range. */
export function parseRequirement(
  text: string,
): Pick<PythonConversion, 'package' | 'version' | 'range' | 'extras'> | { unsupported: string } {
  if (/^(git\+|https?:|file:|\.{0,2}\/)/.test(text))
    return { unsupported: `"${text}" is a URL or a path, not a project on the package index` };
  const match = REQUIREMENT.exec(text.trim());
  if (!match) return { unsupported: `"${text}" is not a Python project name` };
  const [, name, extrasText, rest] = match as unknown as [string, string, string | undefined, string];
  const extras = extrasText
    ? extrasText
        .split(',')
        .map((extra) => extra.trim())
        .filter(Boolean)
    : [];
  const fields = { package: name, ...(extras.length > 0 ? { extras } : {}) };
  const spec = rest.trim();
  if (spec === '' || spec === '@latest') return fields;
  const exact = /^(?:==|@)\s*([^,;\s]+)$/.exec(spec);
  if (exact) {
    const version = normalizePypiVersion(exact[1]!);
    return version ? { ...fields, version } : { unsupported: `"${exact[1]}" of ${name} is not an exact PEP 440 version` };
  }
  if (isPypiSpecifier(spec)) return { ...fields, range: spec };
  return { unsupported: `"${spec}" of ${name} is not a version or a PEP 440 specifier` };
}

const UVX_FLAGS = new Set([
  '-q',
  '--quiet',
  '-v',
  '--verbose',
  '--isolated',
  '--offline',
  '--no-cache',
  '-n',
  '--refresh',
  '--no-progress',
  '--native-tls',
  '--no-python-downloads',
  '--managed-python',
  '--no-managed-python',
]);
const UVX_VALUE_FLAGS = new Set([
  '--index-url',
  '--default-index',
  '--index',
  '--extra-index-url',
  '--cache-dir',
  '--directory',
  '--project',
  '--config-file',
  '--color',
  '--refresh-package',
  '--exclude-newer',
]);

/** `uvx [options] <pkg>[spec] [args]`, `uvx --from <pkg> <command> [args]` (also `uv tool run`). */
export function fromUvx(args: string[], runner = 'uvx'): Result {
  const warnings: string[] = [];
  let from: string | undefined;
  let python: string | undefined;
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === '--') {
      index++;
      break;
    }
    if (!arg.startsWith('-')) break;
    if (UVX_FLAGS.has(arg)) continue;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? args[++index];
    if (flag === '--from') {
      from = value();
      continue;
    }
    if (flag === '--python' || flag === '-p') {
      const wanted = value() ?? '';
      const version = normalizePypiVersion(wanted);
      if (version) python = `==${version}.*`;
      else
        warnings.push(
          `it asked for the interpreter "${wanted}"; the launcher runs the Python mcp-updater uses (set python: to require a version)`,
        );
      continue;
    }
    if (flag === '--with' || flag === '--with-requirements' || flag === '--with-editable') {
      return { unsupported: `${runner} ${flag} adds packages beside the server: install them as dependencies of a package instead` };
    }
    if (UVX_VALUE_FLAGS.has(flag)) {
      const given = value();
      if (/index/.test(flag))
        warnings.push(`it used the index ${given}; mcp-updater uses PYPI_INDEX_URL (pip's configured index by default)`);
      continue;
    }
    return { unsupported: `${runner} option ${arg} is not understood` };
  }
  const first = args[index++];
  if (!first) return { unsupported: `${runner} without a package` };
  const requirement = parseRequirement(from ?? first);
  if ('unsupported' in requirement) return requirement;
  // With --from, the first word is the command to run; otherwise the package's own command.
  const command = from !== undefined && first !== requirement.package ? first : undefined;
  return {
    ecosystem: 'pypi',
    ...requirement,
    ...(command ? { command } : {}),
    ...(python ? { python } : {}),
    args: args.slice(index),
    warnings,
  };
}

/** `pipx run [--spec <pkg>] <app>[spec] [args]`. */
export function fromPipxRun(args: string[]): Result {
  const warnings: string[] = [];
  let spec: string | undefined;
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === '--') {
      index++;
      break;
    }
    if (!arg.startsWith('-')) break;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === '--spec') {
      spec = inline ?? args[++index];
      continue;
    }
    if (flag === '--python') {
      index += inline === undefined ? 1 : 0;
      warnings.push('it picked an interpreter; set python: in the inventory to require a version');
      continue;
    }
    if (flag === '--index-url' || flag === '-i' || flag === '--pip-args') {
      const given = inline ?? args[++index];
      if (flag !== '--pip-args') warnings.push(`it used the index ${given}; mcp-updater uses PYPI_INDEX_URL`);
      continue;
    }
    if (['--no-cache', '-q', '--quiet', '-v', '--verbose', '--system-site-packages'].includes(flag)) continue;
    return { unsupported: `pipx run option ${arg} is not understood` };
  }
  const app = args[index++];
  if (!app) return { unsupported: 'pipx run without an app' };
  const requirement = parseRequirement(spec ?? app);
  if ('unsupported' in requirement) return requirement;
  const command = spec !== undefined && app !== requirement.package ? app : undefined;
  return { ecosystem: 'pypi', ...requirement, ...(command ? { command } : {}), args: args.slice(index), warnings };
}

/**
 * Modules of known Python MCP servers -> their project on the index (the reference servers that
 * ship on the index only). Other modules cannot be mapped without asking the index.
 */
export const KNOWN_MODULES: Readonly<Record<string, string>> = {
  mcp_server_fetch: 'mcp-server-fetch',
  mcp_server_git: 'mcp-server-git',
  mcp_server_time: 'mcp-server-time',
  mcp_server_sqlite: 'mcp-server-sqlite',
  mcp_server_sentry: 'mcp-server-sentry',
};

/** `python -m <module> [args]` (also python3, py). */
export function fromPythonModule(args: string[], executable: string): Result {
  let index = 0;
  while (index < args.length && args[index] !== '-m' && args[index]!.startsWith('-')) index++;
  if (args[index] !== '-m' || !args[index + 1]) {
    return {
      unsupported: `${executable} runs a script, not a module of an installed package (python -m <module>): add the package by hand with pypi:`,
    };
  }
  const module = args[index + 1]!;
  const project = KNOWN_MODULES[module.split('.')[0]!];
  if (!project) {
    return {
      unsupported: `${executable} -m ${module}: which project on the package index provides the module "${module}" is not known; add it by hand with pypi: <project>`,
    };
  }
  return {
    ecosystem: 'pypi',
    package: project,
    args: args.slice(index + 2),
    warnings: [`it ran the module ${module}; the launcher runs the console script of ${project} (set command: if it has several)`],
  };
}
