/*
 * The scheduler: one BullMQ Job Scheduler per server (id `check-<server>`, its cron and timezone)
 * plus one for cleanup, kept in line with the inventory. Upserts are idempotent, so several
 * scheduler processes at once are harmless. Servers with nothing installed get a check at once,
 * so the first `npm start` installs the shipped inventory.
 */
import type { Queue } from 'bullmq';
import type winston from 'winston';
import type { Config } from '../shared/config.js';
import { describeError } from '../shared/errors.js';
import type { Inventory, InventoryWatcher } from '../shared/inventory.js';
import type { InstallLayout } from '../shared/layout.js';
import { checkJobOptions, type CheckJobData, type CleanupJobData } from '../shared/queues.js';
import type { StateStore } from '../shared/state.js';

export const CHECK_SCHEDULER_PREFIX = 'check-';
export const CLEANUP_SCHEDULER_ID = 'cleanup';

export function checkSchedulerId(server: string): string {
  return `${CHECK_SCHEDULER_PREFIX}${server}`;
}

export interface SchedulerDeps {
  config: Config;
  inventory: InventoryWatcher;
  checkQueue: Queue<CheckJobData>;
  cleanupQueue: Queue<CleanupJobData>;
  state: StateStore;
  layout: InstallLayout;
  log: winston.Logger;
}

export interface SyncReport {
  upserted: string[];
  unchanged: string[];
  removed: string[];
  firstChecks: string[];
}

export class Scheduler {
  private syncing: Promise<SyncReport> | undefined;
  private pending = false;
  private stopped = false;

  constructor(private readonly deps: SchedulerDeps) {}

  /** Sync now and again on every valid inventory change; a bad edit keeps the running set. */
  async start(): Promise<SyncReport> {
    const { inventory, log } = this.deps;
    inventory.onChange(() => {
      this.sync().catch((error: unknown) => log.error(`scheduler sync failed: ${describeError(error)}`));
    });
    inventory.onError((error) => {
      log.error(`inventory reload refused, keeping the running set: ${describeError(error)}`);
    });
    inventory.watch();
    return this.sync();
  }

  /** SIGHUP: re-read the inventory; sync even when the file did not change. */
  async reload(): Promise<SyncReport> {
    const changed = await this.deps.inventory.reload();
    return changed ? (this.syncing ?? this.sync()) : this.sync();
  }

  /**
   * No more syncs: a queued one is dropped, later calls do nothing. Resolves once the running one
   * has ended, so the queues can be closed under no sync (shutdown, tests).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pending = false;
    await this.syncing?.catch(() => undefined);
  }

  /** Serialised: a change during a sync queues exactly one more sync. After stop(), nothing. */
  sync(): Promise<SyncReport> {
    if (this.stopped) return Promise.resolve({ upserted: [], unchanged: [], removed: [], firstChecks: [] });
    if (this.syncing) {
      this.pending = true;
      return this.syncing;
    }
    this.syncing = this.syncOnce(this.deps.inventory.inventory).finally(() => {
      this.syncing = undefined;
      if (this.pending) {
        this.pending = false;
        void this.sync().catch(() => undefined);
      }
    });
    return this.syncing;
  }

  private async syncOnce(inventory: Inventory): Promise<SyncReport> {
    const { checkQueue, cleanupQueue, config, log } = this.deps;
    const report: SyncReport = { upserted: [], unchanged: [], removed: [], firstChecks: [] };
    const existing = new Map((await checkQueue.getJobSchedulers(0, -1, true)).map((scheduler) => [scheduler.key, scheduler]));
    for (const settings of inventory.servers.values()) {
      const id = checkSchedulerId(settings.name);
      const known = existing.get(id);
      existing.delete(id);
      if (known && known.pattern === settings.schedule && (known.tz ?? 'UTC') === settings.timezone) {
        report.unchanged.push(settings.name);
        continue;
      }
      await checkQueue.upsertJobScheduler(
        id,
        { pattern: settings.schedule, tz: settings.timezone },
        { name: 'check', data: { server: settings.name, reason: 'scheduled' } },
      );
      report.upserted.push(settings.name);
    }
    for (const id of existing.keys()) {
      if (!id.startsWith(CHECK_SCHEDULER_PREFIX)) continue;
      await checkQueue.removeJobScheduler(id);
      report.removed.push(id.slice(CHECK_SCHEDULER_PREFIX.length));
    }
    await cleanupQueue.upsertJobScheduler(
      CLEANUP_SCHEDULER_ID,
      { pattern: config.cleanupSchedule, tz: config.timezone },
      { name: 'cleanup', data: { reason: 'scheduled' } },
    );
    report.firstChecks = await this.checkUninstalled(inventory);
    log.info(
      `scheduler synced: ${report.upserted.length} upserted, ${report.unchanged.length} unchanged, ${report.removed.length} removed, ${report.firstChecks.length} first checks`,
      { report: { ...report, unchanged: report.unchanged.length } },
    );
    return report;
  }

  private async checkUninstalled(inventory: Inventory): Promise<string[]> {
    const names = [...inventory.servers.keys()];
    const states = await this.deps.state.getMany(names);
    const uninstalled: string[] = [];
    for (const state of states) {
      if (state.current || state.state === 'failed') continue;
      if (await this.deps.layout.currentVersion(state.name)) continue;
      uninstalled.push(state.name);
    }
    await this.deps.checkQueue.addBulk(
      uninstalled.map((server) => ({
        name: 'check',
        data: { server, reason: 'first install' },
        opts: checkJobOptions(server),
      })),
    );
    return uninstalled;
  }
}
