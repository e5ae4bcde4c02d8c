/*
 * The compiled runtime: `tsc -p tsconfig.build.json` turns the TypeScript sources into dist/,
 * and dist/.build-manifest.json records every source's size, mtime and SHA-1 at that moment.
 * The bin calls ensureFreshBuild() before it imports anything from dist/: when a source was
 * added, removed or edited since (a changed mtime alone, as after `npm pack` or a copy, is
 * settled by the hash), it rebuilds, or refuses with what to do when TypeScript is not installed
 * (a production-only install). Plain JavaScript without dependencies, so it runs before any build;
 * crypto and child_process are loaded only when a hash or a build is needed (they cost a fresh
 * process milliseconds and megabytes on every command).
 *
 * With esbuild installed, the build also bundles the CLI into dist/cli-bundle/ (see bundleCli).
 *
 *   node bin/build.js            build dist/ now (what `npm run build` does after the type check)
 *   node bin/build.js --check    exit 0 when dist/ is fresh, 1 with the reason when it is not
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What tsconfig.build.json compiles, and the configurations that shape the output. */
const SOURCE_DIRS = ['cli', 'producers', 'workers', 'dashboard', 'shared'];
const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json'];
const SOURCE_FILE = /\.(c|m)?tsx?$/;
const MANIFEST = '.build-manifest.json';
const LOCK_STALE_MS = 5 * 60_000;
const MAX_ERROR_LINES = 20;
const BUNDLE_DIR = 'cli-bundle';
const BUNDLE_PACKAGES = 'packages.json';
/**
 * The libraries the CLI bundle takes in: pure JavaScript that reads no file of its own at run time.
 * Everything else (BullMQ, winston, cron-parser with luxon, …) stays an import from node_modules.
 */
const BUNDLED_PACKAGES =
  /^(joi|@hapi\/[^/]+|yaml|ioredis|@ioredis\/commands|cluster-key-slot|debug|ms|denque|lodash\.defaults|lodash\.isarguments|redis-errors|redis-parser|standard-as-callback|commander|semver|ssri|minipass|validate-npm-package-name|@renovatebot\/pep440|safe-stable-stringify)(\/|$)/;

export class BuildError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BuildError';
    this.code = 'EBUILD';
  }
}

const log = (line) => process.stderr.write(`${line}\n`);

/**
 * `root` with a trailing separator: paths below are joined by concatenation, because path.join
 * on every file makes V8 optimise it during the check, and that compile costs a fresh process ~4 MB.
 */
function base(root) {
  return root.endsWith(path.sep) ? root : `${root}${path.sep}`;
}

