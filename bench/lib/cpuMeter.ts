/*
 * Where the CPU of a measured window went, on a machine where the worker, Redis and the fixture
 * registry share two cores: the worker process (with the processes it waited for: npm, smoke
 * tests) from /proc/<pid>/stat, Redis from INFO cpu, this process (fixture registry + polling)
 * from process.cpuUsage(). Reported per operation, so a profile can be read against it.
 */
import fs from 'node:fs';
import type { Redis } from 'ioredis';
import { round } from './measure.js';

const TICKS_PER_SECOND = 100;

interface Snapshot {
  wallMs: number;
  workerSeconds: number;
  redisSeconds: number;
  benchSeconds: number;
}

export interface CpuUse {
  /** CPU milliseconds per operation (check or update). */
  workerMsPerOp: number;
  redisMsPerOp: number;
  /** The bench process: fixture registry and polling. */
  benchMsPerOp: number;
  /** Cores the worker kept busy on average (1 = one core). */
  workerCores: number;
  /** Cores in use by all three on average (the machine has os.availableParallelism()). */
  totalCores: number;
}

function processSeconds(pid: number): number {
  try {
    // Fields after the command name: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0);
    return ticks / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

async function redisSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const value = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return value('used_cpu_sys') + value('used_cpu_user');
}

export class CpuMeter {
  private start?: Snapshot;

  constructor(
    private readonly redis: Redis,
    private readonly workerPid: number,
  ) {}

  private async snapshot(): Promise<Snapshot> {
    const usage = process.cpuUsage();
    return {
      wallMs: performance.now(),
      workerSeconds: processSeconds(this.workerPid),
      redisSeconds: await redisSeconds(this.redis),
      benchSeconds: (usage.user + usage.system) / 1e6,
    };
  }

  async begin(): Promise<void> {
    this.start = await this.snapshot();
  }

  async end(operations: number): Promise<CpuUse> {
    const end = await this.snapshot();
    const start = this.start!;
    const wallSeconds = (end.wallMs - start.wallMs) / 1000;
    const worker = end.workerSeconds - start.workerSeconds;
    const redis = end.redisSeconds - start.redisSeconds;
    const bench = end.benchSeconds - start.benchSeconds;
    const perOp = (seconds: number) => round((seconds * 1000) / Math.max(1, operations), 3);
    return {
      workerMsPerOp: perOp(worker),
      redisMsPerOp: perOp(redis),
      benchMsPerOp: perOp(bench),
      workerCores: round(worker / wallSeconds, 2),
      totalCores: round((worker + redis + bench) / wallSeconds, 2),
    };
  }
}
