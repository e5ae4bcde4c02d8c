/*
 * Bad input corpora. Job payloads: refused by validateJobData with the bad field's message, and
 * through runProcessor and real BullMQ workers failed at once (UnrecoverableError, one attempt,
 * "EVALIDATION: ..." as failedReason), recorded once by the one failure path when they name a
 * server of the inventory, and otherwise touching nothing. API payloads: 400 with joi's
 * message from the dashboard app. Inventories: a bad edit reloaded by a running scheduler and
 * worker context is refused with the bad key's path, and the running set stays in use.
 */
import { expect } from 'chai';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { UnrecoverableError } from 'bullmq';
import { createDashboardApp } from '../dashboard/app.js';
import { ProducerClient } from '../producers/client.js';
import { Scheduler } from '../producers/scheduler.js';
import { ConfigurationError, ValidationError } from '../shared/errors.js';
import { inventoryDefaults, InventoryWatcher } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { createLogger } from '../shared/logger.js';
import { validateJobData, type QueueName } from '../shared/queues.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import type { WorkerContext } from '../workers/context.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import { runProcessor } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry } from './support/registry.js';
import { sleep, summary } from './support/reliability.js';
import { waitUntil } from './support/wait.js';

const INTEGRITY = `sha512-${Buffer.alloc(64).toString('base64')}`;
const CHAIN = 'ok@1.0.0';
const DOWNLOAD = {
  server: 'ok',
  chain: CHAIN,
  package: 'ok-mcp',
  version: '1.0.0',
  integrity: INTEGRITY,
  tarball: 'http://127.0.0.1/ok-mcp/-/ok-mcp-1.0.0.tgz',
};
const STAGE = { server: 'ok', chain: CHAIN, package: 'ok-mcp', version: '1.0.0', integrity: INTEGRITY };
const SRI = '"integrity" must be one SRI hash such as sha512-… (sha256, sha384 or sha512)';
const DIGEST_LENGTH = '"integrity" must hold a digest of its algorithm\'s length (sha256: 32, sha384: 48, sha512: 64 bytes, base64)';
const EXACT = 'must be an exact semver version such as 1.2.3';
const CHAIN_ID = '"chain" must be a chain id such as memory@1.2.3';
const NAME_RULE = 'must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit';
const HTTP_URI = 'must be a valid uri with a scheme matching the http|https pattern';

