/*
 * The product's worker as a user runs it: `node bin/mcp-updater.js start --role worker` (or
 * another role) in a child process with the scenario's environment. Its memory is sampled from /proc (VmRSS every 100 ms,
 * VmHWM = the kernel's peak RSS) so the figure is the whole process, not a heap estimate.
 * With `cpuProfileDir` it runs under `node --cpu-prof` and writes a .cpuprofile on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(PROJECT_ROOT, 'bin', 'mcp-updater.js');

export interface WorkerProcessOptions {
  env: Record<string, string>;
  /** `start --role <role>`; default worker. */
  role?: 'worker' | 'all';
  /** Directory for the .cpuprofile files (one per thread: tsx's loader runs in a thread of its own). */
  cpuProfileDir?: string;
}

export interface MemorySample {
  /** Highest VmRSS seen while sampling (bytes). */
  maxRssBytes: number;
  /** Kernel's peak resident set size of the process (bytes). */
  peakRssBytes: number;
}

/** VmRSS and VmHWM of a process in bytes, or undefined when it is gone. */
export function readProcMemory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Only the variables the product reads, plus PATH/HOME: no npm_* leaking in from `npm run`. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[key]) base[key] = process.env[key]!;
  return { ...base, NODE_ENV: 'production', ...extra };
}

export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly sampler: NodeJS.Timeout;
  private readonly exited: Promise<number | null>;
  private maxRss = 0;
  private lastHwm = 0;
  private stderr = '';

  constructor(options: WorkerProcessOptions) {
    // BENCH_WORKER_NODE_ARGS: V8 flags to try on the measured worker (e.g. "--max-semi-space-size=4").
    const tried = process.env.BENCH_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
    const nodeArgs = [...tried, ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [])];
    this.child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--role', options.role ?? 'worker'], {
      cwd: PROJECT_ROOT,
      env: cleanEnv(options.env),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.sampler = setInterval(() => this.sample(), 100);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get output(): string {
    return this.stderr;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private sample(): void {
    const memory = readProcMemory(this.pid);
    if (!memory) return;
    this.maxRss = Math.max(this.maxRss, memory.rss);
    this.lastHwm = Math.max(this.lastHwm, memory.hwm);
  }

  memory(): MemorySample {
    this.sample();
    return { maxRssBytes: this.maxRss, peakRssBytes: this.lastHwm };
  }

  /** VmRSS right now (bytes), or 0 when the process is gone. */
  currentRss(): number {
    return readProcMemory(this.pid)?.rss ?? 0;
  }

  /** Fail when the child died early (bad config, missing module): its stderr says why. */
  assertRunning(): void {
    if (!this.running) throw new Error(`the worker process exited (code ${this.child.exitCode}):\n${this.stderr}`);
  }

  /** SIGTERM: the worker finishes active jobs and exits 0 (and writes its CPU profile). */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    this.sample();
    clearInterval(this.sampler);
    if (!this.running) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
