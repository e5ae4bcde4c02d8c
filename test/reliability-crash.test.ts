/*
 * Crashes: two worker processes (`mcp-updater start --role worker`); one of them is killed with
 * SIGKILL three times, once while it holds a download, once a stage and once an activation (told
 * apart by the job's processedBy, "<host>:<pid>"), and restarted each time. Stalled jobs must be
 * taken up again (JOB_LOCK_DURATION=2000), the activation lock of the dead process must expire
 * (ACTIVATION_LOCK_TTL=3000), every server must end on the last version, activated once, and
 * `current` must never point at a partial or unverified directory.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import type { WorkerContext } from '../workers/context.js';
import { serverLockKey } from '../workers/activation/lock.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry } from './support/registry.js';
import { CurrentVersionMonitor, killHard, sleep, startRole, summary, type ChildWithOutput } from './support/reliability.js';
import { pipelineIdle } from './support/pipeline.js';
import { waitUntil } from './support/wait.js';

const SERVERS = Array.from({ length: 8 }, (_, index) => `crash-${index}`);
const VERSIONS = ['1.0.0', '1.1.0', '1.2.0'];
const TARGETS = ['download', 'stage', 'activate'] as const;
type Target = (typeof TARGETS)[number];
const old = new Date(Date.now() - 30 * 86_400_000);

interface Kill {
  queue: Target;
  jobId: string;
  server: string;
  pid: number;
  at: number;
  /** The server's activation lock existed in Redis when the holder was killed. */
  lockHeld: boolean;
}

