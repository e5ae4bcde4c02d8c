/*
 * `mcp-updater servers`: every server of the inventory with its versions (installed, latest on
 * its channel, what the policy allows next) from the state the workers keep in Redis.
 */
import type { Command } from 'commander';
import type { Activation, Inventory, Policy } from '../../shared/inventory.js';
import type { ServerState, ServerStateName, StateStore } from '../../shared/state.js';
import { print, printJson, table } from '../format.js';
import { jsonOption, withSession } from './session.js';

/** One server in `servers --json` and `status --json`; absent values are null. */
export interface ServerRow {
  name: string;
  package: string;
  channel: string;
  policy: Policy;
  activation: Activation;
  current: string | null;
  previous: string | null;
  latest: string | null;
  /** The version the policy allows next, when it is not the current one. */
  available: string | null;
  /** Staged and waiting for `approve`. */
  staged: string | null;
  state: ServerStateName;
  lastCheck: string | null;
  lastCheckResult: string | null;
  lastError: string | null;
}

export function serverRow(settings: { name: string; package: string; channel: string; policy: Policy; activation: Activation }, state: ServerState): ServerRow {
  return {
    name: settings.name,
    package: settings.package,
    channel: settings.channel,
    policy: settings.policy,
    activation: settings.activation,
    current: state.current ?? null,
    previous: state.previous ?? null,
    latest: state.latest ?? null,
    available: state.candidate && state.candidate !== state.current ? state.candidate : null,
    staged: state.staged ?? null,
    state: state.state,
    lastCheck: state.lastCheck ?? null,
    lastCheckResult: state.lastCheckResult ?? null,
    lastError: state.lastError ?? null,
  };
}

/** Rows for every inventory server, sorted by name, in one Redis round trip. */
export async function serverRows(inventory: Inventory, state: StateStore): Promise<ServerRow[]> {
  const names = [...inventory.servers.keys()].sort();
  const states = await state.getMany(names);
  return names.map((name, index) => serverRow(inventory.servers.get(name)!, states[index]!));
}

export function registerServersCommand(program: Command): void {
  program.command('servers')
    .description('table of the inventory\'s servers and their versions')
    .addOption(jsonOption())
    .addHelpText('after', `
Columns: CURRENT is active (bin/<name> runs it), LATEST is the channel's dist-tag, AVAILABLE is
what the policy allows next (an update the pipeline is working on or holding back).

Examples:
  mcp-updater servers
  mcp-updater servers --json | jq -r '.servers[] | select(.available) | .name'
`)
    .action(async (options: { json?: boolean }) => {
      await withSession(async ({ inventory, state }) => {
        const rows = await serverRows(inventory, state);
        if (options.json) return printJson({ servers: rows });
        if (rows.length === 0) return print(`no servers in ${inventory.file}`);
        print(table(
          ['NAME', 'PACKAGE', 'CURRENT', 'LATEST', 'AVAILABLE', 'POLICY', 'STATE'],
          rows.map((row) => [
            row.name, row.package, row.current, row.latest,
            row.staged ? `${row.staged} (staged)` : row.available,
            row.policy, row.state,
          ]),
        ).trimEnd());
        const waiting = rows.filter((row) => row.staged).map((row) => `mcp-updater approve ${row.name}`);
        if (waiting.length > 0) print(`\nawaiting approval: ${waiting.join('; ')}`);
      });
    });
}
