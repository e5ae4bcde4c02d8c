import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import YAML from 'yaml';
import {
  convertEntry,
  importClientConfig,
  inventoryEntry,
  mergeIntoInventory,
  parseJsonc,
  parsePackageSpec,
  renderServers,
  serverNameFor,
  type ImportedServer,
} from '../cli/import.js';
import { parseInventory } from '../shared/inventory.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const CLIENTS = fileURLToPath(new URL('./fixtures/clients/', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/mcp-updater.js', import.meta.url));
const run = promisify(execFile);

async function clientConfig(file: string): Promise<unknown> {
  return parseJsonc(await fs.readFile(path.join(CLIENTS, file), 'utf8'));
}

const BASE = { schedule: '0 */6 * * *', timezone: 'UTC' };

describe('import: client entries -> inventory entries', () => {
  const cases: Array<{ title: string; entry: unknown; expected: Record<string, unknown> }> = [
    {
      title: 'npx -y with a scoped package',
      entry: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-memory'] },
      expected: { package: '@modelcontextprotocol/server-memory', args: [] },
    },
    {
      title: 'npx --yes with a pinned version and server args',
      entry: { command: 'npx', args: ['--yes', '@modelcontextprotocol/server-filesystem@2026.1.14', '/data', '/tmp'] },
      expected: { package: '@modelcontextprotocol/server-filesystem', version: '2026.1.14', args: ['/data', '/tmp'] },
    },
    {
      title: 'npx without -y and an unscoped package with a dist-tag',
      entry: { command: 'npx', args: ['some-mcp@next', '--port', '0'] },
      expected: { package: 'some-mcp', channel: 'next', args: ['--port', '0'] },
    },
    {
      title: 'a range spec',
      entry: { command: 'npx', args: ['-y', 'some-mcp@^1.2.0'] },
      expected: { package: 'some-mcp', range: '^1.2.0', args: [] },
    },
    {
      title: '@latest adds nothing',
      entry: { command: 'npx', args: ['@playwright/mcp@latest', '--headless'] },
      expected: { package: '@playwright/mcp', args: ['--headless'] },
    },
    {
      title: 'npx -p <package> <bin>',
      entry: { command: 'npx', args: ['-y', '-p', '@scope/tools', 'tools-mcp', 'stdio'] },
      expected: { package: '@scope/tools', bin: 'tools-mcp', args: ['stdio'] },
    },
    {
      title: 'npx --package=<package> <bin>',
      entry: { command: 'npx', args: ['--package=tools@1.0.0', 'tools-mcp'] },
      expected: { package: 'tools', version: '1.0.0', bin: 'tools-mcp', args: [] },
    },
    {
      title: 'an absolute npx path and Windows npx.cmd',
      entry: { command: 'C:\\Program Files\\nodejs\\npx.cmd', args: ['-y', 'win-mcp'] },
      expected: { package: 'win-mcp', args: [] },
    },
    {
      title: 'cmd /c npx (Windows)',
      entry: { command: 'cmd', args: ['/c', 'npx', '-y', '@modelcontextprotocol/server-brave-search'] },
      expected: { package: '@modelcontextprotocol/server-brave-search', args: [] },
    },
    {
      title: 'node …/node_modules/<scoped package>/…',
      entry: { command: '/usr/local/bin/node', args: ['/home/me/.npm-global/lib/node_modules/@acme/mcp-tools/dist/index.js', '--verbose'] },
      expected: { package: '@acme/mcp-tools', args: ['--verbose'] },
    },
    {
      title: 'node with options before the script, Windows path, unscoped package',
      entry: { command: 'node', args: ['--enable-source-maps', 'C:\\Users\\me\\AppData\\Roaming\\npm\\node_modules\\mcp-thing\\index.js'] },
      expected: { package: 'mcp-thing', args: [] },
    },
    {
      title: 'a VS Code stdio entry',
      entry: { type: 'stdio', command: 'npx', args: ['-y', 'vs-mcp'] },
      expected: { package: 'vs-mcp', args: [] },
    },
    {
      title: 'npx -y pkg@1.2.3',
      entry: { command: 'npx', args: ['-y', 'pkg@1.2.3'] },
      expected: { package: 'pkg', version: '1.2.3', args: [] },
    },
    {
      title: 'npx with a v-prefixed version (npm reads it as 1.2.3)',
      entry: { command: 'npx', args: ['pkg@v1.2.3'] },
      expected: { package: 'pkg', version: '1.2.3', args: [] },
    },
    {
      title: 'npx with a scoped package and a prerelease version',
      entry: { command: 'npx', args: ['-y', '@acme/mcp@2.0.0-beta.3', '--stdio'] },
      expected: { package: '@acme/mcp', version: '2.0.0-beta.3', args: ['--stdio'] },
    },
    {
      title: 'npx with @* (any version)',
      entry: { command: 'npx', args: ['-y', 'pkg@*'] },
      expected: { package: 'pkg', args: [] },
    },
    {
      title: 'pnpx with a scoped package and a version',
      entry: { command: 'pnpx', args: ['@acme/mcp@1.4.0', '--port', '0'] },
      expected: { package: '@acme/mcp', version: '1.4.0', args: ['--port', '0'] },
    },
    {
      title: 'pnpm dlx with a range',
      entry: { command: 'pnpm', args: ['dlx', '--silent', '@acme/mcp@~1.4'] },
      expected: { package: '@acme/mcp', range: '~1.4', args: [] },
    },
    {
      title: 'pnpm dlx --package <package> <bin>',
      entry: { command: 'pnpm', args: ['dlx', '--package=@acme/tools@3.0.0', 'tools-mcp', 'serve'] },
      expected: { package: '@acme/tools', version: '3.0.0', bin: 'tools-mcp', args: ['serve'] },
    },
    {
      title: 'bunx with a scoped package and a dist-tag',
      entry: { command: 'bunx', args: ['@acme/mcp@next'] },
      expected: { package: '@acme/mcp', channel: 'next', args: [] },
    },
    {
      title: 'bun x with a version',
      entry: { command: '/home/me/.bun/bin/bun', args: ['x', 'pkg@0.3.1', '/data'] },
      expected: { package: 'pkg', version: '0.3.1', args: ['/data'] },
    },
    {
      title: 'bunx -p <package> <bin>',
      entry: { command: 'bunx', args: ['-p', '@acme/tools@^3', 'tools-mcp'] },
      expected: { package: '@acme/tools', range: '^3', bin: 'tools-mcp', args: [] },
    },
  ];
  for (const { title, entry, expected } of cases) {
    it(`recognises ${title}`, () => {
      const result = convertEntry(entry) as Record<string, unknown>;
      expect(result).to.not.have.property('unsupported');
      const { warnings: _warnings, ...fields } = result;
      expect(fields).to.deep.equal(expected);
    });
  }

  const refused: Array<{ title: string; entry: unknown; reason: RegExp }> = [
    {
      title: 'uvx --with',
      entry: { command: 'uvx', args: ['--with', 'extra', 'mcp-server-fetch'] },
      reason: /uvx --with adds packages beside the server/,
    },
    { title: 'docker', entry: { command: 'docker', args: ['run', '-i', 'mcp/postgres'] }, reason: /container image/ },
    { title: 'a remote url', entry: { url: 'https://mcp.example.com/sse' }, reason: /remote server/ },
    { title: 'type http', entry: { type: 'http', url: 'https://example.com/mcp' }, reason: /remote server \(http/ },
    { title: 'type sse without url', entry: { type: 'sse' }, reason: /remote server \(sse/ },
    {
      title: 'python -m of an unknown module',
      entry: { command: 'python', args: ['-m', 'server'] },
      reason: /which project on the package index provides the module "server" is not known/,
    },
    {
      title: 'another command',
      entry: { command: '/opt/bin/my-server' },
      reason: /not a package runner \(npx, pnpx, pnpm dlx, bunx\) nor node/,
    },
    { title: 'no command', entry: { args: ['x'] }, reason: /no command/ },
    { title: 'npx of a local path', entry: { command: 'npx', args: ['-y', './my-server'] }, reason: /not a package from the registry/ },
    { title: 'npx of a git spec', entry: { command: 'npx', args: ['github:me/server'] }, reason: /not a package from the registry/ },
    {
      title: 'npx of a GitHub shorthand',
      entry: { command: 'npx', args: ['me/server'] },
      reason: /"me\/server" is a git repository, not a package from the registry/,
    },
    {
      title: 'npx of a tarball URL',
      entry: { command: 'npx', args: ['https://example.com/pkg.tgz'] },
      reason: /is a tarball URL, not a package from the registry/,
    },
    {
      title: 'npx of an npm: alias',
      entry: { command: 'npx', args: ['npm:other@1'] },
      reason: /is an alias \(npm:…\), not a package from the registry/,
    },
    {
      title: 'npx of a bad package name',
      entry: { command: 'npx', args: ['-y', '@scope/Bad Name@1.0.0'] },
      reason: /not a (valid npm package name|package spec npm accepts)/,
    },
    {
      title: 'npx of a spec that is no version, range or tag',
      entry: { command: 'npx', args: ['pkg@%%%'] },
      reason: /"pkg@%%%" is not a package spec npm accepts: Invalid tag name/,
    },
    {
      title: 'npx of a dist-tag the inventory cannot hold',
      entry: { command: 'npx', args: ['pkg@_next'] },
      reason: /"_next" of pkg is not a version, a range or a dist-tag/,
    },
    {
      title: 'bunx with an unknown option',
      entry: { command: 'bunx', args: ['--weird', 'pkg'] },
      reason: /bunx option --weird is not understood/,
    },
    { title: 'pnpm without dlx', entry: { command: 'pnpm', args: ['exec', 'pkg'] }, reason: /runs through pnpm but not `pnpm dlx`/ },
    { title: 'pnpx without a package', entry: { command: 'pnpx', args: [] }, reason: /pnpm dlx without a package/ },
    { title: 'npx with an unknown option', entry: { command: 'npx', args: ['--weird', 'pkg'] }, reason: /npx option --weird/ },
    { title: 'npx without a package', entry: { command: 'npx', args: ['-y'] }, reason: /npx without a package/ },
    { title: 'node of a local script', entry: { command: 'node', args: ['./server.js'] }, reason: /not inside an installed npm package/ },
    {
      title: 'node of a .bin shim',
      entry: { command: 'node', args: ['/x/node_modules/.bin/server'] },
      reason: /not inside an installed npm package/,
    },
    { title: 'args that are not strings', entry: { command: 'npx', args: [{ a: 1 }] }, reason: /"args" must be a list of strings/ },
  ];
  for (const { title, entry, reason } of refused) {
    it(`refuses ${title}`, () => {
      const result = convertEntry(entry) as { unsupported?: string };
      expect(result.unsupported).to.match(reason);
    });
  }

  it('reads package specs as npm does, scoped or not', () => {
    expect(parsePackageSpec('@a/b@1.0.0')).to.deep.equal({ package: '@a/b', version: '1.0.0' });
    expect(parsePackageSpec('@a/b')).to.deep.equal({ package: '@a/b' });
    expect(parsePackageSpec('@a/b@latest')).to.deep.equal({ package: '@a/b' });
    expect(parsePackageSpec('b@next')).to.deep.equal({ package: 'b', channel: 'next' });
    expect(parsePackageSpec('b@>=1.2 <2')).to.deep.equal({ package: 'b', range: '>=1.2 <2' });
    expect(parsePackageSpec('Bad Name')).to.have.property('unsupported');
    expect(parsePackageSpec('./local')).to.deep.equal({ unsupported: '"./local" is a local directory, not a package from the registry' });
  });

  const names: Array<[string, string, string]> = [
    ['memory', 'x', 'memory'],
    ['GitHub Tools', 'x', 'github-tools'],
    ['brave_search', 'x', 'brave-search'],
    ['--Weird__Name!!', 'x', 'weird-name'],
    ['a'.repeat(80), 'x', 'a'.repeat(63)],
    [`${'a'.repeat(62)}-b`, 'x', 'a'.repeat(62)],
    ['日本語', '@scope/fallback-mcp', 'fallback-mcp'],
    ['!!!', '@@@', 'server'],
  ];
  for (const [source, pkg, expected] of names) {
    it(`derives the server name ${JSON.stringify(expected)} from ${JSON.stringify(source.slice(0, 20))}`, () => {
      const name = serverNameFor(source, pkg);
      expect(name).to.equal(expected);
      expect(name).to.match(/^[a-z0-9][a-z0-9-]{0,62}$/);
    });
  }

  it('reads JSON with comments and trailing commas, keeping // and /* inside strings', () => {
    const parsed = parseJsonc('// top\n{ "a": "http://x/*y*/", /* c */ "b": [1, 2,], }\n');
    expect(parsed).to.deep.equal({ a: 'http://x/*y*/', b: [1, 2] });
  });

  it('keeps commas before ] and } inside strings', () => {
    const text = '{ "mcpServers": { "x": { "command": "npx", "args": ["-y", "pkg", "--flag=a,]", "--set={a,}",], }, }, }';
    expect(parseJsonc(text)).to.deep.equal({ mcpServers: { x: { command: 'npx', args: ['-y', 'pkg', '--flag=a,]', '--set={a,}'] } } });
    expect(convertEntry((parseJsonc(text) as { mcpServers: { x: unknown } }).mcpServers.x)).to.deep.include({
      args: ['--flag=a,]', '--set={a,}'],
    });
  });

  it('refuses text that is not JSON(C), naming what and where', () => {
    const cases: Array<[string, RegExp]> = [
      ['{ nope', /^not valid JSON: (InvalidSymbol|PropertyNameExpected) at line 1, column 3$/],
      ['{\n  "a": 1\n  "b": 2\n}', /^not valid JSON: CommaExpected at line 3, column 3$/],
      ['', /^not valid JSON: ValueExpected at line 1, column 1$/],
      ['{ "a": "unterminated }', /^not valid JSON: UnexpectedEndOfString/],
      ['{ "a": 1 } trailing', /^not valid JSON: InvalidSymbol at line 1, column 12$/],
    ];
    for (const [text, message] of cases) {
      let caught: unknown;
      try {
        parseJsonc(text);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(text)).to.be.instanceOf(Error);
      expect((caught as Error).message, JSON.stringify(text)).to.match(message);
      expect((caught as { code?: string }).code).to.equal('EVALIDATION');
    }
  });
});

describe('import: whole client configs', () => {
  it('Claude Desktop: npx, node and uvx entries become servers; docker is refused with its reason', async () => {
    const result = importClientConfig(await clientConfig('claude_desktop_config.json'));
    expect(result.format).to.equal('mcpServers');
    expect(result.servers.map((server) => server.name)).to.deep.equal(['memory', 'filesystem', 'github-tools', 'local-build', 'fetch']);
    expect(inventoryEntry(result.servers.find((server) => server.name === 'fetch')!)).to.deep.equal({ pypi: 'mcp-server-fetch' });
    const filesystem = result.servers.find((server) => server.name === 'filesystem')!;
    expect(inventoryEntry(filesystem)).to.deep.equal({
      package: '@modelcontextprotocol/server-filesystem',
      version: '2026.1.14',
      smokeTest: { args: ['/Users/me/Desktop', '/Users/me/Downloads'] },
    });
    const github = result.servers.find((server) => server.name === 'github-tools')!;
    expect(github).to.include({ source: 'GitHub Tools', channel: 'next' });
    expect(github.secretKeys).to.deep.equal(['GITHUB_PERSONAL_ACCESS_TOKEN']);
    expect(inventoryEntry(github)).to.have.nested.property('smokeTest.env.GITHUB_PERSONAL_ACCESS_TOKEN', 'ghp_example_not_a_real_token');
    expect(result.servers.find((server) => server.name === 'memory')!.secretKeys).to.deep.equal([]);
    expect(result.unsupported).to.deep.equal([{ source: 'postgres', reason: 'a container image (docker): not an npm package' }]);
  });

  it('Cursor: cmd /c npx, -p, a range; url and python refused', async () => {
    const result = importClientConfig(await clientConfig('cursor-mcp.json'));
    expect(result.servers.map((server) => [server.name, server.package])).to.deep.equal([
      ['sequential-thinking', '@modelcontextprotocol/server-sequential-thinking'],
      ['brave-search', '@modelcontextprotocol/server-brave-search'],
      ['everything', '@modelcontextprotocol/server-everything'],
    ]);
    expect(result.servers[0]!.range).to.equal('^2026.1.0');
    expect(result.servers[1]!.secretKeys).to.deep.equal(['BRAVE_API_KEY']);
    expect(result.servers[2]).to.include({ bin: 'mcp-server-everything' });
    expect(result.unsupported.map((entry) => entry.source)).to.deep.equal(['linear', 'python-tool']);
    expect(result.unsupported[0]!.reason).to.match(/remote server/);
  });

  it('VS Code .vscode/mcp.json (JSONC): input variables are flagged, http and local scripts refused', async () => {
    const result = importClientConfig(await clientConfig('vscode-mcp.json'));
    expect(result.format).to.equal('servers');
    expect(result.servers.map((server) => server.name)).to.deep.equal(['memory-server', 'github']);
    expect(result.servers[0]!.version).to.equal('2026.7.4');
    const github = result.servers[1]!;
    expect(github.secretKeys, 'a ${input:…} placeholder is not a stored secret').to.deep.equal([]);
    expect(github.warnings.join('\n')).to.match(/\$\{input:github-token\}.*cannot resolve/);
    expect(result.unsupported.map((entry) => entry.source)).to.deep.equal(['remote-docs', 'local-script']);
  });

  it('VS Code settings.json: "mcp": {"servers"}', async () => {
    const result = importClientConfig(await clientConfig('vscode-settings.json'));
    expect(result.format).to.equal('mcp.servers');
    expect(result.servers.map((server) => inventoryEntry(server))).to.deep.equal([
      { package: '@playwright/mcp', smokeTest: { args: ['--headless'] } },
    ]);
  });

  it('never overwrites: taken names and packages already managed are skipped; duplicates get a suffix', () => {
    const config = {
      mcpServers: {
        memory: { command: 'npx', args: ['-y', 'other-memory'] },
        mem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-memory', '--x'] },
        'Tools!': { command: 'npx', args: ['-y', 'tools-a'] },
        'tools?': { command: 'npx', args: ['-y', 'tools-b'] },
        'tools again': { command: 'npx', args: ['-y', 'tools-a'] },
      },
    };
    const result = importClientConfig(config, new Map([['memory', '@modelcontextprotocol/server-memory']]));
    expect(result.servers.map((server) => [server.name, server.package])).to.deep.equal([
      ['tools', 'tools-a'],
      ['tools-2', 'tools-b'],
    ]);
    expect(result.skipped).to.deep.equal([
      {
        source: 'memory',
        name: 'memory',
        reason:
          'the inventory already has a server "memory" (package @modelcontextprotocol/server-memory); add this one by hand under another name',
        args: [],
      },
      {
        source: 'mem',
        name: 'memory',
        reason: '@modelcontextprotocol/server-memory is already in the inventory as "memory"',
        useServer: 'memory',
        args: ['--x'],
      },
      { source: 'tools again', name: 'tools', reason: 'tools-a is already in this import as "tools"', useServer: 'tools', args: [] },
    ]);
  });

  it('a Smithery-hosted server is not installed; secret-looking arguments are named as secrets', () => {
    const result = importClientConfig({
      mcpServers: {
        hosted: { command: 'npx', args: ['-y', '@smithery/cli', 'run', '@acme/weather', '--key', 'sk-smithery-0123456789'] },
        pg: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-postgres', 'postgresql://app:s3cr3t-pass@db/app'] },
        search: { command: 'npx', args: ['-y', 'brave-search-mcp', '--api-key=BSA-0123456789abcdef'] },
      },
    });
    expect(result.unsupported).to.deep.equal([
      {
        source: 'hosted',
        reason: 'a server hosted by Smithery (@acme/weather): nothing is installed locally, so there is nothing to update',
      },
    ]);
    expect(result.servers.map((server) => [server.name, server.secretKeys])).to.deep.equal([
      ['pg', ['smokeTest.args (1 secret value)']],
      ['search', ['smokeTest.args (1 secret value)']],
    ]);
  });

  it('refuses files without MCP servers', () => {
    expect(() => importClientConfig({ editor: {} })).to.throw(/no MCP servers found/);
    expect(() => importClientConfig([])).to.throw(/JSON object/);
  });

  it('renders a valid inventory', async () => {
    const result = importClientConfig(await clientConfig('claude_desktop_config.json'));
    const text = renderServers(result.servers, 'claude_desktop_config.json');
    const inventory = parseInventory(text, 'rendered.yaml', BASE);
    expect([...inventory.servers.keys()]).to.deep.equal(['memory', 'filesystem', 'github-tools', 'local-build', 'fetch']);
    expect(inventory.servers.get('fetch')).to.include({ ecosystem: 'pypi', package: 'mcp-server-fetch' });
    expect(inventory.servers.get('memory')!.smokeTest.env).to.deep.equal({ MEMORY_FILE_PATH: '/Users/me/memory.json' });
    expect(text).to.include(
      '# imported from claude_desktop_config.json entry "GitHub Tools" (GITHUB_PERSONAL_ACCESS_TOKEN stored here in plain text)',
    );
  });
});

describe('import: merging into the inventory file', () => {
  const imported = (name: string, extra: Partial<ImportedServer> = {}): ImportedServer => ({
    name,
    source: name,
    package: `${name}-mcp`,
    args: [],
    env: {},
    secretKeys: [],
    warnings: [],
    ...extra,
  });

  it('keeps the shipped inventory byte for byte and appends at the end of servers', async () => {
    const shipped = await fs.readFile(fileURLToPath(new URL('../mcp-servers.yaml', import.meta.url)), 'utf8');
    const merged = mergeIntoInventory(shipped, [imported('alpha', { args: ['--a'], env: { KEY: 'v' } }), imported('memory')], 'c.json');
    expect(merged.added).to.deep.equal(['alpha']);
    expect(merged.skipped).to.deep.equal(['memory']);
    expect(merged.text.startsWith(shipped)).to.equal(true);
    expect(merged.text.slice(shipped.length)).to.equal(
      [
        '  # imported from c.json entry "alpha"',
        '  alpha:',
        '    package: alpha-mcp',
        '    smokeTest:',
        '      args:',
        '        - --a',
        '      env:',
        '        KEY: v',
        '',
      ].join('\n'),
    );
    const inventory = parseInventory(merged.text, 'x.yaml', BASE);
    expect([...inventory.servers.keys()]).to.deep.equal(['memory', 'filesystem', 'sequential-thinking', 'alpha']);
  });

  it('inserts before later top-level keys and keeps 4-space indentation', () => {
    const text = 'servers:\n    one:\n        package: one-mcp   # aligned comment\n\n# about defaults\ndefaults:\n    keep: 2\n';
    const merged = mergeIntoInventory(text, [imported('two')], 'c.json');
    expect(merged.text).to.equal(
      'servers:\n    one:\n        package: one-mcp   # aligned comment\n    # imported from c.json entry "two"\n    two:\n      package: two-mcp\n\n# about defaults\ndefaults:\n    keep: 2\n',
    );
    expect(YAML.parse(merged.text)).to.deep.equal({
      servers: { one: { package: 'one-mcp' }, two: { package: 'two-mcp' } },
      defaults: { keep: 2 },
    });
  });

  it('fills an empty `servers: {}` or a missing servers key through the Document API, keeping comments', () => {
    const empty = mergeIntoInventory('# my inventory\nservers: {}   # none yet\n', [imported('one')], 'c.json');
    expect(empty.text).to.include('# my inventory');
    expect(YAML.parse(empty.text)).to.deep.equal({ servers: { one: { package: 'one-mcp' } } });
    const missing = mergeIntoInventory('# only defaults\ndefaults:\n  keep: 2\n', [imported('one')], 'c.json');
    expect(missing.text).to.include('# only defaults');
    expect(YAML.parse(missing.text)).to.deep.equal({ defaults: { keep: 2 }, servers: { one: { package: 'one-mcp' } } });
  });
});

describe('import: the command (real binary)', function () {
  this.timeout(60_000);
  let env: TestEnv;
  const inventory = [
    '# Team inventory: keep this comment',
    'defaults:',
    '  minReleaseAge: 1d      # aligned comment',
    'servers:',
    '  memory:                # the knowledge graph',
    '    package: "@modelcontextprotocol/server-memory"',
    '',
  ].join('\n');

  beforeEach(async () => {
    env = await createTestEnv({ inventory });
  });
  afterEach(async () => {
    await env.cleanup();
  });

  const cli = (...args: string[]) =>
    run(process.execPath, [BIN, ...args], {
      env: { ...env.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? env.root },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('prints YAML and the reasons for refused entries, and writes nothing', async () => {
    const result = await cli('import', path.join(CLIENTS, 'claude_desktop_config.json'));
    expect(result.code).to.equal(0);
    const printed = YAML.parse(result.stdout) as { servers: Record<string, unknown> };
    expect(Object.keys(printed.servers)).to.deep.equal(['filesystem', 'github-tools', 'local-build', 'fetch']);
    expect(result.stderr).to.include('skipped memory: @modelcontextprotocol/server-memory is already in the inventory as "memory"');
    expect(result.stderr).to.include('cannot manage postgres: a container image (docker)');
    expect(result.stderr).to.match(/GITHUB_PERSONAL_ACCESS_TOKEN would be stored in .* in plain text/);
    expect(await fs.readFile(env.inventoryFile, 'utf8')).to.equal(inventory);
  });

  it('--write merges, keeps the comments and prints the launchers to use', async () => {
    const result = await cli('import', path.join(CLIENTS, 'claude_desktop_config.json'), '--write');
    expect(result.code, result.stderr).to.equal(0);
    const text = await fs.readFile(env.inventoryFile, 'utf8');
    expect(text.startsWith(inventory)).to.equal(true);
    // It now holds GITHUB_PERSONAL_ACCESS_TOKEN: readable by its owner only.
    expect((await fs.stat(env.inventoryFile)).mode & 0o777).to.equal(0o600);
    expect(text).to.include('# imported from claude_desktop_config.json entry "GitHub Tools"');
    const parsed = parseInventory(text, env.inventoryFile, BASE);
    expect([...parsed.servers.keys()]).to.deep.equal(['memory', 'filesystem', 'github-tools', 'local-build', 'fetch']);
    expect(parsed.servers.get('filesystem')).to.deep.include({ version: '2026.1.14' });
    const launcher = (name: string) => path.join(env.config.serversPath, 'bin', name);
    expect(result.stdout).to.include(
      `"filesystem": {"command":"${launcher('filesystem')}","args":["/Users/me/Desktop","/Users/me/Downloads"]}`,
    );
    expect(result.stdout).to.include(`"memory": {"command":"${launcher('memory')}"}`);
    expect(result.stdout).to.include(`"GitHub Tools": {"command":"${launcher('github-tools')}"}`);

    const again = await cli('import', path.join(CLIENTS, 'claude_desktop_config.json'), '--write', '--json');
    expect(again.code).to.equal(0);
    const report = JSON.parse(again.stdout) as {
      written: boolean;
      servers: unknown[];
      skipped: Array<{ source: string; launcher: string | null }>;
    };
    expect(report.written).to.equal(false);
    expect(report.servers).to.deep.equal([]);
    expect(report.skipped.map((skip) => skip.source)).to.deep.equal(['memory', 'filesystem', 'GitHub Tools', 'local-build', 'fetch']);
    expect(await fs.readFile(env.inventoryFile, 'utf8')).to.equal(text);
  });

  it('--json reports servers, skipped and unsupported entries', async () => {
    const result = await cli('import', path.join(CLIENTS, 'cursor-mcp.json'), '--json');
    expect(result.code).to.equal(0);
    const report = JSON.parse(result.stdout);
    expect(report).to.include({ format: 'mcpServers', written: false, inventory: env.inventoryFile });
    expect(report.servers[1]).to.deep.equal({
      name: 'brave-search',
      source: 'brave_search',
      package: '@modelcontextprotocol/server-brave-search',
      entry: { package: '@modelcontextprotocol/server-brave-search', smokeTest: { env: { BRAVE_API_KEY: 'BSA-example' } } },
      secretKeys: ['BRAVE_API_KEY'],
      warnings: [],
      launcher: path.join(env.config.serversPath, 'bin', 'brave-search'),
    });
    expect(report.unsupported.map((entry: { source: string }) => entry.source)).to.deep.equal(['linear', 'python-tool']);
  });

  it('exit 2 for a missing or unusable client file, 78 for an invalid inventory with --write', async () => {
    const missing = await cli('import', path.join(env.root, 'nope.json'));
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/cannot read the client config .*nope\.json \(ENOENT\)/);
    const notMcp = path.join(env.root, 'settings.json');
    await fs.writeFile(notMcp, '{"editor.fontSize": 14}');
    const none = await cli('import', notMcp);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/no MCP servers found/);
    await env.writeInventory('servers:\n  memory:\n    package: x\n    policy: sometimes\n');
    const invalid = await cli('import', path.join(CLIENTS, 'cursor-mcp.json'), '--write');
    expect(invalid.code).to.equal(78);
    expect(invalid.stderr).to.include('servers.memory.policy');
  });
});
