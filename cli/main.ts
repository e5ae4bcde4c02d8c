/*
 * The `mcp-updater` command (commander). `start` composes the roles; every other command talks
 * to Redis through producers/ (or only reads files) and exits 0 ok, 1 failure, 2 usage,
 * 78 configuration error. Commands live in cli/commands/, one file per command or group.
 */
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { registerActivationCommands } from './commands/activation.js';
import { registerCheckCommand } from './commands/check.js';
import { registerCleanupCommand } from './commands/cleanup.js';
import { registerConfigCommand } from './commands/config.js';
import { registerDiffCommand } from './commands/diff.js';
import { registerImportCommand } from './commands/import.js';
import { registerServersCommand } from './commands/servers.js';
import { registerStatusCommand } from './commands/status.js';
import { EXIT, exitCodeFor, reportError } from './exit.js';
import { ROLES, start, type Role } from './start.js';

function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export function buildProgram(): Command {
  const program = new Command('mcp-updater')
    .description('Keeps a fleet of MCP servers up to date, safely.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .exitOverride();

  program.command('start')
    .description('run the scheduler, the workers and the dashboard (npm start = start --role all)')
    .addOption(new Option('--role <role>', 'which part to run').choices(ROLES).default('all'))
    .addHelpText('after', '\nExamples:\n  mcp-updater start\n  WORKERS=stage,activate mcp-updater start --role worker\n')
    .action(async (options: { role: Role }) => {
      await start(options.role);
    });

  registerServersCommand(program);
  registerCheckCommand(program);
  registerStatusCommand(program);
  registerActivationCommands(program);
  registerDiffCommand(program);
  registerCleanupCommand(program);
  registerImportCommand(program);
  registerConfigCommand(program);

  program.addHelpText('after', `
Exit codes: 0 ok, 1 failure (Redis unreachable, a job failed), 2 usage (unknown command, option
or server), 78 configuration error (environment or inventory; the message names the key).

Examples:
  mcp-updater servers
  mcp-updater check --wait
  mcp-updater status memory
  mcp-updater import ~/.cursor/mcp.json --write
`);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    reportError(error);
    // A failed command may leave connections half-open; its answer is final (stderr is
    // synchronous on pipes and files), so leave now.
    process.exit(exitCodeFor(error));
  }
}

await main(process.argv);
