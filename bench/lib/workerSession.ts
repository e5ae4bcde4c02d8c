/*
 * A scenario's running product: the worker child process, a ProducerClient to enqueue checks the
 * way the API and the CLI do, and probes of what the worker recorded in Redis (the metrics
 * hashes), so the bench adds no work to the measured path.
 */
import { ProducerClient } from '../../producers/client.js';
import { MetricsRecorder } from '../../shared/metrics.js';
import { createQueues, closeQueues, type QueueSet } from '../../shared/queueSet.js';
import type { BenchEnv } from './benchEnv.js';
import { mb, pollUntil } from './measure.js';
import { WorkerProcess } from './workerProcess.js';

export interface SessionOptions {
  /** Run the worker under `node --cpu-prof`, writing its profiles into this directory. */
  cpuProfileDir?: string;
}

export class WorkerSession {
  readonly worker: WorkerProcess;
  readonly client: ProducerClient;
  readonly queues: QueueSet;
  readonly metrics: MetricsRecorder;

  private constructor(
    readonly env: BenchEnv,
    options: SessionOptions,
  ) {
    this.worker = new WorkerProcess({ env: env.env, cpuProfileDir: options.cpuProfileDir });
    this.client = ProducerClient.connect(env.config);
    this.queues = createQueues(env.config, env.redis);
    this.metrics = new MetricsRecorder(env.redis, env.config);
  }

  /** Start the worker child and wait until every pipeline queue has its worker listening. */
  static async start(env: BenchEnv, options: SessionOptions = {}): Promise<WorkerSession> {
    const session = new WorkerSession(env, options);
    await session.client.ready();
    await pollUntil(
      'the worker process to start',
      async () => {
        const counts = await Promise.all(
          (['check', 'download', 'stage', 'activate'] as const).map((name) => session.queues[name].getWorkersCount()),
        );
        return counts.every((count) => count > 0);
      },
      { timeoutMs: 60_000, intervalMs: 100, stuck: session.stuck },
    );
    return session;
  }

  /** Why waiting is pointless (the worker died), for pollUntil. */
  readonly stuck = (): string | undefined => (this.worker.running ? undefined : `the worker process exited:\n${this.worker.output}`);

  /** The worker's RSS: highest sampled, and the kernel's peak (VmHWM), in MB. */
  memory(): { maxRssMb: number; peakRssMb: number } {
    const sample = this.worker.memory();
    return { maxRssMb: mb(sample.maxRssBytes), peakRssMb: mb(sample.peakRssBytes) };
  }

  /** Number of servers with a recorded check (fields of the last_check hash). */
  async checkedServers(): Promise<number> {
    return this.env.redis.hlen(this.metrics.key('last_check'));
  }

  /** Forget recorded checks and updates, so the next sweep's progress can be counted from zero. */
  async resetCounters(): Promise<void> {
    await this.env.redis.del(this.metrics.key('last_check'), this.metrics.key('checks_total'), this.metrics.key('updates_total'));
  }

  /** Counter values summed by result label (last label), e.g. {"up-to-date": 10000}. */
  async countsByResult(name: 'checks_total' | 'updates_total'): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const { labels, value } of await this.metrics.readCounter(name)) {
      const result = labels[labels.length - 1]!;
      totals[result] = (totals[result] ?? 0) + value;
    }
    return totals;
  }

  async stop(): Promise<void> {
    await this.client.close();
    await closeQueues(this.queues);
    await this.worker.stop();
  }
}
