/*
 * Building a source distribution into a wheel, for pypi servers that opt in (`allowSdist: true`;
 * docs/ARCHITECTURE.md "Ecosystems", Source distributions). Building runs the package's own code
 * (its PEP 517 backend), so: the sdist is the sha256-verified backup, its tar entries are judged
 * first; its build requirements are resolved and verified like dependencies (workers/staging/python.ts)
 * and handed to pip as local files; the build itself never contacts the index (`--no-index`) and
 * runs in the smoke test's bubblewrap sandbox without network where bubblewrap works, seeing only
 * the system, the interpreter, the sdist and its output directory. The wheel it produces then goes
 * through exactly the install path of a downloaded wheel.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type winston from 'winston';
import type { PythonInterpreter } from '../../shared/ecosystems/python.js';
import { StagingError } from '../../shared/errors.js';
import { redactString } from '../../shared/redact.js';
import { sandboxStatus } from '../../shared/sandbox.js';
import { SANDBOX_HOME, sandboxArguments, smokeTestEnvironment } from '../../shared/smokeTest.js';
import { label, type StageRequest } from './request.js';

/** A build gets this long before it counts as hung (a build compiling extensions can be slow). */
export const SDIST_BUILD_TIMEOUT_MS = 15 * 60_000;
/** Lines of the build's output kept for the error message. */
const BUILD_OUTPUT_LINES = 12;
const BUILD_OUTPUT_BYTES = 2048;

/** What the sdist says about its build, read before anything runs. */
export interface SdistInfo {
  /** Its one top-level directory (`demo_py_mcp-1.0.0`): how messages name the sdist. */
  name: string;
  /** `[build-system] requires`, each a plain PEP 508 requirement (PEP 518's default without one). */
  buildRequires: string[];
}

/*
 * Reads pyproject.toml's [build-system] without extracting the archive. Requirements are parsed
 * with pip's own `packaging`: a URL requirement (`name @ https://…`) or anything that is not a
 * requirement (an option such as `--index-url`) is refused, so what reaches pip is a requirement.
 */
const READ_SDIST = `
import json, sys, tarfile
try:
    import tomllib
except ImportError:
    from pip._vendor import tomli as tomllib
from pip._vendor.packaging.requirements import Requirement
with tarfile.open(sys.argv[1], "r:gz") as archive:
    names = archive.getnames()
    tops = sorted({name.split("/")[0] for name in names})
    if len(tops) != 1:
        raise SystemExit("an sdist holds one top-level directory; this one holds %d" % len(tops))
    top = tops[0]
    build = {}
    if top + "/pyproject.toml" in names:
        build = tomllib.loads(archive.extractfile(top + "/pyproject.toml").read().decode("utf-8")).get("build-system", {})
    requires = build.get("requires", ["setuptools>=40.8.0"]) if isinstance(build, dict) else None
    if not isinstance(requires, list) or not all(isinstance(item, str) for item in requires):
        raise SystemExit("[build-system] requires in pyproject.toml is not a list of strings")
    clean = []
    for item in requires:
        requirement = Requirement(item)
        if requirement.url:
            raise SystemExit("build requirement %r names a URL; build requirements come from the index only" % item)
        clean.append(str(requirement))
print(json.dumps({"name": top, "buildRequires": clean}))
`;

