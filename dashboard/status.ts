/*
 * GET /status: one JSON answer for monitoring (beside /health, /ready and /metrics): the
 * version, how long this process has run, whether Redis answers, job counts per queue and how
 * many servers are in each state. No auth and no rate limit, like the probes: it reads the same
 * one-second caches as the status page, so polling it costs Redis little.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { QueueName } from '../shared/queues.js';
import { redactString } from '../shared/redact.js';
import { PACKAGE_VERSION } from '../shared/packageVersion.js';
import { RedisUnavailableError } from '../shared/redis.js';
import { sandboxStatus } from '../shared/sandbox.js';
import { formatDuration } from '../shared/schedule.js';
import { countByState } from '../shared/serverView.js';
import type { ServerStateName } from '../shared/state.js';
import { summarizeQueues, type QueueCounts, type QueueSummary } from './queue-counts.js';
import type { ServerOverview } from './servers.js';

export interface StatusReport {
  /** "ok" while Redis answers; "unavailable" (HTTP 503) when it does not. */
  status: 'ok' | 'unavailable';
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  redis: { reachable: boolean; error: string | null };
  /** Whether smoke tests on this host run sandboxed (bubblewrap), and why not. */
  smokeTests: { sandboxed: boolean; summary: string };
  /** null while Redis does not answer. */
  queues: Partial<Record<QueueName, QueueSummary>> | null;
  servers: { total: number; byState: Record<ServerStateName, number> } | null;
}

export interface StatusDeps {
  redis: Redis;
  redisUrl: string;
  queueCounts: QueueCounts;
  servers: ServerOverview;
  /** How long Redis may take to answer (ms, default 1000). */
  timeoutMs?: number;
}

/** Settles with `promise`, or rejects once `ms` have passed without an answer. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  const timer = new AbortController();
  const expired = sleep(ms, undefined, { signal: timer.signal }).then(() => {
    throw new Error(`no answer within ${formatDuration(ms)}`);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    timer.abort();
  }
}

/** Why Redis does not answer a PING within `timeoutMs` (redacted), or undefined when it does. */
export async function probeRedis(redis: Redis, redisUrl: string, timeoutMs: number): Promise<string | undefined> {
  return within(redis.ping(), timeoutMs).then(
    () => undefined,
    (error: unknown) => redactString(new RedisUnavailableError(redisUrl, error).message),
  );
}

export async function readStatus(deps: StatusDeps): Promise<StatusReport> {
  const uptimeSeconds = Math.floor(process.uptime());
  const base = {
    version: PACKAGE_VERSION,
    startedAt: new Date(Date.now() - uptimeSeconds * 1000).toISOString(),
    uptimeSeconds,
    smokeTests: { sandboxed: sandboxStatus().sandboxed, summary: sandboxStatus().summary },
  };
  const timeoutMs = deps.timeoutMs ?? 1_000;
  const unreachable = await probeRedis(deps.redis, deps.redisUrl, timeoutMs);
  if (unreachable) {
    return { status: 'unavailable', ...base, redis: { reachable: false, error: unreachable }, queues: null, servers: null };
  }
  // Redis answered: a failure from here on is an error of its own (the error handler answers it).
  const [counts, views] = await within(Promise.all([deps.queueCounts.read(), deps.servers.list()]), timeoutMs);
  return {
    status: 'ok',
    ...base,
    redis: { reachable: true, error: null },
    queues: summarizeQueues(counts),
    servers: { total: views.length, byState: countByState(views) },
  };
}

export function statusHandler(deps: StatusDeps): RequestHandler {
  return (_req, res, next) => {
    readStatus(deps).then((report) => {
      res
        .status(report.status === 'ok' ? 200 : 503)
        .set('cache-control', 'no-store')
        .json(report);
    }, next);
  };
}
