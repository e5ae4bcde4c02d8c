/*
 * Issue 12, finding 7: server names cannot collide with the install layout. Every name the
 * layout uses (shared/layout.ts: bin/, .staging, and current, versions, history.json,
 * .mcp-updater inside a server directory), and the name of a STAGING_DIR, BACKUP_DIR or LOG_DIR
 * placed directly in MCP_SERVERS_PATH, is refused by the inventory validation with the key's
 * path; `mcp-updater config check` exits 78 on it. Also the smokeTest.network key.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigurationError } from '../shared/errors.js';
import { inventoryDefaults, parseInventory, type InventoryDefaults } from '../shared/inventory.js';
import { RESERVED_SERVER_NAMES } from '../shared/schemas.js';
import { InstallLayout, META_DIR } from '../shared/layout.js';
import { BIN } from './support/reliability.js';

const BASE: InventoryDefaults = { schedule: '0 */6 * * *', timezone: 'UTC' };

function refusal(yaml: string, base = BASE): ConfigurationError {
  try {
    parseInventory(yaml, 'mcp-servers.yaml', base);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  expect.fail('the inventory was accepted');
}

const server = (name: string, extra = '') => `servers:\n  ${JSON.stringify(name)}:\n    package: some-mcp\n${extra}`;

describe('security: server names cannot collide with the install layout', () => {
  it('reserves every name the layout uses', () => {
    const layout = new InstallLayout({ serversPath: '/srv/mcp', stagingDir: '/srv/mcp/.staging', backupDir: '/srv/backups' });
    const used = [
      path.basename(layout.binDir),
      path.basename(layout.stagingRoot),
      path.basename(layout.currentLink('x')),
      path.basename(layout.versionsDir('x')),
      path.basename(layout.historyFile('x')),
      META_DIR,
    ];
    expect(RESERVED_SERVER_NAMES).to.include.members(used);
    expect(RESERVED_SERVER_NAMES).to.include.members(['bin', 'current', 'versions', '.staging']);
  });

  for (const name of ['bin', 'current', 'versions', '.staging', 'history.json', '.mcp-updater']) {
    it(`refuses a server named ${name}, naming the key`, () => {
      const error = refusal(server(name));
      expect(error.path).to.equal(`servers.${name}`);
      expect(error.message).to.match(
        new RegExp(`^servers\\.${name.replace('.', '\\.')}: "${name.replace('.', '\\.')}" is a name the install layout uses`),
      );
      expect(error.hint).to.include('a running service keeps the servers of its last valid inventory');
    });
  }

  it('refuses the name of a STAGING_DIR, BACKUP_DIR or LOG_DIR inside MCP_SERVERS_PATH, and only then', () => {
    const base = inventoryDefaults({
      checkSchedule: '0 * * * *',
      timezone: 'UTC',
      serversPath: '/srv/mcp',
      stagingDir: '/srv/mcp/staging-area',
      backupDir: '/srv/mcp/backups',
      logDir: '/var/log/mcp',
    });
    expect(refusal(server('staging-area'), base).path).to.equal('servers.staging-area');
    expect(refusal(server('backups'), base).path).to.equal('servers.backups');
    expect(parseInventory(server('mcp'), 'x.yaml', base).servers.has('mcp'), 'LOG_DIR is elsewhere').to.equal(true);
    expect(parseInventory(server('staging-area'), 'x.yaml', BASE).servers.has('staging-area')).to.equal(true);
  });

  it('`mcp-updater config check` exits 78 naming servers.bin', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-reserved-'));
    try {
      const file = path.join(dir, 'mcp-servers.yaml');
      await fs.writeFile(file, server('bin'));
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'config', 'check'], {
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            API_BASE_URL: 'http://127.0.0.1:9/',
            MCP_SERVERS_CONFIG: file,
            MCP_SERVERS_PATH: path.join(dir, 'servers'),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.on('close', (code) => resolve({ code, stderr }));
      });
      expect(run.code).to.equal(78);
      expect(run.stderr).to.include('servers.bin: "bin" is a name the install layout uses');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('security: smokeTest.network', () => {
  it('defaults to true, takes false, and refuses anything else with its path', () => {
    expect(parseInventory(server('a'), 'x.yaml', BASE).servers.get('a')!.smokeTest.network).to.equal(true);
    const off = parseInventory(`defaults:\n  smokeTest: { network: false }\n${server('a')}`, 'x.yaml', BASE);
    expect(off.servers.get('a')!.smokeTest.network).to.equal(false);
    const error = refusal(server('a', '    smokeTest: { network: sometimes }\n'));
    expect(error.path).to.equal('servers.a.smokeTest.network');
    expect(error.message).to.equal('servers.a.smokeTest.network: must be a boolean');
  });
});
