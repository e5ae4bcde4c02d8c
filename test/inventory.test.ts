/*
 * The inventory (README "Inventory"): exact ConfigurationErrors ("<key.path>: <what is wrong>",
 * path = the key path) for invalid files, and how defaults are merged into every server.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigurationError } from '../shared/errors.js';
import {
  inventoryDefaults,
  InventoryWatcher,
  loadInventory,
  parseInventory,
  type Inventory,
  type InventoryDefaults,
} from '../shared/inventory.js';

const BASE: InventoryDefaults = { schedule: '0 */6 * * *', timezone: 'UTC' };
const FILE = '/etc/mcp/mcp-servers.yaml';

/** An inventory with one server `memory`; `extra` is indented under it. */
function memory(extra = '', defaults = ''): string {
  return `${defaults ? `defaults:\n${defaults}` : ''}servers:\n  memory:\n    package: "@modelcontextprotocol/server-memory"\n${extra}`;
}

function inventoryError(text: string): ConfigurationError {
  try {
    parseInventory(text, FILE, BASE);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  expect.fail('expected a ConfigurationError');
}

const UNKNOWN_KEY = "is not a known key (check its spelling against the README's inventory reference)";
const DURATION = 'must be a duration: use a number with a unit: ms, s, m, h, d, w (e.g. 30s, 3d)';

describe('inventory: parseInventory', () => {
  describe('invalid files', () => {
    /** `prefix: true` = the message starts with `message` (the rest is the YAML parser's own words). */
    const cases: { name: string; input: string; message: string; path: string; prefix?: boolean; includes?: string }[] = [
      {
        name: 'policy: sometimes',
        input: memory('    policy: sometimes\n'),
        path: 'servers.memory.policy',
        message: 'servers.memory.policy: must be one of patch, minor, major, pin',
      },
      {
        name: 'policy: sometimes in defaults',
        input: memory('', '  policy: sometimes\n'),
        path: 'defaults.policy',
        message: 'defaults.policy: must be one of patch, minor, major, pin',
      },
      {
        name: 'a server name with capitals and an underscore',
        input: 'servers:\n  Memory_1:\n    package: x\n',
        path: 'servers.Memory_1',
        message: 'servers.Memory_1: server names must match [a-z0-9][a-z0-9-]{0,62} (lower-case letters, digits, dashes)',
      },
      {
        name: 'a server name starting with a dash',
        input: 'servers:\n  -memory:\n    package: x\n',
        path: 'servers.-memory',
        message: 'servers.-memory: server names must match [a-z0-9][a-z0-9-]{0,62} (lower-case letters, digits, dashes)',
      },
      {
        name: 'a package name with spaces',
        input: 'servers:\n  memory:\n    package: "Bad Package!"\n',
        path: 'servers.memory.package',
        message: 'servers.memory.package: is not a valid npm package name (name can only contain URL-friendly characters)',
      },
      {
        name: 'a package name starting with a period',
        input: 'servers:\n  memory:\n    package: ".hidden"\n',
        path: 'servers.memory.package',
        message: 'servers.memory.package: is not a valid npm package name (name cannot start with a period)',
      },
      {
        name: 'a server without package',
        input: 'servers:\n  memory:\n    version: 1.0.0\n',
        path: 'servers.memory.package',
        message: 'servers.memory.package: is required',
      },
      {
        name: 'the typo polcy',
        input: memory('    polcy: minor\n'),
        path: 'servers.memory.polcy',
        message: `servers.memory.polcy: ${UNKNOWN_KEY}`,
      },
      {
        name: 'a typo in defaults',
        input: memory('', '  kepe: 3\n'),
        path: 'defaults.kepe',
        message: `defaults.kepe: ${UNKNOWN_KEY}`,
      },
      {
        name: 'a typo in smokeTest',
        input: memory('    smokeTest:\n      enabeld: true\n'),
        path: 'servers.memory.smokeTest.enabeld',
        message: `servers.memory.smokeTest.enabeld: ${UNKNOWN_KEY}`,
      },
      {
        name: 'package-only keys in defaults',
        input: memory('', '  package: foo\n'),
        path: 'defaults.package',
        message: `defaults.package: ${UNKNOWN_KEY}`,
      },
      {
        name: 'minReleaseAge: 3 days',
        input: memory('    minReleaseAge: 3 days\n'),
        path: 'servers.memory.minReleaseAge',
        message: `servers.memory.minReleaseAge: ${DURATION}`,
      },
      {
        name: 'minReleaseAge as a bare number',
        input: memory('    minReleaseAge: 5\n'),
        path: 'servers.memory.minReleaseAge',
        message: `servers.memory.minReleaseAge: ${DURATION}`,
      },
      {
        name: 'smokeTest.timeout: soon',
        input: memory('    smokeTest:\n      timeout: soon\n'),
        path: 'servers.memory.smokeTest.timeout',
        message: `servers.memory.smokeTest.timeout: ${DURATION}`,
      },
      {
        name: 'a bad cron in defaults',
        input: memory('', '  schedule: "61 * * * *"\n'),
        path: 'defaults.schedule',
        message: 'defaults.schedule: must be a valid cron expression (Constraint error, got value 61 expected range 0-59)',
      },
      {
        name: 'a bad cron in a server',
        input: memory('    schedule: "* * *"\n'),
        path: 'servers.memory.schedule',
        message:
          'servers.memory.schedule: must be a valid cron expression ("* * *" has 3 fields; cron needs 5 (minute hour day month weekday) or 6)',
      },
      {
        name: 'a timezone that does not exist',
        input: memory('    timezone: Mars/Olympus\n'),
        path: 'servers.memory.timezone',
        message: 'servers.memory.timezone: must be an IANA timezone such as UTC or Europe/Berlin',
      },
      {
        name: 'keep: 0',
        input: memory('    keep: 0\n'),
        path: 'servers.memory.keep',
        message: 'servers.memory.keep: must be greater than or equal to 1',
      },
      {
        name: 'keep: 101',
        input: memory('    keep: 101\n'),
        path: 'servers.memory.keep',
        message: 'servers.memory.keep: must be less than or equal to 100',
      },
      {
        name: 'keep: three',
        input: memory('    keep: three\n'),
        path: 'servers.memory.keep',
        message: 'servers.memory.keep: must be a number',
      },
      {
        name: 'activation: maybe',
        input: memory('    activation: maybe\n'),
        path: 'servers.memory.activation',
        message: 'servers.memory.activation: must be one of auto, manual',
      },
      {
        name: 'surfaceChange.breaking: allow',
        input: memory('    surfaceChange: { breaking: allow }\n'),
        path: 'servers.memory.surfaceChange.breaking',
        message: 'servers.memory.surfaceChange.breaking: must be one of auto, approve',
      },
      {
        name: 'surfaceChange.removed in defaults',
        input: memory('', '  surfaceChange: { removed: approve }\n'),
        path: 'defaults.surfaceChange.removed',
        message: `defaults.surfaceChange.removed: ${UNKNOWN_KEY}`,
      },
      {
        name: 'provenance: strict',
        input: memory('    provenance: strict\n'),
        path: 'servers.memory.provenance',
        message: 'servers.memory.provenance: must be one of off, warn, require',
      },
      {
        name: 'surfaceChange: approve (not a mapping)',
        input: memory('    surfaceChange: approve\n'),
        path: 'servers.memory.surfaceChange',
        message: 'servers.memory.surfaceChange: must be of type object',
      },
      {
        name: 'version: not-a-version',
        input: memory('    version: not-a-version\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: must be an exact semver version such as 1.2.3',
      },
      {
        name: 'version: 2026.7 (a YAML number)',
        input: memory('    version: 2026.7\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: must be an exact semver version such as 1.2.3',
      },
      {
        name: 'version: ^1.2.0 (a range)',
        input: memory('    version: "^1.2.0"\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: must be an exact semver version such as 1.2.3',
      },
      {
        name: 'range: ">>1"',
        input: memory('    range: ">>1"\n'),
        path: 'servers.memory.range',
        message: 'servers.memory.range: must be a semver range such as ">=1.2.0 <2"',
      },
      {
        name: 'channel: -bad',
        input: memory('    channel: "-bad"\n'),
        path: 'servers.memory.channel',
        message: 'servers.memory.channel: must be a dist-tag name such as latest or next',
      },
      {
        name: 'policy: pin without version',
        input: memory('    policy: pin\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: is required when policy is pin (the version to pin to)',
      },
      {
        name: 'policy: pin from defaults without version',
        input: memory('', '  policy: pin\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: is required when policy is pin (the version to pin to)',
      },
      {
        name: 'a version outside the range',
        input: memory('    version: 1.0.0\n    range: ">=2"\n'),
        path: 'servers.memory.version',
        message: 'servers.memory.version: 1.0.0 is outside servers.memory.range ">=2"',
      },
      {
        name: 'smokeTest.env with a bad variable name',
        input: memory('    smokeTest:\n      env:\n        "BAD-NAME": x\n'),
        path: 'servers.memory.smokeTest.env.BAD-NAME',
        message: 'servers.memory.smokeTest.env.BAD-NAME: must be an environment variable name',
      },
      {
        name: 'smokeTest.env with a number value',
        input: memory('    smokeTest:\n      env:\n        PORT: 3\n'),
        path: 'servers.memory.smokeTest.env.PORT',
        message: 'servers.memory.smokeTest.env.PORT: must be a string',
      },
      {
        name: 'smokeTest.args not a list',
        input: memory('    smokeTest:\n      args: "--stdio"\n'),
        path: 'servers.memory.smokeTest.args',
        message: 'servers.memory.smokeTest.args: must be an array',
      },
      {
        name: 'smokeTest.args with a number',
        input: memory('    smokeTest:\n      args: [--port, 3]\n'),
        path: 'servers.memory.smokeTest.args.1',
        message: 'servers.memory.smokeTest.args.1: must be a string',
      },
      {
        name: 'smokeTest.enabled: maybe',
        input: memory('    smokeTest:\n      enabled: maybe\n'),
        path: 'servers.memory.smokeTest.enabled',
        message: 'servers.memory.smokeTest.enabled: must be a boolean',
      },
      {
        name: 'missing servers',
        input: 'defaults:\n  keep: 2\n',
        path: 'servers',
        message: 'servers: is required',
      },
      {
        name: 'an empty file',
        input: '',
        path: 'servers',
        message: 'servers: is required: the file must be a mapping with a `servers:` key',
      },
      {
        name: 'a file with only comments',
        input: '# nothing here yet\n',
        path: 'servers',
        message: 'servers: is required: the file must be a mapping with a `servers:` key',
      },
      {
        name: 'a file that is a list',
        input: '- memory\n',
        path: 'servers',
        message: 'servers: is required: the file must be a mapping with a `servers:` key',
      },
      {
        name: 'servers is a list',
        input: 'servers:\n  - memory\n  - github\n',
        path: 'servers',
        message: 'servers: must be of type object',
      },
      {
        name: 'a server that is empty',
        input: 'servers:\n  memory:\n',
        path: 'servers.memory',
        message: 'servers.memory: must be of type object',
      },
      {
        name: 'an unknown top-level key',
        input: `${memory()}extras: 1\n`,
        path: 'extras',
        message: `extras: ${UNKNOWN_KEY}`,
      },
      {
        name: 'a YAML syntax error',
        input: 'servers:\n  memory:\n    package: [unclosed\n',
        path: 'line 4',
        message: 'line 4: not valid YAML (',
        prefix: true,
        includes: 'must be sufficiently indented and end with a ]',
      },
      {
        name: 'a YAML syntax error in the middle',
        input: 'servers:\n  memory:\n    package: a\n  bad: : :\n',
        path: 'line 4',
        message: 'line 4: not valid YAML (',
        prefix: true,
        includes: 'Nested mappings are not allowed',
      },
      {
        name: 'duplicate server names',
        input: 'servers:\n  memory:\n    package: a\n  memory:\n    package: b\n',
        path: 'line 4',
        message: 'line 4: not valid YAML (',
        prefix: true,
        includes: 'Map keys must be unique',
      },
      {
        name: 'duplicate keys inside a server',
        input: memory('    policy: minor\n    policy: major\n'),
        path: 'line 5',
        message: 'line 5: not valid YAML (',
        prefix: true,
        includes: 'Map keys must be unique',
      },
      {
        name: 'duplicate keys in a flow mapping',
        input: 'servers:\n  memory: { package: a, policy: minor, package: b }\n',
        path: 'line 2',
        message: 'line 2: not valid YAML (',
        prefix: true,
        includes: 'Map keys must be unique at line 2, column 40',
      },
      {
        name: 'two keys that become the same property (1 and "1")',
        input: 'servers:\n  "1": { package: a }\n  1: { package: b }\n',
        path: 'line 3',
        message: 'line 3: not valid YAML (',
        prefix: true,
        includes: 'Map keys must be unique',
      },
      {
        name: 'duplicate keys deep inside a server',
        input: memory('    smokeTest:\n      env:\n        A: "1"\n        B: "2"\n        A: "3"\n'),
        path: 'line 8',
        message: 'line 8: not valid YAML (',
        prefix: true,
        includes: 'Map keys must be unique',
      },
    ];

    for (const { name, input, message, path: keyPath, prefix, includes } of cases) {
      it(`refuses ${name}`, () => {
        const error = inventoryError(input);
        if (prefix) expect(error.message.startsWith(message), error.message).to.equal(true);
        else expect(error.message).to.equal(message);
        if (includes) expect(error.message).to.include(includes);
        expect(error.path).to.equal(keyPath);
        expect(error.code).to.equal('ECONFIG');
        expect(error.hint).to.equal(
          `fix ${keyPath} in ${FILE}; a running service keeps the servers of its last valid inventory until then`,
        );
      });
    }
  });

  describe('defaults merging', () => {
    it('gives a bare server the built-in defaults and the base schedule and timezone', () => {
      const inventory = parseInventory('servers:\n  memory:\n    package: "@modelcontextprotocol/server-memory"\n', FILE, {
        schedule: '15 */2 * * *',
        timezone: 'Europe/Berlin',
      });
      expect([...inventory.servers.keys()]).to.deep.equal(['memory']);
      expect(inventory.servers.get('memory')).to.deep.equal({
        name: 'memory',
        package: '@modelcontextprotocol/server-memory',
        version: undefined,
        channel: 'latest',
        range: undefined,
        bin: undefined,
        schedule: '15 */2 * * *',
        timezone: 'Europe/Berlin',
        policy: 'minor',
        minReleaseAgeMs: 3 * 24 * 60 * 60 * 1000,
        activation: 'auto',
        keep: 3,
        smokeTest: { enabled: true, timeoutMs: 30_000, command: undefined, args: [], env: {}, network: true },
        surfaceChange: { additive: 'auto', changed: 'approve', breaking: 'approve' },
        provenance: 'warn',
      });
    });

    it('merges surfaceChange key by key: defaults, then the server', () => {
      const { servers } = parseInventory(
        memory('    surfaceChange: { breaking: auto }\n', '  surfaceChange: { additive: approve }\n'),
        FILE,
        BASE,
      );
      expect(servers.get('memory')!.surfaceChange).to.deep.equal({ additive: 'approve', changed: 'approve', breaking: 'auto' });
    });

    it('applies defaults to every server and lets a server override them', () => {
      const text = [
        'defaults:',
        '  schedule: "0 1 * * *"',
        '  timezone: America/New_York',
        '  policy: patch',
        '  minReleaseAge: 1h30m',
        '  activation: manual',
        '  keep: 5',
        'servers:',
        '  memory:',
        '    package: "@modelcontextprotocol/server-memory"',
        '  github:',
        '    package: "@modelcontextprotocol/server-github"',
        '    schedule: "*/30 * * * *"',
        '    timezone: UTC',
        '    policy: major',
        '    minReleaseAge: 0',
        '    activation: auto',
        '    keep: 1',
        '',
      ].join('\n');
      const { servers } = parseInventory(text, FILE, BASE);
      const memoryServer = servers.get('memory')!;
      expect(memoryServer.schedule).to.equal('0 1 * * *');
      expect(memoryServer.timezone).to.equal('America/New_York');
      expect(memoryServer.policy).to.equal('patch');
      expect(memoryServer.minReleaseAgeMs).to.equal(90 * 60 * 1000);
      expect(memoryServer.activation).to.equal('manual');
      expect(memoryServer.keep).to.equal(5);
      const github = servers.get('github')!;
      expect(github.schedule).to.equal('*/30 * * * *');
      expect(github.timezone).to.equal('UTC');
      expect(github.policy).to.equal('major');
      expect(github.minReleaseAgeMs).to.equal(0);
      expect(github.activation).to.equal('auto');
      expect(github.keep).to.equal(1);
    });

    it('deep-merges smokeTest and merges env key by key', () => {
      const text = [
        'defaults:',
        '  smokeTest:',
        '    enabled: false',
        '    timeout: 45s',
        '    args: [--stdio]',
        '    env: { LOG: debug, SHARED: from-defaults }',
        'servers:',
        '  memory:',
        '    package: "@modelcontextprotocol/server-memory"',
        '    smokeTest:',
        '      enabled: true',
        '      env: { SHARED: from-server, EXTRA: "" }',
        '  fs:',
        '    package: "@modelcontextprotocol/server-filesystem"',
        '    smokeTest:',
        '      command: node',
        '      args: [dist/index.js, /tmp]',
        '',
      ].join('\n');
      const { servers } = parseInventory(text, FILE, BASE);
      expect(servers.get('memory')!.smokeTest).to.deep.equal({
        enabled: true,
        timeoutMs: 45_000,
        command: undefined,
        args: ['--stdio'],
        env: { LOG: 'debug', SHARED: 'from-server', EXTRA: '' },
        network: true,
      });
      expect(servers.get('fs')!.smokeTest).to.deep.equal({
        enabled: false,
        timeoutMs: 45_000,
        command: 'node',
        args: ['dist/index.js', '/tmp'],
        env: { LOG: 'debug', SHARED: 'from-defaults' },
        network: true,
      });
    });

    it('does not share the merged env object between servers', () => {
      const text = 'defaults:\n  smokeTest:\n    env: { A: "1" }\nservers:\n  one:\n    package: a\n  two:\n    package: b\n';
      const { servers } = parseInventory(text, FILE, BASE);
      servers.get('one')!.smokeTest.env.B = '2';
      expect(servers.get('two')!.smokeTest.env).to.deep.equal({ A: '1' });
    });

    it('keeps package-only keys: version, channel, range, bin', () => {
      const server = parseInventory(
        memory(['    version: 2026.7.4', '    channel: next', '    range: ">=2026.0.0"', '    bin: mcp-server-memory', ''].join('\n')),
        FILE,
        BASE,
      ).servers.get('memory')!;
      expect(server.version).to.equal('2026.7.4');
      expect(server.channel).to.equal('next');
      expect(server.range).to.equal('>=2026.0.0');
      expect(server.bin).to.equal('mcp-server-memory');
    });

    it('accepts a pin with a version and a prerelease inside its range', () => {
      const pinned = parseInventory(memory('    policy: pin\n    version: 1.2.3\n'), FILE, BASE).servers.get('memory')!;
      expect(pinned.policy).to.equal('pin');
      expect(pinned.version).to.equal('1.2.3');
      const pre = parseInventory(memory('    version: 1.0.0-beta.1\n    range: ">=0.9"\n'), FILE, BASE).servers.get('memory')!;
      expect(pre.version).to.equal('1.0.0-beta.1');
    });

    it('stores a v-prefixed version in its clean form', () => {
      expect(parseInventory(memory('    version: v1.2.3\n'), FILE, BASE).servers.get('memory')!.version).to.equal('1.2.3');
    });

    it('accepts an empty servers mapping', () => {
      expect(parseInventory('servers: {}\n', FILE, BASE).servers.size).to.equal(0);
    });

    it('builds its defaults from the config', () => {
      expect(inventoryDefaults({ checkSchedule: '0 2 * * *', timezone: 'Asia/Tokyo' })).to.deep.equal({
        schedule: '0 2 * * *',
        timezone: 'Asia/Tokyo',
      });
    });

    it('refuses a base schedule that does not parse, at the server that uses it', () => {
      try {
        parseInventory(memory(), FILE, { schedule: 'bad', timezone: 'UTC' });
        expect.fail('expected a ConfigurationError');
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigurationError);
        expect((error as ConfigurationError).path).to.equal('servers.memory.schedule');
        expect((error as ConfigurationError).message).to.equal(
          'servers.memory.schedule: must be a valid cron expression ("bad" has 1 fields; cron needs 5 (minute hour day month weekday) or 6)',
        );
      }
    });

    it('gives the sha256 of the text as digest, changing when the text changes', () => {
      const a = parseInventory(memory(), FILE, BASE);
      const b = parseInventory(memory(), FILE, BASE);
      const c = parseInventory(memory('    keep: 4\n'), FILE, BASE);
      expect(a.digest).to.match(/^[0-9a-f]{64}$/);
      expect(a.digest).to.equal(b.digest);
      expect(c.digest).to.not.equal(a.digest);
      expect(a.file).to.equal(FILE);
    });
  });
});

describe('inventory: loadInventory', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads and validates the file', async () => {
    const file = path.join(dir, 'mcp-servers.yaml');
    await fs.writeFile(file, memory('    keep: 2\n'));
    const inventory = await loadInventory(file, BASE);
    expect(inventory.file).to.equal(file);
    expect(inventory.servers.get('memory')!.keep).to.equal(2);
  });

  it('names MCP_SERVERS_CONFIG when the file cannot be read', async () => {
    const file = path.join(dir, 'missing.yaml');
    try {
      await loadInventory(file, BASE);
      expect.fail('expected a ConfigurationError');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigurationError);
      expect((error as ConfigurationError).message).to.equal(`MCP_SERVERS_CONFIG: cannot read ${file} (ENOENT)`);
      expect((error as ConfigurationError).path).to.equal('MCP_SERVERS_CONFIG');
    }
  });

  it('InventoryWatcher.reload applies a valid edit, ignores an unchanged file and keeps the last good set on a bad edit', async () => {
    const file = path.join(dir, 'watched.yaml');
    await fs.writeFile(file, memory('    keep: 2\n'));
    const watcher = await InventoryWatcher.open(file, BASE);
    const changes: { next: Inventory; previous: Inventory }[] = [];
    watcher.onChange((next, previous) => changes.push({ next, previous }));
    try {
      expect(watcher.server('memory')!.keep).to.equal(2);
      expect(await watcher.reload()).to.equal(false);

      await fs.writeFile(file, memory('    keep: 4\n'));
      expect(await watcher.reload()).to.equal(true);
      expect(watcher.server('memory')!.keep).to.equal(4);
      expect(changes).to.have.length(1);
      expect(changes[0]!.previous.servers.get('memory')!.keep).to.equal(2);
      expect(changes[0]!.next).to.equal(watcher.inventory);

      await fs.writeFile(file, memory('    keep: 0\n'));
      try {
        await watcher.reload();
        expect.fail('expected a ConfigurationError');
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigurationError);
        expect((error as ConfigurationError).path).to.equal('servers.memory.keep');
      }
      expect(watcher.server('memory')!.keep).to.equal(4);
      expect(changes).to.have.length(1);
    } finally {
      watcher.close();
    }
  });

  it('refuses an invalid file with the bad key', async () => {
    const file = path.join(dir, 'bad.yaml');
    await fs.writeFile(file, memory('    policy: sometimes\n'));
    try {
      await loadInventory(file, BASE);
      expect.fail('expected a ConfigurationError');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigurationError);
      expect((error as ConfigurationError).path).to.equal('servers.memory.policy');
      expect((error as ConfigurationError).hint).to.include(file);
    }
  });
});
