/*
 * Scenario 5, the peer: what a user scripts today without mcp-updater, one
 * `npm install --prefix <dir> <pkg>@<version>` per server, one after another, against the same
 * fixture registry, with a clean environment (no npm_* variables from `npm run`, an empty
 * userconfig, a private cache) — compared with our pipeline doing the same 50 updates
 * (1.0.0 installed, 1.1.0 published) of the fixture MCP server.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FixtureRegistry } from '../../test/support/registry.js';
import { fleet, type FleetServer } from '../lib/fleet.js';
import { percentile, round } from '../lib/measure.js';
import { pipelineScenario, type PipelineResults } from './pipeline.js';

export interface OurRun {
  seconds: number;
  updatesPerSecond: number;
  /** Updates that failed instead of activating (a non-zero count spoils the comparison). */
  failed: number;
}

export interface PeerResults {
  servers: number;
  package: string;
  npm: { seconds: number; perInstallMs: { p50: number; p95: number } };
  /** Our pipeline, default settings (smoke test in stage and after activation). */
  ours: OurRun;
  /** Our pipeline with the smoke test off: the same work as `npm install` (no handshake). */
  oursNoSmokeTest: OurRun;
  speedup: number;
  speedupNoSmokeTest: number;
}

/** The environment without npm_* (npm run sets dozens, including the registry and the cache). */
function npmFreeEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
}

async function npmInstall(args: { dir: string; spec: string; registry: string; cache: string; userconfig: string }): Promise<void> {
  await fs.mkdir(args.dir, { recursive: true });
  const argv = [
    'install',
    '--prefix',
    args.dir,
    args.spec,
    '--registry',
    args.registry,
    '--no-audit',
    '--no-fund',
    '--no-update-notifier',
    '--cache',
    args.cache,
    '--userconfig',
    args.userconfig,
    '--loglevel',
    'error',
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('npm', argv, { env: npmFreeEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm ${argv.join(' ')} exited ${code}: ${stderr}`))));
  });
}

async function npmLoop(registry: FixtureRegistry, servers: FleetServer[]): Promise<PeerResults['npm']> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-bench-npm-'));
  try {
    const userconfig = path.join(root, 'npmrc');
    await fs.writeFile(userconfig, '');
    const common = { registry: registry.url, cache: path.join(root, 'cache'), userconfig };
    const dir = (server: FleetServer) => path.join(root, 'servers', server.name);
    // Untimed: the version being updated from, as in our pipeline's install phase.
    for (const server of servers) await npmInstall({ ...common, dir: dir(server), spec: `${server.package}@1.0.0` });
    const durations: number[] = [];
    const started = performance.now();
    for (const server of servers) {
      const one = performance.now();
      await npmInstall({ ...common, dir: dir(server), spec: `${server.package}@1.1.0` });
      durations.push(performance.now() - one);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      seconds: round(seconds, 2),
      perInstallMs: { p50: round(percentile(durations, 50), 0), p95: round(percentile(durations, 95), 0) },
    };
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

export async function peerScenario(options: {
  registry: FixtureRegistry;
  servers: number;
  env?: Record<string, string>;
}): Promise<PeerResults> {
  const fixture = 'mcp-healthy';
  const run = (packagePrefix: string, smokeTest: boolean): Promise<PipelineResults> =>
    pipelineScenario({
      registry: options.registry,
      servers: options.servers,
      packagePrefix,
      fixture,
      smokeTest,
      env: options.env,
    });
  const ours = await run('peer-mcp', true);
  const oursNoSmokeTest = await run('peer-mcp-nosmoke', false);
  const npm = await npmLoop(options.registry, fleet(options.servers, 'peer-mcp'));
  const summary = (result: PipelineResults): OurRun => ({
    seconds: result.update.seconds,
    updatesPerSecond: result.update.updatesPerSecond,
    failed: result.update.failed,
  });
  return {
    servers: options.servers,
    package: `fixture MCP server ${fixture}, 1.0.0 -> 1.1.0`,
    npm,
    ours: summary(ours),
    oursNoSmokeTest: summary(oursNoSmokeTest),
    speedup: round(npm.seconds / ours.update.seconds, 1),
    speedupNoSmokeTest: round(npm.seconds / oursNoSmokeTest.update.seconds, 1),
  };
}
