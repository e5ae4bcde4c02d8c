/*
 * `mcp-updater import <client-config.json> [--write]`: print the inventory entries for a client
 * config's npm-based MCP servers (and why the others cannot be managed); with --write add them to
 * the inventory file, keeping its comments, and print the launcher each client entry should use.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigurationError } from '../../shared/errors.js';
import { inventoryDefaults, parseInventory } from '../../shared/inventory.js';
import { InstallLayout, writeFileAtomic } from '../../shared/layout.js';
import { UsageError } from '../exit.js';
import { note, print, printJson } from '../format.js';
import {
  importClientConfig,
  inventoryEntry,
  inventoryPackages,
  mergeIntoInventory,
  parseJsonc,
  renderServers,
  type ClientFormat,
  type ImportedServer,
} from '../import.js';
import { cliConfig, jsonOption } from './session.js';
import { describedAs } from './catalog.js';

/** `import --json`. */
export interface ImportReport {
  file: string;
  format: ClientFormat;
  inventory: string;
  written: boolean;
  servers: Array<{
    name: string;
    source: string;
    package: string;
    /** What is (or would be) written under servers.<name>. */
    entry: Record<string, unknown>;
    secretKeys: string[];
    warnings: string[];
    launcher: string;
  }>;
  /** Entries not added; `launcher` (with `args`) is what the client entry can use when an existing server covers it. */
  skipped: Array<{ source: string; name: string; reason: string; launcher: string | null; args: string[] }>;
  unsupported: Array<{ source: string; reason: string }>;
}

const NEW_INVENTORY = `# mcp-updater inventory: which MCP servers to keep up to date, and how (README, "Inventory").
# Validate it with \`mcp-updater config check\`.
servers:
`;

async function readText(file: string, what: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && what === 'inventory') return undefined;
    throw new UsageError(
      `cannot read the ${what} ${file} (${code ?? (error as Error).message})`,
      "pass the path of the client's config file, e.g. ~/Library/Application Support/Claude/claude_desktop_config.json",
    );
  }
}

function clientSnippet(source: string, launcher: string, args: string[]): string {
  return `  ${JSON.stringify(source)}: ${JSON.stringify({ command: launcher, ...(args.length > 0 ? { args } : {}) })}`;
}

export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description(describedAs('import'))
    .argument('<client-config.json>', "the client's config file (JSON; comments and trailing commas allowed)")
    .option('--write', 'add the entries to the inventory file (MCP_SERVERS_CONFIG), keeping its comments')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Recognised: "npx [-y] <package>[@version|@tag|@range] [args…]" (also "npx -p <package> <bin>"),
the same through pnpx, "pnpm dlx", bunx and "bun x", and "node …/node_modules/<package>/…". uvx,
docker, remote (url) and other entries are listed with the reason they cannot be managed. Env
values of the entries are copied into smokeTest.env of the inventory, secrets included (the output
says which). Without --write the entries are printed as YAML on stdout; notes go to stderr.

Client config files:
  Claude Desktop  ~/Library/Application Support/Claude/claude_desktop_config.json (macOS)
                  %APPDATA%\\Claude\\claude_desktop_config.json (Windows)
  Cursor          ~/.cursor/mcp.json, <project>/.cursor/mcp.json
  VS Code         <project>/.vscode/mcp.json, settings.json ("mcp": {"servers": …})

Examples:
  mcp-updater import ~/.cursor/mcp.json
  mcp-updater import claude_desktop_config.json --write
