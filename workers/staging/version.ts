/*
 * Staging a version: from the verified tarball in the backup store to versions/<version>. A fresh
 * staging directory becomes a small generated project whose one dependency is the tarball (as
 * `npx` installs a package): the package is extracted into its node_modules/<package>, checked,
 * given its dependencies, a run script and a version record, and smoke-tested as an MCP server;
 * only then is it renamed into place, so nothing ever appears under versions/ that did not pass
 * every check. Used by the stage queue and by activate to re-stage a cleaned-up version.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeError, StagingError } from '../../shared/errors.js';
import { readJson, writeFileAtomic, type InstallLayout, type SmokeTestRecord, type VersionRecord } from '../../shared/layout.js';
import { recordVersionFiles, removeUnrecordedFiles, versionTree, type PresentEntry } from '../../shared/serverData.js';
import { runSmokeTest } from '../../shared/smokeTest.js';
import { storeRoot, storeTree } from '../../shared/store.js';
import type { WorkerContext } from '../context.js';
import { installDependencies, wrapperManifest } from './npmInstall.js';
import { hasDependencies, packageDirOf, readManifest, resolveRunTarget, runScriptText } from './package.js';
import { preparePythonVersion } from './python.js';
import { label, type StagedVersion, type StageRequest } from './request.js';
import { storeSurface } from './surfaceGate.js';
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
  const tarball = await verifyBackup(backup, request);
  await scanTarball(
    tarball,
    {
      maxFiles: config.maxPackageFiles,
      maxTotalBytes: config.maxPackageBytes,
      maxFileBytes: config.maxTarballBytes,
    },
    request,
  );

  const staging = await newStagingDir(layout, request);
  try {
    const packageDir = packageDirOf(request.package);
    const packagePath = path.join(staging, packageDir);
    await fs.mkdir(packagePath, { recursive: true });
    await extractTarball(tarball, packagePath, request);
    const manifest = await readManifest(packagePath, request);
    await writeFileAtomic(path.join(staging, 'package.json'), `${JSON.stringify(wrapperManifest(request.package, backup), null, 2)}\n`);
    // npm places the package again from the same verified tarball, beside its dependencies.
    if (hasDependencies(manifest) || (request.settings.allowScripts ?? []).length > 0)
      await installDependencies(context, staging, request, manifest);
    const launch = await resolveRunTarget(staging, packageDir, manifest, request.settings, request);
    const record: VersionRecord = {
      server,
      package: request.package,
      version,
      integrity,
      bin: launch.kind === 'command' ? undefined : launch.bin,
      packageDir,
      stagedAt: context.now().toISOString(),
      jobId: request.jobId,
      ...(request.provenance ? { provenance: request.provenance } : {}),
    };
    await writeFileAtomic(
      layout.runScript(staging),
      runScriptText(launch, `${request.package}@${version} for the MCP server "${server}"`),
      0o755,
    );
    await fs.chmod(layout.runScript(staging), 0o755);
    // The limits cover the whole install, dependencies included, not only the package's tarball.
    const tree = await versionTree(staging);
    const tooBig = installLimitProblem(tree, { maxFiles: config.maxPackageFiles, maxBytes: config.maxPackageBytes });
    if (tooBig) {
      throw new StagingError(tooBig.code, `${label(request)} with its dependencies ${tooBig.message}`, {
        hint: 'nothing was installed; raise MAX_PACKAGE_FILES or MAX_PACKAGE_SIZE if this install is expected, then run a forced check',
        retryable: false,
        details: { largest: tooBig.largest },
      });
    }
    // What the version holds; whatever its server writes into it from now on is its data.
    await recordVersionFiles(staging, tree);
    record.smokeTest = await smokeTest(layout, staging, request);
    // Files the smoke test's run wrote are not the user's data: the version starts pristine.
    // Without a smoke test nothing ran in the directory since its files were recorded.
    if (!record.smokeTest.skipped) await removeUnrecordedFiles(staging);
    // Written once, complete: nothing reads the record before the version is in place.
    await writeFileAtomic(layout.versionRecordFile(staging), `${JSON.stringify(record, null, 2)}\n`);
    const placed = await moveIntoPlace(layout, staging, target, record);
    // Identical files of other versions and servers are kept once (shared/store.ts); a failure
    // only costs disk space, never the staged version.
    if (!placed.reused) {
      await storeTree(placed.dir, storeRoot(layout.root)).catch((error: unknown) => {
        context.log.automation.warn(`${label(request)}: sharing identical files failed: ${describeError(error)}`, { server });
      });
    }
    return placed;
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Over MAX_PACKAGE_FILES or MAX_PACKAGE_SIZE for the whole install: which, and the largest packages. */
export function installLimitProblem(
  tree: readonly PresentEntry[],
  limits: { maxFiles: number; maxBytes: number },
):
  | { code: 'ETOOMANYFILES' | 'EPACKAGETOOBIG'; message: string; largest: Array<{ package: string; bytes: number; files: number }> }
  | undefined {
  const bytes = tree.reduce((sum, entry) => sum + entry.size, 0);
  const overFiles = tree.length > limits.maxFiles;
  if (!overFiles && bytes <= limits.maxBytes) return undefined;
  const byPackage = new Map<string, { bytes: number; files: number }>();
  for (const entry of tree) {
    const match = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(entry.path);
    const name = match?.[1] ?? '(the project)';
    const sum = byPackage.get(name) ?? { bytes: 0, files: 0 };
    sum.bytes += entry.size;
    sum.files += 1;
    byPackage.set(name, sum);
  }
  const largest = [...byPackage.entries()]
    .map(([name, sum]) => ({ package: name, ...sum }))
    .sort((a, b) => (overFiles ? b.files - a.files : b.bytes - a.bytes))
    .slice(0, 3);
  const shown = largest
    .map((item) => (overFiles ? `${item.package} ${item.files} files` : `${item.package} ${item.bytes} bytes`))
    .join(', ');
  return overFiles
    ? {
        code: 'ETOOMANYFILES',
        message: `has ${tree.length} files, more than MAX_PACKAGE_FILES (${limits.maxFiles}); most: ${shown}`,
        largest,
      }
    : {
        code: 'EPACKAGETOOBIG',
        message: `takes ${bytes} bytes, more than MAX_PACKAGE_SIZE (${limits.maxBytes}); largest: ${shown}`,
        largest,
      };
}

