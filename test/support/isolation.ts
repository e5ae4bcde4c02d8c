/*
 * Redis isolation of the test suite: every test works under its own random `mcpu-test-*`
 * QUEUE_PREFIX (test/support/env.ts), so no key outside those prefixes may be created, changed or
 * deleted by a run. `snapshotForeignKeys` records every other key (name, type and a digest of its
 * DUMP) plus the key counts of the other databases; `isolationProblems` compares two snapshots.
 *
 * As a mocha root hook plugin (`.mocharc.json`: "require": ["test/support/isolation.ts"]) it checks
 * the whole run; test/reliability-isolation.test.ts does the same when the plugin is not loaded.
 *
 * ISOLATION_IGNORE_PREFIXES=a,b adds key prefixes to leave out (a developer's own mcp-updater on
 * the same Redis changes `mcp:*` keys; someone's experiments may live elsewhere). Nothing else is skipped.
 *
 * The plugin also sets the run up, so `npm install && npm test` needs nothing else: it builds
 * dist/ when it is missing or older than the sources (tests run the real bin, which runs dist/)
 * and starts a redis-server when none answers (test/support/redisServer.ts), stopping it at the end.
 */
import crypto from 'node:crypto';
import { Redis } from 'ioredis';
import { ensureFreshBuild } from '../../bin/build.js';
import { issuedPrefixes } from './env.js';
import { ensureSuiteRedis } from './redisServer.js';

/** Prefixes of the suite's own worlds: tests (createTestEnv) and benchmarks (bench/lib/benchEnv.ts). */
export const OWN_PREFIXES = ['mcpu-test-', 'mcpu-bench-'] as const;

export function ignoredPrefixes(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env.ISOLATION_IGNORE_PREFIXES ?? '')
    .split(',')
    .map((prefix) => prefix.trim())
    .filter(Boolean);
  return [...OWN_PREFIXES, ...extra];
}

export interface KeySnapshot {
  /** key -> "type:sha1 of DUMP" for every key of db 0 outside the ignored prefixes. */
  keys: Map<string, string>;
  /** "db3" -> "keys=12" for every other database (a coarse check: tests only use db 0). */
  otherDatabases: Map<string, string>;
}

export async function snapshotForeignKeys(redis: Redis, ignore: readonly string[] = ignoredPrefixes()): Promise<KeySnapshot> {
  const keys = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      if (ignore.some((prefix) => key.startsWith(prefix))) continue;
      const [type, dump] = await Promise.all([redis.type(key), redis.dumpBuffer(key)]);
      if (dump === null) continue;
      keys.set(key, `${type}:${crypto.createHash('sha1').update(dump).digest('hex')}`);
    }
  } while (cursor !== '0');
  const otherDatabases = new Map<string, string>();
  for (const line of (await redis.info('keyspace')).split('\n')) {
    const match = /^(db\d+):keys=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'db0') otherDatabases.set(match[1]!, `keys=${match[2]}`);
  }
  return { keys, otherDatabases };
}

export interface IsolationProblems {
  created: string[];
  changed: string[];
  deleted: string[];
  otherDatabases: string[];
}

export function isolationProblems(before: KeySnapshot, after: KeySnapshot): IsolationProblems {
  const created: string[] = [];
  const changed: string[] = [];
  const deleted: string[] = [];
  for (const [key, digest] of after.keys) {
    const old = before.keys.get(key);
    if (old === undefined) created.push(key);
    else if (old !== digest) changed.push(key);
  }
  for (const key of before.keys.keys()) if (!after.keys.has(key)) deleted.push(key);
  const otherDatabases: string[] = [];
  for (const db of new Set([...before.otherDatabases.keys(), ...after.otherDatabases.keys()])) {
    const was = before.otherDatabases.get(db) ?? 'keys=0';
    const now = after.otherDatabases.get(db) ?? 'keys=0';
    if (was !== now) otherDatabases.push(`${db}: ${was} -> ${now}`);
  }
  return { created: created.sort(), changed: changed.sort(), deleted: deleted.sort(), otherDatabases };
}

