/*
 * npm registry signatures: the pure verification (shared/signatures.ts) table-tested, and the
 * check refusing a version whose signature fails as the server's `provenance` says, end to end on
 * the real Redis with the fixture registry signing versions and serving its keys.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { signatureRefusal, verifyRegistrySignatures, type RegistryKey, type SignatureResult } from '../shared/signatures.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { FIXTURE_SIGNING_KEY, FixtureRegistry, type SignatureMode } from './support/registry.js';

const old = new Date(Date.now() - 30 * 86_400_000);

describe('registry signatures: verification', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const key: RegistryKey = {
    keyid: 'SHA256:test',
    key: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    expires: null,
  };
  const integrity = `sha512-${crypto.createHash('sha512').update('x').digest('base64')}`;
  const sig = (text: string) => crypto.sign('sha256', Buffer.from(text), privateKey).toString('base64');
  const good = sig(`demo@1.0.0:${integrity}`);

  const cases: Array<{
    name: string;
    signatures?: unknown;
    keys?: RegistryKey[];
    publishedAt?: string;
    version?: string;
    result: SignatureResult;
    message?: RegExp;
  }> = [
    { name: 'a valid signature', signatures: [{ keyid: key.keyid, sig: good }], result: 'verified' },
    { name: 'no signatures', result: 'unsigned', message: /demo@1\.0\.0 carries no registry signature/ },
    { name: 'an empty list', signatures: [], result: 'unsigned' },
    {
      name: 'a signature of another version',
      version: '1.0.1',
      signatures: [{ keyid: key.keyid, sig: good }],
      result: 'invalid',
      message: /demo@1\.0\.1: its registry signature \(key SHA256:test\) does not match/,
    },
    { name: 'a signature that is not base64 DER', signatures: [{ keyid: key.keyid, sig: 'bm9wZQ==' }], result: 'invalid' },
    {
      name: 'an unknown key id',
      signatures: [{ keyid: 'SHA256:other', sig: good }],
      result: 'unknown-key',
      message: /signed with key SHA256:other, which the registry does not publish/,
    },
    {
      name: 'one good and one unknown',
      signatures: [
        { keyid: key.keyid, sig: good },
        { keyid: 'SHA256:other', sig: good },
      ],
      result: 'unknown-key',
    },
    {
      name: 'a key that expired before the publish',
      signatures: [{ keyid: key.keyid, sig: good }],
      keys: [{ ...key, expires: '2025-01-01T00:00:00.000Z' }],
      publishedAt: '2025-06-01T00:00:00.000Z',
      result: 'expired-key',
    },
    {
      name: 'a key that expired after the publish',
      signatures: [{ keyid: key.keyid, sig: good }],
      keys: [{ ...key, expires: '2025-01-01T00:00:00.000Z' }],
      publishedAt: '2024-06-01T00:00:00.000Z',
      result: 'verified',
    },
    {
      name: 'a malformed published key',
      signatures: [{ keyid: key.keyid, sig: good }],
      keys: [{ ...key, key: 'AAAA' }],
      result: 'invalid',
    },
  ];
  for (const entry of cases) {
    it(`${entry.name}: ${entry.result}`, () => {
      const outcome = verifyRegistrySignatures(
        { name: 'demo', version: entry.version ?? '1.0.0', integrity, signatures: entry.signatures, publishedAt: entry.publishedAt },
        entry.keys ?? [key],
      );
      expect(outcome.result).to.equal(entry.result);
      if (entry.message) expect(outcome.message).to.match(entry.message);
    });
  }

  it('provenance decides what is refused: off nothing, warn what fails, require also what is unsigned', () => {
    const results: SignatureResult[] = ['verified', 'unsigned', 'invalid', 'unknown-key', 'expired-key', 'unverified'];
    const refused = (mode: 'off' | 'warn' | 'require') =>
      results.filter((result) => signatureRefusal(mode, { result, message: result }) !== undefined);
    expect(refused('off')).to.deep.equal([]);
    expect(refused('warn')).to.deep.equal(['invalid', 'unknown-key', 'expired-key']);
    expect(refused('require')).to.deep.equal(['unsigned', 'invalid', 'unknown-key', 'expired-key']);
    expect(signatureRefusal('require', { result: 'unsigned', message: 'demo@1.0.0 carries no registry signature' })).to.equal(
      'demo@1.0.0 carries no registry signature (provenance: require)',
    );
  });
});

describe('registry signatures: the check (workers, fixture registry)', function () {
  this.timeout(90_000);
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;

  async function setUp(provenance: string): Promise<void> {
    const inventory = `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\nservers:\n  demo: { package: demo-mcp, provenance: ${provenance} }\n`;
    env = await createTestEnv({ registryUrl: registry.url, inventory });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate']);
    client = ProducerClient.connect(env.config);
  }

  async function checkAndSettle(): Promise<void> {
    await client.check('demo', { reason: 'test' });
    await settlePipeline(context.queues, { queues: ['check', 'download', 'stage', 'activate'], timeoutMs: 45_000 });
  }

  async function publish(version: string, signature: SignatureMode = 'valid'): Promise<void> {
    await registry.publish({ name: 'demo-mcp', version, publishedAt: old, signature });
  }

  async function provenanceCounts(): Promise<Record<string, number>> {
    // Only the signature outcomes: the same counter counts provenance attestations (test/provenance.test.ts).
    const rows = (await context.metrics.readCounter('provenance_total')).filter((row) => row.labels[1] !== 'no-attestation');
    return Object.fromEntries(rows.map((row) => [row.labels.join('|'), row.value]));
  }

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await client?.close();
    await env?.cleanup();
    await registry.close();
  });

  it('serves the fixture key the way npm publishes keys', async () => {
    const answer = await fetch(`${registry.url}-/npm/v1/keys`);
    expect(await answer.json()).to.deep.equal({
      keys: [
        {
          expires: null,
          keyid: FIXTURE_SIGNING_KEY.keyid,
          keytype: 'ecdsa-sha2-nistp256',
          scheme: 'ecdsa-sha2-nistp256',
          key: FIXTURE_SIGNING_KEY.key,
        },
      ],
    });
  });

  for (const bad of ['bad', 'unknown-key'] as const) {
    it(`warn: a version with a ${bad} signature is refused as the version's fault; the verified one before it stays`, async () => {
      await publish('1.0.0');
      await setUp('warn');
      await checkAndSettle();
      expect((await context.state.get('demo')).current).to.equal('1.0.0');
      await publish('1.1.0', bad);
      await checkAndSettle();
      const state = await context.state.get('demo');
      expect(state).to.include({ current: '1.0.0', state: 'failed' });
      expect(state.failedVersions).to.deep.equal(['1.1.0']);
      expect(state.lastError).to.match(
        bad === 'bad'
          ? /demo-mcp@1\.1\.0: its registry signature \(key SHA256:.*\) does not match/
          : /demo-mcp@1\.1\.0 is signed with key SHA256:.*, which the registry does not publish/,
      );
      const failed = await context.events.list({ server: 'demo', type: 'update.failed', limit: 10 });
      expect(failed).to.have.length(1);
      expect(failed[0]!.reason).to.match(/demo-mcp@1\.1\.0/);
      expect(await provenanceCounts()).to.deep.equal({ 'demo|verified': 1, [`demo|${bad === 'bad' ? 'invalid' : 'unknown-key'}`]: 1 });
      // The next release, signed, goes through.
      await publish('1.2.0');
      await checkAndSettle();
      expect((await context.state.get('demo')).current).to.equal('1.2.0');
    });
  }

  it('warn lets an unsigned version through; require refuses it; off ignores even a bad signature', async () => {
    await publish('1.0.0', 'none');
    await setUp('warn');
    await checkAndSettle();
    expect((await context.state.get('demo')).current).to.equal('1.0.0');
    expect(await provenanceCounts()).to.deep.equal({ 'demo|unsigned': 1 });

    await publish('1.1.0', 'none');
    await env.writeInventory('defaults:\n  minReleaseAge: 0\nservers:\n  demo: { package: demo-mcp, provenance: require }\n');
    await context.inventory.reload();
    await checkAndSettle();
    let state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.lastError).to.match(/demo-mcp@1\.1\.0 carries no registry signature \(provenance: require\)/);

    await publish('1.2.0', 'bad');
    await env.writeInventory('defaults:\n  minReleaseAge: 0\nservers:\n  demo: { package: demo-mcp, provenance: off }\n');
    await context.inventory.reload();
    await checkAndSettle();
    state = await context.state.get('demo');
    expect(state.current).to.equal('1.2.0');
  });

  it("without the registry's keys: warn goes on unverified, require fails the check (retried, not the version's fault)", async () => {
    await publish('1.0.0');
    registry.injectFault({ match: /^\/-\/npm\/v1\/keys$/, kind: 'status', status: 503 });
    await setUp('warn');
    await checkAndSettle();
    expect((await context.state.get('demo')).current).to.equal('1.0.0');
    expect(await provenanceCounts()).to.deep.equal({ 'demo|unverified': 1 });

    await publish('1.1.0');
    await env.writeInventory('defaults:\n  minReleaseAge: 0\nservers:\n  demo: { package: demo-mcp, provenance: require }\n');
    await context.inventory.reload();
    await checkAndSettle();
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.failedVersions).to.deep.equal([]);
    expect(state.lastError).to.match(/signing keys/);
  });
});
