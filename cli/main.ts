/*
 * The `mcp-updater` command (commander). `start` composes the roles; every other command talks
 * to Redis through producers/ and exits 0 ok, 1 failure, 2 usage, 78 configuration error.
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, exitCodeFor, reportError } from './exit.js';
import { loadStartupConfig, ROLES, start, type Role } from './start.js';

export function buildProgram(): Command {
  const program = new Command('mcp-updater')
    .description('Keeps a fleet of MCP servers up to date, safely.')
    .showHelpAfterError()
    .exitOverride();

  program.command('start')
    .description('run the scheduler, the workers and the dashboard (npm start = start --role all)')
    .addOption(new Option('--role <role>', 'which part to run').choices(ROLES).default('all'))
    .addHelpText('after', '\nExamples:\n  mcp-updater start\n  WORKERS=stage,activate mcp-updater start --role worker\n')
    .action(async (options: { role: Role }) => {
      await start(options.role);
    });

  const config = program.command('config').description('configuration commands');
  config.command('check')
    .description('validate the environment and the inventory; exit 0, or 78 with the bad key')
    .action(async () => {
      const { config: loaded, inventory } = await loadStartupConfig();
      process.stdout.write(`ok: environment valid, ${inventory.inventory.servers.size} servers in ${loaded.serversConfig}\n`);
    });

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
    process.exitCode = exitCodeFor(error);
  }
}

await main(process.argv);
