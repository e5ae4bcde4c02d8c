/*
 * Staging a Python version (docs/ARCHITECTURE.md "Ecosystems", stage (pypi)): the verified wheel
 * from the backup store and every dependency, each pinned by its sha256 and judged by its upload
 * time on the index, installed with pip into `site-packages` of the staging directory
 * (`--target`, not a venv: plain files survive the rename into versions/<v>/), plus a run script
 * that starts the console script with the recorded interpreter.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { normalizePypiVersion, satisfiesPypi } from '../../shared/ecosystems/pep440.js';
import { normalizeProjectName, pypiIndexFor, type PypiIndexClient } from '../../shared/ecosystems/pypiIndex.js';
import { sha256Integrity } from '../../shared/ecosystems/pypiPolicy.js';
import { pythonInterpreter, type PythonInterpreter } from '../../shared/ecosystems/python.js';
import { IntegrityError, StagingError } from '../../shared/errors.js';
import { META_DIR, writeFileAtomic, type VersionRecord } from '../../shared/layout.js';
import { redactString } from '../../shared/redact.js';
import type { WorkerContext } from '../context.js';
import { label, type StageRequest } from './request.js';
import { buildSdistWheel, isSourceDistribution, readSdist, refuseSourceDistribution, sha256File } from './sdist.js';
import { scanTarball, verifyBackup, type VerifiedTarball } from './tarball.js';

/** pip gets this long for a resolution or an installation before it counts as hung. */
export const PIP_TIMEOUT_MS = 10 * 60_000;
const PIP_STDERR_TAIL = 2048;
/** Our own secrets: never handed to pip or the package. */
const OWN_SECRETS = ['REGISTRY_TOKEN', 'API_TOKEN', 'WEBHOOK_SECRET', 'PYPI_INDEX_URL', 'PIP_INDEX_URL'];

/** What the wheel says about itself (its .dist-info). */
export interface WheelInfo {
  name: string;
  version: string;
  requiresPython?: string;
  /** Tag lines of WHEEL, e.g. py3-none-any. */
  tags: string[];
  /** console_scripts: name -> "module:attr". */
  consoleScripts: Record<string, string>;
}

/** One distribution pip's resolution would install. */
interface ResolvedItem {
  name: string;
  version: string;
  url: string;
  sha256?: string;
  /** The wheel being staged (requested), not a dependency. */
  requested: boolean;
}

const READ_WHEEL = `
import configparser, email.parser, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    names = wheel.namelist()
    infos = sorted({n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info") and "/" in n})
    if len(infos) != 1:
        raise SystemExit("the wheel must hold exactly one .dist-info directory, it holds %d" % len(infos))
    info = infos[0]
    read = lambda name: wheel.read(info + "/" + name).decode("utf-8") if (info + "/" + name) in names else None
    metadata = email.parser.Parser().parsestr(read("METADATA") or "")
    wheel_file = email.parser.Parser().parsestr(read("WHEEL") or "")
    scripts = {}
    entry_points = read("entry_points.txt")
    if entry_points:
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str
        parser.read_string(entry_points)
        if parser.has_section("console_scripts"):
            scripts = dict(parser.items("console_scripts"))
    print(json.dumps({"name": metadata.get("Name"), "version": metadata.get("Version"), "requiresPython": metadata.get("Requires-Python"),
                      "tags": wheel_file.get_all("Tag") or [], "consoleScripts": scripts}))
`;

