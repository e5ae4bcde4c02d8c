/*
 * Scenario 7, the CLI as a person feels it: `mcp-updater servers` (3 servers whose state is in
 * Redis) and `mcp-updater --help`, each run one after another in a fresh process, wall time from
 * spawn to exit and the process's peak RSS. The same commands through tsx (how 0.1.0 ran: the
 * TypeScript compiled at every start) give the machine-independent ratio.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StateStore } from '../../shared/state.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { fleet, inventoryYaml } from '../lib/fleet.js';
import { mb, percentile, round } from '../lib/measure.js';
import { cleanEnv, PROJECT_ROOT } from '../lib/workerProcess.js';

export interface CliRun {
  /** Wall time spawn -> exit (ms): p50 and the slowest. */
  wallMs: { p50: number; max: number };
  /** Peak RSS of the process (MB): p50 and the largest. */
  peakRssMb: { p50: number; max: number };
}

export interface CliResults {
  servers: number;
  runs: number;
  /** The bin as shipped (compiled dist/). */
  compiled: { servers: CliRun; help: CliRun };
  /** The same through tsx, for the ratio. */
  tsx: { servers: CliRun; help: CliRun };
}

const PRELOAD = pathToFileURL(path.join(PROJECT_ROOT, 'bench', 'lib', 'reportPeakRss.mjs')).href;

async function runOnce(
  entry: string[],
  args: string[],
  env: Record<string, string>,
  rssFile: string,
): Promise<{ ms: number; rss: number }> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', PRELOAD, ...entry, ...args], {
      cwd: PROJECT_ROOT,
      env: { ...cleanEnv(env), BENCH_PEAK_RSS_FILE: rssFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mcp-updater ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
  const ms = performance.now() - started;
  return { ms, rss: Number(await fs.readFile(rssFile, 'utf8')) };
}

async function measure(entry: string[], args: string[], env: Record<string, string>, runs: number, rssFile: string): Promise<CliRun> {
  // One untimed run: the file cache, not the command, would dominate the first.
  await runOnce(entry, args, env, rssFile);
  const times: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const run = await runOnce(entry, args, env, rssFile);
    times.push(run.ms);
    rss.push(run.rss);
  }
  return {
    wallMs: { p50: round(percentile(times, 50), 0), max: round(percentile(times, 100), 0) },
    peakRssMb: { p50: mb(percentile(rss, 50)), max: mb(percentile(rss, 100)) },
  };
}

export async function cliScenario(options: { registryUrl: string; runs: number }): Promise<CliResults> {
  const env = await BenchEnv.create('cli', { registryUrl: options.registryUrl });
  try {
    const servers = fleet(3, 'cli-pkg');
    await env.writeInventory(inventoryYaml(servers, { smokeTest: true }));
    const state = new StateStore(env.redis, env.config);
    for (const server of servers) {
      await state.update(server.name, { package: server.package, current: '1.0.0', latest: '1.1.0', candidate: '1.1.0', state: 'idle' });
    }
    const rssFile = path.join(env.root, 'peak-rss');
    const compiled = [path.join(PROJECT_ROOT, 'bin', 'mcp-updater.js')];
    const tsx = ['--import', 'tsx', path.join(PROJECT_ROOT, 'cli', 'main.ts')];
    const both = async (entry: string[]) => ({
      servers: await measure(entry, ['servers'], env.env, options.runs, rssFile),
      help: await measure(entry, ['--help'], env.env, options.runs, rssFile),
    });
    return { servers: servers.length, runs: options.runs, compiled: await both(compiled), tsx: await both(tsx) };
  } finally {
    await env.cleanup();
  }
}
