/*
 * `mcp-updater status [name]`: without a name, what every server is doing (state, last check,
 * last error) and how full the queues are; with a name, one server in detail with its settings,
 * version history and recent events. --json prints the read model the HTTP API answers.
 */
import type { Command } from 'commander';
import { summarizeQueues, QueueCounts, type QueueSummary } from '../../dashboard/queue-counts.js';
import type { UpdateEvent } from '../../shared/events.js';
import { relativeTime } from '../../shared/humanTime.js';
import { describeSource } from '../../shared/provenance.js';
import type { QueueName } from '../../shared/queues.js';
import { formatDuration } from '../../shared/schedule.js';
import { sandboxStatus } from '../../shared/sandbox.js';
import { diskSummary, packageLabel, readServerDetail, type ServerDetail, type ServerView } from '../../shared/serverView.js';
import { fields, print, printJson, table, truncate } from '../format.js';
import { availableText, ERROR_COLUMN_WIDTH, sortedServerViews } from './servers.js';
import { jsonOption, withSession, type CliSession } from './session.js';
import { describedAs } from './catalog.js';

/** `status --json`. */
export interface StatusOverview {
  servers: ServerView[];
  queues: Partial<Record<QueueName, QueueSummary>>;
}

/** `status <name> --json`: GET /api/v1/servers/<name> and the server's recent events. */
export interface StatusDetail {
  server: ServerDetail;
  events: UpdateEvent[];
}

/** History entries and events shown by `status <name>`. */
const RECENT = 10;

/** The error when the server failed, else what its last check found. */
function outcome(view: ServerView): string | null {
  const failed = view.state === 'failed' || view.lastCheckResult === 'check failed';
  return view.lastError && failed ? truncate(view.lastError, ERROR_COLUMN_WIDTH) : view.lastCheckResult;
}

async function overview(session: CliSession, json: boolean): Promise<void> {
  const [servers, counts] = await Promise.all([
    sortedServerViews(session.inventory, session.state, session.layout),
    session.client().then((client) => new QueueCounts(client.queue, 0).read()),
  ]);
  const result: StatusOverview = { servers, queues: summarizeQueues(counts) };
  if (json) return printJson(result);
  if (servers.length > 0) {
    print(
      table(
        ['NAME', 'STATE', 'CURRENT', 'AVAILABLE', 'LAST CHECK', 'RESULT'],
        servers.map((view) => [view.name, view.state, view.current, availableText(view), relativeTime(view.lastCheck), outcome(view)]),
      ),
    );
  } else {
    print(`no servers in ${session.inventory.file}\n`);
  }
  // SCHEDULED: jobs due later (each server's next check, retries in backoff), not waiting for a worker.
  print(
    table(
      ['QUEUE', 'WAITING', 'ACTIVE', 'SCHEDULED', 'FAILED', 'COMPLETED'],
      Object.entries(result.queues).map(([name, queue]) => [
        name,
        queue.waiting,
        queue.active,
        queue.delayed,
        queue.failed,
        queue.completed,
      ]),
    ).trimEnd(),
  );
  print(`\n${sandboxStatus().summary} (on this host)`);
}

async function detail(session: CliSession, name: string, json: boolean): Promise<void> {
  const [server, events] = await Promise.all([
    readServerDetail(session.inventory.servers.get(name)!, session.state, session.layout),
    session.events().list({ server: name, limit: RECENT }),
  ]);
  const result: StatusDetail = { server, events };
  if (json) return printJson(result);
  const settings = server.settings;
  print(`${name} (${packageLabel(server)})\n`);
  print(
    fields([
      ['state', server.state],
      ['current', server.current],
      ['previous', server.previous],
      ['latest', server.latest ? `${server.latest} (${server.channel})` : null],
      ['available', server.updateAvailable ? server.candidate : null],
      ['staged', server.staged ? `${server.staged}: mcp-updater approve ${name}` : null],
      ['held by', server.gate ? `${server.gate}: mcp-updater diff ${name}` : null],
      ['last check', server.lastCheck ? `${relativeTime(server.lastCheck)}: ${server.lastCheckResult ?? ''}` : null],
      ['last error', server.lastError],
      ['failed versions', server.failedVersions.join(', ')],
      [
        'policy',
        `${settings.policy}${settings.range ? `, range ${settings.range}` : ''}, min release age ${formatDuration(settings.minReleaseAgeMs)}, `
          + `activation ${settings.activation}, keep ${settings.keep}`,
      ],
      ['schedule', `${settings.schedule} (${settings.timezone})`],
      ['smoke test', settings.smokeTest.enabled ? `on, timeout ${formatDuration(settings.smokeTest.timeoutMs)}` : 'off'],
      ['source', server.source ? describeSource(server.source) : null],
      ['provenance', `${settings.provenance}${settings.repository ? `, repository ${settings.repository}` : ''}`],
      ['launcher', server.launcher],
      ['disk', diskSummary(server.disk, true)],
    ]),
  );
  const history = server.history.slice(0, RECENT);
  print('\nhistory (newest first):');
  print(
    history.length === 0
      ? '  (none)\n'
      : table(
          ['WHEN', 'ACTION', 'FROM', 'TO', 'REASON'],
          history.map((entry) => [
            relativeTime(entry.at),
            entry.action,
            entry.from,
            entry.to,
            entry.approvedBy ? `${entry.reason ?? 'approved'} by ${entry.approvedBy}` : entry.reason,
          ]),
        ),
  );
  print('\nevents (newest first):');
  print(
    events.length === 0
      ? '  (none)'
      : table(
          ['WHEN', 'EVENT', 'VERSION', 'REASON'],
          events.map((event) => [
            relativeTime(event.at),
            event.type,
            event.from ? `${event.from} -> ${event.version ?? '?'}` : event.version,
            event.reason,
          ]),
        ).trimEnd(),
  );
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(describedAs('status'))
    .argument('[name]', 'a server of the inventory')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Queue columns: WAITING jobs wait for a free worker, SCHEDULED ones are due later (each server's
next scheduled check, retries waiting out their backoff); "delayed" in --json.

Examples:
  mcp-updater status
  mcp-updater status memory
  mcp-updater status memory --json | jq '.server.history[0]'
`,
    )
    .action(async (name: string | undefined, options: { json?: boolean }) => {
      const json = Boolean(options.json);
      await withSession((session) => (name ? detail(session, name, json) : overview(session, json)), { servers: name ? [name] : [] });
    });
}