// Judged before pip sees them, as tar entries are for npm (shared/tarSafety.ts): names, count, unpacked size.
const SCAN_WHEELS = `
import json, stat, sys, zipfile
limits = json.loads(sys.argv[1])
for path in sys.argv[2:]:
    def refuse(code, message):
        print(json.dumps({"file": path, "code": code, "message": message}))
        sys.exit(0)
    with zipfile.ZipFile(path) as wheel:
        infos = wheel.infolist()
        if len(infos) > limits["files"]:
            refuse("ETOOMANYFILES", "%d entries, more than MAX_PACKAGE_FILES (%d)" % (len(infos), limits["files"]))
        total = 0
        for info in infos:
            name = info.filename
            if name.startswith("/") or name.startswith("\\\\") or (len(name) > 1 and name[1] == ":"):
                refuse("EABSPATH", "entry %r has an absolute path" % name)
            if ".." in name.replace("\\\\", "/").split("/"):
                refuse("EPATHTRAVERSAL", "entry %r has a '..' segment" % name)
            if stat.S_ISLNK(info.external_attr >> 16):
                refuse("EENTRYTYPE", "entry %r is a symbolic link" % name)
            total += info.file_size
            if total > limits["bytes"]:
                refuse("EPACKAGETOOBIG", "unpacks to more than MAX_PACKAGE_SIZE (%d bytes)" % limits["bytes"])
print("null")
`;

/** Our environment without our secrets and without pip's own configuration variables. */
export function pipEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || /^PIP_/i.test(key) || OWN_SECRETS.includes(key)) continue;
    clean[key] = value;
  }
  return { ...clean, PIP_CONFIG_FILE: '/dev/null', PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONDONTWRITEBYTECODE: '1' };
}

async function runPython(
  interpreter: PythonInterpreter,
  args: string[],
  request: StageRequest,
  what: string,
  cwd: string,
  env: Record<string, string> = {},
): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(interpreter.executable, args, {
      cwd,
      env: { ...pipEnvironment(process.env), ...env },
      timeout: PIP_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const err = error as { stderr?: string; message: string; killed?: boolean };
    const tail = redactString(
      String(err.stderr ?? err.message)
        .trim()
        .slice(-PIP_STDERR_TAIL),
    );
    throw new StagingError('EPIPINSTALL', `${what} for ${label(request)} failed: ${tail}`, {
      hint: err.killed
        ? 'pip did not finish in time; the job is retried'
        : 'see the message: a dependency the index cannot provide, or a wheel pip refused',
      retryable: Boolean(err.killed),
      versionFault: false,
    });
  }
}

/** Read the wheel's own metadata; it must be the distribution and version the job names. */
export async function readWheel(interpreter: PythonInterpreter, file: string, request: StageRequest): Promise<WheelInfo> {
  let info: WheelInfo;
  try {
    const { stdout } = await promisify(execFile)(interpreter.executable, ['-I', '-c', READ_WHEEL, file], {
      timeout: 60_000,
      env: pipEnvironment(process.env),
    });
    info = JSON.parse(stdout) as WheelInfo;
  } catch (error) {
    const err = error as { stderr?: string; message: string };
    throw new StagingError(
      'EWHEEL',
      `the wheel of ${label(request)} is not readable: ${String(err.stderr ?? err.message)
        .trim()
        .split('\n')
        .at(-1)}`,
      {
        hint: 'the file on the index is damaged or not a wheel; it was not installed',
        retryable: false,
        versionFault: true,
      },
    );
  }
  if (
    !info.name
    || normalizeProjectName(info.name) !== normalizeProjectName(request.package)
    || normalizePypiVersion(info.version ?? '') !== request.version
  ) {
    throw new StagingError(
      'EWHEEL',
      `the wheel of ${label(request)} says it is ${info.name ?? '(no name)'} ${info.version ?? '(no version)'}`,
      {
        hint: 'the index serves a file under the wrong name; it was not installed',
        retryable: false,
        versionFault: true,
      },
    );
  }
  if (info.tags.length === 0) {
    throw new StagingError('EWHEEL', `the wheel of ${label(request)} declares no tags in its WHEEL file`, {
      hint: 'the wheel is damaged; it was not installed',
      retryable: false,
      versionFault: true,
    });
  }
  return info;
}

/** Every wheel must pass SCAN_WHEELS before pip installs anything. */
async function scanWheels(
  interpreter: PythonInterpreter,
  files: string[],
  limits: { files: number; bytes: number },
  request: StageRequest,
): Promise<void> {
  const { stdout } = await promisify(execFile)(interpreter.executable, ['-I', '-c', SCAN_WHEELS, JSON.stringify(limits), ...files], {
    timeout: 120_000,
    env: pipEnvironment(process.env),
    maxBuffer: 1024 * 1024,
  });
  const problem = JSON.parse(stdout) as { file: string; code: string; message: string } | null;
  if (!problem) return;
  throw new StagingError(
    problem.code,
    `${path.basename(problem.file)} (for ${label(request)}) is unsafe and was not installed: ${problem.message}`,
    {
      hint: 'nothing was installed; report the package to its maintainers or pin another version',
      retryable: false,
      versionFault: true,
    },
  );
}

