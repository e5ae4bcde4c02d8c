/*
 * stage: turn a verified tarball from the backup store into $MCP_SERVERS_PATH/<name>/versions/<v>.
 * Every tar entry is judged (shared/tarSafety.ts) before anything is extracted; the package is
 * extracted into a fresh staging directory, checked against what the registry said, given its
 * dependencies by the machine's npm (no scripts, minimum release age via --before), a run script
 * and a version record, and smoke-tested as an MCP server. Only then is it renamed into place, so
 * nothing ever appears under versions/ that did not pass every check. Then the activate job is
 * chained (activation: auto, or a rollback re-stage) or the version waits for approval.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Queue } from 'bullmq';
import ssri from 'ssri';
import * as tar from 'tar';
import { describeError, IntegrityError, isRetryable, StagingError } from '../shared/errors.js';
import type { ServerSettings } from '../shared/inventory.js';
import { META_DIR, readJson, writeFileAtomic, type InstallLayout, type SmokeTestRecord, type VersionRecord } from '../shared/layout.js';
import { validateJobData, versionJobId, type StageJobData } from '../shared/queues.js';
import { redactString } from '../shared/redact.js';
import { runSmokeTest } from '../shared/smokeTest.js';
import { storeRoot, storeTree } from '../shared/store.js';
import { TarScan, type TarEntryProblem, type TarLimits } from '../shared/tarSafety.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export type { StageJobData };

export interface StageResult {
  version: string;
  dir: string;
  toolCount?: number;
  /** versions/<version> already held this integrity; nothing was done. */
  reused: boolean;
  /** The activate job added (activation: auto, or `activateAfter`). */
  activateJobId?: string;
}

export interface StageRequest {
  server: string;
  package: string;
  version: string;
  integrity: string;
  /** Names the staging directory, so two jobs for one version never share one. */
  jobId: string;
  settings: ServerSettings;
}

export interface StagedVersion {
  dir: string;
  record: VersionRecord;
  reused: boolean;
}

/** npm install gets this long before it counts as hung. */
export const NPM_INSTALL_TIMEOUT_MS = 10 * 60_000;
/** The environment variable the temporary .npmrc reads the registry token from. */
export const REGISTRY_TOKEN_ENV = 'MCP_UPDATER_REGISTRY_TOKEN';
/** npm failures that another attempt cannot fix: the dependency tree itself is unsatisfiable. */
const FINAL_NPM_ERRORS = /\b(ETARGET|E404|ERESOLVE|EINTEGRITY|ENOVERSIONS)\b/;
/** Our own secrets: never handed to npm or anything it starts. */
const OWN_SECRETS = ['REGISTRY_TOKEN', 'API_TOKEN', 'WEBHOOK_SECRET'];
const NPM_STDERR_TAIL = 2048;

export function createStageWorker(context: WorkerContext) {
  return createPipelineWorker('stage', context, execStageJob, { onFinalFailure: stageFailed, lockDurationMs: 120_000 });
}

/** Producer: one stage job per server and version unless a caller names another id (forced runs). */
export async function addStageJob(queue: Queue<StageJobData>, data: StageJobData, jobId?: string) {
  const payload = validateJobData('stage', data);
  return queue.add('stage', payload, { jobId: jobId ?? versionJobId(payload.server, payload.version) });
}

