/*
 * `mcp-updater approve <name> [version]` and `mcp-updater rollback <name> [--to <version>]`: both
 * enqueue an activate job (the activate worker does the switch, under the server's lock). With
 * --wait the command waits for the job and prints the switch.
 */
import { Option, type Command } from 'commander';
import semver from 'semver';
import { activationFacts, planActivation } from '../../shared/activation.js';
import { ConflictError } from '../../shared/errors.js';
import type { ActivateAction } from '../../shared/queues.js';
import { EXIT } from '../exit.js';
import { note, print, printJson } from '../format.js';
import { jsonOption, parseTimeout, withSession, type CliSession } from './session.js';
import { describedAs } from './catalog.js';

/** `approve --json` and `rollback --json`. */
export interface ActivationReport {
  server: string;
  action: 'approve' | 'rollback';
  /** The version asked for; null for a rollback to the previous version. */
  version: string | null;
  jobId: string;
  queue: 'activate';
  /** With --wait: how the job ended. */
  result?: { outcome: 'activated' | 'unchanged' | 'failed'; from: string | null; to: string | null; reason: string | null };
}

interface ActivationOptions {
  wait?: boolean;
  json?: boolean;
  timeout: number;
}

function requestedBy(): string {
  return `cli:${process.env.USER ?? process.env.LOGNAME ?? 'unknown'}`;
}

async function finish(session: CliSession, report: ActivationReport, options: ActivationOptions): Promise<void> {
  if (options.wait) {
    try {
      const result = await (await session.client()).waitFor('activate', report.jobId, options.timeout);
      report.result = { outcome: result.outcome, from: result.from ?? null, to: result.version, reason: null };
    } catch (error) {
      const state = await session.state.get(report.server);
      report.result = { outcome: 'failed', from: null, to: state.current ?? null, reason: (error as Error).message };
      process.exitCode = EXIT.failure;
    }
  }
  if (options.json) return printJson(report);
  const target = report.version ?? 'the previous version';
  if (!report.result) {
    return print(`queued ${report.action} of ${report.server} to ${target} (job ${report.jobId}); see mcp-updater status ${report.server}`);
  }
  const { outcome, from, to, reason } = report.result;
  if (outcome === 'failed') return note(`mcp-updater: ${report.action} of ${report.server} to ${target} failed: ${reason}`);
  print(
    outcome === 'unchanged'
      ? `${report.server}: ${to} was already active`
      : `${report.server}: ${from ?? '(none)'} -> ${to} (${report.action === 'approve' ? 'approved' : direction(from, to)})`,
  );
}

/** How a switch moved: "downgraded" for a move down, "moved to" a newer version. */
function direction(from: string | null, to: string | null): string {
  if (!from || !to || !semver.valid(from) || !semver.valid(to)) return 'switched';
  return semver.lt(to, from) ? 'downgraded' : 'moved to a newer version';
}

/** The activation rules, before anything is enqueued: the target, or the reason it is refused (exit 1). */
async function planFor(
  session: CliSession,
  server: string,
  action: Exclude<ActivateAction, 'activate'>,
  version?: string,
): Promise<string> {
  const plan = planActivation({ server, action, version }, await activationFacts(session.state, session.layout, server));
  // As the API answers: nothing to switch is a refusal, not a job that does nothing.
  if (plan.kind === 'unchanged') throw new ConflictError(`${server} ${plan.target} is already the active version`);
  return plan.target;
}

const waitOptions = (command: Command) =>
  command
    .option('--wait', 'wait for the switch and print it (exit 1 if it fails)')
    .addOption(new Option('--timeout <duration>', 'with --wait: give up after this long').default(5 * 60_000, '5m').argParser(parseTimeout))
    .addOption(jsonOption());

export function registerActivationCommands(program: Command): void {
  waitOptions(
    program
      .command('approve')
      .description(describedAs('approve'))
      .argument('<name>', 'a server of the inventory')
      .argument('[version]', 'the version to activate (default: the one staged for approval)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  mcp-updater approve memory             # the version staged for approval
  mcp-updater approve memory 2026.8.0 --wait
`,
    )
    .action(async (name: string, version: string | undefined, options: ActivationOptions) => {
      await withSession(
        async (session) => {
          const target = await planFor(session, name, 'approve', version);
          const { jobId } = await (
            await session.client()
          ).approve(name, target, requestedBy(), session.inventory.servers.get(name)?.ecosystem);
          await finish(session, { server: name, action: 'approve', version: target, jobId, queue: 'activate' }, options);
        },
        { servers: [name] },
      );
    });

  waitOptions(
    program
      .command('rollback')
      .description(describedAs('rollback'))
      .argument('<name>', 'a server of the inventory')
      .option('--to <version>', 'the version to go back to (re-staged from its backup if cleanup removed it)')
      .option('--reason <text>', 'why, for the audit log'),
  )
    .addHelpText(
      'after',
      `
Examples:
  mcp-updater rollback memory
  mcp-updater rollback memory --to 2026.7.4 --wait
`,
    )
    .action(async (name: string, options: ActivationOptions & { to?: string; reason?: string }) => {
      await withSession(
        async (session) => {
          await planFor(session, name, 'rollback', options.to);
          const { jobId } = await (
            await session.client()
          ).rollback(name, {
            ...(options.to ? { version: options.to } : {}),
            requestedBy: requestedBy(),
            ...(options.reason ? { reason: options.reason } : {}),
            ...(session.inventory.servers.get(name)?.ecosystem ? { ecosystem: session.inventory.servers.get(name)!.ecosystem } : {}),
          });
          await finish(session, { server: name, action: 'rollback', version: options.to ?? null, jobId, queue: 'activate' }, options);
        },
        { servers: [name] },
      );
    });
}
