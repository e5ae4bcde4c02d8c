/*
 * The PyPI version scheme and release choice (shared/ecosystems/pep440.ts, pypiPolicy.ts): PEP 440
 * normalization, policy buckets on release segments (CalVer included), pre-releases, yanked
 * releases, minimum release age by upload time, and the wheel that fits.
 */
import { expect } from 'chai';
import { isPypiVersion, normalizePypiVersion, pypiPolicyAllows } from '../shared/ecosystems/pep440.js';
import { chooseFile, choosePypiCandidate, wheelTags, type PypiFile, type PypiProject } from '../shared/ecosystems/pypiPolicy.js';
import type { Policy } from '../shared/inventory.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const DAY = 86_400_000;
const SHA = 'a'.repeat(64);

function wheel(name: string, version: string, daysOld: number | undefined, extra: Partial<PypiFile> = {}): PypiFile {
  const filename = `${name.replace(/-/g, '_')}-${version}-py3-none-any.whl`;
  return {
    filename,
    url: `http://127.0.0.1:9/files/${filename}`,
    sha256: SHA,
    yanked: false,
    packagetype: 'bdist_wheel',
    ...(daysOld === undefined ? {} : { uploadTime: new Date(NOW.getTime() - daysOld * DAY).toISOString() }),
    ...extra,
  };
}

function project(releases: Record<string, PypiFile[] | number>): PypiProject {
  return {
    name: 'demo',
    releases: Object.fromEntries(
      Object.entries(releases).map(([version, files]) => [version, typeof files === 'number' ? [wheel('demo', version, files)] : files]),
    ),
  };
}

function decide(
  releases: Record<string, PypiFile[] | number>,
  options: {
    current?: string;
    policy?: Policy;
    minReleaseAgeMs?: number;
    range?: string;
    version?: string;
    exclude?: string[];
    allowSdist?: boolean;
    hold?: string;
  } = {},
) {
  return choosePypiCandidate({
    project: project(releases),
    current: options.current,
    settings: {
      policy: options.policy ?? 'minor',
      channel: 'latest',
      minReleaseAgeMs: options.minReleaseAgeMs ?? 0,
      range: options.range,
      version: options.version,
      allowSdist: options.allowSdist ?? false,
    },
    now: NOW,
    exclude: options.exclude,
    hold: options.hold,
    supportedTags: ['cp311-cp311-manylinux_2_17_x86_64', 'py3-none-manylinux_2_17_x86_64', 'py3-none-any'],
  });
}

describe('pypi: PEP 440 versions', () => {
  const cases: Array<[string, string | undefined]> = [
    ['1.2.3', '1.2.3'],
    ['1.0', '1.0'],
    ['2026.10.24', '2026.10.24'],
    ['1.0.0-RC1', '1.0.0rc1'],
    ['1.0.post1', '1.0.post1'],
    ['1.0.dev0', '1.0.dev0'],
    ['v1.2', '1.2'],
    ['1!2.0', undefined],
    ['1.0+local', undefined],
    ['latest', undefined],
    ['../1.0', undefined],
  ];
  for (const [input, normalized] of cases) {
    it(`${JSON.stringify(input)} -> ${normalized ?? 'refused'}`, () => {
      expect(normalizePypiVersion(input)).to.equal(normalized);
      expect(isPypiVersion(input)).to.equal(normalized === input);
    });
  }

  const policies: Array<[Policy, string, string, boolean]> = [
    ['patch', '1.2.3', '1.2.9', true],
    ['patch', '1.2.3', '1.3.0', false],
    ['patch', '1.2', '1.2.1', true],
    ['minor', '1.2.3', '1.9.0', true],
    ['minor', '1.2.3', '2.0', false],
    ['major', '1.2.3', '3.0', true],
    ['pin', '1.2.3', '1.2.4', false],
    ['minor', '2026.1.5', '2026.10.24', true],
    ['minor', '2026.10.24', '2027.1.1', false],
    ['patch', '2026.10.1', '2026.10.24', true],
  ];
  for (const [policy, from, to, allowed] of policies) {
    it(`policy ${policy}: ${from} -> ${to} ${allowed ? 'allowed' : 'held back'}`, () => {
      expect(pypiPolicyAllows(policy, from, to)).to.equal(allowed);
    });
  }
});

