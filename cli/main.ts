/*
 * The `mcp-updater` command (commander). `start` composes the roles; every other command talks
 * to Redis through producers/ (or only reads files) and exits 0 ok, 1 failure, 2 usage,
 * 78 configuration error. Commands live in cli/commands/, one file per command or group.
 * A command's module (and what it pulls in: Redis, BullMQ, joi…) is loaded only when that
 * command runs or shows its own help; the overall help and anything unrecognised are answered
 * from the catalogue (cli/commands/catalog.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { PACKAGE_VERSION } from '../shared/packageVersion.js';
import { COMMANDS, registerSummaries, type CommandSummary } from './commands/catalog.js';
import { ROLES, start, type Role } from './start.js';

const HELP_FLAGS = new Set(['-h', '--help']);

/**
 * Which commands argv needs loaded: the named command's (the first argument that is not an
 * option, or `help <name>`), or none: the overall help, `--version` and an unknown command need
 * only the catalogue's summaries.
 */
function commandsNeeded(argv: string[]): CommandSummary[] {
  const args = argv.slice(2);
  const at = args.findIndex((arg) => !arg.startsWith('-'));
  const before = at < 0 ? args : args.slice(0, at);
  if (at < 0 || before.some((arg) => HELP_FLAGS.has(arg))) return [];
  const name = args[at] === 'help' ? args.slice(at + 1).find((arg) => !arg.startsWith('-')) : args[at];
  return name && Object.hasOwn(COMMANDS, name) ? [COMMANDS[name]!] : [];
}

export async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('mcp-updater')
    .description('Keeps a fleet of MCP servers up to date, safely.')
    .version(PACKAGE_VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description('run the scheduler, the workers and the dashboard (npm start = start --role all)')
    .addOption(new Option('--role <role>', 'which part to run').choices(ROLES).default('all'))
    .addHelpText('after', '\nExamples:\n  mcp-updater start\n  WORKERS=stage,activate mcp-updater start --role worker\n')
    .action(async (options: { role: Role }) => {
      await start(options.role);
    });

  const needed = commandsNeeded(argv);
  if (needed.length === 0) registerSummaries(program);
  const registrations = new Set(await Promise.all(needed.map((summary) => summary.load())));
  for (const register of registrations) register(program);

  program.addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 failure (Redis unreachable, a job failed), 2 usage (unknown command, option
or server), 78 configuration error (environment or inventory; the message names the key).

Examples:
  mcp-updater servers
  mcp-updater check --wait
  mcp-updater status memory
  mcp-updater import ~/.cursor/mcp.json --write
`,
  );
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `mcp-updater status memory | head`: the reader has what it wanted; stop quietly, as Unix tools do.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // EXIT.ok and EXIT.usage (exit.ts loads the error classes, and with them BullMQ: not for --help).
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    const { exitCodeFor, reportError } = await import('./exit.js');
    reportError(error);
    // A failed command may leave connections half-open; its answer is final (stderr is
    // synchronous on pipes and files), so leave now.
    process.exit(exitCodeFor(error));
  }
}

await main(process.argv);