/** The wheel's file name from its metadata (pip reads name, version and tags from it). */
export function wheelFileName(info: WheelInfo): string {
  const parts = info.tags.map((tag) => tag.split('-') as [string, string, string]);
  const join = (index: number) => [...new Set(parts.map((part) => part[index]))].join('.');
  return `${info.name.replace(/[-.]+/g, '_')}-${info.version}-${join(0)}-${join(1)}-${join(2)}.whl`;
}

/** The interpreter must satisfy the inventory's `python:` and the wheel's Requires-Python. */
export function checkInterpreter(interpreter: PythonInterpreter, info: WheelInfo, request: StageRequest): void {
  const wanted = request.settings.python?.python;
  if (wanted && !satisfiesPypi(interpreter.version, wanted, true)) {
    throw new StagingError(
      'EPYTHONVERSION',
      `${label(request)}: the interpreter ${interpreter.executable} is Python ${interpreter.version}, but servers.${request.server}.python wants "${wanted}"`,
      {
        hint: 'install a Python that satisfies it and point MCP_UPDATER_PYTHON at it, or change python: in the inventory',
        retryable: false,
        versionFault: false,
      },
    );
  }
  if (info.requiresPython && !satisfiesPypi(interpreter.version, info.requiresPython, true)) {
    throw new StagingError(
      'EPYTHONVERSION',
      `${label(request)} requires Python "${info.requiresPython}"; the interpreter ${interpreter.executable} is ${interpreter.version}`,
      {
        hint: 'point MCP_UPDATER_PYTHON at a Python it supports, or pin an older version',
        retryable: false,
        versionFault: true,
      },
    );
  }
}

/** The console script to run: `command:` when set, else the only one, else the one named like the project. */
export function chooseConsoleScript(info: WheelInfo, request: StageRequest): { name: string; entry: string } {
  const scripts = info.consoleScripts;
  const names = Object.keys(scripts);
  const wanted = request.settings.python?.command;
  const name =
    wanted
    ?? (names.length === 1 ? names[0] : names.find((script) => normalizeProjectName(script) === normalizeProjectName(request.package)));
  if (!name || !scripts[name]) {
    throw new StagingError(
      'ENOBIN',
      `${label(request)} ${wanted ? `has no console script "${wanted}"` : names.length === 0 ? 'has no console script' : 'has several console scripts'} (it has: ${names.join(', ') || 'none'})`,
      {
        // A wrong `command:` is the inventory's fault, not the version's.
        hint: `set command: for ${request.server} in the inventory to one of its console scripts`,
        retryable: false,
        versionFault: wanted === undefined,
      },
    );
  }
  if (!/^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\s*\[[^\]]*\])?$/.test(scripts[name]!.trim())) {
    throw new StagingError(
      'ENOBIN',
      `${label(request)}: console script "${name}" points at ${JSON.stringify(scripts[name])}, which is not module:attribute`,
      {
        hint: 'the package is broken; pin another version',
        retryable: false,
        versionFault: true,
      },
    );
  }
  return { name, entry: scripts[name]!.replace(/\s*\[.*$/, '').trim() };
}

/**
 * pip's resolution of the wheel and its dependencies, without installing anything: every item's
 * name, version, URL and sha256 (pip's `--dry-run --report`).
 */
