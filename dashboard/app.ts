/*
 * The dashboard's express app: /health /ready /metrics, Bull Board at /admin/queues, the REST API
 * under /api/v1 and the status page. It reads state and enqueues jobs through shared/ and
 * producers/; it never runs a pipeline stage (docs/ARCHITECTURE.md: dashboard/ and workers/ never meet).
 */
import crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import type { ProducerClient } from '../producers/client.js';
import type { Config } from '../shared/config.js';
import { NotFoundError } from '../shared/errors.js';
import { EventLog } from '../shared/events.js';
import type { InventoryWatcher } from '../shared/inventory.js';
import { InstallLayout } from '../shared/layout.js';
import { createLogger } from '../shared/logger.js';
import { MetricsRecorder } from '../shared/metrics.js';
import { redactString, registerSecret } from '../shared/redact.js';
import { RedisUnavailableError } from '../shared/redis.js';
import { StateStore } from '../shared/state.js';
import { createApiRouter } from './api.js';
import { Authenticator, HostAllowlist, isReadRequest, isSameOrigin, SessionStore } from './auth.js';
import { BOARD_PATH, createBoardRouter } from './board.js';
import { errorHandler, ForbiddenError, readOnlyError, UnauthorizedError } from './errors.js';
import { createMetricsRegistry } from './metrics.js';
import { serveOpenApi } from './openapi.js';
import { createPagesRouter } from './pages.js';
import { QueueCounts } from './queue-counts.js';
import { createRateLimiter, DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limit.js';
import { ServerOverview } from './servers.js';
import { statusHandler } from './status.js';

export interface DashboardOptions {
  /** Per-IP limits; see DEFAULT_RATE_LIMITS (600 reads, 30 changes, 10 logins a minute). */
  rateLimits?: Partial<RateLimits>;
  /** How long /api/v1/servers and the status page reuse one read of Redis (ms, default 1000). */
  serverCacheMs?: number;
  /** How long queue job counts are reused (ms, default 1000). */
  queueCountCacheMs?: number;
  /** Timeout of the Redis ping behind /ready (ms, default 1000). */
  readyTimeoutMs?: number;
  /** Node's default process metrics in /metrics (default true). */
  processMetrics?: boolean;
  /** Clock for relative times on the status page. */
  now?: () => Date;
}

export interface DashboardDeps extends DashboardOptions {
  config: Config;
  inventory: InventoryWatcher;
  /** A producer-role connection (fails fast while Redis is down). */
  redis: Redis;
  /** Enqueues jobs; its queues also back Bull Board and the queue counts. */
  producer: ProducerClient;
}

const HEALTH_BODY = JSON.stringify({ status: 'ok' });

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const nonceOf = (_req: unknown, res: ServerResponse) =>
  `'nonce-${String((res as unknown as { locals: { cspNonce: string } }).locals.cspNonce)}'`;

/** What both CSPs share; they differ only in where scripts and styles may come from. */
function headers(scriptSrc: Array<string | typeof nonceOf>, styleSrc: Array<string | typeof nonceOf>, fontSrc: string[]) {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc,
        scriptSrcAttr: ["'none'"],
        styleSrc,
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc,
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        objectSrc: ["'none'"],
      },
    },
    // Plain-HTTP deployments are common (localhost, a LAN box): HSTS belongs to the TLS proxy.
    strictTransportSecurity: false,
    // helmet's default no-referrer makes browsers send `Origin: null` on our own form posts,
    // which the cookie/Origin rule must then refuse.
    referrerPolicy: { policy: 'same-origin' },
  });
}

/** Strict CSP for our own pages: scripts and styles only with this response's nonce. */
const pageHeaders = headers(["'self'", nonceOf], ["'self'", nonceOf], ["'self'"]);

/** Bull Board's UI sets inline styles and loads its bundle from its own static path. */
const boardHeaders = headers(["'self'"], ["'self'", "'unsafe-inline'"], ["'self'", 'data:']);

