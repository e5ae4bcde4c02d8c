/*
 * Issue 11, item 5: install scripts, opted in. Everything is installed with --ignore-scripts;
 * `allowScripts: [names]` of a server runs the install scripts of exactly those packages.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigurationError } from '../shared/errors.js';
import { parseInventory } from '../shared/inventory.js';
import type { StageJobData, StageResult } from '../shared/queues.js';
import type { WorkerContext } from '../workers/context.js';
import { execStageJob } from '../workers/stage.js';
import { npmRebuildArgs } from '../workers/staging/npmInstall.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { integrityOf, packDirectory } from './support/tarball.js';

const old = new Date(Date.now() - 30 * 24 * 3600 * 1000);
const base = { schedule: '0 */6 * * *', timezone: 'UTC' };

describe('install scripts: allowScripts in the inventory', () => {
  it('is a list of package names per server, absent by default', () => {
    const inventory = parseInventory(
      'servers:\n  a: { package: x, allowScripts: [puppeteer, "@scope/native"] }\n  b: { package: y }\n',
      'inv.yaml',
      base,
    );
    expect(inventory.servers.get('a')!.allowScripts).to.deep.equal(['puppeteer', '@scope/native']);
    expect(inventory.servers.get('b')!.allowScripts).to.equal(undefined);
  });

  it('refuses what is not a package name, naming the key', () => {
    expect(() => parseInventory('servers:\n  a: { package: x, allowScripts: ["not a name"] }\n', 'inv.yaml', base))
      .to.throw(ConfigurationError)
      .with.property('path')
      .that.match(/^servers\.a\.allowScripts/);
  });

  it("npm rebuild runs the named packages' scripts only", () => {
    expect(npmRebuildArgs({ registry: 'http://127.0.0.1:1/', cacheDir: '/c' }, ['a', '@s/b'])).to.deep.equal([
      'rebuild',
      'a',
      '@s/b',
      '--ignore-scripts=false',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      '--registry=http://127.0.0.1:1/',
      '--cache=/c',
    ]);
  });
});

describe('install scripts: exactly the allowed packages run theirs', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;

  before(async () => {
    registry = await FixtureRegistry.start();
    for (const name of ['fixture-script-a', 'fixture-script-b']) {
      await registry.publish({
        name,
        version: '1.0.0',
        fromDir: fixturePackageDir('plain-lib'),
        publishedAt: old,
        packageJson: {
          scripts: {
            postinstall:
              "node -e \"require('fs').writeFileSync('ran.txt', (process.env.npm_package_name || '?') + ' token:' + (process.env.MCP_UPDATER_REGISTRY_TOKEN || process.env.REGISTRY_TOKEN || 'none'))\"",
          },
        },
      });
    }
    env = await createTestEnv({
      registryUrl: registry.url,
      // npm gets it while it resolves and installs; a script never does.
      env: { REGISTRY_TOKEN: 'fixture-registry-token-for-scripts' },
      inventory: `
defaults:
  minReleaseAge: 0
  activation: manual
  smokeTest: { timeout: 10s }
servers:
  scripted: { package: mcp-scripted, allowScripts: [fixture-script-a, fixture-not-installed] }
  scriptless: { package: mcp-scripted }
`,
    });
    context = await env.context();
  });

  after(async () => {
    await env?.cleanup();
    await registry?.close();
  });

  async function stage(server: string): Promise<StageResult> {
    const tarball = await packDirectory(fixturePackageDir('mcp-healthy'), {
      name: 'mcp-scripted',
      version: '1.0.0',
      packageJson: { dependencies: { 'fixture-script-a': '1.0.0', 'fixture-script-b': '1.0.0' } },
    });
    const { integrity } = integrityOf(tarball);
    const file = context.layout.backupFile(integrity);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, tarball);
    const data: StageJobData = { server, chain: `${server}@1.0.0`, package: 'mcp-scripted', version: '1.0.0', integrity };
    return runProcessor('stage', { id: data.chain, data, attemptsMade: 0, opts: { attempts: 1 } }, context, execStageJob);
  }

  const ran = (server: string, name: string) =>
    fs.readFile(path.join(context.layout.versionDir(server, '1.0.0'), 'node_modules', name, 'ran.txt'), 'utf8').catch(() => undefined);

  it("runs fixture-script-a's postinstall and not fixture-script-b's", async () => {
    expect((await stage('scripted')).toolCount).to.equal(2);
    expect(await ran('scripted', 'fixture-script-a')).to.equal('fixture-script-a token:none');
    expect(await ran('scripted', 'fixture-script-b')).to.equal(undefined);
  });

  it('runs no script without allowScripts', async () => {
    expect((await stage('scriptless')).toolCount).to.equal(2);
    expect(await ran('scriptless', 'fixture-script-a')).to.equal(undefined);
    expect(await ran('scriptless', 'fixture-script-b')).to.equal(undefined);
  });
});
