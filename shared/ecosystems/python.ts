/*
 * The Python interpreter Python servers run with: `MCP_UPDATER_PYTHON`, else `python3` on PATH.
 * What check and stage need of it — its real path, its version, and the wheel tags it supports
 * (pip's own list, most specific first) — is asked once per process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { StagingError } from '../errors.js';
import { registerRuntimeDir } from '../smokeTest.js';

export interface PythonInterpreter {
  /** Absolute path of the interpreter (sys.executable). */
  executable: string;
  version: string;
  /** Wheel tags it installs, most specific first. */
  tags: string[];
  /** sys.prefix and sys.base_prefix: what a sandboxed server needs to see to run it. */
  prefixes: string[];
}

const PROBE = [
  'import json, platform, sys',
  'from pip._vendor.packaging import tags',
  'print(json.dumps({"executable": sys.executable, "version": platform.python_version(), "tags": [str(t) for t in tags.sys_tags()], "prefixes": sorted({sys.prefix, sys.base_prefix})}))',
].join('\n');

const probes = new Map<string, Promise<PythonInterpreter>>();

export function pythonCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.MCP_UPDATER_PYTHON?.trim() || 'python3';
}

/** The interpreter's facts; throws EPYTHON saying what to install when there is none (or no pip). */
export function pythonInterpreter(command = pythonCommand()): Promise<PythonInterpreter> {
  let probe = probes.get(command);
  if (!probe) {
    probe = promisify(execFile)(command, ['-I', '-c', PROBE], { timeout: 60_000 }).then(
      ({ stdout }) => {
        const interpreter = JSON.parse(stdout) as PythonInterpreter;
        for (const prefix of interpreter.prefixes) registerRuntimeDir(prefix);
        return interpreter;
      },
      (error: unknown) => {
        throw new StagingError(
          'EPYTHON',
          `cannot run the Python interpreter "${command}" with pip (${(error as Error).message.split('\n')[0]})`,
          {
            hint: 'install python3 with pip and venv (Debian: apt-get install python3 python3-pip python3-venv), or point MCP_UPDATER_PYTHON at one',
            retryable: false,
          },
        );
      },
    );
    probe.catch(() => probes.delete(command));
    probes.set(command, probe);
  }
  return probe;
}