export function createDashboardApp(deps: DashboardDeps): Express {
  const { config, inventory, redis, producer } = deps;
  // loadConfig registers them already; a Config built another way (tests, benchmarks) still redacts.
  registerSecret(config.apiToken);
  registerSecret(config.webhookSecret);
  const fromConfig = (limit: number) => (limit === 0 ? false : limit);
  const limits: RateLimits = {
    ...DEFAULT_RATE_LIMITS,
    read: fromConfig(config.rateLimits.read),
    mutation: fromConfig(config.rateLimits.mutation),
    login: fromConfig(config.rateLimits.login),
    ...deps.rateLimits,
  };
  const limiter = (name: 'read' | 'mutation' | 'login') => createRateLimiter(name, limits, { config, redis });
  const read = limiter('read');
  const boardTokenGuesses = createRateLimiter('login', limits, { config, redis }, { onlyRefusals: true });
  const hosts = new HostAllowlist(config);

  const state = new StateStore(redis, config);
  const events = new EventLog(redis, config);
  const layout = new InstallLayout(config);
  const servers = new ServerOverview({ inventory, state, layout, cacheMs: deps.serverCacheMs });
  const queueCounts = new QueueCounts(producer.queue, deps.queueCountCacheMs);
  const auth = new Authenticator(config, new SessionStore(redis, config));
  const registry = createMetricsRegistry({
    recorder: new MetricsRecorder(redis, config),
    servers,
    queueCounts,
    inventory,
    processMetrics: deps.processMetrics,
  });

  const app = express();
  app.disable('x-powered-by');
  // Behind a reverse proxy, rate limits and audit lines need the client's address, not the proxy's.
  if (config.trustProxy) app.set('trust proxy', /^\d+$/.test(config.trustProxy) ? Number(config.trustProxy) : config.trustProxy);
  // Big JSON answers are cached already; hashing them for an ETag on every request costs more.
  app.set('etag', false);
  // isSameOrigin compares Origin with these names.
  app.locals.hostAllowlist = hosts;

  // Probes first: no middleware, no Redis (liveness must answer even when Redis is down).
  app.get('/health', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(HEALTH_BODY);
  });

  app.get('/ready', async (_req, res) => {
    try {
      await withTimeout(redis.ping(), deps.readyTimeoutMs ?? 1_000);
      res.set('cache-control', 'no-store').json({ status: 'ready' });
    } catch (error) {
      const reason = redactString(new RedisUnavailableError(config.redisUrl, error).message);
      res.status(503).set('cache-control', 'no-store').json({ status: 'unavailable', reason });
    }
  });

  // Everything below answers only to our own names (DNS rebinding); the probes above are called by address.
  app.use(hosts.guard());

  app.get('/metrics', async (_req, res) => {
    const text = await registry.metrics();
    res.set('content-type', registry.contentType).send(text);
  });

  app.get('/status', statusHandler({ redis, redisUrl: config.redisUrl, queueCounts, servers, timeoutMs: deps.readyTimeoutMs }));
  app.get('/api/v1/openapi.json', serveOpenApi);

  // Browsers ask for it whatever the page says; the pages carry an inline icon.
  app.get('/favicon.ico', (_req, res) => {
    res.writeHead(204, { 'cache-control': 'public, max-age=86400' });
    res.end();
  });

  app.use((req, res, next) => {
    res.locals.cspNonce = crypto.randomBytes(16).toString('base64');
    (req.path.startsWith(BOARD_PATH) ? boardHeaders : pageHeaders)(req, res, next);
  });

  const boardGuard: RequestHandler = (req, res, next) => {
    if (auth.readOnly) {
      next(isReadRequest(req) ? undefined : readOnlyError());
      return;
    }
    auth.identify(req, res).then((identity) => {
      if (!identity.actor) {
        if (req.method === 'GET' && !identity.badToken && req.accepts(['json', 'html']) === 'html') {
          res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
          return;
        }
        next(new UnauthorizedError(identity.badToken ? 'the bearer token is not valid' : 'authentication required'));
        return;
      }
      if (!isReadRequest(req)) {
        if (identity.actor.via === 'session' && !isSameOrigin(req)) {
          next(
            new ForbiddenError(
              'EORIGIN',
              'cross-origin request refused: a cookie-authenticated change must carry an Origin (or Referer) header of this host',
            ),
          );
          return;
        }
        createLogger('audit').info(`bull-board ${req.method} ${req.path}`, {
          action: 'bull-board',
          method: req.method,
          path: req.path,
          actor: identity.actor.label,
          ip: identity.actor.ip,
        });
      }
      next();
    }, next);
  };
  // A bearer token sent to the board is a login attempt: refused ones count against the login limit.
  const boardTokenLimit: RequestHandler = (req, res, next) => {
    if (auth.readOnly || req.get('authorization') === undefined) next();
    else boardTokenGuesses(req, res, next);
  };
  app.use(BOARD_PATH, read, boardTokenLimit, boardGuard, createBoardRouter({ queues: producer.queue, readOnly: auth.readOnly }));

  app.use(
    '/api/v1',
    createApiRouter({
      inventory,
      state,
      layout,
      events,
      producer,
      servers,
      auth,
      limits: { read, mutation: limiter('mutation') },
    }),
  );

  app.use(
    createPagesRouter({
      servers,
      events,
      queueCounts,
      auth,
      now: deps.now,
      inventory,
      state,
      layout,
      limits: { read, login: limiter('login') },
    }),
  );

  app.use((req, _res, next) => next(new NotFoundError(`no such page: ${req.method} ${req.path}`)));
  app.use(errorHandler({ config, redis }));
  return app;
}