function walk(root, relative, files) {
  let entries;
  try {
    entries = fs.readdirSync(`${base(root)}${relative}`, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    const child = `${relative}/${entry.name}`;
    if (entry.isDirectory()) walk(root, child, files);
    else if (SOURCE_FILE.test(entry.name)) files.push(child);
  }
}

/** Project-relative paths of everything the build reads, sorted. */
export function buildInputs(root = PROJECT_ROOT) {
  const files = [];
  for (const dir of SOURCE_DIRS) walk(root, dir, files);
  // An install without sources (only dist/) has nothing to compare; configurations alone do not count.
  if (files.length === 0) return [];
  for (const file of CONFIG_FILES) if (fs.existsSync(`${base(root)}${file}`)) files.push(file);
  return files.sort();
}

async function sha1(file) {
  const { createHash } = await import('node:crypto');
  return createHash('sha1').update(fs.readFileSync(file)).digest('hex');
}

/** size, mtime and content hash of every build input, as the manifest records them. */
export async function fingerprint(root = PROJECT_ROOT) {
  const files = {};
  for (const file of buildInputs(root)) {
    const absolute = `${base(root)}${file}`;
    const stat = fs.statSync(absolute);
    files[file] = { size: stat.size, mtimeMs: stat.mtimeMs, sha1: await sha1(absolute) };
  }
  return files;
}

function readManifest(dist) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dist, MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Why dist/ does not match the sources, or undefined when it does. Stats every input; reads
 * (and hashes) only those whose size and mtime are not the recorded ones.
 */
export async function staleReason(root = PROJECT_ROOT) {
  const dist = path.join(root, 'dist');
  const manifest = readManifest(dist);
  if (!manifest?.files) return fs.existsSync(dist) ? 'dist/ has no build manifest' : 'dist/ does not exist yet';
  const inputs = buildInputs(root);
  if (inputs.length === 0) return undefined;
  const recorded = manifest.files;
  for (const file of inputs) {
    const entry = recorded[file];
    if (!entry) return `${file} is new`;
    const absolute = `${base(root)}${file}`;
    const stat = fs.statSync(absolute);
    if (stat.size !== entry.size) return `${file} changed`;
    if (stat.mtimeMs !== entry.mtimeMs && (await sha1(absolute)) !== entry.sha1) return `${file} changed`;
  }
  const removed = Object.keys(recorded).find((file) => !inputs.includes(file));
  return removed ? `${removed} was removed` : undefined;
}

async function typescriptCompiler(root) {
  const { createRequire } = await import('node:module');
  try {
    return createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

/** `{ "node_modules/joi": "18.3.2", … }`: where each package of the bundle was and its version. */
function bundledPackageVersions(root, inputs) {
  const versions = {};
  for (const input of inputs) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!match || match[1] in versions) continue;
    versions[match[1]] = JSON.parse(fs.readFileSync(`${base(root)}${match[1]}/package.json`, 'utf8')).version;
  }
  return versions;
}

/**
 * Every command but `start` lives for a fraction of a second, and loading its ~350 module files
 * one by one (resolve, read, compile) was the largest part of that. esbuild bundles the compiled
 * CLI with BUNDLED_PACKAGES into a few files (split by command, so each loads what it needs), and
 * records the version of every package it took in; the bin runs the bundle only while
 * node_modules holds exactly those versions (bundleIsCurrent), else dist/cli/main.js. Without
 * esbuild (a production-only install) nothing is bundled and the bin runs dist/ as it is.
 */
async function bundleCli(root, building) {
  const { createRequire } = await import('node:module');
  let esbuild;
  try {
    esbuild = createRequire(path.join(root, 'package.json'))('esbuild');
  } catch {
    return;
  }
  const outdir = path.join(building, BUNDLE_DIR);
  // esbuild answers from a child process of its own, which would otherwise live as long as this
  // one (the service builds on its first start): stopped once the bundle is written.
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: [path.join(building, 'cli', 'main.js')],
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      metafile: true,
      logLevel: 'silent',
      // The CommonJS libraries inside call require() for Node's modules.
      banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
      plugins: [
        {
          name: 'bundled-packages-only',
          setup(build) {
            build.onResolve({ filter: /^[^./]/ }, (args) =>
              BUNDLED_PACKAGES.test(args.path) ? undefined : { path: args.path, external: true },
            );
          },
        },
      ],
    });
  } finally {
    await esbuild.stop();
  }
  const packages = bundledPackageVersions(root, Object.keys(result.metafile.inputs));
  fs.writeFileSync(path.join(outdir, BUNDLE_PACKAGES), `${JSON.stringify(packages, null, 1)}\n`);
}

/**
 * Whether dist/cli-bundle/ exists and every package it took in is still the version it bundled:
 * after `npm install` changed one, the bin runs dist/cli/main.js (with node_modules as it is) until
 * the next build.
 */
