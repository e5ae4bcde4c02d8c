/*
 * `mcp-updater import` of Python entries (cli/importPython.ts): uvx, uv tool run, pipx run and
 * python -m become `pypi:` inventory entries that the inventory accepts as they are.
 */
import { expect } from 'chai';
import { convertEntry, importClientConfig, inventoryEntry, inventoryPackages, renderServers } from '../cli/import.js';
import { parseInventory } from '../shared/inventory.js';

const BASE = { schedule: '0 */6 * * *', timezone: 'UTC' };

describe('import: Python entries -> pypi inventory entries', () => {
  const cases: Array<{ title: string; entry: unknown; expected: Record<string, unknown> }> = [
    {
      title: 'uvx <pkg>',
      entry: { command: 'uvx', args: ['mcp-server-fetch'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-fetch', args: [] },
    },
    {
      title: 'uvx <pkg>==<ver> args',
      entry: { command: 'uvx', args: ['mcp-server-time==2025.3.1', '--local-timezone=UTC'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-time', version: '2025.3.1', args: ['--local-timezone=UTC'] },
    },
    {
      title: 'uvx <pkg>@<ver>',
      entry: { command: '/opt/homebrew/bin/uvx', args: ['mcp-server-git@1.0.0', '--repository', '/src'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-git', version: '1.0.0', args: ['--repository', '/src'] },
    },
    {
      title: 'uvx with extras and a specifier',
      entry: { command: 'uvx', args: ['demo-mcp[cli]>=1.2,<2'] },
      expected: { ecosystem: 'pypi', package: 'demo-mcp', extras: ['cli'], range: '>=1.2,<2', args: [] },
    },
    {
      title: 'uvx --from <pkg> <command>',
      entry: { command: 'uvx', args: ['--from', 'awslabs.core-mcp-server==1.0.2', 'core-server', '--debug'] },
      expected: { ecosystem: 'pypi', package: 'awslabs.core-mcp-server', version: '1.0.2', command: 'core-server', args: ['--debug'] },
    },
    {
      title: 'uvx --python 3.12',
      entry: { command: 'uvx', args: ['--python', '3.12', 'mcp-server-fetch'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-fetch', python: '==3.12.*', args: [] },
    },
    {
      title: 'uv tool run',
      entry: { command: 'uv', args: ['tool', 'run', 'mcp-server-fetch'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-fetch', args: [] },
    },
    {
      title: 'pipx run <app>==<ver>',
      entry: { command: 'pipx', args: ['run', 'mcp-server-fetch==2025.4.7'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-fetch', version: '2025.4.7', args: [] },
    },
    {
      title: 'pipx run --spec <pkg> <app>',
      entry: { command: 'pipx', args: ['run', '--spec', 'demo-tools', 'demo-mcp', 'serve'] },
      expected: { ecosystem: 'pypi', package: 'demo-tools', command: 'demo-mcp', args: ['serve'] },
    },
    {
      title: 'python -m of a known server',
      entry: { command: 'python3', args: ['-m', 'mcp_server_fetch', '--ignore-robots-txt'] },
      expected: { ecosystem: 'pypi', package: 'mcp-server-fetch', args: ['--ignore-robots-txt'] },
    },
  ];
  for (const { title, entry, expected } of cases) {
    it(`recognises ${title}`, () => {
      const { warnings: _warnings, ...fields } = convertEntry(entry) as Record<string, unknown>;
      expect(fields).to.deep.equal(expected);
    });
  }

  const refused: Array<{ title: string; entry: unknown; reason: RegExp }> = [
    {
      title: 'uvx of a git URL',
      entry: { command: 'uvx', args: ['git+https://example.com/x.git'] },
      reason: /is a URL or a path, not a project on the package index/,
    },
    {
      title: 'uvx of a local version',
      entry: { command: 'uvx', args: ['demo==1.0+local'] },
      reason: /"1\.0\+local" of demo is not an exact PEP 440 version/,
    },
    { title: 'uvx without a package', entry: { command: 'uvx', args: ['-q'] }, reason: /uvx without a package/ },
    {
      title: 'uvx with an unknown option',
      entry: { command: 'uvx', args: ['--frobnicate', 'x'] },
      reason: /uvx option --frobnicate is not understood/,
    },
    { title: 'uv run', entry: { command: 'uv', args: ['run', 'server.py'] }, reason: /runs through uv but not `uv tool run`/ },
    { title: 'python of a script', entry: { command: 'python', args: ['server.py'] }, reason: /runs a script, not a module/ },
  ];
  for (const { title, entry, reason } of refused) {
    it(`refuses ${title}`, () => {
      expect((convertEntry(entry) as { unsupported?: string }).unsupported).to.match(reason);
    });
  }

  it('a whole config: entries become valid inventory entries; one project is imported once; npm and pypi names do not collide', () => {
    const config = {
      mcpServers: {
        fetch: { command: 'uvx', args: ['mcp-server-fetch'] },
        'fetch-again': { command: 'pipx', args: ['run', 'mcp_server_fetch'] },
        time: {
          command: 'uvx',
          args: ['--from', 'mcp-server-time==2025.3.1', 'mcp-server-time', '--local-timezone=UTC'],
          env: { TZ_API_KEY: 'k' },
        },
        'npm-fetch': { command: 'npx', args: ['-y', 'mcp-server-fetch'] },
      },
    };
    const result = importClientConfig(config);
    expect(result.servers.map((server) => server.name)).to.deep.equal(['fetch', 'time', 'npm-fetch']);
    expect(result.skipped).to.deep.include({
      source: 'fetch-again',
      name: 'fetch',
      reason: 'mcp_server_fetch is already in this import as "fetch"',
      useServer: 'fetch',
      args: [],
    });
    expect(inventoryEntry(result.servers[1]!)).to.deep.equal({
      pypi: 'mcp-server-time',
      version: '2025.3.1',
      smokeTest: { args: ['--local-timezone=UTC'], env: { TZ_API_KEY: 'k' } },
    });
    const inventory = parseInventory(renderServers(result.servers, 'claude_desktop_config.json'), 'rendered.yaml', BASE);
    expect(inventory.servers.get('time')).to.include({ ecosystem: 'pypi', package: 'mcp-server-time', version: '2025.3.1' });
    expect(inventory.servers.get('npm-fetch')).to.include({ package: 'mcp-server-fetch' });
    expect(inventory.servers.get('npm-fetch')!.ecosystem).to.equal(undefined);
  });

  it('a project already in the inventory is skipped', () => {
    const existing = inventoryPackages('servers:\n  fetch:\n    pypi: MCP_Server.Fetch\n');
    const result = importClientConfig({ mcpServers: { web: { command: 'uvx', args: ['mcp-server-fetch'] } } }, existing);
    expect(result.servers).to.deep.equal([]);
    expect(result.skipped[0]).to.include({ source: 'web', useServer: 'fetch' });
  });
});
