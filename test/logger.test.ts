/*
 * Secrets never reach a log file: redaction by key name, by value shape (URL credentials, bearer
 * tokens, .npmrc auth lines) and of registered literal secrets, checked through real winston
 * loggers writing JSON lines into a temp LOG_DIR.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { closeLoggers, configureLogging, createLogger, LOG_CATEGORIES } from '../shared/logger.js';
import { redact, REDACTED, redactString, redactUrl, registerSecret } from '../shared/redact.js';

type LogLine = Record<string, unknown>;

async function readLines(dir: string, category: string): Promise<LogLine[]> {
  const text = await fs.readFile(path.join(dir, `${category}.log`), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LogLine);
}

describe('redact: strings', () => {
  const cases: { name: string; input: string; output: string }[] = [
    {
      name: 'a token in a query string',
      input: 'GET /hook?sig=abc123&x=1&token=t0ps3cret',
      output: `GET /hook?sig=${REDACTED}&x=1&token=${REDACTED}`,
    },
    {
      name: 'user and password in a redis URL',
      input: 'connecting to redis://user:s3cretpw@redis.example:6379/0',
      output: `connecting to redis://${REDACTED}@redis.example:6379/0`,
    },
    { name: 'a password without user', input: 'redis://:onlypass@host:6379', output: `redis://${REDACTED}@host:6379` },
    { name: 'a user without password', input: 'https://alice@registry.example/', output: `https://${REDACTED}@registry.example/` },
    {
      name: 'two URLs in one string',
      input: 'postgres://u:p@h/db and rediss://a:b@c:6380',
      output: `postgres://${REDACTED}@h/db and rediss://${REDACTED}@c:6380`,
    },
    { name: 'a Bearer token', input: 'Authorization: Bearer abcdef123456', output: `Authorization: Bearer ${REDACTED}` },
    { name: 'a lower-case bearer token', input: 'authorization: bearer abcdef123456', output: `authorization: bearer ${REDACTED}` },
    { name: 'Basic credentials', input: 'Basic dXNlcjpwYXNzd29yZA==', output: `Basic ${REDACTED}` },
    {
      name: 'an .npmrc _authToken line',
      input: '//registry.example.test/:_authToken=npm_ABCDEF123',
      output: `//registry.example.test/:_authToken=${REDACTED}`,
    },
    { name: 'an .npmrc _auth line with spaces', input: '_auth = dXNlcjpwYXNz', output: `_auth=${REDACTED}` },
    {
      name: 'a URL without credentials',
      input: 'GET https://registry.example.test/@scope%2fpkg',
      output: 'GET https://registry.example.test/@scope%2fpkg',
    },
    { name: 'an e-mail address', input: 'maintainer bob@example.com', output: 'maintainer bob@example.com' },
    { name: 'nothing after Bearer shorter than 6 characters', input: 'scheme Bearer abc', output: 'scheme Bearer abc' },
    // Every token shape and query secret, each alone in a text (redactString first looks for any trigger at all).
    ...[
      `ghp_${'Zq9'.repeat(8)}`,
      `github_pat_${'Zq9'.repeat(8)}`,
      `glpat-${'Zq9'.repeat(6)}`,
      `npm_${'Zq9'.repeat(11)}`,
      `xoxb-${'Zq9'.repeat(4)}`,
      `AKIA${'ZQ9X'.repeat(4)}`,
      `AIza${'Zq9'.repeat(11)}`,
      `sk-proj-${'Zq9'.repeat(6)}`,
      `rk_live_${'Zq9'.repeat(6)}`,
      `eyJ${'Zq9'.repeat(3)}.eyJ${'Zq9'.repeat(3)}.${'Zq9'.repeat(3)}`,
    ].map((token) => ({ name: `a token shaped like ${token.slice(0, 5)}…`, input: `got ${token} here`, output: `got ${REDACTED} here` })),
    { name: 'an access_token in a query', input: 'GET /x?access_token=abc123&y=1', output: `GET /x?access_token=${REDACTED}&y=1` },
    { name: 'a sig in a query', input: 'GET /x?a=1&SIG=abc123', output: `GET /x?a=1&SIG=${REDACTED}` },
    {
      name: 'a text with none of the shapes',
      input: 'activate zq9-server: 1.0.0 -> 1.1.0 at 2026-11-29T09:00:00Z',
      output: 'activate zq9-server: 1.0.0 -> 1.1.0 at 2026-11-29T09:00:00Z',
    },
  ];
  for (const { name, input, output } of cases) {
    it(`redacts ${name}`, () => {
      expect(redactString(input)).to.equal(output);
    });
  }

  it('redactUrl redacts URL credentials', () => {
    expect(redactUrl('https://u:p@npm.example/')).to.equal(`https://${REDACTED}@npm.example/`);
  });

  it('redacts registered literal secrets, and ignores ones too short to be secrets', () => {
    registerSecret('literal-registered-secret');
    registerSecret('abc');
    registerSecret(undefined);
    expect(redactString('x literal-registered-secret y literal-registered-secret abc')).to.equal(`x ${REDACTED} y ${REDACTED} abc`);
  });
});

describe('redact: objects', () => {
  it('redacts values of secret keys in every spelling', () => {
    const input: Record<string, unknown> = {
      token: 't',
      password: 'p',
      _authToken: 'a',
      authorization: 'Bearer x',
      Authorization: 'x',
      apiKey: 'k',
      api_key: 'k',
      'x-api-key': 'k',
      cookie: 'c',
      secret: 's',
      auth: 'a',
      credentials: 'c',
      private_key: 'pk',
      privateKey: 'pk',
      REGISTRY_TOKEN: 'r',
      NPM_TOKEN: 'n',
      access_token: 'at',
      apiToken: 'at',
      registryToken: 'rt',
      webhookSecret: 'ws',
      accessToken: 'at',
      clientSecret: 'cs',
      npmAuthToken: 'na',
    };
    const output = redact(input);
    for (const key of Object.keys(input)) expect(output[key], key).to.equal(REDACTED);
  });

  it('keeps keys that merely contain a secret word', () => {
    const input = { tokens: 5, tokenCount: 3, passwordHint: 'h', author: 'bob', keep: 3, sessionId: 's', empty: '', nothing: null };
    expect(redact(input)).to.deep.equal(input);
  });

  it('redacts nested objects and arrays, without changing the input', () => {
    const input = {
      server: 'memory',
      nested: { deep: { password: 'p', url: 'redis://u:pw@h:6379' } },
      list: [{ token: 't' }, 'Bearer abcdefgh', 42],
      headers: { Authorization: 'Bearer zzz' },
    };
    const copy = structuredClone(input);
    expect(redact(input)).to.deep.equal({
      server: 'memory',
      nested: { deep: { password: REDACTED, url: `redis://${REDACTED}@h:6379` } },
      list: [{ token: REDACTED }, `Bearer ${REDACTED}`, 42],
      headers: { Authorization: REDACTED },
    });
    expect(input).to.deep.equal(copy);
  });

  it('turns an Error into a plain object with redacted name, message, stack and fields', () => {
    const error = Object.assign(new Error('connect to redis://u:pw123456@h failed'), { code: 'ECONNREFUSED', config: { password: 'zz' } });
    const output = redact(error) as unknown as Record<string, unknown>;
    expect(output.name).to.equal('Error');
    expect(output.message).to.equal(`connect to redis://${REDACTED}@h failed`);
    expect(output.stack).to.be.a('string').and.not.include('pw123456');
    expect(output.code).to.equal('ECONNREFUSED');
    expect(output.config).to.deep.equal({ password: REDACTED });
  });

  it('survives cycles and keeps dates and buffers', () => {
    const cyclic: Record<string, unknown> = { token: 'x' };
    cyclic.self = cyclic;
    const output = redact(cyclic);
    expect(output.token).to.equal(REDACTED);
    expect(output.self).to.equal(output);
    const date = new Date(0);
    const buffer = Buffer.from('hi');
    const kept = redact({ date, buffer });
    expect(kept.date).to.equal(date);
    expect(kept.buffer).to.equal(buffer);
  });
});

describe('logger: JSON lines in LOG_DIR', () => {
  let dir: string;
  const secrets = [
    'hunter2pw',
    'npm_tok_abcdef',
    'pw-zz-9',
    'pp-secret',
    'abcdefghijk',
    'camelsecret1',
    'errpass77',
    'innerpw55',
    'metapw66',
    'lit-secret-123456',
    'regtok-xyz',
    'whsec-xyz',
    'abcdefgh12345',
    'npm_ABCDEF123',
    'causepw44',
    'arraypw33',
  ];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-'));
    configureLogging({ logDir: dir, logLevel: 'info', console: 'off' });
    registerSecret('lit-secret-123456');
    const log = createLogger('automation');
    log.info('connecting to redis://admin:hunter2pw@redis.internal:6379', { server: 'memory' });
    log.info('registry', {
      token: 'npm_tok_abcdef',
      nested: { password: 'pw-zz-9', url: 'https://u:pp-secret@reg.example/' },
      list: ['Bearer abcdefghijk', { apiToken: 'camelsecret1' }, ['redis://x:arraypw33@h']],
    });
    log.error(new Error('fetch https://bob:errpass77@reg.example/x failed'));
    log.warn('wrapped', { error: new Error('inner redis://x:innerpw55@h', { cause: new Error('redis://y:causepw44@h') }) });
    log.info('with error meta', new Error('meta redis://x:metapw66@h'));
    log.info('literal lit-secret-123456 here');
    log.info('config', { registryToken: 'regtok-xyz', webhookSecret: 'whsec-xyz', npmrc: '//r.example/:_authToken=npm_ABCDEF123' });
    log.debug('debug is below info');
    const audit = createLogger('audit');
    audit.info('approve', { server: 'memory', authorization: 'Bearer abcdefgh12345', requestedBy: 'token:1a2b' });
    createLogger('cleanup').warn('disk almost full', { freeBytes: 1024 });
    await closeLoggers();
  });

  after(async () => {
    await closeLoggers();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes one file per category', async () => {
    const files = (await fs.readdir(dir)).sort();
    expect(files).to.deep.equal(['audit.log', 'automation.log', 'cleanup.log']);
    for (const file of files) expect(LOG_CATEGORIES).to.include(path.basename(file, '.log'));
  });

  it('writes no secret anywhere', async () => {
    for (const category of ['automation', 'audit', 'cleanup']) {
      const text = await fs.readFile(path.join(dir, `${category}.log`), 'utf8');
      for (const secret of secrets) expect(text, `${category}.log`).to.not.include(secret);
    }
  });

  it('writes valid JSON lines with level, category, message and timestamp', async () => {
    const lines = await readLines(dir, 'automation');
    expect(lines).to.have.length(7);
    for (const line of lines) {
      expect(line.category).to.equal('automation');
      expect(line.level).to.be.oneOf(['info', 'warn', 'error']);
      expect(line.message).to.be.a('string');
      expect(Date.parse(String(line.timestamp))).to.not.be.NaN;
    }
    expect(lines.map((line) => line.message)).to.not.include('debug is below info');
  });

  it('keeps the non-secret parts of messages and metadata', async () => {
    const [connect, registry, failed, wrapped, withMeta, literal, config] = await readLines(dir, 'automation');
    expect(connect!.message).to.equal(`connecting to redis://${REDACTED}@redis.internal:6379`);
    expect(connect!.server).to.equal('memory');
    expect(registry).to.deep.include({
      token: REDACTED,
      nested: { password: REDACTED, url: `https://${REDACTED}@reg.example/` },
      list: [`Bearer ${REDACTED}`, { apiToken: REDACTED }, [`redis://${REDACTED}@h`]],
    });
    expect(failed!.level).to.equal('error');
    expect(failed!.message).to.equal(`fetch https://${REDACTED}@reg.example/x failed`);
    expect(failed!.stack).to.be.a('string').and.include(`fetch https://${REDACTED}@reg.example/x failed`);
    const error = wrapped!.error as Record<string, unknown>;
    expect(error.message).to.equal(`inner redis://${REDACTED}@h`);
    expect(error.stack).to.be.a('string').and.include('inner redis://');
    expect((error.cause as Record<string, unknown>).message).to.equal(`redis://${REDACTED}@h`);
    expect(withMeta!.message).to.equal(`with error meta meta redis://${REDACTED}@h`);
    expect(literal!.message).to.equal(`literal ${REDACTED} here`);
    expect(config).to.deep.include({ registryToken: REDACTED, webhookSecret: REDACTED, npmrc: `//r.example/:_authToken=${REDACTED}` });
  });

  it('writes audit records with the redacted authorization and the rest intact', async () => {
    const [approve] = await readLines(dir, 'audit');
    expect(approve).to.deep.include({
      category: 'audit',
      level: 'info',
      message: 'approve',
      server: 'memory',
      authorization: REDACTED,
      requestedBy: 'token:1a2b',
    });
  });

  it('writes other categories to their own file', async () => {
    const [warning] = await readLines(dir, 'cleanup');
    expect(warning).to.deep.include({ category: 'cleanup', level: 'warn', message: 'disk almost full', freeBytes: 1024 });
  });
});

describe('logger: levels', () => {
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-'));
  });

  after(async () => {
    await closeLoggers();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes debug at LOG_LEVEL=debug, and audit stays at info even with LOG_LEVEL=error', async () => {
    configureLogging({ logDir: path.join(dir, 'debug'), logLevel: 'debug', console: 'off' });
    createLogger('monitoring').debug('probe', { n: 1 });
    await closeLoggers();
    expect((await readLines(path.join(dir, 'debug'), 'monitoring')).map((line) => line.message)).to.deep.equal(['probe']);

    configureLogging({ logDir: path.join(dir, 'quiet'), logLevel: 'error', console: 'off' });
    createLogger('orchestration').warn('not written');
    createLogger('orchestration').error('written');
    createLogger('audit').info('always written');
    await closeLoggers();
    expect((await readLines(path.join(dir, 'quiet'), 'orchestration')).map((line) => line.message)).to.deep.equal(['written']);
    expect((await readLines(path.join(dir, 'quiet'), 'audit')).map((line) => line.message)).to.deep.equal(['always written']);
  });

  it('returns the same logger for a category until reconfigured', () => {
    configureLogging({ logDir: path.join(dir, 'same'), logLevel: 'info', console: 'off' });
    expect(createLogger('automation')).to.equal(createLogger('automation'));
  });
});
