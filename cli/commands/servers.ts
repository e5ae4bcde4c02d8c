/*
 * `mcp-updater servers`: every server of the inventory with its versions (installed, latest on
 * its channel, what the policy allows next) and its last error, from the state the workers keep
 * in Redis; --json prints the read model GET /api/v1/servers answers (shared/serverView.ts).
 */
import type { Command } from 'commander';
import type { Inventory } from '../../shared/inventory.js';
import type { InstallLayout } from '../../shared/layout.js';
import { packageLabel, readServerViews, type ServerView } from '../../shared/serverView.js';
import type { StateStore } from '../../shared/state.js';
import { print, printJson, table, truncate } from '../format.js';
import { jsonOption, withSession } from './session.js';
import { describedAs } from './catalog.js';

/** Characters of an error shown in a table; `status <name>` shows all of it. */
export const ERROR_COLUMN_WIDTH = 60;

/** Every inventory server, sorted by name, in one Redis round trip. */
export async function sortedServerViews(inventory: Inventory, state: StateStore, layout: InstallLayout): Promise<ServerView[]> {
  const names = [...inventory.servers.keys()].sort();
  return readServerViews(
    names.map((name) => inventory.servers.get(name)!),
    state,
    layout,
  );
}

/** The AVAILABLE cell: a staged version, else the update the policy allows. */
export function availableText(view: ServerView): string | null {
  if (view.staged) return `${view.staged} (staged)`;
  return view.updateAvailable ? view.candidate : null;
}

export function registerServersCommand(program: Command): void {
  program
    .command('servers')
    .description(describedAs('servers'))
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Columns: CURRENT is active (bin/<name> runs it), LATEST is the channel's dist-tag, AVAILABLE is
what the policy allows next (an update the pipeline is working on or holding back), LAST ERROR
is cut to ${ERROR_COLUMN_WIDTH} characters (mcp-updater status <name> shows all of it).

Examples:
  mcp-updater servers
  mcp-updater servers --json | jq -r '.servers[] | select(.updateAvailable) | .name'
`,
    )
    .action(async (options: { json?: boolean }) => {
      await withSession(async ({ inventory, state, layout }) => {
        const views = await sortedServerViews(inventory, state, layout);
        if (options.json) return printJson({ servers: views });
        if (views.length === 0) return print(`no servers in ${inventory.file}`);
        print(
          table(
            ['NAME', 'PACKAGE', 'CURRENT', 'LATEST', 'AVAILABLE', 'POLICY', 'STATE', 'LAST ERROR'],
            views.map((view) => [
              view.name,
              packageLabel(view),
              view.current,
              view.latest,
              availableText(view),
              view.policy,
              view.state,
              truncate(view.lastError, ERROR_COLUMN_WIDTH),
            ]),
          ).trimEnd(),
        );
        const waiting = views.filter((view) => view.staged).map((view) => `mcp-updater approve ${view.name}`);
        if (waiting.length > 0) print(`\nawaiting approval: ${waiting.join('; ')}`);
      });
    });
}