/** A pypi version: workers/staging/python.ts fills the staging directory; the checks and the move are the same. */
async function stagePythonVersion(context: WorkerContext, request: StageRequest, target: string): Promise<StagedVersion> {
  const { layout } = context;
  const staging = await newStagingDir(layout, request);
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

/**
 * Create this run's own staging directory (layout.stagingDir): never one another run uses. What
 * earlier runs of the same job left when their process died goes first.
 */
async function newStagingDir(layout: InstallLayout, request: StageRequest): Promise<string> {
  for (const dead of layout.deadStagingRuns(request.server, request.version, request.jobId))
    await fs.rm(dead, { recursive: true, force: true });
  const staging = layout.stagingDir(request.server, request.version, request.jobId);
  await fs.mkdir(path.dirname(staging), { recursive: true });
  await fs.mkdir(staging);
  return staging;
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
  throw new StagingError(
    'EVERSIONEXISTS',
    `${dir} already exists ${record ? `with integrity ${record.integrity}` : 'without a version record'}, not ${integrity}`,
    {
      hint: 'mcp-updater never overwrites a version directory; remove it if no MCP client runs from it, then run a forced check',
      retryable: false,
    },
  );
}

async function smokeTest(layout: InstallLayout, dir: string, request: StageRequest): Promise<SmokeTestRecord> {
  const settings = request.settings.smokeTest;
  if (!settings.enabled) return { ok: true, skipped: true, durationMs: 0 };
  // Run exactly what MCP clients will run: the launcher execs this script.
  return storeSurface(
    layout,
    dir,
    await runSmokeTest({
      command: layout.runScript(dir),
      args: settings.command ? [] : settings.args,
      env: settings.env,
      // Where mcp-updater runs: relative paths in smokeTest.args mean what ./data/... means in the
      // environment, and the staged version's own directory stays untouched.
      cwd: process.cwd(),
      timeoutMs: settings.timeoutMs,
      network: settings.network,
      label: label(request),
      surface: true,
    }),
  );
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
        hint: 'set STAGING_DIR to a directory on the same filesystem as MCP_SERVERS_PATH',
        retryable: false,
        cause: error,
      });
    }
    throw error;
  }
}
