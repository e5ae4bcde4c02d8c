/*
 * Rate limits per client IP, counted in Redis (rate-limit-redis) so they hold across every
 * dashboard process on the same Redis: generous for reads, strict for changes, stricter for
 * token guessing (the login form, and refused bearer tokens at Bull Board, share one budget).
 * /health, /ready and /metrics are never limited.
 */
import type { Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Config } from '../shared/config.js';
import { describeError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { appKey } from '../shared/redis.js';
import { formatDuration } from '../shared/schedule.js';
import { errorBody, wantsHtml } from './errors.js';
import { renderErrorPage } from './views.js';

export interface RateLimits {
  /** Window the limits count in (ms). */
  windowMs: number;
  /** Requests per window for reads: status page, GET /api/v1/*, Bull Board. `false` = unlimited. */
  read: number | false;
  /** Requests per window for POST /api/v1/* (checks, approvals, rollbacks, cleanup). */
  mutation: number | false;
  /** Attempts per window at POST /login. */
  login: number | false;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { windowMs: 60_000, read: 600, mutation: 30, login: 10 };

export type LimiterName = 'read' | 'mutation' | 'login';

/**
 * rate-limit-redis loads its scripts once at start; if Redis was down then, every later call
 * would await the same rejected promise. Load them again while they have not loaded.
 */
class ReconnectingRedisStore extends RedisStore {
  override async increment(key: string) {
    this.incrementScriptSha = this.incrementScriptSha.catch(() => this.loadIncrementScript());
    return super.increment(key);
  }

  override async get(key: string) {
    this.getScriptSha = this.getScriptSha.catch(() => this.loadGetScript());
    return super.get(key);
  }
}

export interface LimiterDeps {
  config: Pick<Config, 'queuePrefix'>;
  redis: Redis;
}

const passThrough: RequestHandler = (_req, _res, next) => next();

export interface LimiterOptions {
  /**
   * Count only requests answered 401 (a wrong token): Bull Board's bearer-token requests draw on
   * the login budget this way, so the board cannot be used to guess tokens at the read rate.
   */
  onlyRefusals?: boolean;
}

export function createRateLimiter(name: LimiterName, limits: RateLimits, deps: LimiterDeps, options: LimiterOptions = {}): RequestHandler {
  const limit = limits[name];
  if (limit === false) return passThrough;
  return rateLimit({
    windowMs: limits.windowMs,
    limit,
    ...(options.onlyRefusals
      ? { skipSuccessfulRequests: true, requestWasSuccessful: (_req: Request, res: Response) => res.statusCode !== 401 }
      : {}),
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    store: new ReconnectingRedisStore({
      prefix: `${appKey(deps.config, 'rl', name)}:`,
      sendCommand: (command: string, ...args: string[]) => deps.redis.call(command, ...args) as Promise<RedisReply>,
    }),
    logger: {
      error: (error: unknown, message?: string) => createLogger('monitoring').warn(`${message ?? 'rate limiter'}: ${describeError(error)}`),
      warn: (error: unknown, message?: string) => createLogger('monitoring').warn(`${message ?? 'rate limiter'}: ${describeError(error)}`),
    },
    handler: (req: Request, res: Response) => {
      const message = `too many requests: at most ${limit} ${name} requests per ${formatDuration(limits.windowMs)} from one address; try again later`;
      res.status(429);
      if (wantsHtml(req)) res.type('html').send(renderErrorPage(429, message, res.locals.cspNonce as string | undefined));
      else res.json(errorBody('ERATELIMIT', message));
    },
  });
}