/** [queue, payload, path of the bad field, joi's message]. */
const JOB_CASES: Array<[QueueName, unknown, string, string]> = [
  ['check', {}, 'server', '"server" is required'],
  ['check', { server: 'Bad Name' }, 'server', `"server" ${NAME_RULE}`],
  ['check', { server: 42 }, 'server', '"server" must be a string'],
  ['check', { server: 'a'.repeat(64) }, 'server', `"server" ${NAME_RULE}`],
  ['check', { server: '-lead' }, 'server', `"server" ${NAME_RULE}`],
  ['check', { server: '../etc' }, 'server', `"server" ${NAME_RULE}`],
  ['check', { server: 'ok', force: 'yes' }, 'force', '"force" must be a boolean'],
  ['check', { server: 'ok', reason: 'x'.repeat(501) }, 'reason', '"reason" length must be less than or equal to 500 characters long'],
  ['check', { server: 'ok', extra: 1 }, 'extra', '"extra" is not allowed'],
  ['check', null, '', '"value" must be of type object'],
  ['check', 'memory', '', '"value" must be of type object'],
  ['check', [], '', '"value" must be of type object'],
  ['download', { ...DOWNLOAD, integrity: undefined }, 'integrity', '"integrity" is required'],
  ['download', { ...DOWNLOAD, integrity: 'md5-abc' }, 'integrity', SRI],
  // What a registry may publish but download takes only after check chose one strong hash.
  ['download', { ...DOWNLOAD, integrity: `${INTEGRITY} sha1-${Buffer.alloc(20).toString('base64')}` }, 'integrity', SRI],
  ['download', { ...DOWNLOAD, integrity: `sha1-${Buffer.alloc(20).toString('base64')}` }, 'integrity', SRI],
  ['download', { ...DOWNLOAD, integrity: `sha512-${Buffer.alloc(32).toString('base64')}` }, 'integrity', DIGEST_LENGTH],
  ['download', { ...DOWNLOAD, integrity: 'sha256-AAAA' }, 'integrity', DIGEST_LENGTH],
  ['download', { ...DOWNLOAD, chain: undefined }, 'chain', '"chain" is required'],
  ['download', { ...DOWNLOAD, chain: 'ok 1.0.0' }, 'chain', CHAIN_ID],
  ['download', { ...DOWNLOAD, chain: 'ok@1.0.0/../../x' }, 'chain', CHAIN_ID],
  ['download', { ...DOWNLOAD, force: 'yes' }, 'force', '"force" must be a boolean'],
  ['download', { ...DOWNLOAD, version: '1.0.1 ' }, 'version', `"version" ${EXACT}`],
  ['download', { ...DOWNLOAD, version: 'v1.0.0' }, 'version', `"version" ${EXACT}`],
  ['download', { ...DOWNLOAD, version: '^1.0.0' }, 'version', `"version" ${EXACT}`],
  ['download', { ...DOWNLOAD, tarball: 'file:///etc/passwd' }, 'tarball', `"tarball" ${HTTP_URI}`],
  ['download', { ...DOWNLOAD, tarball: 'not a url' }, 'tarball', `"tarball" ${HTTP_URI}`],
  ['download', { ...DOWNLOAD, version: '1.0.0; rm -rf /' }, 'version', `"version" ${EXACT}`],
  ['download', { ...DOWNLOAD, package: 'x'.repeat(215) }, 'package', '"package" length must be less than or equal to 214 characters long'],
  ['download', { ...DOWNLOAD, version: '1'.repeat(257) }, 'version', '"version" length must be less than or equal to 256 characters long'],
  // Gone from the contract: activate re-stages a cleaned-up version itself.
  ['stage', { ...STAGE, activateAfter: 'activate' }, 'activateAfter', '"activateAfter" is not allowed'],
  ['stage', { ...STAGE, chain: undefined }, 'chain', '"chain" is required'],
  ['stage', { ...STAGE, version: undefined }, 'version', '"version" is required'],
  ['stage', { ...STAGE, integrity: 'sha512-$$$' }, 'integrity', SRI],
  ['stage', { ...STAGE, version: '1.0.0\n' }, 'version', `"version" ${EXACT}`],
  ['activate', { server: 'ok', action: 'activate', version: '1.0.0' }, 'chain', '"chain" is required'],
  ['activate', { server: 'ok', chain: CHAIN, action: 'destroy' }, 'action', '"action" must be one of [activate, approve, rollback]'],
  ['activate', { server: 'ok', chain: CHAIN, action: 'activate' }, 'version', '"version" is required'],
  ['activate', { server: 'ok', chain: 'ok~approve~x1', action: 'approve' }, 'version', '"version" is required'],
  ['activate', { server: 'ok', chain: 'ok~rollback~x1', action: 'rollback', version: '1.0' }, 'version', `"version" ${EXACT}`],
  [
    'activate',
    { server: 'ok', chain: 'ok~rollback~x1', action: 'rollback', requestedBy: 'x'.repeat(201) },
    'requestedBy',
    '"requestedBy" length must be less than or equal to 200 characters long',
  ],
  ['activate', { action: 'rollback' }, 'server', '"server" is required'],
  ['cleanup', { dryRun: 'true' }, 'dryRun', '"dryRun" must be a boolean'],
  ['cleanup', { server: 'UPPER' }, 'server', `"server" ${NAME_RULE}`],
  ['cleanup', { unknown: true }, 'unknown', '"unknown" is not allowed'],
  ['webhook', { url: 'ftp://x', event: {} }, 'url', `"url" ${HTTP_URI}`],
  ['webhook', { url: 'http://x' }, 'event', '"event" is required'],
  ['webhook', { url: 'http://x', event: 'text' }, 'event', '"event" must be of type object'],
];