async function resolve(
  interpreter: PythonInterpreter,
  index: PypiIndexClient,
  requirements: string[],
  work: string,
  request: StageRequest,
  reportName = 'resolution.json',
): Promise<ResolvedItem[]> {
  const report = path.join(work, reportName);
  await runPython(
    interpreter,
    [
      '-I',
      '-m',
      'pip',
      'install',
      '--dry-run',
      '--ignore-installed',
      '--quiet',
      '--no-cache-dir',
      '--report',
      report,
      '--only-binary',
      ':all:',
      ...requirements,
      // Through the environment: index credentials never appear in a command line (ps).
    ],
    request,
    reportName === 'resolution.json' ? 'resolving the dependencies' : 'resolving the build requirements',
    work,
    { PIP_INDEX_URL: index.urlForPip },
  );
  const data = JSON.parse(await fs.readFile(report, 'utf8')) as {
    install?: Array<{
      requested?: boolean;
      download_info?: { url?: string; archive_info?: { hash?: string; hashes?: Record<string, string> } };
      metadata?: { name?: string; version?: string };
    }>;
  };
  return (data.install ?? []).map((item) => {
    const archive = item.download_info?.archive_info;
    const sha256 = archive?.hashes?.sha256 ?? (archive?.hash?.startsWith('sha256=') ? archive.hash.slice(7) : undefined);
    return {
      name: item.metadata?.name ?? '',
      version: item.metadata?.version ?? '',
      url: item.download_info?.url ?? '',
      sha256,
      requested: item.requested === true,
    };
  });
}

/**
 * Every dependency must come from the index (or a TARBALL_HOSTS origin), not be yanked, carry
 * the sha256 pip reported and be older than minReleaseAge by its upload time; then it is
 * downloaded (verified) into `wheels`. Returns the requirement lines.
 */
async function fetchDependencies(
  context: WorkerContext,
  index: PypiIndexClient,
  items: ResolvedItem[],
  wheels: string,
  request: StageRequest,
  role = 'dependency',
): Promise<string[]> {
  const lines: string[] = [];
  const now = context.now().getTime();
  const minAge = request.settings.minReleaseAgeMs;
  for (const item of items) {
    const what = `${role} ${item.name} ${item.version} of ${label(request)}`;
    const problem = index.fileProblem(item.url);
    if (problem) {
      throw new StagingError('EDEPHOST', `${what}: ${problem}`, {
        hint: 'dependencies are installed from the configured index only',
        retryable: false,
        versionFault: true,
      });
    }
    const filename = decodeURIComponent(new URL(item.url).pathname.split('/').pop() ?? '');
    // The name becomes a path under `wheels`: a plain wheel file name only.
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*\.whl$/.test(filename)) {
      throw new StagingError('EDEPFILE', `${what}: ${JSON.stringify(filename.slice(0, 200))} is not a wheel file name`, {
        hint: 'the index serves an odd file; nothing was installed',
        retryable: false,
        versionFault: true,
      });
    }
    const project = await index.project(item.name);
    const files =
      Object.entries(project.releases).find(([key]) => normalizePypiVersion(key) === normalizePypiVersion(item.version))?.[1] ?? [];
    const file = files.find((entry) => entry.filename === filename);
    if (!file)
      throw new StagingError('EDEPUNKNOWN', `${what}: the index's JSON API does not list ${filename}`, {
        hint: "the index's simple and JSON APIs disagree; try again later",
        retryable: false,
        versionFault: false,
      });
    if (file.yanked)
      throw new StagingError('EDEPYANKED', `${what}: ${filename} is yanked on the index`, {
        hint: 'the package needs a withdrawn release; pin another version',
        retryable: false,
        versionFault: true,
      });
    const integrity = sha256Integrity(file.sha256);
    if (!integrity || (item.sha256 && item.sha256.toLowerCase() !== file.sha256)) {
      throw new IntegrityError(
        `${what}: ${filename} has ${integrity ? 'another sha256 in the JSON API than in the simple API' : 'no sha256 digest on the index'}`,
        {
          hint: 'every dependency is pinned by its digest; nothing was installed',
        },
      );
    }
    const uploaded = file.uploadTime ? Date.parse(file.uploadTime) : Number.NaN;
    if (minAge > 0 && (!Number.isFinite(uploaded) || now - uploaded < minAge)) {
      throw new StagingError(
        'EDEPTOOYOUNG',
        `${what}: ${filename} was uploaded ${Number.isFinite(uploaded) ? new Date(uploaded).toISOString() : 'at an unknown time'}, younger than minReleaseAge`,
        {
          hint: 'the dependency is too new to trust yet; a later check tries again (or lower minReleaseAge)',
          retryable: false,
          versionFault: false,
        },
      );
    }
    await index.download(item.url, integrity, path.join(wheels, filename), what);
    lines.push(`${item.name}==${item.version} --hash=sha256:${file.sha256}`);
  }
  return lines;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `.mcp-updater/main.py`: the version's site-packages first, then the console script's callable. */
