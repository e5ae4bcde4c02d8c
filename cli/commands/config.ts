/*
 * `mcp-updater config check`: validate the environment and the inventory exactly as `start` does.
 * Exit 0, or 78 with the variable or the inventory key at fault.
 */
import type { Command } from 'commander';
import { resolveIndexUrl } from '../../shared/ecosystems/pypiIndex.js';
import { redactUrl } from '../../shared/redact.js';
import { print, printJson } from '../format.js';
import { loadStartupConfig } from '../start.js';
import { jsonOption } from './session.js';

/** `config check --json` (only on success; a failure is exit 78 and one line on stderr). */
export interface ConfigCheckReport {
  ok: true;
  inventory: string;
  servers: string[];
  registry: string;
  /** The Python package index, when the inventory has pypi servers. */
  pypiIndex?: string;
  redisUrl: string;
  queuePrefix: string;
  workers: string[];
  readOnlyApi: boolean;
}

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('configuration commands');
  config
    .command('check')
    .description('validate the environment and the inventory; exit 0, or 78 naming the bad variable or key')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Examples:
  mcp-updater config check
  MCP_SERVERS_CONFIG=./staging.yaml mcp-updater config check
`,
    )
    .action(async (options: { json?: boolean }) => {
      const { config: loaded, inventory } = await loadStartupConfig();
      inventory.close();
      const servers = [...inventory.inventory.servers.keys()].sort();
      // Only an inventory with Python servers needs an index; without one this exits 78 naming PYPI_INDEX_URL.
      const hasPypi = [...inventory.inventory.servers.values()].some((server) => server.ecosystem === 'pypi');
      const pypiIndex = hasPypi ? redactUrl(await resolveIndexUrl()) : undefined;
      const report: ConfigCheckReport = {
        ok: true,
        inventory: loaded.serversConfig,
        servers,
        registry: redactUrl(loaded.apiBaseUrl),
        ...(pypiIndex ? { pypiIndex } : {}),
        redisUrl: redactUrl(loaded.redisUrl),
        queuePrefix: loaded.queuePrefix,
        workers: loaded.workers,
        readOnlyApi: !loaded.apiToken,
      };
      if (options.json) return printJson(report);
      print(`ok: environment valid, ${servers.length} servers in ${loaded.serversConfig}`);
      if (pypiIndex) print(`Python package index ${pypiIndex}`);
      print(`registry ${report.registry}, Redis ${report.redisUrl} (prefix ${loaded.queuePrefix}), workers ${loaded.workers.join(',')}`);
      if (report.readOnlyApi) print('API_TOKEN is not set: the HTTP API will be read-only');
    });
}
