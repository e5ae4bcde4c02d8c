/*
 * A TypeScript child process with an IPC channel (bench/children/*): started through tsx like
 * the product's bin, so the parent's load (the fixture registry, polling) stays out of its CPU.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT, cleanEnv } from './workerProcess.js';

export interface ChildMessage {
  type: string;
  [key: string]: unknown;
}

export class TsxChild {
  readonly process: ChildProcess;
  private readonly messages: ChildMessage[] = [];
  private readonly waiters: Array<() => void> = [];
  private stderr = '';

  constructor(script: string, env: Record<string, string>) {
    this.process = fork(path.join(PROJECT_ROOT, 'bench', 'children', script), [], {
      cwd: PROJECT_ROOT,
      env: cleanEnv(env),
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.process.stderr!.setEncoding('utf8');
    this.process.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.process.on('message', (message: ChildMessage) => {
      this.messages.push(message);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.process.on('exit', () => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** The next message of `type` (messages are kept, so one sent before the call is found). */
  async next(type: string, timeoutMs: number): Promise<ChildMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex((message) => message.type === type);
      if (index >= 0) return this.messages.splice(index, 1)[0]!;
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(
          `child ${this.process.spawnargs.join(' ')} exited (${this.process.exitCode ?? this.process.signalCode}) before "${type}":\n${this.stderr}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`child did not send "${type}" within ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(message: ChildMessage): void {
    this.process.send(message);
  }

  /** Ask it to stop (message `stop`), then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    if (this.process.connected) this.process.send({ type: 'stop' });
    else this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