export function describeProblems(problems: IsolationProblems): string | undefined {
  const parts = (['created', 'changed', 'deleted', 'otherDatabases'] as const)
    .filter((kind) => problems[kind].length > 0)
    .map(
      (kind) =>
        `${kind}: ${problems[kind].slice(0, 20).join(', ')}${problems[kind].length > 20 ? ` (+${problems[kind].length - 20} more)` : ''}`,
    );
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** One check per process: whoever starts first (plugin or test file) owns it. */
interface IsolationRun {
  redis: Redis;
  before: KeySnapshot;
}
const RUN = Symbol.for('mcp-updater.test.isolation');
type WithRun = typeof globalThis & { [RUN]?: IsolationRun };

export function isolationCheckActive(): boolean {
  return (globalThis as WithRun)[RUN] !== undefined;
}

export async function startIsolationCheck(url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'): Promise<void> {
  if (isolationCheckActive()) return;
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  (globalThis as WithRun)[RUN] = { redis, before: await snapshotForeignKeys(redis) };
}

/**
 * Keys under the prefixes this run's tests were given (createTestEnv) that are still there: a
 * test that did not clean up, or something of it that wrote after its cleanup. They are removed.
 */
export async function removeLeftoverKeys(redis: Redis, prefixes: ReadonlySet<string>): Promise<string[]> {
  const left: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', 'mcpu-test-*', 'COUNT', 1000);
    cursor = next;
    left.push(...batch.filter((key) => prefixes.has(key.slice(0, key.indexOf(':')))));
  } while (cursor !== '0');
  if (left.length > 0) await redis.unlink(...left);
  return left.sort();
}

/**
 * Throws when a key outside the ignored prefixes was created, changed or deleted since the start,
 * or when a test left keys under its own prefix.
 */
export async function finishIsolationCheck(): Promise<{ keys: number }> {
  const run = (globalThis as WithRun)[RUN];
  if (!run) throw new Error('finishIsolationCheck without startIsolationCheck');
  delete (globalThis as WithRun)[RUN];
  try {
    const after = await snapshotForeignKeys(run.redis);
    const problem = describeProblems(isolationProblems(run.before, after));
    if (problem) {
      throw new Error(
        `Redis keys outside ${ignoredPrefixes().join(', ')} were touched by this test run: ${problem} `
          + '(a test wrote outside its QUEUE_PREFIX; if these keys belong to something else on this Redis, list their prefixes in ISOLATION_IGNORE_PREFIXES)',
      );
    }
    const left = await removeLeftoverKeys(run.redis, issuedPrefixes());
    if (left.length > 0) {
      throw new Error(
        `${left.length} keys were left under the prefixes of this run's tests (now removed): ${left.slice(0, 20).join(', ')}`
          + ' (a test did not clean up, or something it started wrote after its cleanup: stop it before env.cleanup())',
      );
    }
    return { keys: after.keys.size };
  } finally {
    run.redis.disconnect();
  }
}

let stopSuiteRedis: (() => Promise<void>) | undefined;

/** Mocha root hook plugin. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    // A first build takes a while on a busy machine; nothing else here does.
    this.timeout(600_000);
    await ensureFreshBuild();
    const redis = await ensureSuiteRedis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
    if (redis.started) {
      stopSuiteRedis = () => redis.stop();

      console.log('      [setup] no Redis answered: started a redis-server for this run (stopped at the end)');
    }
    await startIsolationCheck();
  },
  async afterAll(this: Mocha.Context) {
    try {
      if (!isolationCheckActive()) return;
      const { keys } = await finishIsolationCheck();
      console.log(`      [reliability] isolation: foreignKeysUnchanged=${keys} ignoredPrefixes=${ignoredPrefixes().join(',')}`);
    } finally {
      await stopSuiteRedis?.();
    }
  },
};