export function entryPointText(script: { name: string; entry: string }): string {
  const [module, attribute] = script.entry.split(':') as [string, string];
  return [
    "# Written by mcp-updater: runs the console script with this version's own site-packages.",
    'import os, sys',
    'here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))',
    'sys.path.insert(0, os.path.join(here, "site-packages"))',
    'from importlib import import_module',
    `target = import_module(${JSON.stringify(module)})`,
    `for part in ${JSON.stringify(attribute)}.split("."):`,
    '    target = getattr(target, part)',
    `sys.argv[0] = ${JSON.stringify(script.name)}`,
    'sys.exit(target())',
    '',
  ].join('\n');
}

/** `.mcp-updater/run`: the recorded interpreter, isolated (-I) and without writing bytecode (-B). */
export function pythonRunScriptText(python: string, about: string): string {
  return [
    '#!/bin/sh',
    `# Starts ${about.replaceAll('\n', ' ')}.`,
    '# Written by mcp-updater when the version was staged; MCP_UPDATER_PYTHON picks another interpreter.',
    'here="$(cd "$(dirname "$0")/.." && pwd -P)"',
    `python=${shellQuote(python)}`,
    `exec "\${MCP_UPDATER_PYTHON:-$python}" -I -B "$here"/${shellQuote(`${META_DIR}/main.py`)} "$@"`,
    '',
  ].join('\n');
}

/**
 * Build the verified sdist (allowSdist): its entries judged like a tarball's, its build
 * requirements resolved, checked and downloaded like dependencies (hash, host, yanked, age), then
 * the build itself, offline and sandboxed (workers/staging/sdist.ts).
 */
async function wheelFromSdist(
  context: WorkerContext,
  interpreter: PythonInterpreter,
  index: PypiIndexClient,
  verified: VerifiedTarball,
  work: string,
  request: StageRequest,
): Promise<{ wheel: string; sdist: string; buildRequirements: string[] }> {
  const { config } = context;
  const backup = verified.file;
  await scanTarball(
    verified,
    { maxFiles: config.maxPackageFiles, maxTotalBytes: config.maxPackageBytes, maxFileBytes: config.maxTarballBytes },
    request,
  );
  const info = await readSdist(interpreter, backup, request);
  // The top-level directory names the copy pip reads; an odd one gets a plain name instead.
  const base = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$/.test(info.name)
    ? info.name
    : `${normalizeProjectName(request.package)}-${request.version}`;
  const sdistDir = path.join(work, 'sdist');
  const buildWheels = path.join(work, 'build-requirements');
  await Promise.all([fs.mkdir(sdistDir, { recursive: true }), fs.mkdir(buildWheels, { recursive: true })]);
  const sdist = path.join(sdistDir, `${base}.tar.gz`);
  await fs.copyFile(backup, sdist);
  let buildRequirements: string[] = [];
  if (info.buildRequires.length > 0) {
    const resolved = await resolve(interpreter, index, info.buildRequires, work, request, 'build-resolution.json');
    buildRequirements = await fetchDependencies(context, index, resolved, buildWheels, request, 'build requirement');
    const limits = { files: config.maxPackageFiles, bytes: config.maxPackageBytes };
    await scanWheels(
      interpreter,
      (await fs.readdir(buildWheels)).map((name) => path.join(buildWheels, name)),
      limits,
      request,
    );
  }
  const wheel = await buildSdistWheel({
    interpreter,
    sdist,
    info: { ...info, name: base },
    buildWheels,
    work,
    request,
    log: context.log.automation,
  });
  return { wheel, sdist: `${base}.tar.gz`, buildRequirements: buildRequirements.map((line) => line.split(' ')[0]!) };
}

