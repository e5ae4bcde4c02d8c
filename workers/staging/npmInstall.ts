/*
 * Staging step: give the package its dependencies with the machine's npm — no scripts, no dev
 * dependencies, the minimum release age as --before, the registry token only through the
 * environment of npm itself.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StagingError } from '../../shared/errors.js';
import { redactString } from '../../shared/redact.js';
import type { WorkerContext } from '../context.js';
import { label, type StageRequest } from './request.js';

/** npm install gets this long before it counts as hung. */
export const NPM_INSTALL_TIMEOUT_MS = 10 * 60_000;
/** The environment variable the temporary .npmrc reads the registry token from. */
export const REGISTRY_TOKEN_ENV = 'MCP_UPDATER_REGISTRY_TOKEN';
/** npm failures that another attempt cannot fix: the dependency tree itself is unsatisfiable. */
const FINAL_NPM_ERRORS = /\b(ETARGET|E404|ERESOLVE|EINTEGRITY|ENOVERSIONS)\b/;
/** Our own secrets: never handed to npm or anything it starts. */
const OWN_SECRETS = ['REGISTRY_TOKEN', 'API_TOKEN', 'WEBHOOK_SECRET'];
const NPM_STDERR_TAIL = 2048;

/** The arguments of the one npm run stage makes. */
export function npmInstallArgs(options: { registry: string; cacheDir: string; before?: Date }): string[] {
  return [
    'install',
    '--omit=dev',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    '--no-update-notifier',
    // package-lock.json stays beside node_modules: a record of exactly what was installed.
    `--registry=${options.registry}`,
    `--cache=${options.cacheDir}`,
    ...(options.before ? [`--before=${options.before.toISOString()}`] : []),
  ];
}

/** Our environment without npm's own variables (set by `npm start`) and without our secrets. */
export function npmEnvironment(env: NodeJS.ProcessEnv, registryToken?: string): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || /^npm_/i.test(key) || OWN_SECRETS.includes(key)) continue;
    clean[key] = value;
  }
  if (registryToken) clean[REGISTRY_TOKEN_ENV] = registryToken;
  return clean;
}

/** `//host/path/:_authToken=${VAR}`: npm expands the variable, so the token never hits the disk. */
export function npmrcAuthLine(registry: string): string {
  const url = new URL(registry);
  const pathname = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return `//${url.host}${pathname}:_authToken=\${${REGISTRY_TOKEN_ENV}}`;
}

export async function installDependencies(context: WorkerContext, dir: string, request: StageRequest): Promise<void> {
  const { config } = context;
  // npm never publishes these; one in a tarball could point npm at other hosts or pin
  // dependencies past the minimum release age. A published npm-shrinkwrap.json is honoured.
  await fs.rm(path.join(dir, '.npmrc'), { recursive: true, force: true });
  await fs.rm(path.join(dir, 'package-lock.json'), { recursive: true, force: true });
  const minReleaseAgeMs = request.settings.minReleaseAgeMs;
  const args = npmInstallArgs({
    registry: config.apiBaseUrl,
    cacheDir: path.join(path.dirname(config.backupDir), 'cache', 'npm'),
    before: minReleaseAgeMs > 0 ? new Date(context.now().getTime() - minReleaseAgeMs) : undefined,
  });
  const npmrc = path.join(dir, '.npmrc');
  if (config.registryToken) await fs.writeFile(npmrc, `${npmrcAuthLine(config.apiBaseUrl)}\n`, { mode: 0o600 });
  let outcome: { code: number | null; signal: NodeJS.Signals | null; stderr: string; timedOut: boolean };
  try {
    outcome = await runNpm(args, dir, npmEnvironment(process.env, config.registryToken));
  } finally {
    await fs.rm(npmrc, { force: true });
  }
  if (outcome.code === 0) return;
  const stderr = redactString(outcome.stderr).trim();
  const what = outcome.timedOut
    ? `did not finish within ${NPM_INSTALL_TIMEOUT_MS / 60_000} minutes`
    : outcome.code === null ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
  const final = FINAL_NPM_ERRORS.test(outcome.stderr);
  throw new StagingError('ENPMINSTALL', `npm install for ${label(request)} ${what}${stderr ? `: ${stderr}` : ''}`, {
    hint: final
      ? 'a dependency cannot be resolved from the registry (or not with the minimum release age); it was not installed'
      : 'check that the registry (API_BASE_URL) is reachable; the job is retried',
    retryable: !final,
    details: { args },
  });
}

async function runNpm(args: string[], cwd: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; timedOut: boolean }>((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, NPM_INSTALL_TIMEOUT_MS);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-NPM_STDERR_TAIL);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new StagingError('ENPMINSTALL', `could not run npm (${error.message})`, {
      hint: 'install npm on this machine (it comes with Node.js) or put it on PATH',
      retryable: false,
      cause: error,
      }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, timedOut });
    });
  });
}
