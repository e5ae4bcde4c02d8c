/*
 * Python servers in the inventory (docs/ARCHITECTURE.md "Ecosystems"): `pypi:` instead of
 * `package:`, PEP 440 versions and specifiers, the Python-only keys, and the exact
 * ConfigurationError (path and message) for each bad value.
 */
import { expect } from 'chai';
import { ConfigurationError } from '../shared/errors.js';
import { parseInventory, type InventoryDefaults } from '../shared/inventory.js';

const BASE: InventoryDefaults = { schedule: '0 */6 * * *', timezone: 'UTC' };
const FILE = '/etc/mcp/mcp-servers.yaml';

function fetchServer(extra = ''): string {
  return `servers:\n  fetch:\n    pypi: mcp-server-fetch\n${extra}`;
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

describe('inventory: pypi servers', () => {
  it('reads a pypi server with every Python key', () => {
    const inventory = parseInventory(
      fetchServer(
        [
          '    version: "2025.4.7"',
          '    range: ">=2025,<2027"',
          '    python: ">=3.10"',
          '    extras: [cli]',
          '    allowSdist: true',
          '    command: mcp-server-fetch',
          '    policy: patch',
          '',
        ].join('\n'),
      ),
      FILE,
      BASE,
    );
    const server = inventory.servers.get('fetch')!;
    expect(server).to.include({
      ecosystem: 'pypi',
      package: 'mcp-server-fetch',
      version: '2025.4.7',
      range: '>=2025,<2027',
      policy: 'patch',
    });
    expect(server.python).to.deep.equal({ python: '>=3.10', extras: ['cli'], allowSdist: true, command: 'mcp-server-fetch' });
  });

  it('defaults: no sdists, no extras; npm servers stay npm', () => {
    const inventory = parseInventory(`${fetchServer()}  memory:\n    package: "@modelcontextprotocol/server-memory"\n`, FILE, BASE);
    expect(inventory.servers.get('fetch')!.python).to.deep.equal({ python: undefined, extras: [], allowSdist: false, command: undefined });
    expect(inventory.servers.get('memory')!.ecosystem).to.equal(undefined);
    expect(inventory.servers.get('memory')!.python).to.equal(undefined);
  });

  it('normalizes a PEP 440 version', () => {
    expect(parseInventory(fetchServer('    version: "1.0"\n'), FILE, BASE).servers.get('fetch')!.version).to.equal('1.0');
    expect(parseInventory(fetchServer('    version: 1.0.0-RC1\n'), FILE, BASE).servers.get('fetch')!.version).to.equal('1.0.0rc1');
  });

  const cases: Array<{ name: string; input: string; path: string; message: string }> = [
    {
      name: 'both package and pypi',
      input: fetchServer('    package: x\n'),
      path: 'servers.fetch',
      message: 'has both package: and pypi:; a server comes from one ecosystem',
    },
    {
      name: 'neither package nor pypi',
      input: 'servers:\n  fetch:\n    policy: minor\n',
      path: 'servers.fetch.package',
      message: 'is required',
    },
    {
      name: 'a bad project name',
      input: 'servers:\n  fetch:\n    pypi: "-bad name"\n',
      path: 'servers.fetch.pypi',
      message: 'must be a Python project name (letters, digits, ".", "_", "-"; starting and ending with a letter or digit)',
    },
    {
      name: 'a version with an epoch',
      input: fetchServer('    version: "1!2.0"\n'),
      path: 'servers.fetch.version',
      message: 'must be an exact PEP 440 version such as 1.2.3 or 2.0rc1 (no epoch, no local part)',
    },
    {
      name: 'a version that is not PEP 440',
      input: fetchServer('    version: latest\n'),
      path: 'servers.fetch.version',
      message: 'must be an exact PEP 440 version such as 1.2.3 or 2.0rc1 (no epoch, no local part)',
    },
    {
      name: 'a semver range',
      input: fetchServer('    range: "^1.2"\n'),
      path: 'servers.fetch.range',
      message: 'must be a PEP 440 specifier such as ">=1.2,<2"',
    },
    {
      name: 'a bad python specifier',
      input: fetchServer('    python: "3.x"\n'),
      path: 'servers.fetch.python',
      message: 'must be a PEP 440 specifier such as ">=1.2,<2"',
    },
    {
      name: 'extras that are not names',
      input: fetchServer('    extras: ["a b"]\n'),
      path: 'servers.fetch.extras.0',
      message: 'must be a Python project name (letters, digits, ".", "_", "-"; starting and ending with a letter or digit)',
    },
    {
      name: 'allowSdist: maybe',
      input: fetchServer('    allowSdist: maybe\n'),
      path: 'servers.fetch.allowSdist',
      message: 'must be a boolean',
    },
    {
      name: 'a command with a slash',
      input: fetchServer('    command: ../bin/x\n'),
      path: 'servers.fetch.command',
      message: 'must be a console script name',
    },
    {
      name: 'channel on a pypi server',
      input: fetchServer('    channel: next\n'),
      path: 'servers.fetch.channel',
      message: 'is an npm key; a pypi server does not take it',
    },
    {
      name: 'bin on a pypi server',
      input: fetchServer('    bin: x\n'),
      path: 'servers.fetch.bin',
      message: 'is an npm key; a pypi server does not take it',
    },
    {
      name: 'python on an npm server',
      input: 'servers:\n  memory:\n    package: x\n    python: ">=3.10"\n',
      path: 'servers.memory.python',
      message: 'is a key of pypi servers only (this server has package:)',
    },
    {
      name: 'a version outside the range',
      input: fetchServer('    version: "1.0"\n    range: ">=2"\n'),
      path: 'servers.fetch.version',
      message: '1.0 is outside servers.fetch.range ">=2"',
    },
    {
      name: 'policy pin without a version',
      input: fetchServer('    policy: pin\n'),
      path: 'servers.fetch.version',
      message: 'is required when policy is pin (the version to pin to)',
    },
  ];
  for (const { name, input, path, message } of cases) {
    it(`refuses ${name}`, () => {
      const error = inventoryError(input);
      expect(error.path).to.equal(path);
      expect(error.message).to.equal(`${path}: ${message}`);
    });
  }
});
