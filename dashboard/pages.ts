/*
 * The HTML side: the status page at /, a server's surface diff view (/servers/<name>/diff) and
 * the login form that trades API_TOKEN for a session cookie (HttpOnly, SameSite=Strict, 12 h; the
 * cookie holds a random id, never the token).
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import Joi from 'joi';
import { NotFoundError } from '../shared/errors.js';
import type { EventLog } from '../shared/events.js';
import type { InventoryWatcher } from '../shared/inventory.js';
import type { InstallLayout } from '../shared/layout.js';
import { createLogger } from '../shared/logger.js';
import { serverNameSchema, versionSchema } from '../shared/schemas.js';
import type { StateStore } from '../shared/state.js';
import { compareSurfaces } from '../shared/surfaceStore.js';
import { validate } from './api.js';
import { isSameOrigin, readCookie, SESSION_COOKIE, tokenFingerprint, type Authenticator } from './auth.js';
import { ForbiddenError, readOnlyError } from './errors.js';
import type { QueueCounts } from './queue-counts.js';
import type { ServerOverview } from './servers.js';
import { renderDiffPage, renderLoginPage, renderStatusPage } from './views.js';

export interface PagesDeps {
  servers: ServerOverview;
  events: EventLog;
  queueCounts: QueueCounts;
  auth: Authenticator;
  /** For the surface diff view (/servers/<name>/diff). */
  inventory: InventoryWatcher;
  state: StateStore;
  layout: InstallLayout;
  limits: { read: RequestHandler; login: RequestHandler };
  /** Events listed on the status page. */
  recentEvents?: number;
  now?: () => Date;
}

/** Only local paths ("/admin/queues"), never "//elsewhere" or "https://elsewhere". */
export function safeNext(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : '/';
}

type Handler = (req: Request, res: Response) => Promise<void>;
const route =
  (handler: Handler): RequestHandler =>
  (req, res, next) =>
    handler(req, res).catch(next);

export function createPagesRouter(deps: PagesDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '4kb' });
  const now = deps.now ?? (() => new Date());
  const nonceOf = (res: Response) => res.locals.cspNonce as string | undefined;

  router.get(
    '/',
    deps.limits.read,
    route(async (req, res) => {
      const [servers, events, queues, identity] = await Promise.all([
        deps.servers.list(),
        deps.events.list({ limit: deps.recentEvents ?? 15 }),
        deps.queueCounts.read(),
        deps.auth.identify(req, res),
      ]);
      res.setHeader('Cache-Control', 'no-store');
      res.type('html').send(
        renderStatusPage({
          servers,
          events,
          queues,
          readOnly: deps.auth.readOnly,
          canAct: !deps.auth.readOnly && identity.actor !== undefined,
          who: identity.actor?.via === 'session' ? identity.actor.label : undefined,
          now: now(),
          nonce: nonceOf(res),
        }),
      );
    }),
  );

  router.get(
    '/servers/:name/diff',
    deps.limits.read,
    route(async (req, res) => {
      const { name } = validate<{ name: string }>(Joi.object({ name: serverNameSchema.required() }), req.params, 'params');
      if (!deps.inventory.server(name)) throw new NotFoundError(`server "${name}" is not in the inventory`);
      const query = validate<{ from?: string; to?: string }>(Joi.object({ from: versionSchema, to: versionSchema }), req.query, 'query');
      const comparison = await compareSurfaces(deps.layout, deps.state, name, query);
      res.setHeader('Cache-Control', 'no-store');
      res.type('html').send(renderDiffPage({ comparison, nonce: nonceOf(res) }));
    }),
  );

  router.get('/login', deps.limits.read, (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(renderLoginPage({ readOnly: deps.auth.readOnly, next: safeNext(req.query.next), nonce: nonceOf(res) }));
  });

  router.post(
    '/login',
    deps.limits.login,
    form,
    express.json({ limit: '4kb' }),
    route(async (req, res) => {
      if (deps.auth.readOnly) throw readOnlyError();
      if (req.get('origin') && !isSameOrigin(req)) throw new ForbiddenError('EORIGIN', 'cross-origin login refused');
      const body = (req.body ?? {}) as { token?: unknown; next?: unknown };
      const next = safeNext(body.next);
      const ip = req.ip ?? 'unknown';
      if (typeof body.token !== 'string' || !deps.auth.accepts(body.token.trim())) {
        createLogger('audit').warn('login refused: wrong token', { action: 'login', ip });
        res
          .status(401)
          .type('html')
          .send(renderLoginPage({ readOnly: false, error: 'That is not the API token.', next, nonce: nonceOf(res) }));
        return;
      }
      const fingerprint = tokenFingerprint(body.token.trim());
      const sessionId = await deps.auth.sessions.create(fingerprint, ip);
      res.cookie(SESSION_COOKIE, sessionId, {
        httpOnly: true,
        sameSite: 'strict',
        path: '/',
        secure: req.secure,
        maxAge: deps.auth.sessions.ttlSeconds * 1000,
      });
      createLogger('audit').info('login', { action: 'login', actor: `session:${fingerprint}`, ip });
      res.redirect(303, next);
    }),
  );

  router.post(
    '/logout',
    route(async (req, res) => {
      if (req.get('origin') && !isSameOrigin(req)) throw new ForbiddenError('EORIGIN', 'cross-origin logout refused');
      const sessionId = readCookie(req.get('cookie'), SESSION_COOKIE);
      if (sessionId) {
        const identity = await deps.auth.identify(req, res);
        await deps.auth.sessions.destroy(sessionId);
        if (identity.actor) createLogger('audit').info('logout', { action: 'logout', actor: identity.actor.label, ip: identity.actor.ip });
      }
      res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.secure });
      res.redirect(303, '/');
    }),
  );

  return router;
}