/** An sdist is a gzip'd tar; a wheel is a zip. Anything else is left to the wheel reader to refuse. */
export async function isSourceDistribution(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Without allowSdist (the inventory changed after the download) an sdist is not built. */
export function refuseSourceDistribution(request: StageRequest): never {
  throw new StagingError(
    'ESDISTSTAGE',
    `${label(request)} has only a source distribution, and servers.${request.server}.allowSdist is not true; it was not built`,
    {
      hint: `building runs the package's code: set allowSdist: true for ${request.server} to allow it, or pin a version that ships a wheel`,
      retryable: false,
      versionFault: false,
    },
  );
}

export async function readSdist(interpreter: PythonInterpreter, file: string, request: StageRequest): Promise<SdistInfo> {
  try {
    const { stdout } = await promisify(execFile)(interpreter.executable, ['-I', '-c', READ_SDIST, file], {
      timeout: 60_000,
      env: await buildEnvironment(SANDBOX_HOME),
    });
    return JSON.parse(stdout) as SdistInfo;
  } catch (error) {
    const err = error as { stderr?: string; message: string };
    throw new StagingError(
      'ESDIST',
      `the source distribution of ${label(request)} is not usable: ${redactString(
        String(err.stderr || err.message)
          .trim()
          .split('\n')
          .at(-1) ?? '',
      )}`,
      {
        hint: 'the sdist on the index is damaged or declares an unusable build; pin another version',
        retryable: false,
        versionFault: true,
      },
    );
  }
}

/** A minimal environment (no secrets of ours, no pip configuration from the host). */
async function buildEnvironment(home: string, tmp = '/tmp'): Promise<Record<string, string>> {
  return {
    ...(await smokeTestEnvironment()),
    HOME: home,
    TMPDIR: tmp,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PIP_NO_INPUT: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/** The build's own words: the backend's output block when pip shows one, else its last lines. */
export function buildFailureTail(output: string): string {
  const block = /\[\d+ lines? of output\]\n([\s\S]*?)\n\s*\[end of output\]/.exec(output)?.[1];
  const lines = (block ?? output)
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return redactString(lines.slice(-BUILD_OUTPUT_LINES).join('\n').slice(-BUILD_OUTPUT_BYTES));
}

export interface SdistBuild {
  interpreter: PythonInterpreter;
  /** The verified sdist, named `<name>.tar.gz` (pip reads the archive type from the name). */
  sdist: string;
  info: SdistInfo;
  /** Verified wheels of the build requirements: pip's only source. */
  buildWheels: string;
  /** Scratch directory inside the staging directory; the wheel appears in `<work>/built`. */
  work: string;
  request: StageRequest;
  log: winston.Logger;
}

/** Build the sdist; returns the path of the one wheel it produced. */
export async function buildSdistWheel(build: SdistBuild): Promise<string> {
  const { interpreter, sdist, info, request } = build;
  const out = path.join(build.work, 'built');
  await fs.mkdir(out, { recursive: true });
  const pipArgs = [
    '-I',
    '-m',
    'pip',
    'wheel',
    '--no-deps',
    '--no-cache-dir',
    '--no-index',
    '--find-links',
    build.buildWheels,
    '--wheel-dir',
    out,
    '--progress-bar',
    'off',
    sdist,
  ];
  const sandbox = sandboxStatus();
  let command = interpreter.executable;
  let args = pipArgs;
  let env: Record<string, string>;
  if (sandbox.sandboxed && sandbox.bwrap) {
    // cwd /tmp is the sandbox's private tmpfs; the sdist, the build requirements and the
    // interpreter are read-only, the output directory is the one writable place on disk.
    const isolation = sandboxArguments({
      command: interpreter.executable,
      args: pipArgs,
      cwd: '/tmp',
      timeoutMs: SDIST_BUILD_TIMEOUT_MS,
      network: sandbox.networkIsolation ? false : undefined,
      writable: [out],
    });
    command = sandbox.bwrap;
    args = [...isolation, '--', interpreter.executable, ...pipArgs];
    env = await buildEnvironment(SANDBOX_HOME);
    build.log.info(
      `${request.server}: building ${info.name}.tar.gz (sdist of ${label(request)}) sandboxed${sandbox.networkIsolation ? ', without network' : ''}`,
      { server: request.server, version: request.version, jobId: request.jobId },
    );
  } else {
    const home = path.join(build.work, 'home');
    const tmp = path.join(build.work, 'tmp');
    await Promise.all([fs.mkdir(home, { recursive: true }), fs.mkdir(tmp, { recursive: true })]);
    env = await buildEnvironment(home, tmp);
    build.log.warn(
      `${request.server}: building ${info.name}.tar.gz (sdist of ${label(request)}) UNSANDBOXED (${sandbox.summary}); pip fetches nothing, but the package's build code runs as this user`,
      { server: request.server, version: request.version, jobId: request.jobId },
    );
  }
  try {
    await promisify(execFile)(command, args, {
      cwd: sandbox.sandboxed ? undefined : build.work,
      env,
      timeout: SDIST_BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const err = error as { stdout?: string; stderr?: string; message: string; killed?: boolean };
    const tail = buildFailureTail(`${err.stderr ?? ''}` || err.message);
    throw new StagingError('ESDISTBUILD', `building ${info.name}.tar.gz (the sdist of ${label(request)}) failed: ${tail}`, {
      hint: err.killed
        ? `the build did not finish within ${SDIST_BUILD_TIMEOUT_MS / 60_000} minutes; the job is retried`
        : 'the build ran without network and with only the verified build requirements; pin a version that ships a wheel, or report the build failure to the package',
      retryable: Boolean(err.killed),
      versionFault: !err.killed,
    });
  }
  const wheels = (await fs.readdir(out)).filter((name) => name.endsWith('.whl'));
  if (wheels.length !== 1) {
    throw new StagingError(
      'ESDISTBUILD',
      `building ${info.name}.tar.gz (the sdist of ${label(request)}) produced ${wheels.length} wheels, not one`,
      {
        hint: 'the package builds oddly; pin a version that ships a wheel',
        retryable: false,
        versionFault: true,
      },
    );
  }
  return path.join(out, wheels[0]!);
}

/** Hex sha256 of a file (the built wheel is pinned by its own digest in requirements.txt). */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
