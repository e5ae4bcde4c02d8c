/*
 * `mcp-updater config check`: validate the environment and the inventory exactly as `start` does.
 * Exit 0, or 78 with the variable or the inventory key at fault.
 */
import type { Command } from 'commander';
import { redactUrl } from '../../shared/redact.js';
import { print, printJson } from '../format.js';
import { describeIndex, loadStartupConfig } from '../start.js';
import { jsonOption } from './session.js';
import { describedAs } from './catalog.js';

/** `config check --json` (only on success; a failure is exit 78 and one line on stderr). */
export interface ConfigCheckReport {
  ok: true;
  inventory: string;
  servers: string[];
  registry: string;
  /** The Python package index, when the inventory has pypi servers (credentials redacted). */
  pypiIndex?: string;
  /** Where it came from: PYPI_INDEX_URL, PIP_INDEX_URL or pip's global.index-url. */
  pypiIndexSource?: string;
  redisUrl: string;
  queuePrefix: string;
  workers: string[];
  readOnlyApi: boolean;
}

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description(describedAs('config'));
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
      // Only an inventory with Python servers needs an index; a missing or bad one exits 78 naming its variable.
      const { config: loaded, inventory, pypiIndex } = await loadStartupConfig();
      inventory.close();
      const servers = [...inventory.inventory.servers.keys()].sort();
      const report: ConfigCheckReport = {
        ok: true,
        inventory: loaded.serversConfig,
        servers,
        registry: redactUrl(loaded.apiBaseUrl),
        ...(pypiIndex ? { pypiIndex: redactUrl(pypiIndex.url), pypiIndexSource: pypiIndex.source } : {}),
        redisUrl: redactUrl(loaded.redisUrl),
        queuePrefix: loaded.queuePrefix,
        workers: loaded.workers,
        readOnlyApi: !loaded.apiToken,
      };
      if (options.json) return printJson(report);
      print(`ok: environment valid, ${servers.length} servers in ${loaded.serversConfig}`);
      if (pypiIndex) print(describeIndex(pypiIndex, redactUrl));
      print(`registry ${report.registry}, Redis ${report.redisUrl} (prefix ${loaded.queuePrefix}), workers ${loaded.workers.join(',')}`);
      if (report.readOnlyApi) print('API_TOKEN is not set: the HTTP API will be read-only');
    });
}
