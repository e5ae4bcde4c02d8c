/*
 * `npm run bench`: every scenario in one run on this machine, against the local Redis (random
 * QUEUE_PREFIX per scenario, its keys deleted afterwards) and the fixture registry
 * (test/support/registry.ts, in this process) — never a public registry. Writes
 * bench/results/latest.json and latest.md (the table for the README).
 *
 *   npm run bench                   full run (a few minutes)
 *   npm run bench -- --smoke        small sizes, well under a minute (CI): results/smoke.*
 *   npm run bench -- --only 2,3     some scenarios (numbers or names): results/partial.*
 *   npm run bench -- --profile      worker children under --cpu-prof (2, 3): results/profiled.*,
 *                                   profiles in results/profiles/, top functions printed
 *
 * Targets are reported as met / not met, never asserted; the exit code is 1 only when a
 * scenario could not run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { FixtureRegistry } from '../test/support/registry.js';
import { ensureSuiteRedis } from '../test/support/redisServer.js';
import { detectSandbox } from '../shared/sandbox.js';
import { BENCH_REDIS_URL } from './lib/benchEnv.js';
import { mainThreadProfile, summarizeProfile, type ProfileSummary } from './lib/cpuProfile.js';
import { round } from './lib/measure.js';
import { evaluateTargets, renderMarkdown, type BenchResults, type MachineInfo } from './lib/report.js';
import type { SessionOptions } from './lib/workerSession.js';
import { cliScenario } from './scenarios/cli.js';
import { diskScenario } from './scenarios/disk.js';
import { httpScenario } from './scenarios/http.js';
import { idleScenario } from './scenarios/idle.js';
import { peerScenario } from './scenarios/peer.js';
import { pipelineScenario } from './scenarios/pipeline.js';
import { rawScenario } from './scenarios/raw.js';
import { sweepScenario } from './scenarios/sweep.js';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** Sizes of the full run (the brief's) and of the smoke run (CI, well under a minute). */
const SIZES = {
  full: {
    rawJobs: 20_000,
    rawChains: 5_000,
    sweep: 10_000,
    pipeline: 1_000,
    smokeTest: 100,
    peer: 50,
    httpServers: 1_000,
    httpSeconds: 10,
    cliRuns: 15,
    idleSeconds: 10,
    diskServers: 3,
    diskVersions: 5,
  },
  smoke: {
    rawJobs: 2_000,
    rawChains: 500,
    sweep: 300,
    pipeline: 30,
    smokeTest: 3,
    peer: 3,
    httpServers: 100,
    httpSeconds: 1,
    cliRuns: 2,
    idleSeconds: 1,
    diskServers: 1,
    diskVersions: 4,
  },
};

const SCENARIOS = ['raw', 'sweep', 'pipeline', 'smokeTest', 'peer', 'http', 'cli', 'idle', 'disk'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

function parseOptions() {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
    },
  });
  // --only takes scenario numbers (1-6) or names.
  const only = values.only?.split(',').map((item) => {
    const trimmed = item.trim();
    const byNumber = SCENARIOS[Number(trimmed) - 1];
    const name = byNumber ?? SCENARIOS.find((scenario) => scenario === trimmed);
    if (!name) throw new Error(`--only: "${trimmed}" is not a scenario (1-${SCENARIOS.length} or ${SCENARIOS.join(', ')})`);
    return name;
  });
  return { smoke: values.smoke, only: only ? new Set<ScenarioName>(only) : undefined, profile: values.profile };
}

function npmVersion(): string {
  try {
    return execFileSync('npm', ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir() } }).trim();
  } catch {
    return 'unknown';
  }
}

