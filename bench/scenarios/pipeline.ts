/*
 * Scenarios 3, 4 and the "ours" half of 5: the whole pipeline (check → download → stage →
 * activate) in the worker child. Each server first gets 1.0.0 installed through the pipeline
 * (the install phase, also reported); then 1.1.0 of every package is published and one
 * checkAll is timed until every server has activated it (or failed): updates/s, check to active.
 */
import type { FixtureRegistry } from '../../test/support/registry.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { CpuMeter, type CpuUse } from '../lib/cpuMeter.js';
import { monotonicMicros } from '../lib/cpuProfile.js';
import { fleet, inventoryYaml, publishFleet, type FleetServer } from '../lib/fleet.js';
import { percentile, pollUntil, round } from '../lib/measure.js';
import { WorkerSession, type SessionOptions } from '../lib/workerSession.js';

export interface PipelinePhase {
  updates: number;
  failed: number;
  seconds: number;
  updatesPerSecond: number;
  /** Stage job processedOn → finishedOn (ms). */
  stageMs: { p50: number; p95: number; max: number };
  /** Job processedOn → finishedOn of every pipeline queue, p50 (ms). */
  queueMsP50: Record<string, number>;
  cpu: CpuUse;
}

export interface PipelineResults {
  servers: number;
  package: string;
  smokeTest: boolean;
  install: PipelinePhase;
  update: PipelinePhase;
  worker: { maxRssMb: number; peakRssMb: number };
  /** The update phase, on the clock of CPU profiles (for --profile). */
  measuredUs: { fromUs: number; toUs: number };
}

export interface PipelineOptions {
  registry: FixtureRegistry;
  servers: number;
  /** Package name prefix in the registry (distinct per scenario). */
  packagePrefix: string;
  /** Fixture MCP server to publish (test/fixtures/packages/<name>); default a tiny package. */
  fixture?: string;
  smokeTest: boolean;
  env?: Record<string, string>;
  session?: SessionOptions;
  timeoutMs?: number;
}

async function outcome(session: WorkerSession): Promise<{ activated: number; failed: number }> {
  const counts = await session.countsByResult('updates_total');
  return { activated: counts.activated ?? 0, failed: counts.failed ?? 0 };
}

/** processedOn → finishedOn (ms) of the jobs of `queue` that completed since `sinceMs` (epoch). */
async function jobDurations(
  session: WorkerSession,
  queue: 'check' | 'download' | 'stage' | 'activate',
  sinceMs: number,
): Promise<number[]> {
  const jobs = await session.queues[queue].getJobs(['completed'], 0, -1);
  return jobs
    .filter((job) => job.processedOn && job.finishedOn && job.finishedOn >= sinceMs)
    .map((job) => job.finishedOn! - job.processedOn!);
}

async function phase(session: WorkerSession, servers: FleetServer[], version: string, timeoutMs: number): Promise<PipelinePhase> {
  await session.resetCounters();
  const cpu = new CpuMeter(session.env.redis, session.worker.pid);
  await cpu.begin();
  const startedAt = Date.now();
  const started = performance.now();
  await session.client.checkAll(
    servers.map((server) => server.name),
    { reason: 'bench' },
  );
  let last = { activated: 0, failed: 0 };
  await pollUntil(
    `the pipeline to activate ${version} on ${servers.length} servers`,
    async () => {
      last = await outcome(session);
      return last.activated + last.failed >= servers.length;
    },
    { timeoutMs, intervalMs: 25, stuck: session.stuck },
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuUse = await cpu.end(servers.length);
  const stage = await jobDurations(session, 'stage', startedAt);
  const queueMsP50: Record<string, number> = {};
  for (const queue of ['check', 'download', 'stage', 'activate'] as const) {
    queueMsP50[queue] = percentile(await jobDurations(session, queue, startedAt), 50);
  }
  return {
    updates: last.activated,
    failed: last.failed,
    seconds: round(seconds, 3),
    updatesPerSecond: round(last.activated / seconds, 1),
    stageMs: { p50: percentile(stage, 50), p95: percentile(stage, 95), max: percentile(stage, 100) },
    queueMsP50,
    cpu: cpuUse,
  };
}

export async function pipelineScenario(options: PipelineOptions): Promise<PipelineResults> {
  const servers = fleet(options.servers, options.packagePrefix);
  const timeoutMs = options.timeoutMs ?? 600_000;
  await publishFleet(options.registry, servers, '1.0.0', options.fixture);
  const env = await BenchEnv.create(options.packagePrefix, { registryUrl: options.registry.url, env: options.env });
  let session: WorkerSession | undefined;
  try {
    await env.writeInventory(inventoryYaml(servers, { smokeTest: options.smokeTest }));
    session = await WorkerSession.start(env, options.session);
    const install = await phase(session, servers, '1.0.0', timeoutMs);
    await publishFleet(options.registry, servers, '1.1.0', options.fixture);
    const fromUs = monotonicMicros();
    const update = await phase(session, servers, '1.1.0', timeoutMs);
    const toUs = monotonicMicros();
    const memory = session.memory();
    return {
      servers: servers.length,
      package: options.fixture ? `fixture MCP server ${options.fixture}` : 'tiny zero-dependency package',
      smokeTest: options.smokeTest,
      install,
      update,
      worker: memory,
      measuredUs: { fromUs, toUs },
    };
  } finally {
    await session?.stop();
    await env.cleanup();
  }
}
