/*
 * `mcp-updater check [name...] [--wait]`: enqueue checks (all servers when none is named). With
 * --wait, follow each server's chain until it ends — check -> download -> stage -> activate, or
 * an earlier stop (up to date, awaiting approval, failed) — and print what changed.
 *
 * Following uses the chain (docs/ARCHITECTURE.md "Job contract"): a check returns the chain id it
 * started or found alive, and the chain's download, stage and activate jobs all carry that id; a
 * stage says whether its activate job follows or the version waits for approval. Job states are
 * polled; QueueEvents only wake the poller early, so a missed event costs at most one poll interval.
 */
import { Option, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import type { ProducerClient } from '../../producers/client.js';
import type { ActivateResult, CheckResult, QueueName, StageResult } from '../../shared/queues.js';
import { formatDuration } from '../../shared/schedule.js';
import { EXIT } from '../exit.js';
import { note, print, printJson, table } from '../format.js';
import { jsonOption, parseTimeout, withSession, type CliSession } from './session.js';
import { describedAs } from './catalog.js';

export const CHAIN = ['check', 'download', 'stage', 'activate'] as const satisfies readonly QueueName[];
export type ChainStep = (typeof CHAIN)[number];
export type CheckOutcome = 'updated' | 'up-to-date' | 'awaiting-approval' | 'failed' | 'timed-out';

/** One server in `check --wait --json`. */
export interface CheckReport {
  server: string;
  outcome: CheckOutcome;
  /** Active version before the check and after the chain ended. */
  from: string | null;
  to: string | null;
  /** The version the pipeline worked on (the candidate), if any. */
  version: string | null;
  /** Where the chain ended (failed, timed out) or the last step it ran. */
  step: ChainStep;
  /** The check's summary, or the failure reason. */
  summary: string;
  checkJobId: string;
}

interface Tracker {
  server: string;
  checkJobId: string;
  from: string | null;
  step: ChainStep;
  jobId: string;
  version?: string;
  ended?: { outcome: CheckOutcome; summary: string };
}

const POLL_INTERVAL_MS = 250;
/** Workers stamp lastCheck with their own clock. */
const CLOCK_SKEW_MS = 5_000;
const POLL_BATCH = 200;

/** What following chains needs: the producer client (queues, queue events) and the state. */
export interface FollowerSession {
  client: ProducerClient;
  state: CliSession['state'];
}

export class ChainFollower {
  private readonly trackers: Tracker[];
  private readonly startedAt = Date.now();
  private wakeUp?: () => void;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly session: FollowerSession,
    jobs: Array<{ server: string; jobId: string; from: string | null }>,
    private readonly onEnd: (report: CheckReport) => void = () => undefined,
    private readonly onProgress: (trackers: readonly Tracker[]) => void = () => undefined,
  ) {
    this.trackers = jobs.map((job) => ({ server: job.server, checkJobId: job.jobId, from: job.from, step: 'check', jobId: job.jobId }));
  }

  async follow(timeoutMs: number): Promise<CheckReport[]> {
    const deadline = Date.now() + timeoutMs;
    this.listen();
    try {
      let pending = this.trackers;
      while (pending.length > 0 && Date.now() < deadline) {
        for (let index = 0; index < pending.length; index += POLL_BATCH) {
          await Promise.all(pending.slice(index, index + POLL_BATCH).map((tracker) => this.poll(tracker)));
        }
        this.onProgress(this.trackers);
        pending = this.trackers.filter((tracker) => !tracker.ended);
        if (pending.length > 0) await this.pause(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())));
      }
      for (const tracker of this.trackers.filter((item) => !item.ended)) {
        this.end(
          tracker,
          'timed-out',
          `still at ${tracker.step} (job ${tracker.jobId}) after ${formatDuration(timeoutMs)}: is a worker for the ${tracker.step} queue running?`,
        );
      }
    } finally {
      this.unlisten();
    }
    const after = await this.session.state.getMany(this.trackers.map((tracker) => tracker.server));
    return this.trackers.map((tracker, index) => ({
      server: tracker.server,
      outcome: tracker.ended!.outcome,
      from: tracker.from,
      to: after[index]!.current ?? null,
      version: tracker.version ?? null,
      step: tracker.step,
      summary: tracker.ended!.summary,
      checkJobId: tracker.checkJobId,
    }));
  }

  private async poll(tracker: Tracker): Promise<void> {
    // Follow as far as the chain has already got in this round.
    while (!tracker.ended) {
      const queue = this.session.client.queue[tracker.step];
      const state = await queue.getJobState(tracker.jobId);
      if (state === 'unknown') {
        if (await this.recoverRemoved(tracker)) continue;
        if (!tracker.ended) this.end(tracker, 'failed', `the ${tracker.step} job ${tracker.jobId} is no longer in its queue`);
        return;
      }
      if (state === 'failed') {
        const job = await queue.getJob(tracker.jobId);
        return this.end(tracker, 'failed', job?.failedReason || `the ${tracker.step} job ${tracker.jobId} failed`);
      }
      if (state !== 'completed') return;
      const job = await queue.getJob(tracker.jobId);
      const moved = await this.advance(tracker, job?.returnvalue as unknown);
      if (!moved) return;
    }
  }

  /** The step's job completed: move to the next job (true) or end the chain (false). */
  private async advance(tracker: Tracker, returned: unknown): Promise<boolean> {
    switch (tracker.step) {
      case 'check': {
        const result = (returned ?? {}) as Partial<CheckResult>;
        tracker.version = result.candidate;
        if (!result.chain) {
          this.end(tracker, 'up-to-date', result.summary ?? 'up to date');
          return false;
        }
        return this.move(tracker, 'download', result.chain);
      }
      case 'download':
        // The stage job of a chain carries the chain's id.
        return this.move(tracker, 'stage', tracker.jobId);
      case 'stage': {
        const result = (returned ?? {}) as Partial<StageResult>;
        if (result.next === 'activate') return this.move(tracker, 'activate', tracker.jobId);
        const staged = result.version ?? tracker.version;
        tracker.version = staged;
        this.end(tracker, 'awaiting-approval', `${staged} is staged and waits for approval: mcp-updater approve ${tracker.server}`);
        return false;
      }
      case 'activate': {
        const result = (returned ?? {}) as Partial<ActivateResult>;
        if (result.version) tracker.version = result.version;
        if (result.outcome === 'unchanged') {
          this.end(tracker, 'up-to-date', `${result.version ?? tracker.version} is already active`);
        } else {
          this.end(tracker, 'updated', `${result.from ?? tracker.from ?? '(none)'} -> ${result.version ?? tracker.version}`);
        }
        return false;
      }
    }
  }

  /**
   * A finished job can be trimmed from its queue before this poller sees it (queues keep the last
   * 1000 completed jobs; `check --wait` of thousands of servers outruns that). Then the server's
   * record and the chain id tell where the chain went. True when the chain moved on.
   */
  private async recoverRemoved(tracker: Tracker): Promise<boolean> {
    const state = await this.session.state.get(tracker.server);
    if (tracker.step === 'check') {
      const checkedAt = state.lastCheck ? Date.parse(state.lastCheck) : Number.NaN;
      if (!(checkedAt >= this.startedAt - CLOCK_SKEW_MS)) return false;
      if (state.lastCheckResult === 'check failed') {
        this.end(tracker, 'failed', state.lastError ?? 'the check failed');
        return false;
      }
      const candidate = state.candidate && state.candidate !== state.current ? state.candidate : undefined;
      const returned: Partial<CheckResult> = {
        candidate,
        summary: state.lastCheckResult,
        chain: candidate && state.chainVersion === candidate ? state.chain : undefined,
      };
      return this.advance(tracker, returned);
    }
    const next = CHAIN[CHAIN.indexOf(tracker.step) + 1];
    if (!next) return false;
    if ((await this.session.client.queue[next].getJobState(tracker.jobId)) !== 'unknown') return this.move(tracker, next, tracker.jobId);
    if (tracker.step === 'stage' && state.staged === tracker.version && state.state === 'awaiting-approval') {
      this.end(tracker, 'awaiting-approval', `${state.staged} is staged and waits for approval: mcp-updater approve ${tracker.server}`);
    }
    return false;
  }

  private move(tracker: Tracker, step: ChainStep, jobId: string): true {
    tracker.step = step;
    tracker.jobId = jobId;
    return true;
  }

  private end(tracker: Tracker, outcome: CheckOutcome, summary: string): void {
    tracker.ended = { outcome, summary };
    this.onEnd({
      server: tracker.server,
      outcome,
      from: tracker.from,
      to: null,
      version: tracker.version ?? null,
      step: tracker.step,
      summary,
      checkJobId: tracker.checkJobId,
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Any finished or progressing job of the chain's queues ends the pause early. */
  private listen(): void {
    const wake = () => this.wakeUp?.();
    for (const name of CHAIN) {
      const events = this.session.client.queueEvents(name);
      for (const event of ['completed', 'failed', 'progress'] as const) {
        events.on(event, wake);
        this.listeners.push(() => events.off(event, wake));
      }
    }
  }

  private unlisten(): void {
    for (const remove of this.listeners.splice(0)) remove();
  }
}

/** What the step counts on the bar: a chain that ended early counts as fully done. */
function stepsDone(tracker: Tracker): number {
  return tracker.ended ? CHAIN.length : CHAIN.indexOf(tracker.step);
}

function describe(report: CheckReport): string {
  switch (report.outcome) {
    case 'updated':
      return `updated ${report.from ?? '(none)'} -> ${report.to ?? report.version}`;
    case 'up-to-date':
      return `up to date (${report.summary})`;
    case 'awaiting-approval':
      return report.summary;
    case 'failed':
      return `failed at ${report.step}: ${report.summary}`;
    case 'timed-out':
      return `timed out: ${report.summary}`;
  }
}

interface CheckOptions {
  wait?: boolean;
  json?: boolean;
  force?: boolean;
  reason?: string;
  timeout: number;
}

async function runCheck(session: CliSession, names: string[], options: CheckOptions): Promise<void> {
  const servers = names.length > 0 ? [...new Set(names)] : [...session.inventory.servers.keys()].sort();
  if (servers.length === 0) {
    if (options.json) return printJson(options.wait ? { results: [] } : { jobs: [] });
    return print(`no servers in ${session.inventory.file}: nothing to check`);
  }
  const before = await session.state.getMany(servers);
  const jobOptions = { ...(options.force ? { force: true } : {}), reason: options.reason ?? 'mcp-updater check (CLI)' };
  const client = await session.client();
  const enqueued = servers.length === 1 ? [await client.check(servers[0]!, jobOptions)] : await client.checkAll(servers, jobOptions);
  const jobs = servers.map((server, index) => ({ server, jobId: enqueued[index]!.jobId, from: before[index]!.current ?? null }));

  if (!options.wait) {
    if (options.json) return printJson({ jobs: jobs.map(({ server, jobId }) => ({ server, jobId })) });
    for (const job of jobs) print(`queued check of ${job.server} (job ${job.jobId})`);
    return print('follow it with: mcp-updater status (or check --wait next time)');
  }

  const interactive = !options.json && Boolean(process.stdout.isTTY && process.stderr.isTTY);
  const bar = interactive
    ? new SingleBar({
        format: 'checking {bar} {done}/{servers} servers | {status}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: true,
        stream: process.stderr,
      })
    : undefined;
  bar?.start(jobs.length * CHAIN.length, 0, { done: 0, servers: jobs.length, status: 'check' });
  const follower = new ChainFollower(
    { client, state: session.state },
    jobs,
    (report) => {
      if (!interactive && !options.json) print(`${report.server}: ${describe(report)}`);
    },
    (trackers) => {
      if (!bar) return;
      const running = CHAIN.map((step) => [step, trackers.filter((tracker) => !tracker.ended && tracker.step === step).length] as const)
        .filter(([, count]) => count > 0)
        .map(([step, count]) => `${step} ${count}`);
      bar.update(
        trackers.reduce((sum, tracker) => sum + stepsDone(tracker), 0),
        {
          done: trackers.filter((tracker) => tracker.ended).length,
          status: running.join(' · ') || 'done',
        },
      );
    },
  );
  let reports: CheckReport[];
  try {
    reports = await follower.follow(options.timeout);
  } finally {
    bar?.stop();
  }

  if (options.json) {
    printJson({ results: reports });
  } else if (interactive) {
    print(
      table(
        ['SERVER', 'BEFORE', 'AFTER', 'RESULT'],
        reports.map((report) => [report.server, report.from, report.to, describe(report)]),
      ).trimEnd(),
    );
  }
  const failed = reports.filter((report) => report.outcome === 'failed' || report.outcome === 'timed-out');
  if (!options.json) {
    const count = (outcome: CheckOutcome) => reports.filter((report) => report.outcome === outcome).length;
    print(
      `${reports.length} checked: ${count('updated')} updated, ${count('up-to-date')} up to date, ${count('awaiting-approval')} awaiting approval, ${failed.length} failed`,
    );
  }
  if (failed.length > 0) {
    note(
      `mcp-updater: ${failed.length} of ${reports.length} checks did not finish well: ${failed.map((report) => report.server).join(', ')}`,
    );
    process.exitCode = EXIT.failure;
  }
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description(describedAs('check'))
    .argument('[name...]', 'servers of the inventory')
    .option('--wait', 'follow every check and the update it starts until it ends, then print what changed')
    .addOption(
      new Option('--timeout <duration>', 'with --wait: give up after this long (exit 1)')
        .default(10 * 60_000, '10m')
        .argParser(parseTimeout),
    )
    .option('--force', 'also consider versions that failed before (after you fixed their smoke test settings)')
    .option('--reason <text>', 'why, for the audit log')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Without --wait the checks are queued and the command returns. With --wait a progress bar runs
(one line per server when stdout is not a terminal) until each chain ends: up to date, updated,
awaiting approval (activation: manual) or failed. Exit 1 when any failed or timed out.

Examples:
  mcp-updater check                      # queue a check of every server
  mcp-updater check memory --wait
  mcp-updater check memory filesystem --wait --timeout 5m --json
`,
    )
    .action(async (names: string[], options: CheckOptions) => {
      await withSession((session) => runCheck(session, names, options), { servers: names });
    });
}
