import { expect } from 'chai';
import {
  compareInstalledNewestFirst,
  IN_FLIGHT_GRACE_MS,
  retentionPlan,
  type RetentionInput,
  type RetentionServer,
} from '../shared/retention.js';
import { PEP440_ORDER } from '../shared/versionOrder.js';

const NOW = Date.parse('2026-01-10T12:00:00Z');
const HOUR = 60 * 60 * 1000;
const OLD = NOW - 2 * HOUR;
const FRESH = NOW - 5 * 60 * 1000;

const sri = (version: string) => `sha512-${Buffer.from(`v${version}`).toString('base64')}`;

function server(overrides: Partial<RetentionServer> & { versions?: string[] } = {}): RetentionServer {
  const versions = overrides.versions ?? [];
  return {
    name: 'memory',
    keep: 3,
    installed: versions.map((version, index) => ({ version, stagedAt: NOW - (versions.length - index) * HOUR })),
    recentVersions: [],
    integrities: Object.fromEntries(versions.map((version) => [version, sri(version)])),
    ...overrides,
  };
}

function input(overrides: Partial<RetentionInput>): RetentionInput {
  return { servers: [], staging: [], backups: [], now: NOW, ...overrides };
}

const removed = (plan: ReturnType<typeof retentionPlan>) => plan.removeVersions.map((item) => `${item.server}@${item.version}`).sort();