describe('pypi: which release', () => {
  it('first install takes the newest stable release, skipping pre-releases and yanked ones', () => {
    const decision = decide({ '1.0.0': 30, '1.1.0': [wheel('demo', '1.1.0', 20, { yanked: true })], '1.2.0rc1': 10 });
    expect(decision).to.include({ candidate: '1.0.0', latest: '1.0.0' });
    expect(decision.skipped).to.deep.equal([
      { version: '1.2.0rc1', reason: 'prerelease' },
      { version: '1.1.0', reason: 'yanked' },
    ]);
    expect(decision.usable).to.deep.equal({
      integrity: `sha256-${Buffer.from(SHA, 'hex').toString('base64')}`,
      tarball: 'http://127.0.0.1:9/files/demo-1.0.0-py3-none-any.whl',
      file: 'demo-1.0.0-py3-none-any.whl',
    });
  });

  it('a pinned pre-release is installed', () => {
    expect(decide({ '1.0.0': 30, '1.2.0rc1': 10 }, { policy: 'pin', version: '1.2.0rc1' })).to.include({ candidate: '1.2.0rc1' });
  });

  it('each policy from 1.2.3', () => {
    const releases = { '1.2.3': 40, '1.2.4': 30, '1.3.0': 30, '2.0.0': 30 };
    expect(decide(releases, { current: '1.2.3', policy: 'patch' }).candidate).to.equal('1.2.4');
    expect(decide(releases, { current: '1.2.3', policy: 'minor' }).candidate).to.equal('1.3.0');
    expect(decide(releases, { current: '1.2.3', policy: 'major' }).candidate).to.equal('2.0.0');
    expect(decide(releases, { current: '1.2.3', policy: 'pin', version: '1.2.3' })).to.include({
      candidate: undefined,
      summary: 'pinned at 1.2.3 (2.0.0 available, pinned)',
    });
  });

  it('minimum release age: the earliest upload of a release counts, unknown is too young', () => {
    const releases = { '1.0.0': 30, '1.1.0': 1, '1.2.0': [wheel('demo', '1.2.0', undefined)] };
    const decision = decide(releases, { current: '1.0.0', minReleaseAgeMs: 3 * DAY });
    expect(decision).to.include({ candidate: undefined, summary: 'up to date; 1.2.0 skipped (too-young)' });
    expect(decision.skipped.map((skip) => skip.reason)).to.deep.equal(['too-young', 'too-young']);
  });

  it('a rollback hold skips every release up to it, by PEP 440 order, until a newer one exists', () => {
    const held = decide({ '1.0': 1, '1.0.post1': 1, '1.1': 1 }, { current: '1.0', hold: '1.1' });
    expect([held.candidate, held.allowed]).to.deep.equal([undefined, '1.0']);
    expect(held.skipped).to.deep.equal([
      { version: '1.1', reason: 'held' },
      { version: '1.0.post1', reason: 'held' },
    ]);
    expect(held.summary).to.equal('held at 1.0 after a rollback from 1.1; a version newer than 1.1 moves on (or check --force)');
    expect(decide({ '1.0': 1, '1.1': 1, '1.10': 1 }, { current: '1.0', hold: '1.1' }).candidate).to.equal('1.10');
    // A pinned version at or below the hold is not installed again either.
    const pinned = decide({ '1.0': 1, '1.1': 1 }, { current: '1.0', hold: '1.1', policy: 'pin', version: '1.1' });
    expect([pinned.candidate, pinned.allowed, pinned.skipped]).to.deep.equal([undefined, '1.0', [{ version: '1.1', reason: 'held' }]]);
  });

  it('a range narrows, failed versions are skipped', () => {
    expect(decide({ '1.0': 30, '1.5': 30, '1.9': 30 }, { current: '1.0', range: '<1.9' }).candidate).to.equal('1.5');
    expect(decide({ '1.0': 30, '1.5': 30, '1.9': 30 }, { current: '1.0', exclude: ['1.9'] }).candidate).to.equal('1.5');
  });

  it('a first install with nothing allowed fails with ENOVERSION', () => {
    expect(decide({ '1.0': 1 }, { minReleaseAgeMs: 3 * DAY }).error?.code).to.equal('ENOVERSION');
  });

  it('a release with only an sdist is unusable unless allowSdist', () => {
    const sdist: PypiFile = {
      filename: 'demo-1.0.tar.gz',
      url: 'http://127.0.0.1:9/files/demo-1.0.tar.gz',
      sha256: SHA,
      yanked: false,
      packagetype: 'sdist',
      uploadTime: '2026-01-01T00:00:00Z',
    };
    const refused = decide({ '1.0': [sdist] });
    expect(refused.unusable[0]!.message).to.match(
      /demo 1\.0 has no wheel for this interpreter, only a source distribution \(files: demo-1\.0\.tar\.gz\).*allowSdist: true/,
    );
    expect(decide({ '1.0': [sdist] }, { allowSdist: true }).usable?.file).to.equal('demo-1.0.tar.gz');
  });
});

describe('pypi: which wheel', () => {
  const tags = ['cp311-cp311-manylinux_2_17_x86_64', 'cp311-abi3-manylinux_2_17_x86_64', 'py3-none-any'];
  const file = (filename: string): PypiFile => ({
    filename,
    url: `http://127.0.0.1:9/${filename}`,
    sha256: SHA,
    yanked: false,
    packagetype: 'bdist_wheel',
  });

  it('reads compressed tag sets', () => {
    expect(wheelTags('x-1.0-py2.py3-none-any.whl')).to.deep.equal(['py2-none-any', 'py3-none-any']);
    expect(wheelTags('x-1.0-1-cp311-cp311-linux_x86_64.whl')).to.deep.equal(['cp311-cp311-linux_x86_64']);
  });

  it('pure Python first, else the most specific supported tag, else an error naming the files', () => {
    expect(chooseFile([file('x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl'), file('x-1.0-py3-none-any.whl')], tags, false)).to.deep.include({
      ok: true,
      file: file('x-1.0-py3-none-any.whl'),
    });
    expect(
      chooseFile([file('x-1.0-cp311-abi3-manylinux_2_17_x86_64.whl'), file('x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl')], tags, false),
    ).to.deep.include({ ok: true, file: file('x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl') });
    const none = chooseFile([file('x-1.0-cp312-cp312-win_amd64.whl')], tags, false);
    expect(none).to.deep.include({ ok: false, code: 'ENOWHEEL' });
    expect((none as { message: string }).message).to.contain('files: x-1.0-cp312-cp312-win_amd64.whl');
  });
});
