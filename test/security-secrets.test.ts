/*
 * Issue 12, findings 2 and 3: secrets from files, and operator secrets treated as secrets.
 * `*_FILE` variables of shared/config.ts; what counts as a secret argument; and, end to end
 * through a worker process, a dashboard process and the CLI: a server that prints the key it was
 * given (a smokeTest.env value) to stderr while its smoke-test arguments carry more secrets, with
 * webhooks to URLs whose path is a secret. None of it may appear on any surface: job
 * failedReason, events, API JSON, the status page, Bull Board, webhook bodies, logs, Redis, CLI.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig, type Config } from '../shared/config.js';
import { ConfigurationError } from '../shared/errors.js';
import { parseInventory } from '../shared/inventory.js';
import {
  REDACTED,
  redactArguments,
  redactString,
  redactWebhookUrl,
  registerWebhookUrl,
  secretArguments,
  secretFiles,
} from '../shared/redact.js';
import { createQueues, type QueueSet } from '../shared/queueSet.js';
import { createRedis } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { escapeChatMarkup } from '../workers/webhook.js';
import { ProducerClient } from '../producers/client.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { FixtureRegistry, fixturePackageDir } from './support/registry.js';
import { BIN, killHard, startRole, type ChildWithOutput } from './support/reliability.js';
import { waitUntil } from './support/wait.js';

const BASE = { API_BASE_URL: 'http://127.0.0.1:9/' };
const hex = (bytes = 12) => crypto.randomBytes(bytes).toString('hex');

function configError(env: Record<string, string>): ConfigurationError {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  expect.fail('loadConfig accepted it');
}

describe('security: secrets from files (API_TOKEN_FILE, REGISTRY_TOKEN_FILE, WEBHOOK_SECRET_FILE)', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-secret-files-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function secretFile(name: string, content: string): Promise<string> {
    const file = path.join(dir, name);
    await fs.writeFile(file, content, { mode: 0o600 });
    return file;
  }

  it('reads each secret from its file, trimming one trailing newline, and treats it as a secret', async () => {
    const api = `api-${hex()}`;
    const registry = `reg-${hex()}`;
    const webhook = `whk-${hex()}`;
    const config = loadConfig({
      ...BASE,
      API_TOKEN_FILE: await secretFile('api', `${api}\n`),
      REGISTRY_TOKEN_FILE: await secretFile('registry', `${registry}\r\n`),
      WEBHOOK_SECRET_FILE: await secretFile('webhook', `${webhook}\n\n`),
    });
    expect(config.apiToken).to.equal(api);
    expect(config.registryToken).to.equal(registry);
    expect(config.webhookSecret, 'only one newline is trimmed').to.equal(`${webhook}\n`);
    expect(redactString(`a ${api} b ${registry}`)).to.equal(`a ${REDACTED} b ${REDACTED}`);
    expect(secretFiles()).to.include.members([path.join(dir, 'api'), path.join(dir, 'registry'), path.join(dir, 'webhook')]);
  });

  it('names the variable when the file cannot be read', () => {
    const error = configError({ REGISTRY_TOKEN_FILE: path.join(dir, 'missing') });
    expect(error.path).to.equal('REGISTRY_TOKEN_FILE');
    expect(error.message).to.equal(`REGISTRY_TOKEN_FILE: cannot read ${path.join(dir, 'missing')} (ENOENT)`);
    expect(error.hint).to.include('point REGISTRY_TOKEN_FILE at a file');
  });

  it('refuses VAR and VAR_FILE both set, naming both', async () => {
    const error = configError({ WEBHOOK_SECRET: 'inline-secret', WEBHOOK_SECRET_FILE: await secretFile('both', 'file-secret\n') });
    expect(error.path).to.equal('WEBHOOK_SECRET_FILE');
    expect(error.message).to.equal('WEBHOOK_SECRET_FILE: WEBHOOK_SECRET and WEBHOOK_SECRET_FILE are both set');
    expect(error.hint).to.equal('set only one of WEBHOOK_SECRET and WEBHOOK_SECRET_FILE');
  });

  it("applies the variable's own rules to the file's content, naming the _FILE variable", async () => {
    const error = configError({ API_TOKEN_FILE: await secretFile('short', 'too-short\n') });
    expect(error.path).to.equal('API_TOKEN_FILE');
    expect(error.message).to.match(/^API_TOKEN_FILE: the API_TOKEN in .*short must be at least 16 characters/);
  });

  it("treats an empty VAR_FILE (compose's ${VAR_FILE:-}) and an empty file as unset", async () => {
    expect(loadConfig({ ...BASE, API_TOKEN_FILE: '' }).apiToken).to.equal(undefined);
    const config = loadConfig({ ...BASE, API_TOKEN_FILE: await secretFile('empty', ''), REGISTRY_TOKEN: 'from-the-environment' });
    expect(config.apiToken).to.equal(undefined);
    expect(loadConfig({ ...BASE, REGISTRY_TOKEN_FILE: path.join(dir, 'empty'), REGISTRY_TOKEN: 'inline-token' }).registryToken).to.equal(
      'inline-token',
    );
  });

  it('`mcp-updater config check` exits 78 naming the _FILE variable', async () => {
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'config', 'check'], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...BASE,
          MCP_SERVERS_CONFIG: path.join(dir, 'none.yaml'),
          API_TOKEN_FILE: path.join(dir, 'nope'),
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
    expect(run.stderr).to.include('API_TOKEN_FILE: cannot read');
  });
});

describe('security: what counts as a secret', () => {
  const cases: Array<[string, string[], string[]]> = [
    [
      'the value after a secret-named flag',
      ['--token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', '--port', '8080'],
      ['ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
    ],
    ['--name=value of a secret-named flag', ['--api-key=plain-value-123', '--dir=/srv/data'], ['plain-value-123']],
    ['NAME=value of a secret-named variable', ['DB_PASSWORD=hunter2hunter2', 'MODE=fast'], ['hunter2hunter2']],
    ['the password of a URL', ['postgres://app:s3cr3t-pw@db.internal:5432/app'], ['s3cr3t-pw']],
    ['a secret query parameter', ['https://api.example/v1?token=q-secret-42&x=1'], ['q-secret-42']],
    ['a well-known key format anywhere', ['--header', 'x-key: sk-live-4242424242424242abcd'], ['sk-live-4242424242424242abcd']],
    ['a long opaque value', ['a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8'], ['a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8']],
    ['nothing in ordinary arguments', ['--stdio', '/Users/me/Desktop', '--port', '3000', '--headless', '--monkey', 'banana'], []],
  ];
  for (const [what, args, expected] of cases) {
    it(`finds ${what}`, () => {
      expect(secretArguments(args)).to.have.members(expected);
      const shown = redactArguments(args).join(' ');
      for (const secret of expected) expect(shown).not.to.include(secret);
    });
  }

  it('shows arguments with only their secret parts replaced', () => {
    expect(
      redactArguments(['--token', 'tok-123456', '--api-key=plain-value-123', 'postgres://app:pw-123456@db/app', '/srv/data']),
    ).to.deep.equal(['--token', REDACTED, `--api-key=${REDACTED}`, `postgres://${REDACTED}@db/app`, '/srv/data']);
  });

  it('registers every smokeTest.env value and secret-looking argument when an inventory is parsed', () => {
    const key = `sk-live-${hex(16)}`;
    const plain = `horse-battery-${hex(4)}`;
    const argument = `arg-${hex(6)}`;
    parseInventory(
      `servers:\n  a:\n    package: a\n    smokeTest:\n      env: { KEY: "${key}", PLAIN: "${plain}", SHORT: "1" }\n      args: [--password, "${argument}"]\n`,
      'x.yaml',
      { schedule: '0 * * * *', timezone: 'UTC' },
    );
    expect(redactString(`${key} ${plain} ${argument} 1`)).to.equal(`${REDACTED} ${REDACTED} ${REDACTED} 1`);
  });

  it('redacts a webhook URL whole, keeping its origin', () => {
    const url = `https://hooks.example/services/T000/B000/${hex()}`;
    expect(redactWebhookUrl(url)).to.equal(`https://hooks.example/${REDACTED}`);
    registerWebhookUrl(url);
    expect(redactString(`POST ${url} failed`)).to.equal(`POST https://hooks.example/${REDACTED} failed`);
  });

  it('escapes chat markup a package could put into the webhook text', () => {
    expect(escapeChatMarkup('<!channel> <@U123> <https://evil.example|the docs> a&b @everyone @here')).to.equal(
      '&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|the docs&gt; a&amp;b @\u200beveryone @\u200bhere',
    );
  });
});

describe('security: operator secrets on every surface (worker, dashboard and CLI processes)', function () {
  this.timeout(90_000);
  const API_TOKEN = `api-${hex()}`;
  const LEAKY_KEY = `sk-live-${hex(16)}`;
  // No known key format: only the literal registration of smokeTest.env values can catch it.
  const LEAKY_PLAIN = `correct-horse-${hex(8)}`;
  const ARG_TOKEN = `argtok-${hex(8)}`;
  const ARG_KEY = `argkey-${hex(8)}`;
  const DSN_PASSWORD = `dsnpw-${hex(8)}`;
  const HOOK_SECRET = `hookpath-${hex(8)}`;
  const FAILING_HOOK_SECRET = `failpath-${hex(8)}`;
  const SECRETS = { LEAKY_KEY, LEAKY_PLAIN, ARG_TOKEN, ARG_KEY, DSN_PASSWORD, HOOK_SECRET, FAILING_HOOK_SECRET };

  let registry: FixtureRegistry;
  let receiver: http.Server;
  const bodies: string[] = [];
  let env: TestEnv;
  let config: Config;
  let queues: QueueSet;
  let redis: ReturnType<typeof createRedis>;
  let dashboard: string;
  const children: ChildWithOutput[] = [];

  /** Every secret must be missing from `text`; says which one is there and where. */
  function expectClean(where: string, text: string, except: string[] = []): void {
    for (const [name, value] of Object.entries(SECRETS)) {
      if (!except.includes(name)) expect(text, `${name} in ${where}`).not.to.include(value);
    }
  }

  async function get(pathname: string, headers: Record<string, string> = {}): Promise<string> {
    const res = await fetch(`${dashboard}${pathname}`, { headers });
    expect(res.status, pathname).to.equal(200);
    return res.text();
  }

  before(async () => {
    registry = await FixtureRegistry.start();
    await registry.publish({ name: 'mcp-leaky-stderr', version: '1.0.0', fromDir: fixturePackageDir('mcp-leaky-stderr') });
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (req.url?.startsWith('/fail/')) {
          res.writeHead(500).end();
          return;
        }
        bodies.push(body);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hooks = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    env = await createTestEnv({
      registryUrl: registry.url,
      inventory: [
        'defaults:',
        '  minReleaseAge: 0',
        'servers:',
        '  leaky:',
        '    package: mcp-leaky-stderr',
        '    smokeTest:',
        `      env: { LEAKY_KEY: "${LEAKY_KEY}", LEAKY_PLAIN: "${LEAKY_PLAIN}" }`,
        `      args: [--token, "${ARG_TOKEN}", "--api-key=${ARG_KEY}", "postgres://app:${DSN_PASSWORD}@db.internal/app"]`,
        '',
      ].join('\n'),
      env: {
        API_TOKEN,
        WEBHOOK_URLS: `${hooks}/services/T0/B0/${HOOK_SECRET},${hooks}/fail/${FAILING_HOOK_SECRET}`,
        RETRY_BACKOFF: '50',
        PORT: String(port),
      },
    });
    config = loadConfig(env.env);
    children.push(startRole('worker', env.env), startRole('dashboard', env.env));
    dashboard = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the dashboard',
      async () =>
        (await fetch(`${dashboard}/ready`).then(
          (res) => res.status,
          () => 0,
        )) === 200,
      30_000,
      100,
    );
    redis = createRedis(config, 'producer');
    queues = createQueues(config, redis);
    const client = ProducerClient.connect(config);
    try {
      await client.check('leaky', { reason: 'security test' });
    } finally {
      await client.close();
    }
    const state = new StateStore(redis, config);
    await waitUntil(
      'the stage job to fail and both webhooks to settle',
      async () => {
        for (const child of children) if (child.exitCode !== null) throw new Error(`child exited: ${child.output.join('')}`);
        const failed = (await state.get('leaky')).state === 'failed';
        // The state says failed before the processor's error reaches BullMQ, which then moves the job.
        const stageFailed = (await queues.stage.getJobCounts('failed')).failed > 0;
        const hooks = await queues.webhook.getJobCounts('waiting', 'active', 'delayed', 'failed');
        return failed && stageFailed && bodies.length > 0 && hooks.failed > 0 && hooks.waiting + hooks.active + hooks.delayed === 0;
      },
      60_000,
      100,
    );
  });

  after(async () => {
    for (const child of children) await killHard(child);
    if (queues) for (const queue of Object.values(queues)) await queue.close();
    redis?.disconnect();
    await new Promise<void>((resolve) => receiver?.close(() => resolve()));
    await env?.cleanup();
    await registry?.close();
  });

  it('failedReason of the stage job says what happened, with the key redacted', async () => {
    const [job] = await queues.stage.getFailed();
    expect(job?.failedReason).to.include('rejected key').and.include(REDACTED);
    expectClean('the stage job failedReason', `${job!.failedReason} ${(job!.stacktrace ?? []).join('\n')}`);
    const [hook] = await queues.webhook.getFailed();
    expect(hook?.failedReason).to.include(`webhook http://127.0.0.1:${(receiver.address() as AddressInfo).port}/${REDACTED} answered 500`);
    expectClean('the webhook job failedReason', `${hook!.failedReason} ${(hook!.stacktrace ?? []).join('\n')}`);
  });

  it('events and the API show the failure, not the secrets; smokeTest args and env come redacted', async () => {
    const events = await get('/api/v1/events?server=leaky');
    expect(events).to.include('update.failed').and.include('rejected key');
    expectClean('GET /api/v1/events', events);
    const list = await get('/api/v1/servers');
    expect(list).to.include('rejected key');
    expectClean('GET /api/v1/servers', list);
    const detail = JSON.parse(await get('/api/v1/servers/leaky')) as {
      settings: { smokeTest: { args: string[]; env: Record<string, string> } };
    };
    expect(detail.settings.smokeTest.args).to.deep.equal([
      '--token',
      REDACTED,
      `--api-key=${REDACTED}`,
      `postgres://${REDACTED}@db.internal/app`,
    ]);
    expect(detail.settings.smokeTest.env).to.deep.equal({ LEAKY_KEY: REDACTED, LEAKY_PLAIN: REDACTED });
    expectClean('GET /api/v1/servers/leaky', JSON.stringify(detail));
  });

  it('the status page shows the failure, not the secrets', async () => {
    const page = await get('/');
    expect(page).to.include('rejected key');
    expectClean('GET /', page);
  });

  it('Bull Board shows job data, failed reasons and webhook URLs redacted', async () => {
    const auth = { authorization: `Bearer ${API_TOKEN}`, accept: 'application/json' };
    for (const [queue, status] of [
      ['stage', 'failed'],
      ['webhook', 'failed'],
      ['webhook', 'completed'],
    ] as const) {
      const board = await get(`/admin/queues/api/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=50`, auth);
      expect(board, `${queue} ${status} jobs listed`).to.include('"jobs":[{');
      expectClean(`Bull Board ${queue} ${status}`, board);
    }
  });

  it('webhook bodies carry the event without the secrets, and the text escapes chat markup', () => {
    const text = bodies.map((body) => (JSON.parse(body) as { text: string }).text).join('\n');
    expect(text)
      .to.include('rejected key')
      .and.include('&lt;!channel&gt;')
      .and.include('&lt;https://evil.example/phish|the docs&gt;')
      .and.include('@\u200beveryone');
    expect(text).not.to.match(/<!channel>|<https:/);
    expectClean('webhook bodies', bodies.join('\n'));
  });

  it('no log file holds a secret', async () => {
    const files = await fs.readdir(config.logDir);
    expect(files).to.include('automation.log');
    for (const file of files) expectClean(`logs/${file}`, await fs.readFile(path.join(config.logDir, file), 'utf8'));
  });

  it("no Redis key holds a secret; a webhook URL is only in its delivery job's data", async () => {
    let cursor = '0';
    let scanned = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.prefix}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        let text: string;
        let delivery = '';
        if (type === 'string') text = (await redis.get(key)) ?? '';
        else if (type === 'hash') {
          const hash = await redis.hgetall(key);
          if (key.includes(':webhook:')) delivery = hash.data ?? '';
          text = JSON.stringify({ ...hash, data: delivery ? '' : hash.data });
        } else if (type === 'list') text = JSON.stringify(await redis.lrange(key, 0, -1));
        else if (type === 'set') text = JSON.stringify(await redis.smembers(key));
        else if (type === 'zset') text = JSON.stringify(await redis.zrange(key, '0', '-1'));
        else if (type === 'stream') text = JSON.stringify(await redis.xrange(key, '-', '+'));
        else text = '';
        expectClean(`Redis ${key}`, text);
        expectClean(`Redis ${key} (webhook delivery data)`, delivery, ['HOOK_SECRET', 'FAILING_HOOK_SECRET']);
        scanned += 1;
      }
    } while (cursor !== '0');
    expect(scanned).to.be.greaterThan(10);
  });

  it('the CLI (its own process, its own inventory load) shows them redacted too', async () => {
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'status', 'leaky', '--json'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env.env },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(run.code).to.equal(0);
    expect(run.stdout).to.include('rejected key').and.include(`--api-key=${REDACTED}`);
    expectClean('mcp-updater status leaky --json', run.stdout);
  });
});
