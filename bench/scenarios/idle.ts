/*
 * Scenario 8, memory at rest: `mcp-updater start --role all` (scheduler, workers, dashboard in one
 * process) installs three fixture MCP servers through the whole pipeline (smoke tests on), then
 * sits idle; its RSS is sampled over the idle window. Then `start --role worker` alone on the same
 * installed servers, idle the same way.
 */
import type { FixtureRegistry } from '../../test/support/registry.js';
import { StateStore } from '../../shared/state.js';
import { createQueues, closeQueues } from '../../shared/queueSet.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { fleet, inventoryYaml, publishFleet } from '../lib/fleet.js';
import { mb, percentile, pollUntil, sleep } from '../lib/measure.js';
import { WorkerProcess } from '../lib/workerProcess.js';

export interface IdleRss {
  /** RSS over the idle window (MB): median and highest sample. */
  rssMb: { p50: number; max: number };
  /** Kernel peak RSS since the process started, install included (MB). */
  peakRssMb: number;
}

export interface IdleResults {
  servers: number;
  idleSeconds: number;
  allInOne: IdleRss & { installSeconds: number };
  worker: IdleRss;
}

async function idleWindow(service: WorkerProcess, seconds: number): Promise<IdleRss> {
  // Settle first: the last job's garbage and the dashboard's first requests are not "idle".
  await sleep(2_000);
  const samples: number[] = [];
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    service.assertRunning();
    samples.push(service.currentRss());
    await sleep(250);
  }
  return { rssMb: { p50: mb(percentile(samples, 50)), max: mb(percentile(samples, 100)) }, peakRssMb: mb(service.memory().peakRssBytes) };
}

export async function idleScenario(options: { registry: FixtureRegistry; idleSeconds: number }): Promise<IdleResults> {
  const servers = fleet(3, 'idle-mcp');
  await publishFleet(options.registry, servers, '1.0.0', 'mcp-healthy');
  const env = await BenchEnv.create('idle', { registryUrl: options.registry.url, env: { PORT: '0', HOST: '127.0.0.1' } });
  const state = new StateStore(env.redis, env.config);
  const queues = createQueues(env.config, env.redis);
  let running: WorkerProcess | undefined;
  try {
    await env.writeInventory(inventoryYaml(servers, { smokeTest: true, smokeTimeout: '60s' }));
    const started = performance.now();
    running = new WorkerProcess({ env: env.env, role: 'all' });
    const all = running;
    // The scheduler's first checks install every server.
    await pollUntil(
      'the all-in-one service to install 3 servers',
      async () => {
        const states = await state.getMany(servers.map((server) => server.name));
        return states.every((one) => one.current === '1.0.0' && one.state === 'idle');
      },
      { timeoutMs: 300_000, intervalMs: 250, stuck: () => (all.running ? undefined : `it exited:\n${all.output}`) },
    );
    const installSeconds = Math.round((performance.now() - started) / 100) / 10;
    const allInOne = { ...(await idleWindow(all, options.idleSeconds)), installSeconds };
    await all.stop();

    running = new WorkerProcess({ env: env.env, role: 'worker' });
    const worker = running;
    await pollUntil('the worker to listen', async () => (await queues.check.getWorkersCount()) > 0, {
      timeoutMs: 60_000,
      intervalMs: 100,
      stuck: () => (worker.running ? undefined : `it exited:\n${worker.output}`),
    });
    return { servers: servers.length, idleSeconds: options.idleSeconds, allInOne, worker: await idleWindow(worker, options.idleSeconds) };
  } finally {
    await running?.stop();
    await closeQueues(queues);
    await env.cleanup();
  }
}