export async function execStageJob(job: JobLike<StageJobData>, context: WorkerContext): Promise<StageResult> {
  const { server, version } = job.data;
  const settings = serverSettings(context, server);
  await context.state.update(server, { state: 'staging', package: settings.package });
  const started = performance.now();
  const staged = await stageVersion(context, {
    server,
    package: job.data.package,
    version,
    integrity: job.data.integrity,
    jobId: job.id ?? versionJobId(server, version),
    settings,
  });
  if (!staged.reused) await context.metrics.observeStageDuration((performance.now() - started) / 1000);
  const smokeTest = staged.record.smokeTest;
  const result: StageResult = { version, dir: staged.dir, toolCount: smokeTest?.toolCount, reused: staged.reused };
  const { current } = await context.state.get(server);
  await context.events.publish({
    type: 'update.staged', server, version, from: current, jobId: job.id, reason: job.data.reason,
    details: { toolCount: smokeTest?.toolCount, serverName: smokeTest?.serverName, smokeTestSkipped: smokeTest?.skipped, reused: staged.reused },
  });

  if (settings.activation === 'auto' || job.data.activateAfter) {
    const action = job.data.activateAfter ?? 'activate';
    // An explicit follow-up (rollback to a cleaned-up version) must run even if an earlier
    // activate job of this version is still remembered by BullMQ.
    // Re-stages (rollback of a cleaned-up version) and forced checks get a fresh id: an
    // earlier activate job of this version may still be remembered and would swallow the add.
    const activateJobId = job.data.activateAfter || job.id?.includes('-forced-')
      ? `${versionJobId(server, version)}-${action}-${Date.now()}`
      : versionJobId(server, version);
    const data = validateJobData('activate', { server, action, version, ...(job.data.reason ? { reason: job.data.reason } : {}) });
    const activate = await context.queues.activate.add('activate', data, { jobId: activateJobId });
    await context.state.update(server, { state: 'activating', lastError: null });
    result.activateJobId = activate.id;
  } else {
    await context.state.update(server, { state: 'awaiting-approval', staged: version, lastError: null });
    await context.events.publish({
      type: 'update.awaiting-approval', server, version, from: current, jobId: job.id, reason: job.data.reason,
    });
  }
  return result;
}

/** The final failure of a stage job: the server's record, the failed-version list, an event. */
export async function stageFailed(job: JobLike<StageJobData>, error: Error, context: WorkerContext): Promise<void> {
  const { server, version } = job.data;
  if (!context.inventory.server(server)) return;
  await context.state.update(server, { state: 'failed', lastError: describeError(error) });
  // Only failures that belong to the version itself; an npm outage must not block it for good.
  if (!isRetryable(error)) await context.state.markFailedVersion(server, version);
  await context.events.publish({ type: 'update.failed', server, version, jobId: job.id, reason: describeError(error) });
  await context.metrics.increment('updates_total', [server, 'failed']);
}

/**
 * Make versions/<version> hold the package with this integrity, or throw. Used by the stage
 * queue and by activate to re-stage a cleaned-up version from its backup.
 */
