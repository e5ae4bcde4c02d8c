import { expect } from 'chai';
import { Command } from 'commander';
import { COMMANDS, registerSummaries } from '../cli/commands/catalog.js';

describe('CLI command catalogue', () => {
  it('the overall help from the catalogue reads exactly as with every command module loaded', async () => {
    const summaries = new Command('mcp-updater');
    registerSummaries(summaries);
    const loaded = new Command('mcp-updater');
    const registrations = new Set(await Promise.all(Object.values(COMMANDS).map((summary) => summary.load())));
    for (const register of registrations) register(loaded);
    expect(summaries.helpInformation()).to.equal(loaded.helpInformation());
    expect(summaries.helpInformation()).to.include('approve [options] <name> [version]').and.include('config  ');
  });

  it('lists every command a module registers, and only those', async () => {
    const loaded = new Command('mcp-updater');
    const registrations = new Set(await Promise.all(Object.values(COMMANDS).map((summary) => summary.load())));
    for (const register of registrations) register(loaded);
    expect(loaded.commands.map((command) => command.name()).sort()).to.deep.equal(Object.keys(COMMANDS).sort());
  });
});