async function machineInfo(): Promise<MachineInfo> {
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info('server');
    const sandbox = detectSandbox();
    return {
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
      memoryGb: round(os.totalmem() / 1024 ** 3, 0),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      npm: npmVersion(),
      redis: /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown',
      loadAverageAtStart: round(os.loadavg()[0] ?? 0, 2),
      smokeTestSandbox: { sandboxed: sandbox.sandboxed, reason: sandbox.reason },
    };
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<number> {
  const options = parseOptions();
  const sizes = options.smoke ? SIZES.smoke : SIZES.full;
  const mode: BenchResults['mode'] = options.profile ? 'profiled' : options.smoke ? 'smoke' : options.only ? 'partial' : 'full';
  const output = { full: 'latest', smoke: 'smoke', partial: 'partial', profiled: 'profiled' }[mode];
  const wanted = (name: ScenarioName) => !options.only || options.only.has(name);
  const profileRoot = path.join(RESULTS_DIR, 'profiles');
  const profiles: Record<string, ProfileSummary> = {};
  const session = async (name: string): Promise<SessionOptions> => {
    if (!options.profile) return {};
    const cpuProfileDir = path.join(profileRoot, name);
    await fs.rm(cpuProfileDir, { recursive: true, force: true });
    return { cpuProfileDir };
  };
  const collectProfile = async (name: string, window: { fromUs: number; toUs: number }) => {
    if (!options.profile) return;
    const file = await mainThreadProfile(path.join(profileRoot, name));
    if (file) profiles[name] = await summarizeProfile(file, window);
  };

  // Like `npm test`: a redis-server of our own when none answers (stopped at the end).
  const redis = await ensureSuiteRedis(BENCH_REDIS_URL);
  const started = new Date();
  const results: BenchResults = {
    mode,
    startedAt: started.toISOString(),
    durationSeconds: 0,
    machine: await machineInfo(),
    scenarios: {},
    errors: {},
    targets: [],
  };
  if (results.machine.loadAverageAtStart > 0.5) {
    console.warn(`bench: load average is ${results.machine.loadAverageAtStart}: other work on this machine will lower every figure`);
  }
  const registry = await FixtureRegistry.start();
  const run = async <R>(name: ScenarioName, title: string, body: () => Promise<R>): Promise<R | undefined> => {
    if (!wanted(name)) return undefined;
    const began = performance.now();
    console.log(`bench: ${title}…`);
    try {
      const result = await body();
      console.log(`bench:   done in ${round((performance.now() - began) / 1000, 1)} s`);
      return result;
    } catch (error) {
      results.errors[name] = (error as Error).stack ?? String(error);
      console.error(`bench:   ${name} failed: ${(error as Error).message}`);
      return undefined;
    }
  };

  try {
    const s = results.scenarios;
    s.raw = await run('raw', '1 raw BullMQ (one queue, four-stage chain)', () =>
      rawScenario({ singleJobs: sizes.rawJobs, chains: sizes.rawChains, registryUrl: registry.url }),
    );
    s.sweep = await run('sweep', `2 check sweep of ${sizes.sweep} servers`, async () => {
      const result = await sweepScenario({ registry, servers: sizes.sweep, session: await session('sweep') });
      await collectProfile('sweep', result.measuredUs);
      return result;
    });
    s.pipeline = await run('pipeline', `3 full pipeline, ${sizes.pipeline} servers`, async () => {
      const result = await pipelineScenario({
        registry,
        servers: sizes.pipeline,
        packagePrefix: 'pipeline-pkg',
        smokeTest: false,
        session: await session('pipeline'),
      });
      await collectProfile('pipeline', result.measuredUs);
      return result;
    });
    s.smokeTest = await run('smokeTest', `4 full pipeline with smoke tests, ${sizes.smokeTest} servers`, () =>
      pipelineScenario({ registry, servers: sizes.smokeTest, packagePrefix: 'smoke-mcp', fixture: 'mcp-healthy', smokeTest: true }),
    );
    s.peer = await run('peer', `5 npm loop vs mcp-updater, ${sizes.peer} updates`, () => peerScenario({ registry, servers: sizes.peer }));
    s.http = await run('http', `6 HTTP: /health and /api/v1/servers (${sizes.httpServers} servers), ${sizes.httpSeconds} s each`, () =>
      httpScenario({ registryUrl: registry.url, servers: sizes.httpServers, seconds: sizes.httpSeconds }),
    );
    s.cli = await run('cli', `7 CLI: \`servers\` and \`--help\`, ${sizes.cliRuns} runs each, compiled and through tsx`, () =>
      cliScenario({ registryUrl: registry.url, runs: sizes.cliRuns }),
    );
    s.idle = await run('idle', `8 idle RSS: all-in-one with 3 servers installed, then the worker alone, ${sizes.idleSeconds} s each`, () =>
      idleScenario({ registry, idleSeconds: sizes.idleSeconds }),
    );
    s.disk = await run('disk', `9 disk: ${sizes.diskServers} servers × ${sizes.diskVersions} versions, keep 3`, () =>
      diskScenario({ registry, servers: sizes.diskServers, versions: sizes.diskVersions }),
    );
  } finally {
    await registry.close();
    await redis.stop();
  }

  results.durationSeconds = round((Date.now() - started.getTime()) / 1000, 1);
  results.targets = evaluateTargets(results.scenarios);
  if (options.profile) results.profiles = profiles;
  await fs.mkdir(RESULTS_DIR, { recursive: true });
  const markdown = renderMarkdown(results);
  await fs.writeFile(path.join(RESULTS_DIR, `${output}.json`), `${JSON.stringify(results, null, 2)}\n`);
  await fs.writeFile(path.join(RESULTS_DIR, `${output}.md`), markdown);
  console.log(`\n${markdown}`);
  for (const [name, profile] of Object.entries(profiles)) {
    console.log(
      `CPU profile of the worker during ${name} (${profile.windowMs} ms measured, ${profile.busyPercent} % busy), top self time:`,
    );
    for (const entry of profile.topFunctions.slice(0, 12)) console.log(`  ${String(entry.percent).padStart(5)} %  ${entry.name}`);
  }
  console.log(
    `bench: results in ${path.relative(process.cwd(), path.join(RESULTS_DIR, `${output}.json`))} and .md (${results.durationSeconds} s)`,
  );
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

process.exitCode = await main();
