/*
 * Issue 12, finding 1: the candidate cannot read the service's secrets. A hostile fixture server
 * (test/fixtures/packages/mcp-environ-spy) reads every /proc/<pid>/environ it can see, secret
 * files, tries to write outside its sandbox and to reach the network, while it is smoke-tested:
 * directly through runSmokeTest, and staged by real worker processes that hold API_TOKEN,
 * REGISTRY_TOKEN and WEBHOOK_SECRET — without bwrap on PATH (the finding, reproduced) and with it.
 * Where this machine has no usable bwrap (or MCP_UPDATER_TEST_HIDE_BWRAP=1 pretends so), every
 * case asserts the documented unsandboxed behaviour instead: it runs, and start-up says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../shared/config.js';
import { SmokeTestError } from '../shared/errors.js';
import { InstallLayout } from '../shared/layout.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { detectSandbox, sandboxStatus } from '../shared/sandbox.js';
import { runSmokeTest, SANDBOX_HOME, sandboxArguments, type SmokeTestOptions } from '../shared/smokeTest.js';
import { ProducerClient } from '../producers/client.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { killHard, startRole, type ChildWithOutput } from './support/reliability.js';
import { waitUntil } from './support/wait.js';

const SPY = path.join(fixturePackageDir('mcp-environ-spy'), 'server.js');

interface SpyReport {
  pid: number;
  ppid: number;
  cwd: string;
  home: string;
  visible: number;
  readable: number;
  targets: Array<{ pid: number; found: Record<string, string>; cmdline: string }>;
  files: Record<string, string>;
  writes: Record<string, string>;
  network?: string;
}

function decode(serverVersion: string | undefined): SpyReport {
  expect(serverVersion, 'the spy reports through serverInfo.version').to.be.a('string');
  return JSON.parse(Buffer.from(serverVersion!, 'base64url').toString('utf8')) as SpyReport;
}

function secrets(): Record<'API_TOKEN' | 'REGISTRY_TOKEN' | 'WEBHOOK_SECRET', string> {
  return {
    API_TOKEN: `api-${crypto.randomBytes(16).toString('hex')}`,
    REGISTRY_TOKEN: `reg-${crypto.randomBytes(16).toString('hex')}`,
    WEBHOOK_SECRET: `whk-${crypto.randomBytes(16).toString('hex')}`,
  };
}

/** Processes on this machine whose command line contains `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

describe('security: the smoke-test sandbox (bubblewrap)', function () {
  this.timeout(60_000);
  // What this machine offers decides which behaviour each case proves (see the header).
  const sandboxed = sandboxStatus().sandboxed;
  const UNSANDBOXED = /^smoke tests run unsandboxed: (bubblewrap \(bwrap\) is not installed|bwrap cannot create namespaces here \(.+\))$/;

  it(`is probed once per process: ${sandboxed ? 'sandboxed here' : 'unsandboxed here, and the summary says why'}`, () => {
    const status = sandboxStatus();
    expect(sandboxStatus()).to.equal(status);
    if (sandboxed) {
      expect(status.networkIsolation).to.equal(true);
      expect(status.summary).to.equal('smoke tests run sandboxed (bubblewrap)');
    } else {
      expect(status).to.include({ sandboxed: false, networkIsolation: false });
      expect(status.bwrap).to.equal(undefined);
      expect(status.summary).to.match(UNSANDBOXED);
    }
  });

  it('says plainly that smoke tests run unsandboxed where bwrap is missing', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-nobwrap-'));
    try {
      const status = detectSandbox(empty);
      expect(status).to.include({ sandboxed: false, networkIsolation: false });
      expect(status.summary).to.equal('smoke tests run unsandboxed: bubblewrap (bwrap) is not installed');
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  describe('runSmokeTest with a hostile candidate', () => {
    const values = secrets();
    const marker = crypto.randomBytes(8).toString('hex');
    let service: ChildProcess;
    let dir: string;
    let saved: NodeJS.ProcessEnv;

    before(async () => {
      // The secrets in this test's own environment, and a stand-in for the service process that
      // started with them (a process's /proc/<pid>/environ is its environment at exec).
      saved = { ...process.env };
      Object.assign(process.env, values);
      service = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
        env: { ...process.env, SPY_TARGET_OF_TEST: marker },
        stdio: 'ignore',
      });
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-sandbox-'));
    });

    after(async () => {
      service?.kill('SIGKILL');
      for (const key of Object.keys(values)) delete process.env[key];
      Object.assign(process.env, saved);
      await fs.rm(dir, { recursive: true, force: true });
    });

    function spy(env: Record<string, string> = {}, extra: Partial<SmokeTestOptions> = {}): SmokeTestOptions {
      return {
        command: process.execPath,
        args: [SPY],
        env: { SPY_TARGET: marker, ...env },
        timeoutMs: 15_000,
        label: 'spy 1.0.0',
        ...extra,
      };
    }

    it('unsandboxed, the spy reads the secrets from another process of this uid (the finding)', async () => {
      await waitUntil('the stand-in service to run', async () =>
        (await processesWith('setInterval(() => {}, 1000)')).includes(service.pid!),
      );
      const report = decode((await runSmokeTest(spy({}, { sandbox: false }))).serverVersion);
      const found = report.targets.find((target) => target.pid === service.pid);
      expect(found?.found, 'the spy saw the service environment').to.deep.equal(values);
    });

    it(`${sandboxed ? 'sandboxed, it sees only its own pid namespace: no secret in any environ or command line' : 'without the sandbox, the default smoke test is the unsandboxed one: the spy reads the secrets'}`, async () => {
      if (!sandboxed) {
        await waitUntil('the stand-in service to run', async () =>
          (await processesWith('setInterval(() => {}, 1000)')).includes(service.pid!),
        );
        const report = decode((await runSmokeTest(spy())).serverVersion);
        expect(report.targets.find((target) => target.pid === service.pid)?.found).to.deep.equal(values);
        expect(report.home).to.equal(process.env.HOME);
        return;
      }
      const record = await runSmokeTest(spy());
      expect(record).to.include({ ok: true, serverName: 'mcp-environ-spy', toolCount: 1 });
      const report = decode(record.serverVersion);
      const text = JSON.stringify(report);
      for (const [name, value] of Object.entries(values)) expect(text, name).not.to.include(value);
      expect(report.targets).to.deep.equal([]);
      // bwrap's init and the spy: the spy looked, and could read its own environment.
      expect(report.visible).to.be.within(1, 3);
      expect(report.readable).to.be.at.least(1);
      expect(report.home).to.equal(SANDBOX_HOME);
    });

    it(`${sandboxed ? 'hides secret files, shows named paths read-only (relative ones from the working directory), keeps /tmp and home private' : 'without the sandbox, the candidate reads and writes whatever the worker can'}`, async () => {
      const secretFile = path.join(dir, 'api_token');
      const dataFile = path.join(dir, 'data.txt');
      const unnamed = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-unnamed-'));
      await fs.writeFile(secretFile, `${values.API_TOKEN}\n`);
      await fs.writeFile(dataFile, 'operator data');
      await fs.writeFile(path.join(unnamed, 'other.txt'), 'not named anywhere');
      const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-cwd-'));
      await fs.writeFile(path.join(cwd, 'relative.txt'), 'relative data');
      // loadConfig registers the file behind API_TOKEN_FILE as a secret file.
      loadConfig({ API_BASE_URL: 'http://127.0.0.1:9/', API_TOKEN_FILE: secretFile });
      const tmpName = `mcpu-spy-${crypto.randomBytes(6).toString('hex')}`;
      try {
        if (!sandboxed) {
          const written = path.join(dir, 'written.txt');
          const files = [secretFile, path.join(unnamed, 'other.txt'), './relative.txt'];
          const report = decode((await runSmokeTest(spy({ SPY_FILES: files.join(','), SPY_WRITE: written }, { cwd }))).serverVersion);
          expect(report.files[secretFile]).to.equal(`${values.API_TOKEN}\n`);
          expect(report.files[path.join(unnamed, 'other.txt')]).to.equal('not named anywhere');
          expect(report.files['./relative.txt']).to.equal('relative data');
          expect(report.writes[written]).to.equal('written');
          expect(await fs.readFile(written, 'utf8'), 'on the host').to.equal('spy');
          return;
        }
        // Paths named by a value of their own are visible; SPY_FILES itself names no path.
        const record = await runSmokeTest(
          spy(
            {
              TOKEN_PATH: secretFile,
              DATA_PATH: dataFile,
              RELATIVE_PATH: './relative.txt',
              SPY_FILES: [secretFile, dataFile, path.join(unnamed, 'other.txt'), './relative.txt'].join(','),
              SPY_WRITE: [
                path.join(dir, 'written.txt'),
                `/tmp/${tmpName}`,
                `${SANDBOX_HOME}/${tmpName}`,
                path.join(cwd, 'created.txt'),
              ].join(','),
              SPY_WRITE_SELF: '1',
            },
            { cwd },
          ),
        );
        const report = decode(record.serverVersion);
        expect(report.files[secretFile], 'a registered secret file reads as empty').to.equal('');
        expect(report.files[dataFile]).to.equal('operator data');
        expect(report.files[path.join(unnamed, 'other.txt')]).to.equal('ENOENT');
        expect(report.files['./relative.txt']).to.equal('relative data');
        expect(report.cwd).to.equal(cwd);
        expect(report.writes[path.join(dir, 'written.txt')]).to.equal('EROFS');
        expect(report.writes[path.join(fixturePackageDir('mcp-environ-spy'), 'spy-was-here')]).to.equal('EROFS');
        expect(report.writes[`/tmp/${tmpName}`]).to.equal('written');
        expect(report.writes[`${SANDBOX_HOME}/${tmpName}`]).to.equal('written');
        // The working directory is bound read-only here, because a named file lives in it.
        expect(report.writes[path.join(cwd, 'created.txt')]).to.equal('EROFS');
        // Private: nothing of it reached the host.
        for (const file of [
          `/tmp/${tmpName}`,
          path.join(dir, 'written.txt'),
          path.join(fixturePackageDir('mcp-environ-spy'), 'spy-was-here'),
        ]) {
          expect(
            await fs.stat(file).then(
              () => true,
              () => false,
            ),
            file,
          ).to.equal(false);
        }
      } finally {
        await fs.rm(unnamed, { recursive: true, force: true });
        await fs.rm(cwd, { recursive: true, force: true });
      }
    });

    it(`${sandboxed ? "gives the working directory as a private empty directory at its real path (the service's own files stay out of sight)" : "without the sandbox, the working directory is the service's own"}`, async () => {
      const name = `mcpu-spy-${crypto.randomBytes(6).toString('hex')}`;
      if (!sandboxed) {
        const report = decode((await runSmokeTest(spy({ SPY_FILES: './package.json' }))).serverVersion);
        expect(report.cwd).to.equal(process.cwd());
        expect(report.files['./package.json']).to.equal(await fs.readFile('package.json', 'utf8'));
        return;
      }
      // The default working directory is this process's (the repository here): not under /tmp.
      // (A list names no path of its own, so neither file is bound.)
      const report = decode((await runSmokeTest(spy({ SPY_FILES: './package.json,./README.md', SPY_WRITE: `./${name}` }))).serverVersion);
      expect(report.cwd).to.equal(process.cwd());
      expect(report.files['./package.json']).to.equal('ENOENT');
      expect(report.files['./README.md']).to.equal('ENOENT');
      expect(report.writes[`./${name}`]).to.equal('written');
      expect(
        await fs.stat(path.join(process.cwd(), name)).then(
          () => true,
          () => false,
        ),
      ).to.equal(false);
    });

    it(`keeps the network unless smokeTest.network is false${sandboxed ? '' : ', which fails without the sandbox and says why'}`, async () => {
      const server = net.createServer((socket) => socket.end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = String((server.address() as net.AddressInfo).port);
      try {
        const connected = decode((await runSmokeTest(spy({ SPY_CONNECT: port }))).serverVersion);
        expect(connected.network).to.equal('connected');
        const isolated = runSmokeTest(spy({ SPY_CONNECT: port }, { network: false }));
        if (sandboxed) {
          expect(decode((await isolated).serverVersion).network)
            .to.be.a('string')
            .and.not.equal('connected');
        } else {
          const refused = await isolated.then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(refused).to.be.instanceOf(SmokeTestError);
          expect((refused as Error).message).to.match(
            /^smoke test of spy 1\.0\.0: smokeTest\.network is false, but smoke tests run unsandboxed: /,
          );
        }
      } finally {
        server.close();
      }
      expect(sandboxArguments({ command: '/x/run', cwd: '/', timeoutMs: 1, network: false })).to.include('--unshare-net');
      expect(sandboxArguments({ command: '/x/run', cwd: '/', timeoutMs: 1 })).not.to.include('--unshare-net');
    });

    it('passes no smokeTest.env value on a command line anyone could read', () => {
      const args = sandboxArguments({ command: SPY, cwd: '/', timeoutMs: 1, env: { SOME_KEY: 'visible-only-in-the-environment' } });
      expect(args.join(' ')).not.to.include('visible-only-in-the-environment');
      expect(args).to.include.members(['--unshare-pid', '--die-with-parent', '--new-session', '--proc']);
    });

    it('a crashing candidate still names its exit code and stderr; a silent one dies at the deadline, all its processes with it', async () => {
      const crash = await runSmokeTest({
        command: process.execPath,
        args: [path.join(fixturePackageDir('mcp-broken-crash'), 'server.js')],
        timeoutMs: 10_000,
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(crash).to.be.instanceOf(SmokeTestError);
      expect((crash as Error).message)
        .to.include('the server exited with code 1 during initialize')
        .and.include('fatal: simulated startup crash');

      // A copy under a unique path, so its processes can be told apart from everyone else's.
      const copy = path.join(dir, `silent-${crypto.randomBytes(6).toString('hex')}`);
      await fs.cp(fixturePackageDir('mcp-broken-silent'), copy, { recursive: true });
      const silent = await runSmokeTest({ command: process.execPath, args: [path.join(copy, 'server.js')], timeoutMs: 1_500 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect((silent as Error).message).to.include('no answer to initialize within 1.5s');
      // Sandboxed, the kernel kills what ran inside once bwrap's init is gone: a moment after bwrap exits.
      await waitUntil('every process of the silent candidate to be gone', async () => (await processesWith(copy)).length === 0);
    });
  });

  describe('worker processes staging the spy', () => {
    let registry: FixtureRegistry;
    const children: ChildWithOutput[] = [];
    const envs: TestEnv[] = [];

    before(async () => {
      registry = await FixtureRegistry.start();
      await registry.publish({ name: 'mcp-environ-spy', version: '1.0.0', fromDir: fixturePackageDir('mcp-environ-spy') });
    });

    after(async () => {
      for (const child of children) await killHard(child);
      for (const env of envs) await env.cleanup();
      await registry?.close();
    });

    /** A worker process with the three secrets (API_TOKEN from a file), staging the spy once. */
    async function stageSpy(
      pathForWorker: string,
    ): Promise<{ report: SpyReport; values: ReturnType<typeof secrets>; log: string; secretFile: string; inventoryFile: string }> {
      const values = secrets();
      const marker = crypto.randomBytes(8).toString('hex');
      const secretsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-secrets-'));
      const secretFile = path.join(secretsDir, 'api_token');
      await fs.writeFile(secretFile, `${values.API_TOKEN}\n`, { mode: 0o600 });
      const env = await createTestEnv({ registryUrl: registry.url });
      envs.push(env);
      await env.writeInventory(
        [
          'defaults:',
          '  minReleaseAge: 0',
          '  activation: manual',
          'servers:',
          '  spy:',
          '    package: mcp-environ-spy',
          '    smokeTest:',
          '      timeout: 20s',
          `      env: { SPY_TARGET: "${marker}", SPY_FILES: "${secretFile},${env.inventoryFile}", SECRET_PATH: "${secretFile}", INVENTORY_PATH: "${env.inventoryFile}" }`,
          '',
        ].join('\n'),
      );
      const worker = startRole('worker', {
        ...env.env,
        PATH: pathForWorker,
        API_TOKEN_FILE: secretFile,
        REGISTRY_TOKEN: values.REGISTRY_TOKEN,
        WEBHOOK_SECRET: values.WEBHOOK_SECRET,
        SPY_TARGET_OF_TEST: marker,
        WORKERS: 'check,download,stage',
      });
      children.push(worker);
      const config = loadConfig(env.env);
      const client = ProducerClient.connect(config);
      const redis = createRedis(config, 'producer');
      try {
        // A producer connection refuses commands until it is connected.
        await waitForRedis(redis, config.redisUrl);
        await client.check('spy', { reason: 'security test' });
        const state = new StateStore(redis, config);
        await waitUntil(
          'the spy to be staged',
          async () => {
            if (worker.exitCode !== null) throw new Error(`worker exited: ${worker.output.join('')}`);
            const current = await state.get('spy');
            if (current.state === 'failed') throw new Error(`staging failed: ${current.lastError}`);
            return current.staged === '1.0.0';
          },
          45_000,
          100,
        );
      } finally {
        await client.close();
        redis.disconnect();
      }
      const record = await new InstallLayout(config).readVersionRecord('spy', '1.0.0');
      const log = await fs.readFile(path.join(config.logDir, 'orchestration.log'), 'utf8').catch(() => '');
      await fs.rm(secretsDir, { recursive: true, force: true });
      return { report: decode(record?.smokeTest?.serverVersion), values, log, secretFile, inventoryFile: env.inventoryFile };
    }

    it("without bwrap on PATH: the start-up log says so, and the staged candidate reads the worker's secrets (the finding)", async () => {
      // Every command of PATH but bwrap (the run script needs sh, dirname...).
      const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-path-'));
      for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
        for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
          if (name === 'bwrap') continue;
          await fs.symlink(path.join(dir, name), path.join(bin, name)).catch(() => undefined);
        }
      }
      await fs.symlink(process.execPath, path.join(bin, 'node')).catch(() => undefined);
      try {
        const { report, values, log, secretFile } = await stageSpy(bin);
        expect(log).to.include('smoke tests run unsandboxed: bubblewrap (bwrap) is not installed');
        const worker = report.targets.find((target) => target.pid === report.ppid || target.cmdline.includes('--role worker'));
        expect(worker?.found, 'the spy read the worker environment').to.include({
          REGISTRY_TOKEN: values.REGISTRY_TOKEN,
          WEBHOOK_SECRET: values.WEBHOOK_SECRET,
        });
        expect(report.files[secretFile]).to.equal(`${values.API_TOKEN}\n`);
      } finally {
        await fs.rm(bin, { recursive: true, force: true });
      }
    });

    it(`${sandboxed ? 'with bwrap: the start-up log says sandboxed, and nothing secret is found: no environ, no secret file, no inventory' : 'with PATH as it is (no usable bwrap here): the start-up log says unsandboxed, and the candidate reads the secret file'}`, async () => {
      const { report, values, log, secretFile, inventoryFile } = await stageSpy(process.env.PATH ?? '');
      if (!sandboxed) {
        expect(log).to.include('smoke tests run unsandboxed: ');
        expect(report.files[secretFile]).to.equal(`${values.API_TOKEN}\n`);
        return;
      }
      expect(log).to.include('smoke tests run sandboxed (bubblewrap)');
      const text = JSON.stringify(report);
      for (const [name, value] of Object.entries(values)) expect(text, name).not.to.include(value);
      expect(report.targets).to.deep.equal([]);
      expect(report.readable).to.be.at.least(1);
      expect(report.files[secretFile]).to.equal('');
      expect(report.files[inventoryFile], 'the inventory holds every smokeTest.env value').to.equal('');
    });
  });
});
