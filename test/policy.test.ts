import { expect } from 'chai';
import { chooseCandidate, holdAfterSwitch, type CandidateSettings } from '../shared/policy.js';
import { PEP440_ORDER } from '../shared/versionOrder.js';
import type { Packument, PackumentVersion } from '../shared/registry.js';

const NOW = new Date('2026-11-23T12:00:00Z');
const DAY = 86_400_000;
const SHA512 = `sha512-${Buffer.alloc(64, 1).toString('base64')}`;
const SHA1 = `sha1-${Buffer.alloc(20, 2).toString('base64')}`;

type Dist = NonNullable<PackumentVersion['dist']>;

/** A packument with versions published `ageDays` ago; `dist` replaces a version's (null: none). */
function packument(
  versions: Record<string, { ageDays?: number; deprecated?: string; dist?: Dist | null }>,
  tags: Record<string, string>,
): Packument {
  const result: Packument = { name: 'pkg', 'dist-tags': tags, versions: {}, time: {} };
  for (const [version, { ageDays = 30, deprecated, dist }] of Object.entries(versions)) {
    result.versions[version] = {
      name: 'pkg',
      version,
      deprecated,
      ...(dist === null ? {} : { dist: dist ?? { tarball: `http://127.0.0.1/pkg/-/pkg-${version}.tgz`, integrity: SHA512 } }),
    };
    result.time![version] = new Date(NOW.getTime() - ageDays * DAY).toISOString();
  }
  return result;
}

const base: CandidateSettings = { policy: 'minor', channel: 'latest', minReleaseAgeMs: 0 };
const standard = packument(
  { '1.0.0': {}, '1.0.1': {}, '1.1.0': {}, '1.2.0': {}, '2.0.0': {}, '2.1.0-beta.1': {} },
  { latest: '2.0.0', next: '2.1.0-beta.1' },
);

const tarball = (version: string) => `http://127.0.0.1/pkg/-/pkg-${version}.tgz`;
/** 1.0.0 current, 1.1.0 fine, 1.2.0 with the given dist. */
const poisoned = (dist: Dist | null) => packument({ '1.0.0': {}, '1.1.0': {}, '1.2.0': { dist } }, { latest: '1.2.0' });

