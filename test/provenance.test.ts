/*
 * npm provenance attestations: the pure parts (subject, source, certificate identity, what each
 * mode refuses) table-tested, the Sigstore verification against a fixture trust root, and the
 * pipeline end to end on the real Redis: the fixture registry serves attestations signed by a
 * fixture Sigstore (@sigstore/mock's Fulcio and Rekor), hostile ones included.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { expect } from 'chai';
import { ProducerClient } from '../producers/client.js';
import { ConfigurationError } from '../shared/errors.js';
import { parseInventory } from '../shared/inventory.js';
import {
  attestationRefusal,
  expectRepository,
  identityProblem,
  lazyAttestationVerifier,
  normalizeRepository,
  npmPurl,
  sourceFromPredicate,
  subjectProblem,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  type AttestationResult,
} from '../shared/provenance.js';
import { readServerDetail } from '../shared/serverView.js';
import { ProvenanceVerifier } from '../shared/sigstore.js';
import { startWorkers, type RunningWorkers } from '../workers/index.js';
import type { WorkerContext } from '../workers/context.js';
import { createTestEnv, type TestEnv } from './support/env.js';
import { settlePipeline } from './support/pipeline.js';
import { FixtureRegistry, type ProvenanceVariant } from './support/registry.js';
import { FIXTURE_OIDC_ISSUER, FixtureSigstore, provenanceStatement } from './support/sigstore.js';

const old = new Date(Date.now() - 30 * 86_400_000);
const sha512 = (text: string) => crypto.createHash('sha512').update(text).digest();
const integrity = `sha512-${sha512('x').toString('base64')}`;
const hex = sha512('x').toString('hex');

describe('provenance: statements, sources and modes', () => {
  it('names packages as npm signs them (scoped names keep %40)', () => {
    expect(npmPurl('demo', '1.0.0')).to.equal('pkg:npm/demo@1.0.0');
    expect(npmPurl('@scope/demo', '1.0.0')).to.equal('pkg:npm/%40scope/demo@1.0.0');
  });

  const repositories: Array<[string, string | undefined]> = [
    ['https://github.com/Owner/Repo', 'github.com/owner/repo'],
    ['git+https://github.com/owner/repo.git', 'github.com/owner/repo'],
    ['github.com/owner/repo/', 'github.com/owner/repo'],
    ['git@github.com:owner/repo', undefined],
    ['owner/repo', undefined],
    ['https://github.com/owner', undefined],
    ['https://github.com/owner/repo/tree/main', undefined],
  ];
  for (const [input, normalized] of repositories) {
    it(`normalizes the repository ${input} to ${String(normalized)}`, () => {
      expect(normalizeRepository(input)).to.equal(normalized);
    });
  }

  const subjects: Array<{ name: string; statement: object; problem?: RegExp }> = [
    { name: 'the package and its digest', statement: { subject: [{ name: 'pkg:npm/demo@1.0.0', digest: { sha512: hex } }] } },
    {
      name: 'another version',
      statement: { subject: [{ name: 'pkg:npm/demo@1.0.1', digest: { sha512: hex } }] },
      problem: /demo@1\.0\.0: its provenance was signed for pkg:npm\/demo@1\.0\.1, not for pkg:npm\/demo@1\.0\.0/,
    },
    {
      name: 'other bytes',
      statement: { subject: [{ name: 'pkg:npm/demo@1.0.0', digest: { sha512: 'ab' } }] },
      problem: /signed for a tarball with sha512 ab, not for the published one/,
    },
    { name: 'no subject', statement: {}, problem: /signed for nothing/ },
  ];
  for (const entry of subjects) {
    it(`subject: ${entry.name}`, () => {
      const problem = subjectProblem(entry.statement, { name: 'demo', version: '1.0.0', integrity });
      if (entry.problem) expect(problem).to.match(entry.problem);
      else expect(problem).to.equal(undefined);
    });
  }

  it('reads the source of SLSA v1 and v0.2 predicates', () => {
    const v1 = provenanceStatement({
      name: 'demo',
      version: '1.0.0',
      sha512Hex: hex,
      repository: 'Owner/Repo',
      commit: 'c'.repeat(40),
    }) as {
      predicate: unknown;
    };
    expect(sourceFromPredicate(SLSA_PROVENANCE_V1, v1.predicate)).to.deep.equal({
      repository: 'github.com/owner/repo',
      commit: 'c'.repeat(40),
      workflow: '.github/workflows/release.yml',
      ref: 'refs/heads/main',
      builder: 'https://github.com/actions/runner/github-hosted',
      predicateType: SLSA_PROVENANCE_V1,
    });
    const v02 = {
      builder: { id: 'https://github.com/actions/runner' },
      invocation: {
        configSource: {
          uri: 'git+https://github.com/owner/repo@refs/tags/v1.0.0',
          digest: { sha1: 'd'.repeat(40) },
          entryPoint: '.github/workflows/publish.yml',
        },
      },
    };
    expect(sourceFromPredicate(SLSA_PROVENANCE_V02, v02)).to.deep.equal({
      repository: 'github.com/owner/repo',
      commit: 'd'.repeat(40),
      workflow: '.github/workflows/publish.yml',
      ref: 'refs/tags/v1.0.0',
      builder: 'https://github.com/actions/runner',
      predicateType: SLSA_PROVENANCE_V02,
    });
    expect(sourceFromPredicate(SLSA_PROVENANCE_V1, { buildDefinition: {} })).to.equal(undefined);
    expect(sourceFromPredicate('https://example.invalid/other', v02)).to.equal(undefined);
  });

  it('the certificate must name an issuer and the repository the provenance names', () => {
    const source = { repository: 'github.com/owner/repo' };
    const uri = 'https://github.com/owner/repo/.github/workflows/release.yml@refs/heads/main';
    expect(
      identityProblem('demo@1.0.0', source, { issuer: 'https://issuer.test', sourceRepository: 'https://github.com/owner/repo' }),
    ).to.equal(undefined);
    expect(identityProblem('demo@1.0.0', source, { issuer: 'https://issuer.test', identity: uri })).to.equal(undefined);
    expect(identityProblem('demo@1.0.0', source, { identity: uri })).to.match(/names no OIDC issuer/);
    expect(
      identityProblem('demo@1.0.0', source, { issuer: 'https://issuer.test', sourceRepository: 'https://github.com/evil/repo' }),
    ).to.equal('demo@1.0.0: its provenance names github.com/owner/repo, but was signed by a workflow of github.com/evil/repo');
  });

  it('provenance decides what is refused: off nothing, warn what does not verify or names another repository, require anything not attested', () => {
    const results: AttestationResult[] = [
      'attested',
      'no-attestation',
      'attestation-invalid',
      'repository-mismatch',
      'attestation-unverified',
    ];
    const refused = (mode: 'off' | 'warn' | 'require') => results.filter((result) => attestationRefusal(mode, { result, message: result }));
    expect(refused('off')).to.deep.equal([]);
    expect(refused('warn')).to.deep.equal(['attestation-invalid', 'repository-mismatch']);
    expect(refused('require')).to.deep.equal(['no-attestation', 'attestation-invalid', 'repository-mismatch', 'attestation-unverified']);
    const attested = {
      result: 'attested' as const,
      message: 'ok',
      source: { repository: 'github.com/a/b', predicateType: SLSA_PROVENANCE_V1 },
    };
    expect(expectRepository(attested, 'github.com/a/b', 'demo@1.0.0')).to.equal(attested);
    expect(expectRepository(attested, 'github.com/c/d', 'demo@1.0.0')).to.include({
      result: 'repository-mismatch',
      message: "demo@1.0.0 was built from github.com/a/b, not from github.com/c/d (the inventory's repository)",
    });
  });

  it('the inventory takes repository for npm servers only, normalized; a bad value names the key', () => {
    const parse = (server: string) =>
      parseInventory(`servers:\n  demo: ${server}\n`, '/etc/mcp.yaml', { schedule: '0 * * * *', timezone: 'UTC' });
    expect(parse('{ package: demo, repository: "https://github.com/Owner/Repo.git" }').servers.get('demo')?.repository).to.equal(
      'github.com/owner/repo',
    );
    for (const [server, message] of [
      ['{ package: demo, repository: owner }', 'servers.demo.repository: must be a source repository such as github.com/owner/repo'],
      ['{ pypi: demo, repository: github.com/owner/repo }', 'servers.demo.repository: is an npm key; a pypi server does not take it'],
    ] as const) {
      expect(() => parse(server))
        .to.throw(ConfigurationError)
        .with.property('message')
        .that.contains(message);
    }
  });
  it('loads the Sigstore verifier at the first verification, once', async () => {
    let created = 0;
    const outcome = { result: 'attested' as const, message: 'ok' };
    const verifier = lazyAttestationVerifier(async () => {
      created += 1;
      return { verify: async () => outcome };
    });
    expect(created).to.equal(0);
    const pkg = { name: 'pkg', version: '1.0.0' };
    expect(await Promise.all([verifier.verify(pkg, {}), verifier.verify(pkg, {})])).to.deep.equal([outcome, outcome]);
    expect(await verifier.verify(pkg, {})).to.equal(outcome);
    expect(created).to.equal(1);
  });
});

describe('provenance: Sigstore verification (fixture trust root)', () => {
  let trusted: FixtureSigstore;
  let untrusted: FixtureSigstore;
  let verifier: ProvenanceVerifier;
  let dir: string;

  before(async () => {
    [trusted, untrusted] = await Promise.all([FixtureSigstore.start(), FixtureSigstore.start()]);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-sigstore-'));
    verifier = new ProvenanceVerifier({ trustedRootFile: await trusted.writeTrustedRoot(dir), tufCacheDir: dir });
  });

  after(async () => {
    await Promise.all([trusted.close(), untrusted.close()]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const statement = provenanceStatement({
    name: '@scope/demo',
    version: '1.0.0',
    sha512Hex: hex,
    repository: 'owner/repo',
    commit: 'e'.repeat(40),
  });
  const pkg = { name: '@scope/demo', version: '1.0.0', integrity };

  it('verifies a bundle of the trust root: the source, with the certificate issuer', async () => {
    const outcome = await verifier.verify(pkg, await trusted.attest(statement, { repository: 'owner/repo' }));
    expect(outcome.result).to.equal('attested');
    expect(outcome.source).to.deep.include({ repository: 'github.com/owner/repo', commit: 'e'.repeat(40), issuer: FIXTURE_OIDC_ISSUER });
  });

  it('refuses a bundle of another CA, one without its log entry, and one signed by another repository', async () => {
    expect(await verifier.verify(pkg, await untrusted.attest(statement, { repository: 'owner/repo' }))).to.deep.equal({
      result: 'attestation-invalid',
      message: '@scope/demo@1.0.0: its provenance bundle does not verify (CERTIFICATE_ERROR: Failed to verify certificate chain)',
    });
    const bundle = (await trusted.attest(statement, { repository: 'owner/repo' })) as { verificationMaterial: Record<string, unknown> };
    bundle.verificationMaterial.tlogEntries = [];
    expect((await verifier.verify(pkg, bundle)).message).to.match(/does not verify \(TIMESTAMP_ERROR: expected 1 timestamps, got 0\)/);
    expect((await verifier.verify(pkg, await trusted.attest(statement, { repository: 'evil/repo' }))).message).to.equal(
      '@scope/demo@1.0.0: its provenance names github.com/owner/repo, but was signed by a workflow of github.com/evil/repo',
    );
    expect((await verifier.verify(pkg, { mediaType: 'nonsense' })).result).to.equal('attestation-invalid');
  });

  it('a trusted root that cannot be read is a configuration error naming SIGSTORE_TRUSTED_ROOT', async () => {
    const broken = new ProvenanceVerifier({ trustedRootFile: path.join(dir, 'missing.json'), tufCacheDir: dir });
    const error = await broken.verify(pkg, {}).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error)
      .to.be.instanceOf(ConfigurationError)
      .with.property('message')
      .that.matches(/^SIGSTORE_TRUSTED_ROOT .*missing\.json/);
  });
});

describe('provenance: the pipeline (workers, fixture registry and Sigstore)', function () {
  this.timeout(120_000);
  let trusted: FixtureSigstore;
  let untrusted: FixtureSigstore;
  let rootDir: string;
  let trustedRoot: string;
  let registry: FixtureRegistry;
  let env: TestEnv;
  let context: WorkerContext;
  let workers: RunningWorkers | undefined;
  let client: ProducerClient;

  before(async () => {
    [trusted, untrusted] = await Promise.all([FixtureSigstore.start(), FixtureSigstore.start()]);
    rootDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-sigstore-'));
    trustedRoot = await trusted.writeTrustedRoot(rootDir);
  });

  after(async () => {
    await Promise.all([trusted.close(), untrusted.close()]);
    await fs.rm(rootDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    registry = await FixtureRegistry.start();
    registry.useSigstore(trusted, untrusted);
  });

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await client?.close();
    await env?.cleanup();
    await registry.close();
  });

  const inventoryText = (server: string) => `defaults:\n  minReleaseAge: 0\n  smokeTest: { timeout: 15s }\nservers:\n  demo: ${server}\n`;

  async function setUp(server: string): Promise<void> {
    env = await createTestEnv({ registryUrl: registry.url, inventory: inventoryText(server), env: { SIGSTORE_TRUSTED_ROOT: trustedRoot } });
    context = await env.context();
    workers = startWorkers(context, ['check', 'download', 'stage', 'activate']);
    client = ProducerClient.connect(env.config);
  }

  async function reconfigure(server: string): Promise<void> {
    await env.writeInventory(inventoryText(server));
    await context.inventory.reload();
  }

  async function settle(): Promise<void> {
    await settlePipeline(context.queues, { queues: ['check', 'download', 'stage', 'activate'] });
  }

  async function checkAndSettle(): Promise<void> {
    await client.check('demo', { reason: 'test' });
    await settle();
  }

  async function publish(version: string, provenance?: { repository?: string; variant?: ProvenanceVariant }): Promise<void> {
    await registry.publish({
      name: 'demo-mcp',
      version,
      publishedAt: old,
      ...(provenance
        ? { provenance: { repository: provenance.repository ?? 'owner/repo', variant: provenance.variant, commit: 'f'.repeat(40) } }
        : {}),
    });
  }

  async function attestationCounts(): Promise<Record<string, number>> {
    const rows = await context.metrics.readCounter('provenance_total');
    return Object.fromEntries(rows.filter((row) => row.labels[1] !== 'verified').map((row) => [row.labels.join('|'), row.value]));
  }

  it('require: an attested version activates; its verified source is recorded and shown', async () => {
    await publish('1.0.0', {});
    await setUp('{ package: demo-mcp, provenance: require }');
    await checkAndSettle();
    expect(await context.state.get('demo')).to.include({ current: '1.0.0', state: 'idle' });
    const expected = {
      repository: 'github.com/owner/repo',
      commit: 'f'.repeat(40),
      workflow: '.github/workflows/release.yml',
      ref: 'refs/heads/main',
      issuer: FIXTURE_OIDC_ISSUER,
    };
    expect((await context.layout.readVersionRecord('demo', '1.0.0'))?.provenance).to.deep.include(expected);
    expect((await context.layout.readHistory('demo'))!.entries.at(-1)!.provenance).to.deep.include(expected);
    const detail = await readServerDetail(context.inventory.server('demo')!, context.state, context.layout);
    expect(detail.source).to.deep.include(expected);
    expect(detail.settings.repository).to.equal(null);
    expect(await attestationCounts()).to.deep.equal({ 'demo|attested': 1 });
  });

  const hostile: Array<{ variant: ProvenanceVariant; problem: RegExp }> = [
    {
      variant: 'wrong-digest',
      problem: /demo-mcp@1\.1\.0: its provenance was signed for a tarball with sha512 [0-9a-f]+, not for the published one/,
    },
    {
      variant: 'wrong-name',
      problem: /demo-mcp@1\.1\.0: its provenance was signed for pkg:npm\/demo-mcp-evil@1\.1\.0, not for pkg:npm\/demo-mcp@1\.1\.0/,
    },
    {
      variant: 'untrusted-ca',
      problem: /demo-mcp@1\.1\.0: its provenance bundle does not verify \(CERTIFICATE_ERROR: Failed to verify certificate chain\)/,
    },
    {
      variant: 'no-tlog',
      problem: /demo-mcp@1\.1\.0: its provenance bundle does not verify \(TIMESTAMP_ERROR: expected 1 timestamps, got 0\)/,
    },
    {
      variant: 'other-signer',
      problem:
        /demo-mcp@1\.1\.0: its provenance names github\.com\/owner\/repo, but was signed by a workflow of github\.com\/owner\/repo-fork/,
    },
  ];
  for (const { variant, problem } of hostile) {
    it(`${variant}: refused under require and under warn, naming the problem`, async () => {
      await publish('1.0.0', {});
      await setUp('{ package: demo-mcp, provenance: require }');
      await checkAndSettle();
      await publish('1.1.0', { variant });
      await checkAndSettle();
      const state = await context.state.get('demo');
      expect(state).to.include({ current: '1.0.0', state: 'failed' });
      expect(state.failedVersions).to.deep.equal(['1.1.0']);
      expect(state.lastError).to.match(problem);
      expect(state.lastError).to.match(/\(provenance: require\)/);

      await publish('1.2.0', { variant });
      await reconfigure('{ package: demo-mcp, provenance: warn }');
      await checkAndSettle();
      const warned = await context.state.get('demo');
      expect(warned).to.include({ current: '1.0.0', state: 'failed' });
      expect(warned.failedVersions).to.have.members(['1.1.0', '1.2.0']);
      expect(warned.lastError)
        .to.match(new RegExp(problem.source.replaceAll('1\\.1\\.0', '1\\.2\\.0')))
        .and.match(/\(provenance: warn\)/);
      expect(await context.layout.installedVersions('demo')).to.deep.equal(['1.0.0']);
      expect(await attestationCounts()).to.deep.equal({ 'demo|attested': 1, 'demo|attestation-invalid': 2 });
    });
  }

  it('no attestation: refused under require, counted and let through under warn; off ignores even a hostile one', async () => {
    await publish('1.0.0');
    await setUp('{ package: demo-mcp, provenance: require }');
    await checkAndSettle();
    let state = await context.state.get('demo');
    expect(state).to.include({ state: 'failed' });
    expect(state.current).to.equal(undefined);
    expect(state.lastError).to.match(/demo-mcp@1\.0\.0 carries no provenance attestation \(provenance: require\)/);

    await publish('1.1.0');
    await reconfigure('{ package: demo-mcp, provenance: warn }');
    await checkAndSettle();
    expect((await context.state.get('demo')).current).to.equal('1.1.0');

    await publish('1.2.0', { variant: 'untrusted-ca' });
    await reconfigure('{ package: demo-mcp, provenance: off, repository: github.com/someone/else }');
    await checkAndSettle();
    state = await context.state.get('demo');
    expect(state.current).to.equal('1.2.0');
    expect(await attestationCounts()).to.deep.equal({ 'demo|no-attestation': 2 });
    expect(registry.requests.filter((request) => request.url.includes('/-/npm/v1/attestations/'))).to.deep.equal([]);
  });

  it('a source repository change waits for approval with the reason; approving records the approved source', async () => {
    await publish('1.0.0', {});
    await setUp('{ package: demo-mcp }');
    await checkAndSettle();
    await publish('1.1.0', { repository: 'newowner/repo' });
    await checkAndSettle();
    const waiting = await context.state.get('demo');
    expect(waiting).to.include({ state: 'awaiting-approval', staged: '1.1.0', current: '1.0.0' });
    expect(waiting.gate).to.equal(
      'source repository changed: 1.0.0 was built from github.com/owner/repo, 1.1.0 from github.com/newowner/repo',
    );
    const event = (await context.events.list({ server: 'demo', type: 'update.awaiting-approval', limit: 5 }))[0];
    expect(event?.reason).to.equal(waiting.gate);
    // A check while it waits does not count the change again.
    await checkAndSettle();
    expect(await attestationCounts()).to.deep.equal({ 'demo|attested': 3, 'demo|repository-changed': 1 });

    await client.approve('demo', '1.1.0', 'test:operator');
    await settle();
    const approved = await context.state.get('demo');
    expect(approved).to.include({ current: '1.1.0', state: 'idle' });
    expect(approved.gate).to.equal(undefined);
    const entry = (await context.layout.readHistory('demo'))!.entries.at(-1)!;
    expect(entry).to.include({ action: 'approve', to: '1.1.0', approvedBy: 'test:operator' });
    expect(entry.provenance).to.deep.include({ repository: 'github.com/newowner/repo' });
  });

  it('an explicit repository refuses a version built elsewhere, even under warn', async () => {
    await publish('1.0.0', {});
    await setUp('{ package: demo-mcp, repository: github.com/owner/repo }');
    await checkAndSettle();
    expect((await context.state.get('demo')).current).to.equal('1.0.0');
    await publish('1.1.0', { repository: 'newowner/repo' });
    await checkAndSettle();
    const state = await context.state.get('demo');
    expect(state).to.include({ current: '1.0.0', state: 'failed' });
    expect(state.failedVersions).to.deep.equal(['1.1.0']);
    expect(state.lastError).to.contain(
      "demo-mcp@1.1.0 was built from github.com/newowner/repo, not from github.com/owner/repo (the inventory's repository)",
    );
    expect(await attestationCounts()).to.deep.equal({ 'demo|attested': 1, 'demo|repository-mismatch': 1 });
  });
});