`,
    )
    .action(async (file: string, options: { write?: boolean; json?: boolean }) => {
      const config = cliConfig();
      const clientFile = path.resolve(file);
      const clientText = (await readText(clientFile, 'client config'))!;
      const inventoryText = await readText(config.serversConfig, 'inventory');
      if (options.write && inventoryText !== undefined) {
        // Never write into a file that does not validate: the running set would refuse it anyway.
        parseInventory(inventoryText, config.serversConfig, inventoryDefaults(config));
      }
      const existing = inventoryText === undefined ? new Map<string, string>() : inventoryPackages(inventoryText);
      const result = importClientConfig(parseJsonc(clientText), existing);
      const origin = path.basename(clientFile);
      const layout = new InstallLayout(config);

      let written = false;
      if (options.write && result.servers.length > 0) {
        const merged = mergeIntoInventory(inventoryText ?? NEW_INVENTORY, result.servers, origin);
        try {
          parseInventory(merged.text, config.serversConfig, inventoryDefaults(config));
        } catch (error) {
          throw new ConfigurationError(`the imported entries would make ${config.serversConfig} invalid: ${(error as Error).message}`, {
            hint: 'nothing was written; fix the client entry or add the server by hand',
          });
        }
        await writeFileAtomic(config.serversConfig, merged.text, await inventoryMode(config.serversConfig, result.servers));
        written = true;
      }

      const report: ImportReport = {
        file: clientFile,
        format: result.format,
        inventory: config.serversConfig,
        written,
        servers: result.servers.map((server) => ({
          name: server.name,
          source: server.source,
          package: server.package,
          entry: inventoryEntry(server),
          secretKeys: server.secretKeys,
          warnings: server.warnings,
          launcher: layout.launcher(server.name),
        })),
        skipped: result.skipped.map((skip) => ({
          source: skip.source,
          name: skip.name,
          reason: skip.reason,
          launcher: skip.useServer ? layout.launcher(skip.useServer) : null,
          args: skip.args,
        })),
        unsupported: result.unsupported,
      };
      if (options.json) return printJson(report);
      printHuman(report, result.servers, origin, options.write ? written : undefined);
    });
}

/**
 * The inventory's file mode after an import: owner-only (0600) once it holds an imported secret;
 * otherwise the mode it had (a new file: 0644).
 */
async function inventoryMode(file: string, servers: ImportedServer[]): Promise<number> {
  if (servers.some((server) => server.secretKeys.length > 0)) return 0o600;
  try {
    return (await fs.stat(file)).mode & 0o777;
  } catch {
    return 0o644;
  }
}

function printHuman(report: ImportReport, servers: ImportedServer[], origin: string, written: boolean | undefined): void {
  if (written === undefined) print(renderServers(servers, origin).trimEnd());
  for (const server of servers) {
    for (const warning of server.warnings) note(`note: ${server.source}: ${warning}`);
    if (server.secretKeys.length > 0) {
      note(
        `note: ${server.source}: ${server.secretKeys.join(', ')} ${written ? (server.secretKeys.length === 1 ? 'is now' : 'are now') : 'would be'} stored in ${report.inventory} in plain text; the file is written readable by its owner only (0600)`,
      );
    }
  }
  for (const skip of report.skipped) note(`skipped ${skip.source}: ${skip.reason}`);
  for (const entry of report.unsupported) note(`cannot manage ${entry.source}: ${entry.reason}`);

  if (written === undefined) {
    if (servers.length > 0)
      note(
        `\n${servers.length === 1 ? '1 entry' : `${servers.length} entries`}; add ${servers.length === 1 ? 'it' : 'them'} with: mcp-updater import ${report.file} --write`,
      );
    return;
  }
  if (!written) {
    print(`nothing added to ${report.inventory}`);
  } else {
    print(`added ${servers.map((server) => server.name).join(', ')} to ${report.inventory}`);
  }
  const useLaunchers = [
    ...servers.map((server) =>
      clientSnippet(server.source, report.servers.find((item) => item.name === server.name)!.launcher, server.args),
    ),
    ...report.skipped.filter((skip) => skip.launcher).map((skip) => clientSnippet(skip.source, skip.launcher!, skip.args)),
  ];
  if (useLaunchers.length > 0) {
    print(
      `\nPoint the client entries at the launchers (keep their "env"; the launcher appears after the first install, e.g. mcp-updater check <name> --wait):`,
    );
    print(useLaunchers.join(',\n'));
  }
}
