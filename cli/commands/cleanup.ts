/*
 * `mcp-updater cleanup [--dry-run]`: enqueue a cleanup job. A dry run waits for the worker's plan
 * and prints what would be removed (old versions, staging leftovers, backup tarballs); a real run
 * returns at once unless --wait is given.
 */
import { Option, type Command } from 'commander';
import type { CleanupResult } from '../../shared/queues.js';
import { EXIT } from '../exit.js';
import { formatBytes } from '../../shared/humanTime.js';
import { note, print, printJson, table } from '../format.js';
import { jsonOption, parseTimeout, withSession } from './session.js';
import { describedAs } from './catalog.js';

/** `cleanup --json`: `result` is the worker's answer, null when the command did not wait. */
export interface CleanupReport {
  jobId: string;
  queue: 'cleanup';
  dryRun: boolean;
  result: CleanupResult | null;
}

interface CleanupOptions {
  dryRun?: boolean;
  wait?: boolean;
  json?: boolean;
  timeout: number;
}

function printPlan(outcome: CleanupResult, dryRun: boolean): void {
  const { removeVersions, removeStaging, removeBackups } = outcome.plan;
  const rows: string[][] = [
    ...removeVersions.map((item) => ['version', `${item.server}@${item.version}`]),
    ...removeStaging.map((dir) => ['staging', dir]),
    ...removeBackups.map((file) => ['backup', file]),
  ];
  if (rows.length === 0) {
    print(dryRun ? 'nothing to remove: every version, staging directory and backup is kept' : 'nothing was removed');
    return;
  }
  const size = dryRun ? outcome.bytesPlanned : outcome.bytesFreed;
  const counts = `${removeVersions.length} versions, ${removeStaging.length} staging directories, ${removeBackups.length} backups`;
  print(
    dryRun
      ? `dry run: would remove ${counts}${size === undefined ? '' : ` (${formatBytes(size)})`}; nothing was changed`
      : `removed ${counts} (${formatBytes(size)} freed)`,
  );
  print(table(['KIND', 'WHAT'], rows).trimEnd());
  for (const skip of outcome.skipped ?? []) {
    print(`kept ${skip.server}${skip.version ? `@${skip.version}` : ''}: ${skip.reason}`);
  }
}

export function registerCleanupCommand(program: Command): void {
  program
    .command('cleanup')
    .description(describedAs('cleanup'))
    .option('--dry-run', 'only show what would be removed (waits for the plan)')
    .option('--wait', 'wait for the cleanup to finish and print what it removed')
    .addOption(
      new Option('--timeout <duration>', 'when waiting: give up after this long').default(5 * 60_000, '5m').argParser(parseTimeout),
    )
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
A worker with cleanup in WORKERS runs the job; the dry run needs one to answer.

Examples:
  mcp-updater cleanup --dry-run
  mcp-updater cleanup --wait
  mcp-updater cleanup --dry-run --json | jq '.result.plan.removeVersions'
`,
    )
    .action(async (options: CleanupOptions) => {
      await withSession(async (session) => {
        const dryRun = Boolean(options.dryRun);
        const { jobId } = await (
          await session.client()
        ).cleanup({
          dryRun,
          reason: 'mcp-updater cleanup (CLI)',
          requestedBy: `cli:${process.env.USER ?? 'unknown'}`,
        });
        const report: CleanupReport = { jobId, queue: 'cleanup', dryRun, result: null };
        if (dryRun || options.wait) {
          try {
            report.result = await (await session.client()).waitFor('cleanup', jobId, options.timeout);
          } catch (error) {
            const message = (error as Error).message;
            const stuck = /timed out/i.test(message)
              ? `no worker finished cleanup job ${jobId} in time: is a worker with cleanup in WORKERS running?`
              : `cleanup job ${jobId} failed: ${message}`;
            if (options.json) printJson(report);
            note(`mcp-updater: ${stuck}`);
            process.exitCode = EXIT.failure;
            return;
          }
        }
        if (options.json) return printJson(report);
        if (!report.result) return print(`queued cleanup (job ${jobId}); results in the cleanup log and mcp-updater status`);
        printPlan(report.result, dryRun);
      });
    });
}
