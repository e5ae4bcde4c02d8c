/*
 * Child process of the raw BullMQ scenario: no-op workers, nothing of mcp-updater's but the
 * connection factory and the default job options. `single`: one queue whose processor does
 * nothing. `chain`: four queues, each processor adds the job to the next queue, as the pipeline
 * stages do. Tells the parent (IPC) when it is ready and when `count` final jobs completed.
 *
 *   BENCH_MODE=single|chain BENCH_COUNT=20000 BENCH_CONCURRENCY=50 QUEUE_PREFIX=… REDIS_URL=…
 */
import { Queue, Worker } from 'bullmq';
import { createRedis } from '../../shared/redis.js';
import { defaultJobOptions } from '../../shared/queues.js';

const RAW_QUEUES = ['raw-a', 'raw-b', 'raw-c', 'raw-d'] as const;

const mode = process.env.BENCH_MODE === 'chain' ? 'chain' : 'single';
const count = Number(process.env.BENCH_COUNT);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 50);
const prefix = process.env.QUEUE_PREFIX!;
const config = { redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };

const shared = createRedis(config, 'worker');
const names = mode === 'chain' ? RAW_QUEUES : RAW_QUEUES.slice(0, 1);
const queues = names.map((name) => new Queue(name, { connection: shared, prefix, defaultJobOptions: defaultJobOptions(3) }));
let completed = 0;

const workers = names.map((name, index) => {
  const next = queues[index + 1];
  const worker = new Worker(
    name,
    next
      ? async (job) => {
          await next.add(job.name, job.data);
        }
      : async () => undefined,
    {
      connection: createRedis(config, 'worker'),
      prefix,
      concurrency,
    },
  );
  worker.on('error', () => undefined);
  return worker;
});

workers[workers.length - 1]!.on('completed', () => {
  completed += 1;
  if (completed === count) process.send!({ type: 'done' });
});

await Promise.all(workers.map((worker) => worker.waitUntilReady()));
process.send!({ type: 'ready' });

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  void (async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    await Promise.all(queues.map((queue) => queue.close()));
    shared.disconnect();
    process.exit(0);
  })();
});
