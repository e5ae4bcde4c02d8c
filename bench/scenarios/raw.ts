/*
 * Scenario 1, the ceiling: what BullMQ itself does on this machine and this Redis with no-op
 * processors. The workers run in a child process, the jobs are added by this process with one
 * addBulk, exactly as the check sweep adds its checks. Same default job options as the product.
 */
import { Queue } from 'bullmq';
import { defaultJobOptions } from '../../shared/queues.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { round } from '../lib/measure.js';
import { TsxChild } from '../lib/tsxChild.js';

export interface RawResult {
  jobs: number;
  concurrency: number;
  seconds: number;
  /** Jobs (single) or whole chains (chain) per second. */
  perSecond: number;
}

export interface RawResults {
  single: RawResult;
  /** A chain of four queues; perSecond counts chains (one chain = four jobs). */
  chain: RawResult;
}

async function runRaw(mode: 'single' | 'chain', count: number, concurrency: number, registryUrl: string): Promise<RawResult> {
  const env = await BenchEnv.create(`raw-${mode}`, { registryUrl });
  const child = new TsxChild('raw-worker.ts', {
    ...env.env,
    BENCH_MODE: mode,
    BENCH_COUNT: String(count),
    BENCH_CONCURRENCY: String(concurrency),
  });
  const queue = new Queue('raw-a', { connection: env.redis, prefix: env.prefix, defaultJobOptions: defaultJobOptions(3) });
  try {
    await child.next('ready', 30_000);
    const jobs = Array.from({ length: count }, (_, index) => ({ name: 'noop', data: { server: `s${index}` } }));
    const started = performance.now();
    await queue.addBulk(jobs);
    await child.next('done', 300_000);
    const seconds = (performance.now() - started) / 1000;
    return { jobs: count, concurrency, seconds: round(seconds, 3), perSecond: round(count / seconds, 0) };
  } finally {
    await child.stop();
    await queue.close();
    await env.cleanup();
  }
}

export async function rawScenario(options: { singleJobs: number; chains: number; registryUrl: string }): Promise<RawResults> {
  const single = await runRaw('single', options.singleJobs, 50, options.registryUrl);
  const chain = await runRaw('chain', options.chains, 50, options.registryUrl);
  return { single, chain };
}