const cases: Array<{
  name: string;
  current?: string;
  settings?: Partial<CandidateSettings>;
  packument?: Packument;
  exclude?: string[];
  candidate?: string;
  allowed?: string;
  updateAvailable?: boolean;
  error?: string;
  skipped?: string;
  /** Versions reported unusable. */
  unusable?: string[];
  /** The integrity handed to download. */
  integrity?: string;
  tarballProblem?: (url: string) => string | undefined;
}> = [
  { name: 'first install takes the newest allowed version', current: undefined, candidate: '2.0.0' },
  { name: 'first install takes the configured version', current: undefined, settings: { version: '1.0.1' }, candidate: '1.0.1' },
  { name: 'patch stays on the minor line', current: '1.0.0', settings: { policy: 'patch' }, candidate: '1.0.1', updateAvailable: true },
  { name: 'minor stays on the major line', current: '1.0.0', candidate: '1.2.0', updateAvailable: true },
  { name: 'major moves across majors', current: '1.0.0', settings: { policy: 'major' }, candidate: '2.0.0' },
  {
    name: 'pin never moves but reports availability',
    current: '1.0.0',
    settings: { policy: 'pin', version: '1.0.0' },
    candidate: undefined,
    allowed: '1.0.0',
    updateAvailable: true,
  },
  { name: 'pin installs the pinned version first', current: undefined, settings: { policy: 'pin', version: '1.1.0' }, candidate: '1.1.0' },
  {
    name: 'pin moves back to the pinned version after drift',
    current: '1.2.0',
    settings: { policy: 'pin', version: '1.1.0' },
    candidate: '1.1.0',
  },
  {
    name: 'pin does not return to a version that failed or was rolled back',
    current: '1.0.0',
    settings: { policy: 'pin', version: '1.1.0' },
    exclude: ['1.1.0'],
    candidate: undefined,
    skipped: 'failed-before',
  },
  { name: 'range narrows the policy', current: '1.0.0', settings: { policy: 'major', range: '<1.2.0' }, candidate: '1.1.0' },
  { name: 'up to date', current: '2.0.0', settings: { policy: 'major' }, candidate: undefined, allowed: '2.0.0', updateAvailable: false },
  {
    name: 'channel is the ceiling',
    current: '1.0.0',
    settings: { policy: 'major' },
    packument: packument({ '1.0.0': {}, '1.5.0': {}, '2.0.0': {} }, { latest: '1.5.0' }),
    candidate: '1.5.0',
  },
  { name: 'prerelease skipped on a stable channel', current: '2.0.0', settings: { policy: 'major' }, candidate: undefined },
  {
    name: 'prerelease taken when the channel points at one',
    current: '2.0.0',
    settings: { policy: 'major', channel: 'next' },
    candidate: '2.1.0-beta.1',
  },
  {
    name: 'deprecated versions are skipped',
    current: '1.0.0',
    packument: packument({ '1.0.0': {}, '1.1.0': {}, '1.2.0': { deprecated: 'broken' } }, { latest: '1.2.0' }),
    candidate: '1.1.0',
    skipped: 'deprecated',
  },
  {
    name: 'too young versions are skipped',
    current: '1.0.0',
    settings: { minReleaseAgeMs: 3 * DAY },
    packument: packument({ '1.0.0': {}, '1.1.0': { ageDays: 5 }, '1.2.0': { ageDays: 1 } }, { latest: '1.2.0' }),
    candidate: '1.1.0',
    skipped: 'too-young',
  },
  {
    name: 'nothing old enough keeps current',
    current: '1.0.0',
    settings: { minReleaseAgeMs: 3 * DAY },
    packument: packument({ '1.0.0': {}, '1.1.0': { ageDays: 1 } }, { latest: '1.1.0' }),
    candidate: undefined,
    allowed: '1.0.0',
    updateAvailable: true,
  },
  { name: 'versions that failed before are skipped', current: '1.0.0', exclude: ['1.2.0'], candidate: '1.1.0', skipped: 'failed-before' },
  { name: 'unknown channel is an error', current: '1.0.0', settings: { channel: 'beta' }, error: 'ECHANNEL' },
  { name: 'unpublished configured version is an error', current: undefined, settings: { version: '9.9.9' }, error: 'ETARGET' },
  {
    name: 'a first install with no version old enough is an error, not "up to date"',
    current: undefined,
    settings: { minReleaseAgeMs: 3 * DAY },
    packument: packument({ '1.0.0': { ageDays: 1 } }, { latest: '1.0.0' }),
    error: 'ENOVERSION',
  },
  {
    name: 'a first install with every version deprecated is an error',
    current: undefined,
    packument: packument({ '1.0.0': { deprecated: 'x' } }, { latest: '1.0.0' }),
    error: 'ENOVERSION',
  },
  { name: 'the candidate carries its validated integrity', current: '1.0.0', candidate: '1.2.0', integrity: SHA512 },
  {
    name: 'a multi-hash integrity yields its strongest hash',
    current: '1.0.0',
    packument: poisoned({ tarball: tarball('1.2.0'), integrity: `${SHA512} ${SHA1}` }),
    candidate: '1.2.0',
    integrity: SHA512,
  },
  {
    name: 'a sha1-only integrity is unusable; the next version is taken',
    current: '1.0.0',
    packument: poisoned({ tarball: tarball('1.2.0'), integrity: SHA1 }),
    candidate: '1.1.0',
    skipped: 'unusable',
    unusable: ['1.2.0'],
  },
  {
    name: 'a shasum without integrity is unusable',
    current: '1.0.0',
    packument: poisoned({ tarball: tarball('1.2.0'), shasum: 'a'.repeat(40) }),
    candidate: '1.1.0',
    unusable: ['1.2.0'],
  },
  {
    name: 'a sha512 digest of the wrong length is unusable',
    current: '1.0.0',
    packument: poisoned({ tarball: tarball('1.2.0'), integrity: 'sha512-AAAA' }),
    candidate: '1.1.0',
    unusable: ['1.2.0'],
  },
  {
    name: 'a tarball URL with a space is unusable',
    current: '1.0.0',
    packument: poisoned({ tarball: 'http://127.0.0.1/pkg/-/pkg 1.2.0.tgz', integrity: SHA512 }),
    candidate: '1.1.0',
    unusable: ['1.2.0'],
  },
  {
    name: 'a tarball URL that is not http(s) is unusable',
    current: '1.0.0',
    packument: poisoned({ tarball: 'file:///etc/passwd', integrity: SHA512 }),
    candidate: '1.1.0',
    unusable: ['1.2.0'],
  },
  { name: 'a version without dist is unusable', current: '1.0.0', packument: poisoned(null), candidate: '1.1.0', unusable: ['1.2.0'] },
  {
    name: 'a tarball where tarballs may not come from is unusable',
    current: '1.0.0',
    tarballProblem: (url) => (url.includes('1.2.0') ? 'ETARBALLHOST: not at the registry' : undefined),
    candidate: '1.1.0',
    unusable: ['1.2.0'],
  },
  {
    name: 'a version key that is not exact semver is reported, never chosen',
    current: '1.0.0',
    packument: packument({ '1.0.0': {}, '1.0.1 ': {}, '1.1.0': {} }, { latest: '1.1.0' }),
    candidate: '1.1.0',
    unusable: ['1.0.1 '],
  },
  {
    name: 'a dist-tag that is not exact semver is an unknown channel',
    current: '1.0.0',
    packument: packument({ '1.0.0': {}, '1.1.0': {} }, { latest: ' 1.1.0' }),
    error: 'ECHANNEL',
  },
  {
    name: 'a pinned version without dist is an error naming it',
    current: '1.0.0',
    settings: { policy: 'pin', version: '1.2.0' },
    packument: poisoned(null),
    error: 'EBADVERSION',
  },
  {
    name: 'missing time counts as too young when an age is required',
    current: '1.0.0',
    settings: { minReleaseAgeMs: DAY },
    packument: { ...packument({ '1.0.0': {}, '1.1.0': {} }, { latest: '1.1.0' }), time: undefined },
    candidate: undefined,
  },
];