/** [method, path, body (a string is sent raw as application/json), joi's message]. */
const API_CASES: Array<['GET' | 'POST', string, unknown, string]> = [
  ['POST', '/api/v1/servers/memory/approve', {}, '"version" is required'],
  ['POST', '/api/v1/servers/memory/approve', { version: 123 }, '"version" must be a string'],
  ['POST', '/api/v1/servers/memory/approve', { version: null }, '"version" must be a string'],
  ['POST', '/api/v1/servers/memory/approve', { version: '' }, '"version" is not allowed to be empty'],
  ['POST', '/api/v1/servers/memory/approve', { version: '1.0.0 && rm -rf /' }, `"version" ${EXACT}`],
  ['POST', '/api/v1/servers/memory/approve', { version: '1.0.1 ' }, `"version" ${EXACT}`],
  ['POST', '/api/v1/servers/memory/approve', { version: 'v1.0.0' }, `"version" ${EXACT}`],
  [
    'POST',
    '/api/v1/servers/memory/approve',
    { version: 'x'.repeat(300) },
    '"version" length must be less than or equal to 256 characters long',
  ],
  ['POST', '/api/v1/servers/memory/approve', { version: '1.0.0', extra: true }, '"extra" is not allowed'],
  ['POST', '/api/v1/servers/memory/approve', '{"version":', 'request body is not valid JSON'],
  ['POST', '/api/v1/servers/memory/approve', '"1.0.0"', 'request body is not valid JSON'],
  ['POST', '/api/v1/servers/memory/approve', 'null', 'request body is not valid JSON'],
  ['POST', '/api/v1/servers/memory/approve', [], '"value" must be of type object'],
  ['POST', '/api/v1/servers/memory/approve', { constructor: { prototype: { admin: true } } }, '"version" is required'],
  ['POST', '/api/v1/servers/memory/rollback', { version: 5 }, '"version" must be a string'],
  ['POST', '/api/v1/servers/memory/rollback', { version: '../1.0.0' }, `"version" ${EXACT}`],
  ['POST', '/api/v1/servers/memory/rollback', { version: '1.x' }, `"version" ${EXACT}`],
  ['POST', '/api/v1/servers/memory/rollback', { to: '1.0.0' }, '"to" is not allowed'],
  ['POST', '/api/v1/servers/memory/check', { force: 'yes' }, '"force" must be a boolean'],
  [
    'POST',
    '/api/v1/servers/memory/check',
    { reason: 'x'.repeat(301) },
    '"reason" length must be less than or equal to 300 characters long',
  ],
  ['POST', '/api/v1/servers/memory/check', { reason: 42 }, '"reason" must be a string'],
  ['POST', '/api/v1/servers/memory/check', { server: 'other' }, '"server" is not allowed'],
  ['POST', '/api/v1/servers/BAD_NAME/check', {}, `server name ${NAME_RULE}`],
  ['POST', '/api/v1/checks', { force: 1 }, '"force" must be a boolean'],
  ['POST', '/api/v1/checks', { servers: ['memory'] }, '"servers" is not allowed'],
  ['POST', '/api/v1/cleanup', { dryRun: 'no' }, '"dryRun" must be a boolean'],
  ['POST', '/api/v1/cleanup', { server: 'BAD NAME' }, `"server" ${NAME_RULE}`],
  ['POST', '/api/v1/cleanup', { server: 7 }, '"server" must be a string'],
  ['POST', '/api/v1/cleanup', { olderThan: '3d' }, '"olderThan" is not allowed'],
  ['GET', '/api/v1/servers/-x', undefined, `server name ${NAME_RULE}`],
  ['GET', `/api/v1/servers/${'a'.repeat(64)}`, undefined, `server name ${NAME_RULE}`],
  ['GET', '/api/v1/events?limit=0', undefined, '"limit" must be greater than or equal to 1'],
  ['GET', '/api/v1/events?limit=abc', undefined, '"limit" must be a number'],
  ['GET', '/api/v1/events?limit=5000', undefined, '"limit" must be less than or equal to 1000'],
  ['GET', '/api/v1/events?limit=1&limit=2', undefined, '"limit" must be a number'],
  ['GET', '/api/v1/events?server=UPPER', undefined, `"server" ${NAME_RULE}`],
  ['GET', '/api/v1/events?foo=bar', undefined, '"foo" is not allowed'],
  ['GET', '/api/v1/events?server[]=a', undefined, '"server[]" is not allowed'],
];

