/*
 * The commands as the overall help lists them, known without loading them: a command's module
 * (and what it pulls in: Redis, joi, winston…) is loaded only to run the command or show its own
 * help. Each module takes its description from here, and test/cli-catalog.test.ts checks that
 * the overall help reads the same either way.
 */
import type { Command } from 'commander';

type Register = (program: Command) => void;

export interface CommandSummary {
  /** Loads the module that registers the command. */
  load: () => Promise<Register>;
  /** The arguments as the help line shows them (`<name> [version]`). */
  args?: string;
  /** Whether the command has options of its own (its help line then says `[options]`). */
  options: boolean;
  description: string;
}

export const COMMANDS: Record<string, CommandSummary> = {
  servers: {
    load: async () => (await import('./servers.js')).registerServersCommand,
    options: true,
    description: "table of the inventory's servers, their versions and last errors",
  },
  check: {
    load: async () => (await import('./check.js')).registerCheckCommand,
    args: '[name...]',
    options: true,
    description: 'check servers for updates now (all when none is named)',
  },
  status: {
    load: async () => (await import('./status.js')).registerStatusCommand,
    args: '[name]',
    options: true,
    description: 'what the servers and the queues are doing; with a name, one server in detail',
  },
  approve: {
    load: async () => (await import('./activation.js')).registerActivationCommands,
    args: '<name> [version]',
    options: true,
    description: 'activate a staged version (servers with activation: manual)',
  },
  rollback: {
    load: async () => (await import('./activation.js')).registerActivationCommands,
    args: '<name>',
    options: true,
    description: 'go back to the previous version (or the one named with --to)',
  },
  diff: {
    load: async () => (await import('./diff.js')).registerDiffCommand,
    args: '<name> [from] [to]',
    options: true,
    description: "what changed in a server's MCP surface (tools, prompts, resources, instructions) between two versions",
  },
  cleanup: {
    load: async () => (await import('./cleanup.js')).registerCleanupCommand,
    options: true,
    description: 'remove old versions, staging leftovers and unneeded backups (active and previous are always kept)',
  },
  import: {
    load: async () => (await import('./import.js')).registerImportCommand,
    args: '<client-config.json>',
    options: true,
    description: 'turn a Claude Desktop / Cursor / VS Code MCP config into inventory entries',
  },
  config: {
    load: async () => (await import('./config.js')).registerConfigCommand,
    options: false,
    description: 'configuration commands',
  },
};

/** The description of a catalogued command, for the module that registers it. */
export function describedAs(name: keyof typeof COMMANDS): string {
  return COMMANDS[name]!.description;
}

/**
 * Register the catalogue's commands as the overall help shows them (name, arguments,
 * description), without their modules: for the overall help and an unknown command's suggestion.
 */
export function registerSummaries(program: Command): void {
  const terms = new Map<Command, string>();
  for (const [name, summary] of Object.entries(COMMANDS)) {
    const command = program.command(name).description(summary.description);
    terms.set(command, [name, ...(summary.options ? ['[options]'] : []), ...(summary.args ? [summary.args] : [])].join(' '));
  }
  const help = program.createHelp();
  program.configureHelp({ subcommandTerm: (command) => terms.get(command) ?? help.subcommandTerm(command) });
}