/**
 * Fill the (empty) staging directory: site-packages, the run script, the requirements record and
 * the version record. The caller smoke-tests it and moves it into place.
 */
export async function preparePythonVersion(context: WorkerContext, staging: string, request: StageRequest): Promise<VersionRecord> {
  const { layout } = context;
  if (!request.integrity.startsWith('sha256-')) {
    throw new StagingError('EBADINTEGRITY', `${label(request)}: a wheel is pinned by sha256, not ${request.integrity.split('-')[0]}`, {
      retryable: false,
      versionFault: true,
    });
  }
  const backup = layout.backupFile(request.integrity);
  const verified = await verifyBackup(backup, request);
  const [interpreter, index] = await Promise.all([pythonInterpreter(), pypiIndexFor(context.config)]);
  const work = path.join(staging, META_DIR, 'work');
  const wheels = path.join(work, 'wheels');
  await fs.mkdir(wheels, { recursive: true });

  // A downloaded wheel is pinned by the index's digest; a wheel built from an sdist by its own.
  const digest = Buffer.from(request.integrity.slice('sha256-'.length), 'base64').toString('hex');
  let source = { file: backup, sha256: digest, note: '' };
  if (await isSourceDistribution(backup)) {
    if (!request.settings.python?.allowSdist) refuseSourceDistribution(request);
    const built = await wheelFromSdist(context, interpreter, index, verified, work, request);
    const requirements = built.buildRequirements.join(', ') || 'none';
    source = {
      file: built.wheel,
      sha256: await sha256File(built.wheel),
      note: `\n# The first one was built here from ${built.sdist} (sha256 ${digest}); build requirements: ${requirements}.`,
    };
  }
  const info = await readWheel(interpreter, source.file, request);
  checkInterpreter(interpreter, info, request);
  const script = chooseConsoleScript(info, request);
  const wheel = path.join(wheels, wheelFileName(info));
  await fs.copyFile(source.file, wheel);

  const extras = request.settings.python?.extras ?? [];
  const resolved = await resolve(interpreter, index, [extras.length > 0 ? `${wheel}[${extras.join(',')}]` : wheel], work, request);
  const dependencies = resolved.filter((item) => !item.requested);
  const requirements = [
    `${info.name}==${info.version} --hash=sha256:${source.sha256}`,
    ...(await fetchDependencies(context, index, dependencies, wheels, request)),
  ];
  const limits = { files: context.config.maxPackageFiles, bytes: context.config.maxPackageBytes };
  await scanWheels(
    interpreter,
    (await fs.readdir(wheels)).map((name) => path.join(wheels, name)),
    limits,
    request,
  );
  const requirementsFile = path.join(staging, META_DIR, 'requirements.txt');
  await writeFileAtomic(
    requirementsFile,
    `# What mcp-updater installed for ${label(request)}: every distribution pinned by its sha256.${source.note}\n${requirements.join('\n')}\n`,
  );
  await runPython(
    interpreter,
    [
      '-I',
      '-m',
      'pip',
      'install',
      '--quiet',
      '--no-cache-dir',
      '--no-index',
      '--find-links',
      wheels,
      '--no-deps',
      '--require-hashes',
      '--only-binary',
      ':all:',
      '--no-warn-script-location',
      '--target',
      path.join(staging, 'site-packages'),
      '-r',
      requirementsFile,
    ],
    request,
    'installing',
    staging,
  );
  await fs.rm(work, { recursive: true, force: true });

  await writeFileAtomic(path.join(staging, META_DIR, 'main.py'), entryPointText(script));
  await writeFileAtomic(
    layout.runScript(staging),
    pythonRunScriptText(interpreter.executable, `${request.package} ${request.version} for the MCP server "${request.server}"`),
    0o755,
  );
  await fs.chmod(layout.runScript(staging), 0o755);
  return {
    server: request.server,
    package: request.package,
    version: request.version,
    integrity: request.integrity,
    bin: script.name,
    stagedAt: context.now().toISOString(),
    jobId: request.jobId,
  };
}
