/*
 * `mcp-updater status [name]`: without a name, what every server is doing (state, last check,
 * last error) and how full the queues are; with a name, one server in detail with its settings,
 * version history and recent events.
 */
import type { Command } from 'commander';
import type { UpdateEvent } from '../../shared/events.js';
import type { ServerSettings } from '../../shared/inventory.js';
import type { HistoryEntry } from '../../shared/layout.js';
import { PIPELINE_QUEUES } from '../../shared/queues.js';
import { redactArguments } from '../../shared/redact.js';
import { formatDuration } from '../../shared/schedule.js';
import { sandboxStatus } from '../../shared/smokeTest.js';
import { fields, print, printJson, relativeTime, table } from '../format.js';
import { serverRow, serverRows, type ServerRow } from './servers.js';
import { jsonOption, withSession, type CliSession } from './session.js';

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
}

/** `status <name> --json`. */
export interface ServerDetail {
  server: ServerRow & {
    failedVersions: string[];
    launcher: string;
    settings: SettingsView;
  };
  history: HistoryEntry[];
  events: UpdateEvent[];
}

/** The settings that decide updates; smoke-test env values are left out (they may be secrets). */
export interface SettingsView {
  schedule: string;
  timezone: string;
  channel: string;
  range: string | null;
  version: string | null;
  bin: string | null;
  policy: string;
  minReleaseAge: string;
  activation: string;
  keep: number;
  smokeTest: { enabled: boolean; timeout: string; args: string[]; envKeys: string[] };
}

const RECENT = 10;

export function settingsView(settings: ServerSettings): SettingsView {
  return {
    schedule: settings.schedule,
    timezone: settings.timezone,
    channel: settings.channel,
    range: settings.range ?? null,
    version: settings.version ?? null,
    bin: settings.bin ?? null,
    policy: settings.policy,
    minReleaseAge: formatDuration(settings.minReleaseAgeMs),
    activation: settings.activation,
    keep: settings.keep,
    smokeTest: {
      enabled: settings.smokeTest.enabled,
      timeout: formatDuration(settings.smokeTest.timeoutMs),
      args: redactArguments(settings.smokeTest.args),
      envKeys: Object.keys(settings.smokeTest.env).sort(),
    },
  };
}

async function queueCounts(session: CliSession): Promise<Record<string, QueueCounts>> {
  const entries = await Promise.all(PIPELINE_QUEUES.map(async (name) => {
    const counts = await session.client.queue[name].getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
    return [name, {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
    }] as const;
  }));
  return Object.fromEntries(entries);
}

async function overview(session: CliSession, json: boolean): Promise<void> {
  const [rows, queues] = await Promise.all([serverRows(session.inventory, session.state), queueCounts(session)]);
  if (json) return printJson({ servers: rows, queues });
  if (rows.length > 0) {
    print(table(
      ['NAME', 'STATE', 'CURRENT', 'AVAILABLE', 'LAST CHECK', 'RESULT'],
      rows.map((row) => [
        row.name, row.state, row.current,
        row.staged ? `${row.staged} (staged)` : row.available,
        relativeTime(row.lastCheck),
        row.lastError && (row.state === 'failed' || row.lastCheckResult === 'check failed') ? row.lastError : row.lastCheckResult,
      ]),
    ));
  } else {
    print(`no servers in ${session.inventory.file}\n`);
  }
  print(table(
    ['QUEUE', 'WAITING', 'ACTIVE', 'DELAYED', 'FAILED', 'COMPLETED'],
    Object.entries(queues).map(([name, counts]) => [name, counts.waiting, counts.active, counts.delayed, counts.failed, counts.completed]),
  ).trimEnd());
  print(`\n${sandboxStatus().summary} (on this host)`);
}

async function detail(session: CliSession, name: string, json: boolean): Promise<void> {
  const settings = session.inventory.servers.get(name)!;
  const [state, history, events] = await Promise.all([
    session.state.get(name),
    session.state.history(name, RECENT),
    session.events().list({ server: name, limit: RECENT }),
  ]);
  const result: ServerDetail = {
    server: {
      ...serverRow(settings, state),
      failedVersions: state.failedVersions,
      launcher: session.layout.launcher(name),
      settings: settingsView(settings),
    },
    history,
    events,
  };
  if (json) return printJson(result);
  const row = result.server;
  const view = row.settings;
  print(`${name} (${row.package})\n`);
  print(fields([
    ['state', row.state],
    ['current', row.current],
    ['previous', row.previous],
    ['latest', row.latest ? `${row.latest} (${view.channel})` : null],
    ['available', row.available],
    ['staged', row.staged ? `${row.staged}: mcp-updater approve ${name}` : null],
    ['last check', row.lastCheck ? `${relativeTime(row.lastCheck)}: ${row.lastCheckResult ?? ''}` : null],
    ['last error', row.lastError],
    ['failed versions', row.failedVersions.join(', ')],
    ['policy', `${view.policy}${view.range ? `, range ${view.range}` : ''}, min release age ${view.minReleaseAge}, activation ${view.activation}, keep ${view.keep}`],
    ['schedule', `${view.schedule} (${view.timezone})`],
    ['smoke test', view.smokeTest.enabled ? `on, timeout ${view.smokeTest.timeout}` : 'off'],
    ['launcher', row.launcher],
  ]));
  print('\nhistory (newest first):');
  print(history.length === 0 ? '  (none)\n' : table(
    ['WHEN', 'ACTION', 'FROM', 'TO', 'REASON'],
    history.map((entry) => [relativeTime(entry.at), entry.action, entry.from, entry.to, entry.reason]),
  ));
  print('\nevents (newest first):');
  print(events.length === 0 ? '  (none)' : table(
    ['WHEN', 'EVENT', 'VERSION', 'REASON'],
    events.map((event) => [relativeTime(event.at), event.type, event.from ? `${event.from} -> ${event.version ?? '?'}` : event.version, event.reason]),
  ).trimEnd());
}

export function registerStatusCommand(program: Command): void {
  program.command('status')
    .description('what the servers and the queues are doing; with a name, one server in detail')
    .argument('[name]', 'a server of the inventory')
    .addOption(jsonOption())
    .addHelpText('after', `
Examples:
  mcp-updater status
  mcp-updater status memory
  mcp-updater status memory --json | jq '.history[0]'
`)
    .action(async (name: string | undefined, options: { json?: boolean }) => {
      const json = Boolean(options.json);
      await withSession((session) => (name ? detail(session, name, json) : overview(session, json)), { servers: name ? [name] : [] });
    });
}