export function bundleIsCurrent(root = PROJECT_ROOT) {
  let packages;
  try {
    packages = JSON.parse(fs.readFileSync(`${base(root)}dist/${BUNDLE_DIR}/${BUNDLE_PACKAGES}`, 'utf8'));
  } catch {
    return false;
  }
  for (const [dir, version] of Object.entries(packages)) {
    try {
      if (JSON.parse(fs.readFileSync(`${base(root)}${dir}/package.json`, 'utf8')).version !== version) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** One build at a time per checkout: an O_EXCL lock file naming its holder; a dead holder's lock is taken over. */
async function withBuildLock(root, fn) {
  const lock = path.join(root, 'dist.lock');
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let holder = 0;
    try {
      holder = Number(fs.readFileSync(lock, 'utf8').trim());
    } catch {
      continue;
    }
    if ((holder && !pidAlive(holder)) || Date.now() > deadline) {
      fs.rmSync(lock, { force: true });
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Compile into a fresh directory and swap it in, so nobody imports a half-written dist/. The
 * manifest describes the sources as they were before tsc read them: an edit during the build
 * makes the next start build again.
 */
async function compile(root, tsc) {
  const { spawnSync } = await import('node:child_process');
  const dist = path.join(root, 'dist');
  const building = path.join(root, `dist.building-${process.pid}`);
  const old = path.join(root, `dist.old-${process.pid}`);
  const files = await fingerprint(root);
  const started = Date.now();
  fs.rmSync(building, { recursive: true, force: true });
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', building], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    fs.rmSync(building, { recursive: true, force: true });
    const output = (`${result.stdout ?? ''}${result.stderr ?? ''}`.trim() || result.error?.message || `exit code ${result.status}`).split(
      '\n',
    );
    const shown =
      output.length > MAX_ERROR_LINES ? [...output.slice(0, MAX_ERROR_LINES), `… ${output.length - MAX_ERROR_LINES} more lines`] : output;
    throw new BuildError(
      'the TypeScript build failed and dist/ was left as it was: fix the errors below '
        + `(when they name missing type definitions, run \`npm install\` with dev dependencies):\n${shown.join('\n')}`,
    );
  }
  try {
    await bundleCli(root, building);
  } catch (error) {
    fs.rmSync(building, { recursive: true, force: true });
    throw new BuildError(`bundling the CLI failed and dist/ was left as it was: ${error.message}`);
  }
  fs.writeFileSync(path.join(building, MANIFEST), `${JSON.stringify({ builtAt: new Date().toISOString(), files })}\n`);
  if (fs.existsSync(dist)) fs.renameSync(dist, old);
  fs.renameSync(building, dist);
  fs.rmSync(old, { recursive: true, force: true });
  log(`mcp-updater: dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function requireCompiler(root, why) {
  const tsc = await typescriptCompiler(root);
  if (!tsc) {
    throw new BuildError(
      `${why}, and TypeScript is not installed to build it: run \`npm install\` (with dev dependencies) and \`npm run build\` in ${root}, or copy in a dist/ built from these sources`,
    );
  }
  return tsc;
}

/** Build dist/ now. */
export async function build(root = PROJECT_ROOT) {
  const tsc = await requireCompiler(root, 'cannot build dist/');
  await withBuildLock(root, () => compile(root, tsc));
}

/** Build when dist/ is missing or does not match the sources; throws BuildError when it cannot. */
export async function ensureFreshBuild(root = PROJECT_ROOT) {
  const reason = await staleReason(root);
  if (!reason) return;
  const tsc = await requireCompiler(root, `dist/ does not match the sources (${reason})`);
  await withBuildLock(root, async () => {
    // Whoever held the lock before may have built it already.
    const stillStale = await staleReason(root);
    if (!stillStale) return;
    log(`mcp-updater: building dist/ from the TypeScript sources (${stillStale})…`);
    await compile(root, tsc);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    if (process.argv.includes('--check')) {
      const reason = await staleReason();
      if (reason) {
        log(`dist/ is stale: ${reason}`);
        process.exitCode = 1;
      }
    } else {
      await build();
    }
  } catch (error) {
    log(`mcp-updater: ${error.message}`);
    process.exitCode = 1;
  }
}