const alpha = (extra: string) => `servers:\n  alpha:\n    package: alpha-mcp\n${extra}  beta:\n    package: beta-mcp\n`;
const GOOD_INVENTORY = alpha('');
const BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'servers: {}',
  '',
].join('\n');

/** [what, inventory text, path of the bad key]. */
const INVENTORY_CASES: Array<[string, string, string]> = [
  ['not YAML', 'servers: [\n', 'line 2'],
  ['a duplicate key', 'servers:\n  alpha: { package: a }\n  alpha: { package: b }\n', 'line 3'],
  ['two YAML documents', 'servers: {}\n---\nservers: {}\n', 'line 2'],
  ['an alias bomb ("billion laughs")', BOMB, 'yaml'],
  ['an empty file', '', 'servers'],
  ['servers as a number', 'servers: 5\n', 'servers'],
  ['an unknown top-level key', 'server: {}\nservers: {}\n', 'server'],
  ['an unknown defaults key', 'defaults: { colour: blue }\nservers: {}\n', 'defaults.colour'],
  ['a bad default policy', 'defaults: { policy: sometimes }\nservers: {}\n', 'defaults.policy'],
  ['a server without package', 'servers:\n  alpha: { policy: minor }\n', 'servers.alpha.package'],
  ['an upper-case server name', 'servers:\n  Alpha: { package: alpha-mcp }\n', 'servers.Alpha'],
  ['a 64-character server name', `servers:\n  ${'a'.repeat(64)}: { package: alpha-mcp }\n`, `servers.${'a'.repeat(64)}`],
  ['a server that is a list', 'servers:\n  alpha: [1, 2]\n', 'servers.alpha'],
  ['a numeric package', 'servers:\n  alpha: { package: 42 }\n', 'servers.alpha.package'],
  ['an invalid npm package name', 'servers:\n  alpha: { package: "UPPER/Case" }\n', 'servers.alpha.package'],
  ['policy: sometimes', alpha('    policy: sometimes\n'), 'servers.alpha.policy'],
  ['policy pin without a version', alpha('    policy: pin\n'), 'servers.alpha.version'],
  ['activation: maybe', alpha('    activation: maybe\n'), 'servers.alpha.activation'],
  ['keep: 0', alpha('    keep: 0\n'), 'servers.alpha.keep'],
  ['keep: -1', alpha('    keep: -1\n'), 'servers.alpha.keep'],
  ['minReleaseAge: soon', alpha('    minReleaseAge: soon\n'), 'servers.alpha.minReleaseAge'],
  ['a cron of two fields', alpha('    schedule: every day\n'), 'servers.alpha.schedule'],
  ['an unknown timezone', alpha('    timezone: Mars/Olympus\n'), 'servers.alpha.timezone'],
  ['a bad semver range', alpha('    range: ">>1"\n'), 'servers.alpha.range'],
  ['a bad version', alpha('    version: not-a-version\n'), 'servers.alpha.version'],
  ['a version outside the range', alpha('    version: 1.0.0\n    range: ">=2.0.0"\n'), 'servers.alpha.version'],
  ['an empty channel', alpha('    channel: ""\n'), 'servers.alpha.channel'],
  ['an empty bin', alpha('    bin: ""\n'), 'servers.alpha.bin'],
  ['a misspelt key', alpha('    polcy: minor\n'), 'servers.alpha.polcy'],
  ['smokeTest.timeout: forever', alpha('    smokeTest: { timeout: forever }\n'), 'servers.alpha.smokeTest.timeout'],
  ['smokeTest.enabled: maybe', alpha('    smokeTest: { enabled: maybe }\n'), 'servers.alpha.smokeTest.enabled'],
  ['smokeTest.args as a string', alpha('    smokeTest: { args: x }\n'), 'servers.alpha.smokeTest.args'],
  ['a nested smokeTest.env value', alpha('    smokeTest: { env: { A: { nested: 1 } } }\n'), 'servers.alpha.smokeTest.env.A'],
  ['an empty smokeTest.command', alpha('    smokeTest: { command: "" }\n'), 'servers.alpha.smokeTest.command'],
];