export async function stageVersion(context: WorkerContext, request: StageRequest): Promise<StagedVersion> {
  const { layout, config } = context;
  const { server, version, integrity } = request;
  const target = layout.versionDir(server, version);
  const existing = await existingVersion(layout, target, integrity);
  if (existing) return { dir: target, record: existing, reused: true };

  const backup = layout.backupFile(integrity);
  await verifyBackup(backup, request);
  await scanTarball(backup, {
    maxFiles: config.maxPackageFiles,
    maxTotalBytes: config.maxPackageBytes,
    maxFileBytes: config.maxTarballBytes,
  }, request);

  const staging = layout.stagingDir(server, version, request.jobId);
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  try {
    await extractTarball(backup, integrity, staging, request);
    const manifest = await readManifest(staging, request);
    const launch = await resolveRunTarget(staging, manifest, request.settings, request);
    if (hasDependencies(manifest)) await installDependencies(context, staging, request);
    const record: VersionRecord = {
      server,
      package: request.package,
      version,
      integrity,
      bin: launch.kind === 'command' ? undefined : launch.bin,
      stagedAt: context.now().toISOString(),
      jobId: request.jobId,
    };
    await fs.rm(path.join(staging, META_DIR), { recursive: true, force: true });
    await writeFileAtomic(layout.runScript(staging), runScriptText(launch, `${request.package}@${version} for the MCP server "${server}"`), 0o755);
    await fs.chmod(layout.runScript(staging), 0o755);
    await writeFileAtomic(layout.versionRecordFile(staging), `${JSON.stringify(record, null, 2)}\n`);
    record.smokeTest = await smokeTest(layout, staging, request);
    await writeFileAtomic(layout.versionRecordFile(staging), `${JSON.stringify(record, null, 2)}\n`);
    const placed = await moveIntoPlace(layout, staging, target, record);
    // Identical files of other versions and servers are kept once (shared/store.ts); a failure
    // only costs disk space, never the staged version.
    if (!placed.reused) await storeTree(placed.dir, storeRoot(layout.root)).catch((error: unknown) => context.log.automation.warn(`${label(request)}: sharing identical files failed: ${describeError(error)}`));
    return placed;
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
}

function label(request: Pick<StageRequest, 'package' | 'version'>): string {
  return `${request.package}@${request.version}`;
}

/** The record of versions/<version> when it holds this integrity; throws when it holds something else. */
async function existingVersion(layout: InstallLayout, dir: string, integrity: string): Promise<VersionRecord | undefined> {
  try {
    await fs.lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const record = await readJson<VersionRecord>(layout.versionRecordFile(dir)).catch(() => undefined);
  if (record?.integrity === integrity) return record;
  throw new StagingError('EVERSIONEXISTS', `${dir} already exists ${record ? `with integrity ${record.integrity}` : 'without a version record'}, not ${integrity}`, {
    hint: 'mcp-updater never overwrites a version directory; remove it if no MCP client runs from it, then run a forced check',
    retryable: false,
  });
}

/** The backup must exist and still match its integrity (disk corruption, tampering). */
async function verifyBackup(file: string, request: StageRequest): Promise<void> {
  try {
    await fs.access(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new StagingError('EBACKUPMISSING', `the verified tarball of ${label(request)} is not in the backup store (${file})`, {
      hint: `run a forced check of ${request.server} so the tarball is downloaded again`,
      retryable: false,
    });
  }
  try {
    await ssri.checkStream(createReadStream(file), request.integrity);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'EINTEGRITY' && code !== 'EBADSIZE') throw error;
    // The file is named by its digest, so a mismatch means the bytes rotted; it is useless now
    // and would stop a new download (download keeps an existing backup).
    await fs.rm(file, { force: true });
    throw new IntegrityError(`the backup tarball of ${label(request)} no longer matches its integrity ${request.integrity}; it was removed`, {
      hint: `check the disk under BACKUP_DIR, then run a forced check of ${request.server} to download it again`,
      cause: error,
    });
  }
}

/** Judge every entry before anything is extracted; throws the first problem. */
async function scanTarball(file: string, limits: TarLimits, request: StageRequest): Promise<void> {
  const scan = new TarScan(limits);
  const controller = new AbortController();
  let problem: TarEntryProblem | undefined;
  const judge = (entry: tar.ReadEntry) => {
    if (problem) return;
    problem = scan.add(entry);
    if (problem) controller.abort();
  };
  const parser = tar.t({ strict: true, onReadEntry: judge });
  // Entries of unknown types never reach onReadEntry; node-tar skips them on extraction too.
  parser.on('ignoredEntry', (entry: tar.ReadEntry) => judge(entry));
  try {
    await pipeline(createReadStream(file), parser, { signal: controller.signal });
  } catch (error) {
    if (!problem) {
      throw new StagingError('ETARBALL', `the tarball of ${label(request)} is not a readable tar archive (${(error as Error).message})`, {
        hint: 'the package is damaged on the registry; it was not installed',
        retryable: false,
        cause: error,
      });
    }
  }
  problem ??= scan.finish();
  if (problem) {
    throw new StagingError(problem.code, `the tarball of ${label(request)} is unsafe and was not extracted: ${problem.message}`, {
      hint: 'nothing was written; report the package to its maintainers or pin another version',
      retryable: false,
      details: { entry: problem.path },
    });
  }
}

/** Extract (re-verifying the integrity on the way) with strip:1 and without owners or odd modes. */
async function extractTarball(file: string, integrity: string, dir: string, request: StageRequest): Promise<void> {
  const unpack = tar.x({
    cwd: dir,
    strip: 1,
    // Any warning (an entry node-tar would skip or alter) fails the extraction: the scan
    // judged the archive as it is, so nothing may change silently now.
    strict: true,
    // node-tar preserves owners by default when running as root.
    preserveOwner: false,
    noMtime: true,
    filter: (_path, entry) => {
      const readEntry = entry as tar.ReadEntry;
      // Like npm: owner may always read and write, nobody else may write.
      if (readEntry.type === 'Directory') readEntry.mode = 0o755;
      else if (readEntry.mode !== undefined) readEntry.mode = (readEntry.mode & 0o755) | 0o644;
      return true;
    },
  });
  try {
    await pipeline(createReadStream(file), ssri.integrityStream({ integrity }), unpack);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EINTEGRITY' || code === 'EBADSIZE') {
      throw new IntegrityError(`the backup tarball of ${label(request)} changed while it was extracted`, {
        hint: `check the disk under BACKUP_DIR, then run a forced check of ${request.server}`,
        cause: error,
      });
    }
    throw new StagingError('EEXTRACT', `extracting ${label(request)} failed: ${(error as Error).message}`, {
      hint: code?.startsWith('TAR_') ? 'the tarball is damaged; it was not installed' : 'check free space and permissions of STAGING_DIR',
      retryable: !code?.startsWith('TAR_'),
      cause: error,
    });
  }
}

interface PackageManifest {
  name?: unknown;
  version?: unknown;
  bin?: unknown;
  dependencies?: unknown;
  optionalDependencies?: unknown;
}

async function readManifest(dir: string, request: StageRequest): Promise<PackageManifest> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, 'package.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new StagingError('EPKGJSON', `the tarball of ${label(request)} has no package.json`, {
      hint: 'the tarball is not an npm package; it was not installed', retryable: false,
    });
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new StagingError('EPKGJSON', `package.json of ${label(request)} is not valid JSON (${(error as Error).message})`, {
      hint: 'the package is damaged; it was not installed', retryable: false,
    });
  }
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new StagingError('EPKGJSON', `package.json of ${label(request)} is not a JSON object`, {
      hint: 'the package is damaged; it was not installed', retryable: false,
    });
  }
  const { name, version } = manifest as PackageManifest;
  if (name !== request.package || version !== request.version) {
    throw new StagingError('EPKGMISMATCH', `the tarball contains ${String(name)}@${String(version)}, but the registry said ${label(request)}`, {
      hint: 'the registry serves another package under this name or version; it was not installed (tell the registry operator)',
      retryable: false,
    });
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

export type BinChoice =
  | { ok: true; name: string; path: string }
  | { ok: false; code: 'ENOBIN' | 'EBINESCAPE'; reason: string };

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
      return { ok: false, code: 'ENOBIN', reason: `has no bin named ${JSON.stringify(wanted)} (${names.length ? `it has: ${names.join(', ')}` : 'it has none'})` };
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
  if (raw === '' || path.posix.isAbsolute(normalized) || /^[A-Za-z]:/.test(normalized) || normalized === '..' || normalized.startsWith('../') || normalized === '.') {
    return { ok: false, code: 'EBINESCAPE', reason: `bin ${JSON.stringify(name)} points outside the package (${JSON.stringify(raw)})` };
  }
  return { ok: true, name: name!, path: normalized };
}

