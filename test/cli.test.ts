/*
 * The `mcp-updater` command as users run it: the real binary (bin/mcp-updater.js) in a child
 * process, on the real Redis under this test's QUEUE_PREFIX, against the fixture registry. Where
 * a command needs workers, they run in this process on the same prefix.
 */
import { ownedConnection } from '../shared/redis.js';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { expect } from 'chai';
import { ChainFollower } from '../cli/commands/check.js';
import { ProducerClient } from '../producers/client.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { FixtureRegistry } from './support/registry.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const BIN = fileURLToPath(new URL('../bin/mcp-updater.js', import.meta.url));
const old = new Date(Date.now() - 30 * 86_400_000);

const INVENTORY = `# test inventory
defaults:
  minReleaseAge: 0
  smokeTest: { timeout: 15s }
servers:
  demo:
    package: demo-mcp
  manual:
    package: manual-mcp
    activation: manual
  ghost:
    package: no-such-package
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

describe('cli (real binary, real Redis, fixture registry)', function () {
  this.timeout(120_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let stub: Worker | undefined;

  function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    const started = Date.now();
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        {
          env: { ...env.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? env.root, ...extraEnv },
          timeout: 90_000,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr, ms: Date.now() - started });
        },
      );
    });
  }

  /** Version directories as stage leaves them, and `current` (the activation rules read the disk). */
  async function installed(server: string, versions: string[], current?: string): Promise<void> {
    for (const version of versions) await fs.mkdir(context.layout.versionDir(server, version), { recursive: true });
    if (current) await context.layout.switchCurrent(server, current);
  }

  const json = <T = Record<string, unknown>>(run: Run): T => {
    try {
      return JSON.parse(run.stdout) as T;
    } catch {
      throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\nstderr: ${run.stderr}`);
    }
  };

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
    await registry.publish({ name: 'demo-mcp', version: '1.0.0', publishedAt: old });
    await registry.publish({ name: 'demo-mcp', version: '1.1.0', publishedAt: old });
    await registry.publish({ name: 'manual-mcp', version: '1.0.0', publishedAt: old });
    env = await createTestEnv({ registryUrl: registry.url, inventory: INVENTORY });
    context = await env.context();
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await stub?.close();
    stub = undefined;
    await env.cleanup();
    await registry.close();
  });

  describe('reading', () => {
    it("servers: a table with the last error, and --json with the API's read model, every key present", async () => {
      await context.state.update('demo', { current: '1.0.0', latest: '1.1.0', candidate: '1.1.0', lastCheck: new Date().toISOString() });
      const longError = `ESTAGE: npm install failed\n${'x'.repeat(200)}`;
      await context.state.update('ghost', { state: 'failed', lastError: longError });
      const table = await cli(['servers']);
      expect(table.code, table.stderr).to.equal(0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0]).to.match(/^NAME\s+PACKAGE\s+CURRENT\s+LATEST\s+AVAILABLE\s+POLICY\s+STATE\s+LAST ERROR$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).to.deep.equal(['demo', 'ghost', 'manual']);
      expect(lines[1]).to.match(/^demo\s+demo-mcp\s+1\.0\.0\s+1\.1\.0\s+1\.1\.0\s+minor\s+idle\s+-$/);
      const ghostError = /failed\s+(ESTAGE: npm install failed x+…)$/.exec(lines[2]!);
      expect(ghostError, lines[2]).to.not.equal(null);
      expect(ghostError![1]).to.have.length(60);

      const result = json<{ servers: Array<Record<string, unknown>> }>(await cli(['servers', '--json']));
      expect(result.servers).to.have.length(3);
      expect(result.servers[0]).to.deep.equal({
        name: 'demo',
        ecosystem: 'npm',
        package: 'demo-mcp',
        channel: 'latest',
        policy: 'minor',
        activation: 'auto',
        current: '1.0.0',
        previous: null,
        latest: '1.1.0',
        candidate: '1.1.0',
        updateAvailable: true,
        staged: null,
        gate: null,
        state: 'idle',
        lastCheck: result.servers[0]!.lastCheck,
        lastCheckResult: null,
        lastError: null,
        failedVersions: [],
        hold: null,
        launcher: path.join(env.config.serversPath, 'bin', 'demo'),
        disk: null,
      });
      expect(result.servers[1]).to.include({ name: 'ghost', state: 'failed', lastError: longError });
      expect(result.servers[2]).to.include({ name: 'manual', activation: 'manual', current: null });
    });

    it('status: servers and queue counts (scheduled apart from waiting); status <name>: settings, history and events', async () => {
      await context.state.update('demo', {
        current: '1.1.0',
        previous: '1.0.0',
        lastCheck: new Date(Date.now() - 5 * 60_000).toISOString(),
        lastCheckResult: 'up to date',
        disk: { bytes: 2_516_582, sharedBytes: 0, fullCopyBytes: 13_631_488, measuredAt: new Date(Date.now() - 5 * 60_000).toISOString() },
      });
      await context.state.appendHistory('demo', {
        action: 'activate',
        from: '1.0.0',
        to: '1.1.0',
        at: new Date(Date.now() - 2 * 3_600_000).toISOString(),
        reason: 'test',
      });
      await context.events.publish({ type: 'update.activated', server: 'demo', version: '1.1.0', from: '1.0.0', jobId: 'j1' });
      await context.queues.check.add('check', { server: 'demo' });
      await context.queues.check.add('check', { server: 'manual' }, { delay: 3_600_000 });

      const overview = await cli(['status']);
      expect(overview.code, overview.stderr).to.equal(0);
      expect(overview.stdout).to.match(/^demo\s+idle\s+1\.1\.0\s+-\s+5 min ago\s+up to date$/m);
      expect(overview.stdout).to.match(/^manual\s+idle\s+-\s+-\s+never\s+-$/m);
      expect(overview.stdout).to.match(/^QUEUE\s+WAITING\s+ACTIVE\s+SCHEDULED\s+FAILED\s+COMPLETED$/m);
      expect(overview.stdout).to.match(/^check\s+1\s+0\s+1\s+0\s+0$/m);

      const all = json<{ servers: unknown[]; queues: Record<string, Record<string, number>> }>(await cli(['status', '--json']));
      expect(all.servers).to.have.length(3);
      expect(Object.keys(all.queues)).to.deep.equal(['check', 'download', 'stage', 'activate', 'cleanup', 'webhook']);
      expect(all.queues.check).to.deep.equal({ waiting: 1, active: 0, delayed: 1, failed: 0, completed: 0 });

      const detail = await cli(['status', 'demo']);
      expect(detail.code, detail.stderr).to.equal(0);
      expect(detail.stdout).to.match(/^current:\s+1\.1\.0$/m);
      expect(detail.stdout).to.match(/^smoke test:\s+on, timeout 15s$/m);
      expect(detail.stdout).to.include(`launcher:         ${path.join(env.config.serversPath, 'bin', 'demo')}`);
      expect(detail.stdout).to.match(/^disk:\s+2\.4 MiB \(13\.0 MiB as full copies\), measured 5 min ago$/m);
      expect(detail.stdout).to.match(/^2 h ago\s+activate\s+1\.0\.0\s+1\.1\.0\s+test$/m);
      // Published when the test began: a few seconds before this CLI run on a busy machine.
      expect(detail.stdout).to.match(/^(just now|\d+ s ago|\d+ min ago)\s+update\.activated\s+1\.0\.0 -> 1\.1\.0\s+-$/m);

      const one = json<{ server: Record<string, unknown> & { history: unknown[] }; events: Array<{ type: string }> }>(
        await cli(['status', 'demo', '--json']),
      );
      expect(one.server).to.include({
        name: 'demo',
        current: '1.1.0',
        previous: '1.0.0',
        launcher: path.join(env.config.serversPath, 'bin', 'demo'),
      });
      expect(one.server.failedVersions).to.deep.equal([]);
      expect(one.server.settings).to.deep.equal({
        ecosystem: 'npm',
        python: null,
        version: null,
        channel: 'latest',
        range: null,
        bin: null,
        schedule: '0 */6 * * *',
        timezone: 'UTC',
        policy: 'minor',
        minReleaseAgeMs: 0,
        activation: 'auto',
        keep: 3,
        allowScripts: null,
        smokeTest: { enabled: true, timeoutMs: 15_000, command: null, args: [], network: true, env: {} },
        surfaceChange: { additive: 'auto', changed: 'approve', breaking: 'approve' },
        provenance: 'warn',
        repository: null,
      });
      expect(one.server.history).to.have.length(1);
      expect(one.events.map((event) => event.type)).to.deep.equal(['update.activated']);
    });
  });

  describe('enqueueing without workers', () => {
    it('check: one job per server (all by default), --json gives the job ids', async () => {
      const one = await cli(['check', 'demo', '--reason', 'release notes said so']);
      expect(one.code, one.stderr).to.equal(0);
      expect(one.stdout).to.match(/^queued check of demo \(job \S+\)$/m);
      const jobs = await context.queues.check.getJobs(['waiting']);
      expect(jobs.map((job) => job.data)).to.deep.equal([{ server: 'demo', reason: 'release notes said so' }]);

      const all = json<{ jobs: Array<{ server: string; jobId: string }> }>(await cli(['check', '--json', '--force']));
      expect(all.jobs.map((job) => job.server)).to.deep.equal(['demo', 'ghost', 'manual']);
      for (const { server, jobId } of all.jobs) {
        const job = await context.queues.check.getJob(jobId);
        expect(job?.data.server).to.equal(server);
      }
      expect((await context.queues.check.getJob(all.jobs[1]!.jobId))?.data).to.deep.equal({
        server: 'ghost',
        force: true,
        reason: 'mcp-updater check (CLI)',
      });
    });

    it('approve: the staged version by default, or the named one', async () => {
      await installed('manual', ['1.0.0']);
      await installed('demo', ['1.0.0', '1.1.0'], '1.0.0');
      await context.state.update('manual', { staged: '1.0.0', state: 'awaiting-approval' });
      const staged = await cli(['approve', 'manual', '--json']);
      expect(staged.code, staged.stderr).to.equal(0);
      const report = json<{ jobId: string }>(staged);
      expect(report).to.include({ server: 'manual', action: 'approve', version: '1.0.0', queue: 'activate' });
      const job = await context.queues.activate.getJob(report.jobId);
      expect(job?.data).to.include({ server: 'manual', action: 'approve', version: '1.0.0' });

      const named = await cli(['approve', 'demo', '1.1.0']);
      expect(named.code, named.stderr).to.equal(0);
      expect(named.stdout).to.match(/^queued approve of demo to 1\.1\.0 \(job \S+\)/);

      const nothing = await cli(['approve', 'demo']);
      expect(nothing.code).to.equal(1);
      expect(nothing.stderr).to.include('demo has no version staged for approval');
      expect(nothing.stderr).to.include('mcp-updater approve demo <version>');

      // The activation rules answer before anything is enqueued.
      const missing = await cli(['approve', 'demo', '1.2.0']);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.include('ECONFLICT: demo 1.2.0 is not staged');
      expect(await context.queues.activate.count()).to.equal(2);
    });

    it('rollback: to the previous version, or --to a named one', async () => {
      const refused = await cli(['rollback', 'demo']);
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include('demo has no previous version to roll back to');
      expect(await context.queues.activate.count()).to.equal(0);

      await installed('demo', ['1.0.0', '1.1.0'], '1.1.0');
      await context.state.update('demo', { current: '1.1.0', previous: '1.0.0' });
      const previous = json<{ jobId: string; version: string | null }>(await cli(['rollback', 'demo', '--json']));
      expect(previous.version).to.equal(null);
      const job = await context.queues.activate.getJob(previous.jobId);
      expect(job?.data).to.include({ server: 'demo', chain: previous.jobId, action: 'rollback', reason: 'rollback requested' });
      expect(previous.jobId).to.match(/^demo~rollback~[0-9a-z]+$/);
      expect(job?.data).to.not.have.property('version');

      const named = await cli(['rollback', 'demo', '--to', '1.0.0', '--reason', 'regression']);
      expect(named.code, named.stderr).to.equal(0);
      const jobs = await context.queues.activate.getJobs(['waiting']);
      const toNamed = jobs.find((item) => item.data.version)!;
      expect(toNamed.data).to.deep.equal({
        server: 'demo',
        chain: toNamed.id,
        action: 'rollback',
        version: '1.0.0',
        reason: 'regression',
        requestedBy: toNamed.data.requestedBy,
      });
      expect(toNamed.data.requestedBy).to.match(/^cli:/);
    });

    it('cleanup: enqueues; a dry run without a worker gives up with exit 1', async () => {
      const queued = json<{ jobId: string; dryRun: boolean; result: null }>(await cli(['cleanup', '--json']));
      expect(queued).to.include({ dryRun: false, result: null, queue: 'cleanup' });
      expect((await context.queues.cleanup.getJob(queued.jobId))?.data).to.include({ dryRun: false });

      const waited = await cli(['cleanup', '--dry-run', '--timeout', '1s']);
      expect(waited.code).to.equal(1);
      expect(waited.stderr).to.match(/no worker finished cleanup job \S+ in time: is a worker with cleanup in WORKERS running\?/);
    });
  });

  describe('with workers', () => {
    it('check --wait follows check -> download -> stage -> activate; approve, rollback --wait', async () => {
      workers = startWorkers(context, ['check', 'download', 'stage', 'activate']);

      const first = await cli(['check', '--wait', '--json']);
      expect(first.code, 'ghost fails its check').to.equal(1);
      const { results } = json<{ results: Array<Record<string, unknown>> }>(first);
      expect(results.map((result) => [result.server, result.outcome, result.step])).to.deep.equal([
        ['demo', 'updated', 'activate'],
        ['ghost', 'failed', 'check'],
        ['manual', 'awaiting-approval', 'stage'],
      ]);
      expect(results[0]).to.deep.include({ from: null, to: '1.1.0', version: '1.1.0', summary: '(none) -> 1.1.0' });
      expect(results[0]!.checkJobId).to.be.a('string');
      expect(results[1]!.summary).to.match(/not found in the registry/);
      expect(results[2]).to.deep.include({ from: null, to: null, version: '1.0.0' });

      const again = await cli(['check', 'demo', '--wait']);
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stdout).to.match(/^demo: up to date \(.+\)$/m);
      expect(again.stdout).to.include('1 checked: 0 updated, 1 up to date, 0 awaiting approval, 0 failed');

      const approved = await cli(['approve', 'manual', '--wait']);
      expect(approved.code, approved.stderr).to.equal(0);
      expect(approved.stdout.trim()).to.equal('manual: (none) -> 1.0.0 (approved)');

      await registry.publish({ name: 'demo-mcp', version: '1.2.0', publishedAt: old });
      const update = await cli(['check', 'demo', 'manual', '--wait']);
      expect(update.code, update.stderr).to.equal(0);
      expect(update.stdout).to.include('demo: updated 1.1.0 -> 1.2.0');
      expect(update.stdout).to.match(/^manual: up to date/m);

      const rolledBack = json<{ result: Record<string, unknown> }>(await cli(['rollback', 'demo', '--wait', '--json']));
      expect(rolledBack.result).to.deep.equal({ outcome: 'activated', from: '1.2.0', to: '1.1.0', reason: null });
      const servers = json<{ servers: Array<{ name: string; current: string | null }> }>(await cli(['servers', '--json']));
      expect(servers.servers.map((server) => [server.name, server.current])).to.deep.equal([
        ['demo', '1.1.0'],
        ['ghost', null],
        ['manual', '1.0.0'],
      ]);
    });

    it('check --wait times out with exit 1 when no worker takes the next step', async () => {
      workers = startWorkers(context, ['check']);
      const run = await cli(['check', 'demo', '--wait', '--timeout', '2s']);
      expect(run.code).to.equal(1);
      expect(run.stdout).to.match(
        /^demo: timed out: still at download \(job demo@1\.1\.0\) after 2s: is a worker for the download queue running\?$/m,
      );
    });

    it('check --wait follows a chain whose finished check job was already trimmed from its queue', async () => {
      workers = startWorkers(context, ['check']);
      const client = ProducerClient.connect(env.config);
      try {
        const { jobId } = await client.check('demo');
        await client.waitFor('check', jobId, 20_000);
        await (await context.queues.check.getJob(jobId))!.remove();
        const [report] = await new ChainFollower({ client, state: context.state }, [{ server: 'demo', jobId, from: null }]).follow(1_000);
        expect(report).to.include({ outcome: 'timed-out', step: 'download', version: '1.1.0' });
      } finally {
        await client.close();
      }
    });

    it('cleanup --dry-run prints the plan the cleanup worker returns', async () => {
      const plan = {
        removeVersions: [{ server: 'demo', version: '0.9.0' }],
        removeStaging: [path.join(env.config.stagingDir, 'demo', '1.0.0-x')],
        removeBackups: [path.join(env.config.backupDir, 'sha512', 'ab.tgz')],
        kept: { versions: [], staging: [], backups: [] },
      };
      let seen: unknown;
      // Stands in for workers/cleanup.ts: this test is about what the CLI prints of its answer.
      stub = new Worker(
        'cleanup',
        async (job) => {
          seen = job.data;
          return { dryRun: true, plan, bytesFreed: 0, bytesPlanned: 3 * 1024 * 1024, skipped: [] };
        },
        { connection: ownedConnection(env.config, 'worker'), prefix: env.prefix },
      );

      const run = await cli(['cleanup', '--dry-run']);
      expect(run.code, run.stderr).to.equal(0);
      expect(seen).to.include({ dryRun: true });
      expect(run.stdout).to.include('dry run: would remove 1 versions, 1 staging directories, 1 backups (3.0 MiB); nothing was changed');
      expect(run.stdout).to.match(/^version\s+demo@0\.9\.0$/m);
      expect(run.stdout).to.include(`staging  ${plan.removeStaging[0]}`);
      expect(run.stdout).to.include(`backup   ${plan.removeBackups[0]}`);

      const asJson = json<{ dryRun: boolean; result: { plan: typeof plan } }>(await cli(['cleanup', '--dry-run', '--json']));
      expect(asJson.dryRun).to.equal(true);
      expect(asJson.result.plan.removeVersions).to.deep.equal(plan.removeVersions);
    });
  });

  describe('exit codes', () => {
    it('2 for usage errors: unknown command, unknown option, missing argument, unknown server, bad duration', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['frobnicate'], /unknown command 'frobnicate'/],
        [['servers', '--colour'], /unknown option '--colour'/],
        [['approve'], /missing required argument 'name'/],
        [['status', 'nope'], /unknown server "nope" \(not in .*\): known servers: demo, ghost, manual/],
        [['check', 'demo', 'nope', 'zzz'], /unknown servers "nope", "zzz"/],
        [['check', '--wait', '--timeout', 'soon'], /--timeout <duration>.*is not a duration/],
      ];
      for (const [args, message] of cases) {
        const run = await cli(args);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).to.equal(2);
        expect(run.stderr, args.join(' ')).to.match(message);
      }
    });

    it('0 for --help of every command, with examples', async () => {
      for (const command of ['servers', 'check', 'status', 'approve', 'rollback', 'cleanup', 'import', 'config check', 'start']) {
        const run = await cli([...command.split(' '), '--help']);
        expect(run.code, command).to.equal(0);
        expect(run.stdout, command).to.include('Examples:');
      }
      const version = await cli(['--version']);
      expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
    });

    it('78 for configuration errors, naming the variable or the inventory key', async () => {
      const badEnv = await cli(['config', 'check'], { MAX_RETRIES: 'abc' });
      expect(badEnv.code).to.equal(78);
      expect(badEnv.stderr).to.match(/ECONFIG: MAX_RETRIES: must be a number/);
      const badEnvServers = await cli(['servers'], { MAX_RETRIES: 'abc' });
      expect(badEnvServers.code).to.equal(78);

      await env.writeInventory('servers:\n  demo:\n    package: demo-mcp\n    policy: sometimes\n');
      const badInventory = await cli(['config', 'check']);
      expect(badInventory.code).to.equal(78);
      expect(badInventory.stderr).to.include('servers.demo.policy: must be one of patch, minor, major, pin');
      expect((await cli(['check', 'demo'])).code).to.equal(78);
    });

    it('0 for a valid configuration, with --json', async () => {
      const run = await cli(['config', 'check', '--json']);
      expect(run.code, run.stderr).to.equal(0);
      expect(json(run)).to.deep.equal({
        ok: true,
        inventory: env.inventoryFile,
        servers: ['demo', 'ghost', 'manual'],
        registry: `${registry.url.replace(/\/$/, '')}/`,
        redisUrl: env.env.REDIS_URL,
        queuePrefix: env.prefix,
        workers: ['check', 'download', 'stage', 'activate', 'cleanup'],
        readOnlyApi: true,
      });
    });

    it('1, fast and with the reason, when Redis is unreachable', async () => {
      for (const args of [['servers'], ['check', 'demo'], ['status', '--json']]) {
        const run = await cli(args, { REDIS_URL: 'redis://127.0.0.1:1' });
        expect(run.code, args.join(' ')).to.equal(1);
        expect(run.stderr).to.match(
          /EREDIS: Redis at redis:\/\/127\.0\.0\.1:1 is not reachable \(connect ECONNREFUSED 127\.0\.0\.1:1\): start Redis/,
        );
        expect(run.stdout).to.equal('');
        expect(run.ms, 'no reconnect loop').to.be.below(5_000);
      }
    });
  });
});