describe('reliability: bad input corpora', function () {
  this.timeout(60_000);

  describe(`${JOB_CASES.length} invalid job payloads`, () => {
    let env: TestEnv;
    let context: WorkerContext;
    let workers: RunningWorkers | undefined;

    before(async () => {
      env = await createTestEnv({ inventory: 'servers:\n  ok: { package: ok-mcp }\n', env: { MAX_RETRIES: '3', RETRY_BACKOFF: '50' } });
      context = await env.context();
    });

    after(async () => {
      await workers?.close();
      await env?.cleanup();
    });

    it("validateJobData refuses each with ValidationError naming the field and joi's message", () => {
      for (const [queue, payload, field, message] of JOB_CASES) {
        let error: unknown;
        try {
          validateJobData(queue, payload);
        } catch (caught) {
          error = caught;
        }
        const label = `${queue} ${JSON.stringify(payload)?.slice(0, 80)}`;
        expect(error, label).to.be.instanceOf(ValidationError);
        expect((error as ValidationError).code, label).to.equal('EVALIDATION');
        expect((error as ValidationError).path, label).to.equal(field);
        expect((error as ValidationError).message, label).to.equal(`invalid ${queue} job data: ${message}`);
      }
    });

    /**
     * The bad payloads the one failure path records: a pipeline step's job that names a server
     * of the inventory. The others (no server, a bad name, cleanup, webhook) are only logged.
     */
    const recorded = (queue: QueueName, payload: unknown) =>
      ['check', 'download', 'stage', 'activate'].includes(queue) && (payload as { server?: unknown } | null)?.server === 'ok';
    const RECORDED = JOB_CASES.filter(([queue, payload]) => recorded(queue, payload)).length;

    async function refusals(jobId: (id: string | undefined) => boolean) {
      return (await context.events.list({ limit: 1000 })).filter((event) => jobId(event.jobId));
    }

    it('runProcessor fails each at once with UnrecoverableError before the processor runs, recording each failure once', async () => {
      let ran = 0;
      const exec = async (): Promise<never> => {
        ran += 1;
        throw new Error('the processor ran');
      };
      for (const [index, [queue, payload, , message]] of JOB_CASES.entries()) {
        const outcome = await runProcessor(
          queue,
          { id: `unit-${index}`, data: payload as never, attemptsMade: 0, opts: { attempts: 3 } },
          context,
          exec,
        ).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(outcome, `${queue} ${message}`).to.be.instanceOf(UnrecoverableError);
        expect((outcome as Error).message).to.equal(
          `EVALIDATION: invalid ${queue} job data: ${message}: send a payload of the form documented for the ${queue} queue (docs/ARCHITECTURE.md "Job contract")`,
        );
      }
      expect(ran, 'processor runs').to.equal(0);
      const events = await refusals((id) => id?.startsWith('unit-') ?? false);
      expect(events).to.have.length(RECORDED);
      for (const event of events) {
        expect(event).to.include({ type: 'update.failed', server: 'ok' });
        expect(event.details).to.include({ kind: 'invalid-payload' });
        expect(event.reason).to.match(/^[a-z]+ job unit-\d+ was refused: EVALIDATION: invalid [a-z]+ job data: /);
      }
      const state = await context.state.get('ok');
      expect(state.state).to.equal('failed');
      expect(state.lastError).to.match(/was refused: EVALIDATION/);
      expect(await context.state.knownServers(), "only the inventory's server has a record").to.deep.equal(['ok']);
    });

    it('real workers fail each bad job on its first attempt (MAX_RETRIES=3), record it once and change nothing else', async () => {
      const pipelineCases = JOB_CASES.filter(([queue]) => queue !== 'webhook');
      const added: Array<{ queue: QueueName; id: string; message: string; recorded: boolean }> = [];
      for (const [index, [queue, payload, , message]] of pipelineCases.entries()) {
        // Straight into Redis, as a foreign service could: Queue.add does not validate.
        const job = await context.queues[queue].add(queue as never, payload as never, { jobId: `bad-${index}` });
        added.push({ queue, id: job.id!, message, recorded: recorded(queue, payload) });
      }
      workers = startWorkers(context, ['check', 'download', 'stage', 'activate', 'cleanup']);
      for (const item of added) {
        // The state first, then the job: a job read before it failed would show its old fields.
        const job = await waitUntil(
          `${item.queue} job ${item.id} to fail`,
          async () => {
            const failed = (await context.queues[item.queue].getJobState(item.id)) === 'failed';
            return failed ? context.queues[item.queue].getJob(item.id) : undefined;
          },
          15_000,
        );
        expect(job.attemptsMade, `${item.queue} ${item.id} attempts`).to.equal(1);
        expect(job.failedReason).to.equal(
          `EVALIDATION: invalid ${item.queue} job data: ${item.message}: send a payload of the form documented for the ${item.queue} queue (docs/ARCHITECTURE.md "Job contract")`,
        );
      }
      await sleep(300);
      for (const item of added) expect(await (await context.queues[item.queue].getJob(item.id))!.getState()).to.equal('failed');
      // One update.failed per recorded job: the worker's `failed` listener does not record it again.
      const events = await refusals((id) => id?.startsWith('bad-') ?? false);
      expect(events.map((event) => event.jobId).sort()).to.deep.equal(
        added
          .filter((item) => item.recorded)
          .map((item) => item.id)
          .sort(),
      );
      expect(events.every((event) => event.type === 'update.failed' && event.details?.kind === 'invalid-payload')).to.equal(true);
      expect(await refusals(() => true), 'no other events').to.have.length(RECORDED + events.length);
      expect(await context.state.knownServers(), 'server state written').to.deep.equal(['ok']);
      expect((await context.state.get('ok')).current).to.equal(undefined);
      for (const queue of ['check', 'download', 'stage', 'activate', 'cleanup'] as const) {
        expect(await context.queues[queue].getCompletedCount(), `${queue} completed`).to.equal(0);
      }
      summary('bad-job-payloads', {
        cases: JOB_CASES.length,
        throughWorkers: added.length,
        attemptsEach: 1,
        failuresRecorded: events.length,
      });
    });
  });

  describe(`${API_CASES.length} invalid API requests`, () => {
    const TOKEN = 'bad-input-token-0123456789abcdef';
    let env: TestEnv;
    let app: Express;
    let inventory: InventoryWatcher;
    let redis: Redis;
    let producer: ProducerClient;

    before(async () => {
      env = await createTestEnv({ inventory: 'servers:\n  memory: { package: mem-mcp }\n', env: { API_TOKEN: TOKEN } });
      inventory = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
      redis = createRedis(env.config, 'producer');
      producer = ProducerClient.connect(env.config);
      await waitForRedis(redis, env.config.redisUrl);
      app = createDashboardApp({
        config: env.config,
        inventory,
        redis,
        producer,
        processMetrics: false,
        serverCacheMs: 0,
        rateLimits: { read: 10_000, mutation: 10_000, login: 10_000 },
      });
    });

    after(async () => {
      inventory?.close();
      await producer?.close();
      redis?.disconnect();
      await env?.cleanup();
    });

    it("answers each with 400 EVALIDATION and joi's message, and enqueues nothing", async () => {
      for (const [method, url, body, message] of API_CASES) {
        let call = (method === 'GET' ? request(app).get(url) : request(app).post(url)).set('authorization', `Bearer ${TOKEN}`);
        if (typeof body === 'string') call = call.set('content-type', 'application/json').send(body);
        else if (body !== undefined) call = call.send(body as object);
        const res = await call;
        expect(
          { status: res.status, code: res.body?.error?.code, message: res.body?.error?.message },
          `${method} ${url.slice(0, 60)} ${JSON.stringify(body)?.slice(0, 60)}`,
        ).to.deep.equal({ status: 400, code: 'EVALIDATION', message });
      }
      for (const queue of ['check', 'activate', 'cleanup'] as const) {
        expect(await producer.queue[queue].count(), `${queue} jobs enqueued`).to.equal(0);
      }
      summary('bad-api-payloads', { cases: API_CASES.length, status: 400 });
    });
  });

  describe(`${INVENTORY_CASES.length} invalid inventory reloads in a running scheduler and worker`, () => {
    let registry: FixtureRegistry;
    let env: TestEnv;
    let context: WorkerContext;
    let workers: RunningWorkers | undefined;
    let scheduler: Scheduler;
    let schedulerInventory: InventoryWatcher;
    let client: ProducerClient;

    before(async () => {
      registry = await FixtureRegistry.start();
      await registry.publish({ name: 'alpha-mcp', version: '1.0.0', publishedAt: new Date(Date.now() - 30 * 86_400_000) });
      env = await createTestEnv({ registryUrl: registry.url, inventory: GOOD_INVENTORY, env: { LOG_LEVEL: 'info' } });
      context = await env.context();
      schedulerInventory = await InventoryWatcher.open(env.config.serversConfig, inventoryDefaults(env.config));
      scheduler = new Scheduler({
        config: env.config,
        inventory: schedulerInventory,
        checkQueue: context.queues.check,
        cleanupQueue: context.queues.cleanup,
        state: new StateStore(env.redis, env.config),
        layout: new InstallLayout(env.config),
        log: createLogger('orchestration'),
      });
      client = ProducerClient.connect(env.config);
    });

    after(async () => {
      await scheduler?.stop();
      schedulerInventory?.close();
      await workers?.close();
      await client?.close();
      await env?.cleanup();
      await registry?.close();
    });

    async function schedulers(): Promise<string> {
      const list = await context.queues.check.getJobSchedulers(0, -1, true);
      return JSON.stringify(list.map((item) => [item.key, item.pattern, item.tz]).sort());
    }

    it("refuses each whole with the bad key's path and keeps the running set (schedulers and workers)", async () => {
      const watchErrors: unknown[] = [];
      schedulerInventory.onError((error) => watchErrors.push(error));
      await scheduler.start();
      // Only the first checks the scheduler enqueued run; what they chain stays queued.
      await context.queues.check.drain();
      workers = startWorkers(context, ['check']);
      const digest = schedulerInventory.inventory.digest;
      const running = await schedulers();
      expect(running).to.include('check-alpha').and.to.include('check-beta');

      for (const [what, text, keyPath] of INVENTORY_CASES) {
        await env.writeInventory(text);
        for (const [who, watcher, reload] of [
          ['scheduler', schedulerInventory, () => scheduler.reload()],
          ['worker', context.inventory, () => context.inventory.reload()],
        ] as const) {
          const error = await reload().then(
            () => undefined,
            (caught: unknown) => caught,
          );
          expect(error, `${who}: ${what}`).to.be.instanceOf(ConfigurationError);
          expect((error as ConfigurationError).path, `${who}: ${what}`).to.equal(keyPath);
          expect((error as ConfigurationError).message, `${who}: ${what}`).to.match(
            new RegExp(`^${keyPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
          );
          expect(watcher.inventory.digest, `${who} kept the running set after ${what}`).to.equal(digest);
          expect([...watcher.inventory.servers.keys()]).to.deep.equal(['alpha', 'beta']);
        }
      }
      expect(await schedulers(), 'job schedulers after the bad edits').to.equal(running);
      // The file watch saw the bad edits too and reported them rather than applying them.
      await waitUntil('the watcher to report a refused edit', () => watchErrors.length > 0, 5_000);
      expect(
        watchErrors.every((error) => error instanceof ConfigurationError),
        'watch errors are ConfigurationErrors',
      ).to.equal(true);

      // While the file on disk is still invalid, the worker goes on with the running set.
      const { jobId } = await client.check('alpha', { reason: 'during a bad inventory' });
      const result = await client.waitFor('check', jobId, 15_000);
      expect(result.candidate).to.equal('1.0.0');

      // And a good edit is applied at once.
      await env.writeInventory(`${GOOD_INVENTORY}  gamma:\n    package: gamma-mcp\n`);
      await scheduler.reload();
      expect(await schedulers()).to.include('check-gamma');
      expect(context.inventory.server('gamma')).to.not.equal(undefined);
      summary('bad-inventories', {
        cases: INVENTORY_CASES.length,
        reloadsRefused: INVENTORY_CASES.length * 2,
        watchRefusals: watchErrors.length,
        runningSetKept: true,
      });
    });
  });
});