describe('chooseCandidate (version policy)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const decision = chooseCandidate({
        packument: c.packument ?? standard,
        current: c.current,
        settings: { ...base, ...c.settings },
        now: NOW,
        exclude: c.exclude,
        tarballProblem: c.tarballProblem,
      });
      if (c.unusable) expect(decision.unusable.map((entry) => entry.version)).to.deep.equal(c.unusable);
      for (const entry of decision.unusable) expect(entry.message).to.include(`pkg`);
      if (c.error) {
        expect(decision.error?.code).to.equal(c.error);
        expect(decision.error?.message).to.be.a('string').and.not.equal('');
        expect(decision.candidate).to.equal(undefined);
        return;
      }
      if (!c.unusable) expect(decision.unusable, 'unusable versions').to.deep.equal([]);
      expect(decision.error).to.equal(undefined);
      expect(decision.candidate).to.equal(c.candidate);
      if ('allowed' in c) expect(decision.allowed).to.equal(c.allowed);
      if (c.updateAvailable !== undefined) expect(decision.updateAvailable).to.equal(c.updateAvailable);
      if (c.skipped) expect(decision.skipped.map((s) => s.reason)).to.include(c.skipped);
      expect(decision.summary).to.be.a('string').and.not.equal('');
      if (decision.candidate) expect(decision.usable?.tarball).to.equal(tarball(decision.candidate));
      if (c.integrity) expect(decision.usable?.integrity).to.equal(c.integrity);
    });
  }
});