describe('reliability: kill -9 of a worker process during download, stage and activate', function () {
  this.timeout(150_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let client: ProducerClient;
  let victim: ChildWithOutput;
  let survivor: ChildWithOutput;
  const children: ChildWithOutput[] = [];
  let monitor: CurrentVersionMonitor | undefined;

  function spawnWorker(): ChildWithOutput {
    const child = startRole('worker', { ...env.env, LOG_LEVEL: 'info' });
    children.push(child);
    return child;
  }

  /** The processedBy of jobs this child takes (see workers/worker.ts). */
  const workerName = (child: ChildWithOutput) => `${os.hostname()}:${child.pid}`;

  before(async () => {
    registry = await FixtureRegistry.start();
    for (const name of SERVERS) await registry.publish({ name, version: VERSIONS[0]!, publishedAt: old });
    // Slow enough that a kill lands inside each step: tarballs answer after 1.2 s, servers
    // answer their handshake (stage smoke test and post-activation check) after 1 s.
    registry.injectFault({ match: 'tarball', kind: 'delay', delayMs: 1_200 });
    const inventory = `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 20s, env: { FIXTURE_MCP_DELAY_MS: "1000" } }\nservers:\n${SERVERS.map((name) => `  ${name}: { package: ${name} }\n`).join('')}`;
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory,
      env: {
        JOB_LOCK_DURATION: '2000',
        ACTIVATION_LOCK_TTL: '3000',
        MAX_RETRIES: '5',
        RETRY_BACKOFF: '300',
        CONCURRENCY: 'download=3,stage=2,activate=2',
      },
    });
    context = await env.context();
    client = ProducerClient.connect(env.config);
    victim = spawnWorker();
    survivor = spawnWorker();

    monitor = new CurrentVersionMonitor(context.layout, SERVERS, 50);
  });

  after(async () => {
    monitor?.stop();
    for (const child of children) await killHard(child);
    await client?.close();
    await env?.cleanup();
    await registry?.close();
  });

  /**
   * Wait until the victim holds an active job of `queue`, let it run a random 0-300 ms more, and
   * kill the victim if it still holds it. Undefined when the pipeline settles first.
   */
  async function killDuring(queue: Target): Promise<Kill | undefined> {
    for (;;) {
      const mine = (await context.queues[queue].getActive()).find((job) => job.processedBy === workerName(victim));
      if (mine) {
        // Somewhere inside the job; an activation's locked stretch is short, so it is looked for at once.
        if (queue !== 'activate') await sleep(Math.floor(Math.random() * 300));
        const job = await context.queues[queue].getJob(mine.id!);
        // An activation is killed while it holds its server's lock (the case this test is about):
        // a faster activation can be active without it, before taking it or after releasing it.
        const lockHeld = job ? (await env.redis.exists(serverLockKey(env.config, job.data.server))) === 1 : false;
        if (job && (queue !== 'activate' || lockHeld) && (await job.getState()) === 'active' && job.processedBy === workerName(victim)) {
          const pid = victim.pid!;
          await killHard(victim);
          victim = spawnWorker();
          return { queue, jobId: job.id!, server: job.data.server, pid, at: Date.now(), lockHeld };
        }
      }
      if (await pipelineIdle(context.queues)) return undefined;
      await sleep(20);
    }
  }

  it('recovers every killed job; all servers end on the last version, activated once, never partially current', async () => {
    const started = Date.now();
    const kills: Kill[] = [];
    let version = VERSIONS[0]!;
    for (const [round, next] of VERSIONS.entries()) {
      if (kills.length === TARGETS.length) break;
      version = next;
      if (round > 0) for (const name of SERVERS) await registry.publish({ name, version, publishedAt: old });
      await client.checkAll(SERVERS, { reason: `crash round ${round + 1}` });
      for (const target of TARGETS.slice(kills.length)) {
        const kill = await killDuring(target);
        if (!kill) break;
        kills.push(kill);
      }
      await waitUntil(
        `every server on ${version}`,
        async () => {
          for (const server of SERVERS) if ((await context.state.get(server)).current !== version) return false;
          return pipelineIdle(context.queues);
        },
        60_000,
        100,
      );
    }
    expect(
      kills.map((kill) => kill.queue),
      'kills',
    ).to.deep.equal([...TARGETS]);

    // Each killed job was taken up again and finished.
    const recovered: Record<string, string> = {};
    for (const kill of kills) {
      const job = await context.queues[kill.queue].getJob(kill.jobId);
      expect(await job?.getState(), `${kill.queue} job ${kill.jobId} killed in pid ${kill.pid}`).to.equal('completed');
      expect(job!.processedBy, `${kill.jobId} finished elsewhere`).to.not.equal(`${os.hostname()}:${kill.pid}`);
      recovered[kill.queue] = `${((job!.finishedOn! - kill.at) / 1000).toFixed(1)}s`;
    }
    // The activation lock the dead process held did not block its server for good.
    const activateKill = kills.find((kill) => kill.queue === 'activate')!;
    expect(activateKill.lockHeld, 'the killed activation held its server lock').to.equal(true);
    expect(
      (await context.queues.activate.getJob(activateKill.jobId))!.finishedOn! - activateKill.at,
      'activation finished after the kill within',
    ).to.be.below(20_000);

    for (const server of SERVERS) {
      expect(await context.layout.currentVersion(server), `${server} current`).to.equal(version);
      const record = await context.layout.readVersionRecord(server, version);
      expect(record?.smokeTest?.ok, `${server} smoke test`).to.equal(true);
      const state = await context.state.get(server);
      expect(state.state, `${server} state (${state.lastError ?? ''})`).to.equal('idle');
      expect(await env.redis.exists(serverLockKey(env.config, server)), `${server} activation lock`).to.equal(0);
      expect(await fs.readdir(path.join(context.layout.stagingRoot, server)).catch(() => []), `${server} staging leftovers`).to.deep.equal(
        [],
      );
      // One activation per version, whatever was killed on the way.
      const activated = (await context.events.list({ server, type: 'update.activated', limit: 100 })).map((event) => event.version).sort();
      const expected = VERSIONS.slice(0, VERSIONS.indexOf(version) + 1);
      expect(activated, `${server} activations (kills: ${JSON.stringify(kills)})`).to.deep.equal(expected);
      expect(
        (await context.layout.readHistory(server))?.entries.map((entry) => entry.to),
        `${server} history`,
      ).to.deep.equal(expected);
    }
    monitor?.stop();
    expect(monitor!.violations, 'current pointing at a partial or unverified version').to.deep.equal([]);
    expect(survivor.exitCode, 'the other worker kept running').to.equal(null);

    const failed = Object.fromEntries(
      await Promise.all(TARGETS.map(async (queue) => [queue, await context.queues[queue].getFailedCount()])),
    );
    expect(failed, 'jobs failed for good').to.deep.equal({ download: 0, stage: 0, activate: 0 });
    const partials = (await fs.readdir(path.join(env.config.backupDir, 'sha512')).catch(() => [])).filter((file) =>
      file.endsWith('.partial'),
    );
    summary('crash', {
      servers: SERVERS.length,
      rounds: VERSIONS.indexOf(version) + 1,
      kills: kills.map((kill) => `${kill.queue}:${kill.jobId}`).join(','),
      recoveredAfter: recovered,
      finalVersion: version,
      activateLockHeldAtKill: activateKill.lockHeld,
      activateAttempts: (await context.queues.activate.getJob(activateKill.jobId))!.attemptsMade,
      partialDownloadsLeft: partials.length,
      // The killed activation had switched `current` already and was finished by its retry.
      activationResumed: (await fs.readFile(path.join(env.config.logDir, 'automation.log'), 'utf8').catch(() => '')).includes(
        'finishing an interrupted run of this job',
      ),
      currentSamples: monitor!.samples,
      seconds: Math.round((Date.now() - started) / 1000),
    });
  });
});
