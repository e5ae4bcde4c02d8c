/*
 * Redis isolation of the whole run: the root-level hooks below snapshot every key outside the
 * suite's own prefixes (test/support/isolation.ts) before the first test of any file and check
 * after the last one that none was created, changed or deleted. When .mocharc.json loads
 * test/support/isolation.ts as a root hook plugin, the plugin does it and these hooks stand down.
 */
import crypto from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  finishIsolationCheck,
  ignoredPrefixes,
  isolationCheckActive,
  isolationProblems,
  removeLeftoverKeys,
  snapshotForeignKeys,
  startIsolationCheck,
} from './support/isolation.js';
import { TEST_REDIS_URL } from './support/env.js';
import { summary } from './support/reliability.js';

let ownsCheck = false;

before(async function () {
  if (isolationCheckActive()) return;
  await startIsolationCheck(TEST_REDIS_URL);
  ownsCheck = true;
});

after(async function () {
  if (!ownsCheck) return;
  const { keys } = await finishIsolationCheck();
  summary('isolation', { foreignKeysUnchanged: keys, ignoredPrefixes: ignoredPrefixes().join(',') });
});

describe('reliability: Redis isolation of the test run', () => {
  it('sees a key created, changed and deleted outside the test prefixes, and ignores its own prefixes', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const probe = `mcpu-isolation-probe-${crypto.randomBytes(4).toString('hex')}`;
    const own = `mcpu-test-isolation-${crypto.randomBytes(4).toString('hex')}`;
    try {
      const ignore = ignoredPrefixes();
      const start = await snapshotForeignKeys(redis, ignore);
      await redis.set(own, 'ignored');
      await redis.hset(probe, 'a', '1');
      const created = await snapshotForeignKeys(redis, ignore);
      await redis.hset(probe, 'a', '2');
      const changed = await snapshotForeignKeys(redis, ignore);
      await redis.del(probe, own);
      const deleted = await snapshotForeignKeys(redis, ignore);
      // Other processes may touch their own keys meanwhile: look at ours only.
      const mine = (keys: string[]) => keys.filter((key) => key === probe || key === own);
      expect(mine(isolationProblems(start, created).created)).to.deep.equal([probe]);
      expect(mine(isolationProblems(created, changed).changed)).to.deep.equal([probe]);
      expect(mine(isolationProblems(changed, deleted).deleted)).to.deep.equal([probe]);
      const overall = isolationProblems(start, deleted);
      expect(mine([...overall.created, ...overall.changed, ...overall.deleted])).to.deep.equal([]);
    } finally {
      await redis.del(probe, own);
      redis.disconnect();
    }
  });

  it("finds and removes keys left under a prefix this run's tests were given, and only those", async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const issued = `mcpu-test-${crypto.randomBytes(5).toString('hex')}`;
    const other = `mcpu-test-${crypto.randomBytes(5).toString('hex')}`;
    try {
      await redis.set(`${issued}:check:id`, '2');
      await redis.hset(`${issued}:check:1`, 'name', 'check');
      await redis.set(`${other}:check:id`, '1');
      expect(await removeLeftoverKeys(redis, new Set([issued]))).to.deep.equal([`${issued}:check:1`, `${issued}:check:id`]);
      expect(await redis.exists(`${issued}:check:id`, `${issued}:check:1`)).to.equal(0);
      expect(await redis.get(`${other}:check:id`), "another run's key").to.equal('1');
    } finally {
      await redis.del(`${issued}:check:id`, `${issued}:check:1`, `${other}:check:id`);
      redis.disconnect();
    }
  });

  it('reads extra prefixes to leave out from ISOLATION_IGNORE_PREFIXES', () => {
    expect(ignoredPrefixes({ ISOLATION_IGNORE_PREFIXES: 'mcp:, dev-' })).to.deep.equal(['mcpu-test-', 'mcpu-bench-', 'mcp:', 'dev-']);
    expect(ignoredPrefixes({})).to.deep.equal(['mcpu-test-', 'mcpu-bench-']);
  });
});
