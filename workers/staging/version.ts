/*
 * Staging a version: from the verified tarball in the backup store to versions/<version>. The
 * package is extracted into a fresh staging directory, checked, given its dependencies, a run
 * script and a version record, and smoke-tested as an MCP server; only then is it renamed into
 * place, so nothing ever appears under versions/ that did not pass every check. Used by the stage
 * queue and by activate to re-stage a cleaned-up version from its backup.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { StagingError } from '../../shared/errors.js';
import { META_DIR, readJson, writeFileAtomic, type InstallLayout, type SmokeTestRecord, type VersionRecord } from '../../shared/layout.js';
import { runSmokeTest } from '../../shared/smokeTest.js';
import type { WorkerContext } from '../context.js';
import { installDependencies } from './npmInstall.js';
import { preparePythonVersion } from './python.js';
import { hasDependencies, readManifest, resolveRunTarget, runScriptText } from './package.js';
import { label, type StagedVersion, type StageRequest } from './request.js';
import { extractTarball, scanTarball, verifyBackup } from './tarball.js';

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
  if (request.settings.ecosystem === 'pypi') return stagePythonVersion(context, request, target);

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
    return await moveIntoPlace(layout, staging, target, record);
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** A pypi version: workers/staging/python.ts fills the staging directory; the checks and the move are the same. */
async function stagePythonVersion(context: WorkerContext, request: StageRequest, target: string): Promise<StagedVersion> {
  const { layout } = context;
  const staging = layout.stagingDir(request.server, request.version, request.jobId);
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  try {
    const record = await preparePythonVersion(context, staging, request);
    await writeFileAtomic(layout.versionRecordFile(staging), `${JSON.stringify(record, null, 2)}\n`);
    record.smokeTest = await smokeTest(layout, staging, request);
    await writeFileAtomic(layout.versionRecordFile(staging), `${JSON.stringify(record, null, 2)}\n`);
    return await moveIntoPlace(layout, staging, target, record);
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
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
    network: settings.network,
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