describe('retentionPlan', () => {
  describe('version directories', () => {
    const cases: Array<{ name: string; server: RetentionServer; remove: string[] }> = [
      {
        name: 'keeps the newest `keep` versions and removes the rest',
        server: server({ versions: ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'], current: '1.4.0', previous: '1.3.0' }),
        remove: ['memory@1.0.0', 'memory@1.1.0'],
      },
      {
        name: 'never removes current or previous, even when they are old',
        server: server({ versions: ['1.0.0', '1.1.0', '2.0.0', '2.1.0', '2.2.0'], keep: 1, current: '1.0.0', previous: '1.1.0' }),
        remove: ['memory@2.0.0', 'memory@2.1.0'],
      },
      {
        name: 'keeps a staged version awaiting approval',
        server: server({ versions: ['1.0.0', '1.1.0', '1.2.0', '0.9.0'], keep: 1, current: '1.1.0', staged: '1.0.0' }),
        remove: ['memory@0.9.0'],
      },
      {
        name: 'orders by semver, not by name (1.10.0 > 1.9.0)',
        server: server({ versions: ['1.10.0', '1.9.0', '1.2.0'], keep: 1, current: '1.10.0' }),
        remove: ['memory@1.2.0', 'memory@1.9.0'],
      },
      {
        // Staged newest-last in the opposite order: PEP 440 decides, not staging time or semver.
        name: 'pypi versions are ordered by PEP 440 (1.0.0 < 1.0.0.post1 < 1.10.0 < 2026.1.5)',
        server: server({
          ecosystem: 'pypi',
          versions: ['2026.1.5', '1.10.0', '1.0.0.post1', '1.0.0', '1.9'],
          keep: 2,
          current: '2026.1.5',
        }),
        remove: ['memory@1.0.0', 'memory@1.0.0.post1', 'memory@1.9'],
      },
      {
        name: 'keep larger than what is installed removes nothing',
        server: server({ versions: ['1.0.0', '1.1.0'], keep: 5, current: '1.1.0' }),
        remove: [],
      },
      {
        name: 'nothing installed removes nothing',
        server: server({ versions: [], current: undefined }),
        remove: [],
      },
      {
        name: 'prereleases sort below their release',
        server: server({ versions: ['2.0.0-rc.1', '2.0.0', '1.0.0'], keep: 1, current: '1.0.0' }),
        remove: ['memory@2.0.0-rc.1'],
      },
    ];
    for (const testCase of cases) {
      it(testCase.name, () => {
        expect(removed(retentionPlan(input({ servers: [testCase.server] })))).to.deep.equal(testCase.remove);
      });
    }

    it('lists why each kept version is kept', () => {
      const plan = retentionPlan(
        input({
          servers: [server({ versions: ['1.0.0', '1.1.0', '1.2.0'], keep: 1, current: '1.2.0', previous: '1.0.0' })],
        }),
      );
      expect(plan.kept.versions).to.deep.include({ server: 'memory', version: '1.2.0', reasons: ['current', 'newest'] });
      expect(plan.kept.versions).to.deep.include({ server: 'memory', version: '1.0.0', reasons: ['previous'] });
    });

    it('works per server', () => {
      const plan = retentionPlan(
        input({
          servers: [
            server({ name: 'a', versions: ['1.0.0', '2.0.0'], keep: 1, current: '2.0.0' }),
            server({ name: 'b', versions: ['1.0.0', '2.0.0'], keep: 2, current: '2.0.0' }),
          ],
        }),
      );
      expect(removed(plan)).to.deep.equal(['a@1.0.0']);
    });
  });

  describe('compareInstalledNewestFirst', () => {
    const cases: Array<[string, number, string, number, 'a' | 'b']> = [
      ['1.2.0', 1, '1.10.0', 2, 'b'],
      ['2.0.0', 1, '2.0.0-beta.1', 2, 'a'],
      ['1.0.0', 5, '1.0.0', 9, 'b'],
      ['not-semver', 9, '0.0.1', 1, 'b'],
      ['custom-a', 9, 'custom-b', 1, 'a'],
    ];
    for (const [a, stagedA, b, stagedB, first] of cases) {
      it(`${a}@${stagedA} vs ${b}@${stagedB}: ${first === 'a' ? a : b} first`, () => {
        const order = compareInstalledNewestFirst({ version: a, stagedAt: stagedA }, { version: b, stagedAt: stagedB });
        expect(order < 0 ? 'a' : 'b').to.equal(first);
      });
    }

    const pep440: Array<[string, number, string, number, 'a' | 'b']> = [
      ['1.0.0', 9, '1.0.0.post1', 1, 'b'],
      ['1.10.0', 1, '1.9', 9, 'a'],
      ['2026.1.5', 1, '1.10.0', 9, 'a'],
      ['1.0', 1, '1.0.0', 9, 'b'],
      ['1.1rc1', 9, '1.1', 1, 'b'],
    ];
    for (const [a, stagedA, b, stagedB, first] of pep440) {
      it(`pypi: ${a}@${stagedA} vs ${b}@${stagedB}: ${first === 'a' ? a : b} first`, () => {
        const order = compareInstalledNewestFirst({ version: a, stagedAt: stagedA }, { version: b, stagedAt: stagedB }, PEP440_ORDER);
        expect(order < 0 ? 'a' : 'b').to.equal(first);
      });
    }
  });

  describe('staging leftovers', () => {
    const cases: Array<{ name: string; mtimeMs: number; removed: boolean }> = [
      { name: 'older than an hour is removed', mtimeMs: OLD, removed: true },
      { name: 'younger than an hour may be a running stage: kept', mtimeMs: FRESH, removed: false },
      { name: 'exactly an hour old is kept', mtimeMs: NOW - IN_FLIGHT_GRACE_MS, removed: false },
    ];
    for (const testCase of cases) {
      it(testCase.name, () => {
        const plan = retentionPlan(input({ staging: [{ path: '/staging/memory/1.0.0-x', mtimeMs: testCase.mtimeMs }] }));
        expect(plan.removeStaging).to.deep.equal(testCase.removed ? ['/staging/memory/1.0.0-x'] : []);
        expect(plan.kept.staging).to.deep.equal(testCase.removed ? [] : ['/staging/memory/1.0.0-x']);
      });
    }
  });

  describe('backups', () => {
    // installed 1.0.0..1.5.0, keep 2, current 1.5.0, previous 1.4.0 -> kept versions 1.5.0, 1.4.0
    // history (newest first) 1.5.0 1.4.0 1.3.0 1.2.0 1.1.0 -> keep + 2 = 4 recent: 1.5.0 .. 1.2.0
    const base = server({
      versions: ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0'],
      keep: 2,
      current: '1.5.0',
      previous: '1.4.0',
      recentVersions: ['1.5.0', '1.4.0', '1.3.0', '1.2.0', '1.1.0', '1.0.0'],
    });
    const cases: Array<{ name: string; integrity?: string; mtimeMs: number; keep: false | string }> = [
      { name: 'backup of the current version is kept', integrity: sri('1.5.0'), mtimeMs: OLD, keep: 'kept-version' },
      { name: 'backup of the previous version is kept', integrity: sri('1.4.0'), mtimeMs: OLD, keep: 'kept-version' },
      {
        name: 'backup of a recent history version (removed dir) is kept for rollback',
        integrity: sri('1.2.0'),
        mtimeMs: OLD,
        keep: 'recent-history',
      },
      { name: 'backup beyond keep + 2 history versions is removed', integrity: sri('1.1.0'), mtimeMs: OLD, keep: false },
      { name: 'backup beyond keep + 2 but fresh is kept (download in flight)', integrity: sri('1.0.0'), mtimeMs: FRESH, keep: 'in-flight' },
      { name: 'unknown old backup is removed', mtimeMs: OLD, keep: false },
      { name: 'unknown fresh backup is kept', mtimeMs: FRESH, keep: 'in-flight' },
      { name: 'integrity of another scope is protected', integrity: sri('9.9.9'), mtimeMs: OLD, keep: 'protected' },
    ];
    for (const testCase of cases) {
      it(testCase.name, () => {
        const plan = retentionPlan(
          input({
            servers: [base],
            backups: [{ file: '/backups/sha512/x.tgz', integrity: testCase.integrity, mtimeMs: testCase.mtimeMs }],
            protectedIntegrities: [sri('9.9.9')],
          }),
        );
        if (testCase.keep === false) {
          expect(plan.removeBackups).to.deep.equal(['/backups/sha512/x.tgz']);
        } else {
          expect(plan.removeBackups).to.deep.equal([]);
          expect(plan.kept.backups).to.deep.equal([{ file: '/backups/sha512/x.tgz', reason: testCase.keep }]);
        }
      });
    }

    it('keeps the backup of a kept version whose directory is already gone', () => {
      const plan = retentionPlan(
        input({
          servers: [
            server({
              versions: ['2.0.0'],
              current: '2.0.0',
              previous: '1.0.0',
              integrities: { '1.0.0': sri('1.0.0'), '2.0.0': sri('2.0.0') },
            }),
          ],
          backups: [{ file: '/b/1.tgz', integrity: sri('1.0.0'), mtimeMs: OLD }],
        }),
      );
      expect(plan.removeBackups).to.deep.equal([]);
    });

    it('matches multi-hash SRI strings by their first hash', () => {
      const plan = retentionPlan(
        input({
          servers: [server({ versions: ['1.0.0'], current: '1.0.0', integrities: { '1.0.0': `${sri('1.0.0')} sha1-abc=` } })],
          backups: [{ file: '/b/1.tgz', integrity: sri('1.0.0'), mtimeMs: OLD }],
        }),
      );
      expect(plan.removeBackups).to.deep.equal([]);
    });
  });
});
