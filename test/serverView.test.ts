/*
 * The one read model of a server (shared/serverView.ts): every key present with null for absent
 * values, secrets redacted, settings without env values; the CLI and the API read the same views.
 */
import path from 'node:path';
import { expect } from 'chai';
import { sortedServerViews } from '../cli/commands/servers.js';
import { ServerOverview } from '../dashboard/servers.js';
import { inventoryDefaults, InventoryWatcher, loadInventory, type ServerSettings } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { countByState, diskSummary, publicSettings, readServerDetail, readServerViews, serverView } from '../shared/serverView.js';
import { StateStore } from '../shared/state.js';
import { SERVER_STATES } from '../shared/stateMachine.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const INVENTORY = `
servers:
  zeta:
    package: zeta-mcp
    policy: patch
    range: ">=1.0.0"
    smokeTest:
      args: ["--endpoint", "https://user:hunter2@internal.example/api"]
      env: { ZETA_TOKEN: "secret-value", A_SETTING: "plain" }
  alpha:
    package: "@acme/alpha-mcp"
    activation: manual
`;

const layout = { launcher: (name: string) => path.join('/srv/mcp', 'bin', name) };

describe('read model: one view of a server', () => {
  const settings: ServerSettings = {
    name: 'memory',
    package: '@modelcontextprotocol/server-memory',
    channel: 'latest',
    schedule: '0 */6 * * *',
    timezone: 'UTC',
    policy: 'minor',
    minReleaseAgeMs: 259_200_000,
    activation: 'auto',
    keep: 3,
    smokeTest: { enabled: true, timeoutMs: 30_000, args: [], env: {}, network: true },
    surfaceChange: { additive: 'auto', changed: 'approve', breaking: 'approve' },
    provenance: 'warn',
  };

  it('has every key, null for what is not known yet', () => {
    const view = serverView(settings, { name: 'memory', state: 'idle', failedVersions: [] }, layout);
    expect(view).to.deep.equal({
      name: 'memory',
      ecosystem: 'npm',
      package: '@modelcontextprotocol/server-memory',
      channel: 'latest',
      policy: 'minor',
      activation: 'auto',
      current: null,
      previous: null,
      latest: null,
      candidate: null,
      updateAvailable: false,
      staged: null,
      gate: null,
      state: 'idle',
      lastCheck: null,
      lastCheckResult: null,
      lastError: null,
      failedVersions: [],
      hold: null,
      launcher: '/srv/mcp/bin/memory',
      disk: null,
    });
  });

  it('shows the bytes on disk the workers measured, as a figure and as people read it', () => {
    const disk = { bytes: 2_516_582, sharedBytes: 1_153_434, fullCopyBytes: 13_631_488, measuredAt: '2026-11-29T10:00:00.000Z' };
    const view = serverView(settings, { name: 'memory', state: 'idle', failedVersions: [], disk }, layout);
    expect(view.disk).to.deep.equal(disk);
    expect(diskSummary(view.disk)).to.equal('2.4 MiB (1.1 MiB shared with other servers; 13.0 MiB as full copies)');
    expect(diskSummary({ ...disk, sharedBytes: 0 }, true, new Date('2026-11-29T10:05:00.000Z'))).to.equal(
      '2.4 MiB (13.0 MiB as full copies), measured 5 min ago',
    );
    expect(diskSummary(null)).to.equal(null);
  });

  it('says an update is available only for a candidate other than the current version', () => {
    const base = { name: 'memory', state: 'idle' as const, failedVersions: [] };
    expect(serverView(settings, { ...base, current: '1.0.0', candidate: '1.1.0' }, layout).updateAvailable).to.equal(true);
    expect(serverView(settings, { ...base, current: '1.1.0', candidate: '1.1.0' }, layout).updateAvailable).to.equal(false);
    expect(serverView(settings, { ...base, candidate: '1.1.0' }, layout).updateAvailable).to.equal(true);
  });

  it('redacts credentials in the last error', () => {
    const view = serverView(
      settings,
      { name: 'memory', state: 'failed', failedVersions: [], lastError: 'E401: GET https://bot:s3cret@registry.internal/x failed' },
      layout,
    );
    expect(view.lastError).to.equal('E401: GET https://[REDACTED]@registry.internal/x failed');
  });

  it('publishes settings key by key: env values hidden, credentials in args redacted', () => {
    const published = publicSettings({
      ...settings,
      range: '^1.0.0',
      smokeTest: {
        enabled: true,
        timeoutMs: 10_000,
        command: 'node',
        args: ['https://u:p@host/x', '--x'],
        env: { Z_KEY: 'secret', A: 'b' },
        network: false,
      },
    });
    expect(published).to.deep.equal({
      ecosystem: 'npm',
      python: null,
      version: null,
      channel: 'latest',
      range: '^1.0.0',
      bin: null,
      schedule: '0 */6 * * *',
      timezone: 'UTC',
      policy: 'minor',
      minReleaseAgeMs: 259_200_000,
      activation: 'auto',
      keep: 3,
      allowScripts: null,
      smokeTest: {
        enabled: true,
        timeoutMs: 10_000,
        command: 'node',
        args: ['https://[REDACTED]@host/x', '--x'],
        network: false,
        env: { A: '[REDACTED]', Z_KEY: '[REDACTED]' },
      },
      surfaceChange: { additive: 'auto', changed: 'approve', breaking: 'approve' },
      provenance: 'warn',
      repository: null,
    });
  });

  it('counts servers by state, every state present', () => {
    const counts = countByState([{ state: 'idle' }, { state: 'failed' }, { state: 'idle' }]);
    expect(Object.keys(counts)).to.deep.equal([...SERVER_STATES]);
    expect(counts).to.include({ idle: 2, failed: 1, staging: 0 });
  });
});

describe('read model on Redis: the CLI and the API read the same views', function () {
  this.timeout(30_000);
  let env: TestEnv;

  before(async () => {
    env = await createTestEnv({ inventory: INVENTORY });
    const state = new StateStore(env.redis, env.config);
    await state.update('zeta', {
      current: '1.0.1',
      previous: '1.0.0',
      latest: '1.1.0',
      candidate: '1.0.2',
      state: 'idle',
      lastCheck: '2026-05-01T10:00:00.000Z',
    });
    await state.markFailedVersion('zeta', '1.0.3');
    await state.appendHistory('zeta', { action: 'activate', from: '1.0.0', to: '1.0.1', at: '2026-04-01T00:00:00.000Z' });
    await state.update('alpha', { state: 'failed', lastError: 'ESMOKETEST: no tools listed' });
  });

  after(async () => {
    await env?.cleanup();
  });

  it('reads many servers in the order given', async () => {
    const inventory = await loadInventory(env.config.serversConfig, inventoryDefaults(env.config));
    const state = new StateStore(env.redis, env.config);
    const views = await readServerViews([...inventory.servers.values()], state, new InstallLayout(env.config));
    expect(views.map((view) => [view.name, view.state, view.current, view.updateAvailable])).to.deep.equal([
      ['zeta', 'idle', '1.0.1', true],
      ['alpha', 'failed', null, false],
    ]);
    expect(views[0]!.failedVersions).to.deep.equal(['1.0.3']);
  });

  it('reads one server with settings and history', async () => {
    const inventory = await loadInventory(env.config.serversConfig, inventoryDefaults(env.config));
    const detail = await readServerDetail(
      inventory.servers.get('zeta')!,
      new StateStore(env.redis, env.config),
      new InstallLayout(env.config),
    );
    expect(detail.history.map((entry) => entry.to)).to.deep.equal(['1.0.1']);
    expect(detail.settings).to.include({ policy: 'patch', range: '>=1.0.0' });
    expect(detail.settings.smokeTest.env).to.deep.equal({ A_SETTING: '[REDACTED]', ZETA_TOKEN: '[REDACTED]' });
    expect(JSON.stringify(detail)).to.not.include('secret-value').and.not.include('hunter2');
  });

  it('gives `mcp-updater servers` what GET /api/v1/servers gives, sorted by name', async () => {
    const watcher = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
    try {
      const state = new StateStore(env.redis, env.config);
      const installLayout = new InstallLayout(env.config);
      const api = await new ServerOverview({ inventory: watcher, state, layout: installLayout, cacheMs: 0 }).list();
      const cli = await sortedServerViews(watcher.inventory, state, installLayout);
      expect(cli.map((view) => view.name)).to.deep.equal(['alpha', 'zeta']);
      expect(cli).to.deep.equal([...api].sort((a, b) => a.name.localeCompare(b.name)));
    } finally {
      watcher.close();
    }
  });
});