describe('chooseCandidate: a rollback holds (hold = the version rolled back from)', () => {
  // Rolled back from 4.1.1 to 3.2.5: nothing up to 4.1.1 is taken, anything newer is.
  const released = packument({ '3.2.5': {}, '3.3.0': {}, '4.0.0': {}, '4.1.0': {}, '4.1.1': {} }, { latest: '4.1.1' });
  const newer = packument({ '3.2.5': {}, '4.1.0': {}, '4.1.1': {}, '4.1.2': {} }, { latest: '4.1.2' });
  const table: Array<{
    name: string;
    packument: Packument;
    settings?: Partial<CandidateSettings>;
    hold?: string;
    exclude?: string[];
    candidate?: string;
    allowed?: string;
    skipped?: string;
    summary?: RegExp;
  }> = [
    {
      name: 'without a hold the next check moves to 4.1.0 (the bug)',
      packument: released,
      settings: { policy: 'major' },
      exclude: ['4.1.1'],
      candidate: '4.1.0',
    },
    {
      name: 'a hold of 4.1.1 stays on 3.2.5',
      packument: released,
      settings: { policy: 'major' },
      hold: '4.1.1',
      exclude: ['4.1.1'],
      candidate: undefined,
      allowed: '3.2.5',
      skipped: 'held',
      summary: /held at 3\.2\.5 after a rollback from 4\.1\.1/,
    },
    {
      name: 'the hold covers versions below it on the current line too',
      packument: released,
      settings: { policy: 'minor' },
      hold: '4.1.1',
      candidate: undefined,
      allowed: '3.2.5',
      skipped: 'held',
    },
    {
      name: 'a version newer than the hold moves on',
      packument: newer,
      settings: { policy: 'major' },
      hold: '4.1.1',
      exclude: ['4.1.1'],
      candidate: '4.1.2',
    },
    {
      name: 'a hold does not lift the policy',
      packument: newer,
      settings: { policy: 'minor' },
      hold: '4.1.1',
      candidate: undefined,
      allowed: '3.2.5',
    },
    {
      name: 'a pinned version at or below the hold is not reinstalled',
      packument: released,
      settings: { policy: 'pin', version: '4.1.1' },
      hold: '4.1.1',
      candidate: undefined,
      allowed: '3.2.5',
      skipped: 'held',
      summary: /held at 3\.2\.5/,
    },
    {
      name: 'a pinned version above the hold is installed',
      packument: newer,
      settings: { policy: 'pin', version: '4.1.2' },
      hold: '4.1.1',
      candidate: '4.1.2',
    },
    { name: 'an invalid hold is ignored', packument: released, settings: { policy: 'major' }, hold: 'v4', candidate: '4.1.1' },
  ];
  for (const c of table) {
    it(c.name, () => {
      const decision = chooseCandidate({
        packument: c.packument,
        current: '3.2.5',
        settings: { ...base, ...c.settings },
        now: NOW,
        exclude: c.exclude,
        hold: c.hold,
      });
      expect(decision.error).to.equal(undefined);
      expect(decision.candidate).to.equal(c.candidate);
      if ('allowed' in c) expect(decision.allowed).to.equal(c.allowed);
      if (c.skipped) expect(decision.skipped.map((s) => s.reason)).to.include(c.skipped);
      if (c.summary) expect(decision.summary).to.match(c.summary);
    });
  }
});

describe('holdAfterSwitch', () => {
  const table: Array<[string, Parameters<typeof holdAfterSwitch>[0], string | undefined]> = [
    ['a rollback down holds below the version left', { action: 'rollback', from: '4.1.1', to: '3.2.5' }, '4.1.1'],
    ['a second rollback down keeps the higher hold', { action: 'rollback', from: '4.1.0', to: '3.2.5', hold: '4.1.1' }, '4.1.1'],
    ['a rollback from above the hold raises it', { action: 'rollback', from: '4.2.0', to: '3.2.5', hold: '4.1.1' }, '4.2.0'],
    ['a rollback --to a newer version sets no hold', { action: 'rollback', from: '3.2.5', to: '4.1.0' }, undefined],
    ['a rollback --to a version above the hold lifts it', { action: 'rollback', from: '3.2.5', to: '4.2.0', hold: '4.1.1' }, undefined],
    ['an approve lifts the hold', { action: 'approve', from: '3.2.5', to: '4.0.0', hold: '4.1.1' }, undefined],
    ['activating a version newer than the hold lifts it', { action: 'activate', from: '3.2.5', to: '4.1.2', hold: '4.1.1' }, undefined],
    ['activating a version equal to the hold keeps it', { action: 'activate', from: '3.2.5', to: '4.1.1', hold: '4.1.1' }, '4.1.1'],
    ['activating below the hold keeps it', { action: 'activate', from: '3.2.5', to: '3.2.6', hold: '4.1.1' }, '4.1.1'],
    ['no hold, no rollback: none', { action: 'activate', from: '3.2.5', to: '3.3.0' }, undefined],
  ];
  for (const [name, input, expected] of table) it(name, () => expect(holdAfterSwitch(input)).to.equal(expected));

  const pep440: Array<[string, Parameters<typeof holdAfterSwitch>[0], string | undefined]> = [
    ['pypi: a rollback from 1.1 to 1.0.post1 holds at 1.1', { action: 'rollback', from: '1.1', to: '1.0.post1' }, '1.1'],
    ['pypi: a rollback from 1.0.0.post1 to 1.0.0 holds', { action: 'rollback', from: '1.0.0.post1', to: '1.0.0' }, '1.0.0.post1'],
    ['pypi: 1.10 is newer than the hold 1.9 and lifts it', { action: 'activate', from: '1.0', to: '1.10', hold: '1.9' }, undefined],
    ['pypi: a pre-release below the hold keeps it', { action: 'activate', from: '1.0', to: '1.1rc1', hold: '1.1' }, '1.1'],
  ];
  for (const [name, input, expected] of pep440) it(name, () => expect(holdAfterSwitch(input, PEP440_ORDER)).to.equal(expected));
});