/** What `.mcp-updater/run` starts. */
export type RunTarget =
  | { kind: 'node'; bin: string }
  | { kind: 'exec'; bin: string }
  | { kind: 'command'; command: string; args: string[] };

/** A shebang that does not mention node means the bin is not JavaScript: run it as it is. */
export function runsWithNode(firstLine: string): boolean {
  return !firstLine.startsWith('#!') || /\bnode(js)?\b/.test(firstLine);
}

async function resolveRunTarget(dir: string, manifest: PackageManifest, settings: ServerSettings, request: StageRequest): Promise<RunTarget> {
  const command = settings.smokeTest.command;
  const choice = choosePackageBin(manifest, settings.bin);
  if (!choice.ok) {
    // A configured command replaces the bin, but an escaping bin is refused all the same.
    if (command && choice.code === 'ENOBIN' && settings.bin === undefined) return { kind: 'command', command, args: settings.smokeTest.args };
    throw new StagingError(choice.code, `${label(request)} ${choice.reason}`, {
      hint: choice.code === 'ENOBIN'
        ? `set smokeTest.command or bin for ${request.server} in the inventory`
        : 'the package is unsafe; it was not installed',
      retryable: false,
    });
  }
  if (command) return { kind: 'command', command, args: settings.smokeTest.args };
  const file = path.join(dir, choice.path);
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch {
    throw new StagingError('EBINMISSING', `${label(request)}: bin ${JSON.stringify(choice.name)} points at ${choice.path}, which the package does not contain`, {
      hint: `set bin or smokeTest.command for ${request.server} in the inventory`, retryable: false,
    });
  }
  const root = await fs.realpath(dir);
  if (!real.startsWith(`${root}${path.sep}`)) {
    throw new StagingError('EBINESCAPE', `${label(request)}: bin ${JSON.stringify(choice.name)} resolves outside the package`, {
      hint: 'the package is unsafe; it was not installed', retryable: false,
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
  if (runsWithNode(firstLine)) return { kind: 'node', bin: choice.path };
  await fs.chmod(real, 0o755);
  return { kind: 'exec', bin: choice.path };
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
    'here="$(cd "$(dirname "$0")/.." && pwd -P)"',
  ];
  if (target.kind === 'node') {
    lines.push(`NODE="\${MCP_UPDATER_NODE:-$(command -v node || echo ${shellQuote(fallbackNode)})}"`);
    lines.push(`exec "$NODE" "$here"/${shellQuote(target.bin)} "$@"`);
  } else if (target.kind === 'exec') {
    lines.push(`exec "$here"/${shellQuote(target.bin)} "$@"`);
  } else {
    lines.push('cd "$here" || exit 127');
    lines.push(`exec ${[target.command, ...target.args].map(shellQuote).join(' ')} "$@"`);
  }
  return `${lines.join('\n')}\n`;
}

function hasDependencies(manifest: PackageManifest): boolean {
  const count = (value: unknown) => (value && typeof value === 'object' ? Object.keys(value).length : 0);
  return count(manifest.dependencies) + count(manifest.optionalDependencies) > 0;
}

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

async function installDependencies(context: WorkerContext, dir: string, request: StageRequest): Promise<void> {
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

async function smokeTest(layout: InstallLayout, dir: string, request: StageRequest): Promise<SmokeTestRecord> {
  const settings = request.settings.smokeTest;
  if (!settings.enabled) return { ok: true, skipped: true, durationMs: 0 };
  // Run exactly what MCP clients will run: the launcher execs this script.
  return runSmokeTest({
    command: layout.runScript(dir),
    args: settings.command ? [] : settings.args,
    env: settings.env,
    // Where mcp-updater runs: relative paths in smokeTest.args mean what ./data/... means in the
    // environment, and the staged version's own directory stays untouched.
    cwd: process.cwd(),
    timeoutMs: settings.timeoutMs,
    label: label(request),
  });
}

/** Rename staging to versions/<version>; a version that appeared meanwhile is reused only when identical. */
async function moveIntoPlace(layout: InstallLayout, staging: string, target: string, record: VersionRecord): Promise<StagedVersion> {
  await fs.mkdir(layout.versionsDir(record.server), { recursive: true });
  try {
    await fs.rename(staging, target);
    return { dir: target, record, reused: false };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') {
      const existing = await existingVersion(layout, target, record.integrity);
      if (!existing) throw error;
      await fs.rm(staging, { recursive: true, force: true });
      return { dir: target, record: existing, reused: true };
    }
    if (code === 'EXDEV') {
      throw new StagingError('EXDEV', `cannot move ${staging} to ${target}: they are on different filesystems`, {
        hint: 'set STAGING_DIR to a directory on the same filesystem as MCP_SERVERS_PATH', retryable: false, cause: error,
      });
    }
    throw error;
  }
}
