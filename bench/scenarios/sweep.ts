/*
 * Scenario 2, the check sweep: N servers, each with a package of its own in the fixture registry,
 * all already current (state current = latest = 1.0.0), so every check asks the registry and
 * decides "up to date". All checks are enqueued at once with ProducerClient.checkAll (one
 * addBulk), the way `mcp-updater check` and POST /api/v1/checks do. Two sweeps: the first right
 * after the worker started (nothing cached: every packument comes whole), the second as every
 * later scheduled sweep runs (cached packuments revalidated with If-None-Match: 304s).
 */
import type { FixtureRegistry } from '../../test/support/registry.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { CpuMeter, type CpuUse } from '../lib/cpuMeter.js';
import { monotonicMicros } from '../lib/cpuProfile.js';
import { fleet, inventoryYaml, publishFleet, seedCurrent } from '../lib/fleet.js';
import { pollUntil, round } from '../lib/measure.js';
import { WorkerSession, type SessionOptions } from '../lib/workerSession.js';

export interface SweepRun {
  checks: number;
  seconds: number;
  checksPerSecond: number;
  /** Seconds the one addBulk of all checks took. */
  enqueueSeconds: number;
  results: Record<string, number>;
  cpu: CpuUse;
}

export interface SweepResults {
  servers: number;
  packages: string;
  cold: SweepRun;
  warm: SweepRun;
  worker: { maxRssMb: number; peakRssMb: number };
  /** Both sweeps, on the clock of CPU profiles (for --profile). */
  measuredUs: { fromUs: number; toUs: number };
}

async function sweep(session: WorkerSession, names: string[]): Promise<SweepRun> {
  await session.resetCounters();
  const cpu = new CpuMeter(session.env.redis, session.worker.pid);
  await cpu.begin();
  const started = performance.now();
  await session.client.checkAll(names, { reason: 'bench' });
  const enqueued = performance.now();
  await pollUntil('the check sweep', async () => (await session.checkedServers()) >= names.length, {
    timeoutMs: 600_000,
    intervalMs: 20,
    stuck: session.stuck,
  });
  const seconds = (performance.now() - started) / 1000;
  const cpuUse = await cpu.end(names.length);
  return {
    checks: names.length,
    seconds: round(seconds, 3),
    checksPerSecond: round(names.length / seconds, 0),
    enqueueSeconds: round((enqueued - started) / 1000, 3),
    results: await session.countsByResult('checks_total'),
    cpu: cpuUse,
  };
}

export async function sweepScenario(options: {
  registry: FixtureRegistry;
  servers: number;
  env?: Record<string, string>;
  session?: SessionOptions;
}): Promise<SweepResults> {
  const servers = fleet(options.servers, 'sweep-pkg');
  await publishFleet(options.registry, servers, '1.0.0');
  const env = await BenchEnv.create('sweep', { registryUrl: options.registry.url, env: options.env });
  let session: WorkerSession | undefined;
  try {
    await env.writeInventory(inventoryYaml(servers, { smokeTest: false }));
    await seedCurrent(env, servers, '1.0.0');
    session = await WorkerSession.start(env, options.session);
    const names = servers.map((server) => server.name);
    const fromUs = monotonicMicros();
    const cold = await sweep(session, names);
    const warm = await sweep(session, names);
    const toUs = monotonicMicros();
    const memory = session.memory();
    return {
      servers: servers.length,
      packages: `${servers.length} distinct packages (one per server)`,
      cold,
      warm,
      worker: memory,
      measuredUs: { fromUs, toUs },
    };
  } finally {
    await session?.stop();
    await env.cleanup();
  }
}
