/*
 * REST API v1 (dashboard/openapi.ts, README "HTTP API"). Reads are public; every POST needs the API token (or a session
 * from /login) and only enqueues a job through the producer client: the API never runs a stage.
 * Bodies, params and queries are validated with joi (400 with joi's message); an unknown server
 * is 404; each accepted change is written to audit.log with who asked.
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import Joi from 'joi';
import type { ProducerClient } from '../producers/client.js';
import { activationFacts, planActivation } from '../shared/activation.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { EVENT_TYPES, type EventLog, type EventType } from '../shared/events.js';
import type { InventoryWatcher } from '../shared/inventory.js';
import { createLogger } from '../shared/logger.js';
import type { InstallLayout } from '../shared/layout.js';
import { pypiVersionSchema } from '../shared/ecosystems/pep440.js';
import { firstError, serverNameSchema, versionSchema } from '../shared/schemas.js';
import type { StateStore } from '../shared/state.js';
import { compareSurfaces } from '../shared/surfaceStore.js';
import { actorOf, describeActor, type Authenticator } from './auth.js';
import type { ServerOverview } from './servers.js';

const serverName = serverNameSchema;
const version = versionSchema;
const reason = Joi.string().max(300);

const schemas = {
  serverParams: Joi.object({ name: serverName.required() }),
  eventsQuery: Joi.object({
    server: serverName,
    type: Joi.string().valid(...EVENT_TYPES),
    limit: Joi.number().integer().min(1).max(1000).default(50),
  }),
  check: Joi.object({ force: Joi.boolean(), reason }),
  checkAll: Joi.object({ force: Joi.boolean(), reason }),
  approve: Joi.object({ version: version.required() }),
  rollback: Joi.object({ version }),
  // A pypi server's versions are PEP 440 (docs/ARCHITECTURE.md "Ecosystems").
  approvePypi: Joi.object({ version: pypiVersionSchema.required() }),
  rollbackPypi: Joi.object({ version: pypiVersionSchema }),
  cleanup: Joi.object({ dryRun: Joi.boolean(), server: serverName }),
  diffQuery: Joi.object({ from: version, to: version }),
};

/** Validate or throw ValidationError carrying joi's message ("\"version\" is required"). */
export function validate<T>(schema: Joi.Schema, value: unknown, where: 'body' | 'query' | 'params'): T {
  const { value: result, error } = schema.validate(value ?? {}, { abortEarly: true, convert: where !== 'body' });
  if (error) {
    const first = firstError(error);
    throw new ValidationError(where === 'params' ? first.raw.replace(/^"name"/, 'server name') : first.raw, { path: first.path });
  }
  return result as T;
}

export interface ApiDeps {
  inventory: InventoryWatcher;
  state: StateStore;
  layout: InstallLayout;
  events: EventLog;
  producer: ProducerClient;
  servers: ServerOverview;
  auth: Authenticator;
  limits: { read: RequestHandler; mutation: RequestHandler };
}

type Handler = (req: Request, res: Response) => Promise<void>;

/** Express 5 forwards rejected promises to the error handler; this only fixes the types. */
const route =
  (handler: Handler): RequestHandler =>
  (req, res, next) =>
    handler(req, res).catch(next);

export function createApiRouter(deps: ApiDeps): Router {
  const router = Router();
  const requireToken = deps.auth.requireToken();
  const json = express.json({ limit: '16kb', strict: true, type: ['application/json', 'application/*+json'] });
  // The limiter runs before the token check, so guessing tokens is limited too.
  const mutation = [deps.limits.mutation, requireToken, json];

  const knownServer = (req: Request): string => {
    const { name } = validate<{ name: string }>(schemas.serverParams, req.params, 'params');
    if (!deps.inventory.server(name)) {
      throw new NotFoundError(`server "${name}" is not in the inventory`, { hint: 'GET /api/v1/servers lists the servers' });
    }
    return name;
  };

  const audit = (res: Response, action: string, facts: Record<string, unknown>) => {
    const actor = actorOf(res);
    createLogger('audit').info(`api ${action}`, { action, actor: actor.label, ip: actor.ip, ...facts });
  };

  router.get(
    '/servers',
    deps.limits.read,
    route(async (_req, res) => {
      res.type('application/json').send(await deps.servers.listJson());
    }),
  );

  router.get(
    '/servers/:name',
    deps.limits.read,
    route(async (req, res) => {
      const name = knownServer(req);
      res.json(await deps.servers.detail(name));
    }),
  );

  router.get(
    '/servers/:name/diff',
    deps.limits.read,
    route(async (req, res) => {
      const name = knownServer(req);
      const query = validate<{ from?: string; to?: string }>(schemas.diffQuery, req.query, 'query');
      res.json(await compareSurfaces(deps.layout, deps.state, name, query));
    }),
  );

  router.get(
    '/events',
    deps.limits.read,
    route(async (req, res) => {
      const query = validate<{ server?: string; type?: EventType; limit: number }>(schemas.eventsQuery, req.query, 'query');
      // Servers that left the inventory keep their events; anything else is a typo.
      if (query.server && !deps.inventory.server(query.server) && !(await deps.state.knownServers()).includes(query.server)) {
        throw new NotFoundError(`server "${query.server}" is not in the inventory`);
      }
      res.json({ events: await deps.events.list(query) });
    }),
  );

  router.post(
    '/servers/:name/check',
    ...mutation,
    route(async (req, res) => {
      const name = knownServer(req);
      const body = validate<{ force?: boolean; reason?: string }>(schemas.check, req.body, 'body');
      const who = describeActor(actorOf(res));
      const { jobId, queue } = await deps.producer.check(name, { force: body.force, reason: body.reason ?? `check requested by ${who}` });
      audit(res, 'check', { server: name, force: body.force ?? false, jobId });
      deps.servers.invalidate();
      res.status(202).json({ jobId, queue });
    }),
  );

  router.post(
    '/checks',
    ...mutation,
    route(async (req, res) => {
      const body = validate<{ force?: boolean; reason?: string }>(schemas.checkAll, req.body, 'body');
      const names = [...deps.inventory.inventory.servers.keys()];
      const who = describeActor(actorOf(res));
      const results = await deps.producer.checkAll(names, { force: body.force, reason: body.reason ?? `check-all requested by ${who}` });
      const jobIds = results.map((result) => result.jobId);
      audit(res, 'check-all', { servers: names.length, force: body.force ?? false });
      deps.servers.invalidate();
      res.status(202).json({ jobIds, queue: 'check' });
    }),
  );

  router.post(
    '/servers/:name/approve',
    ...mutation,
    route(async (req, res) => {
      const name = knownServer(req);
      const ecosystem = deps.inventory.server(name)?.ecosystem;
      const body = validate<{ version: string }>(ecosystem === 'pypi' ? schemas.approvePypi : schemas.approve, req.body, 'body');
      const plan = planActivation(
        { server: name, action: 'approve', version: body.version },
        await activationFacts(deps.state, deps.layout, name),
      );
      if (plan.kind === 'unchanged') throw new ConflictError(`${name} ${plan.target} is already the active version`);
      const { jobId, queue } = await deps.producer.approve(name, body.version, describeActor(actorOf(res)), ecosystem);
      audit(res, 'approve', { server: name, version: body.version, jobId });
      deps.servers.invalidate();
      res.status(202).json({ jobId, queue });
    }),
  );

  router.post(
    '/servers/:name/rollback',
    ...mutation,
    route(async (req, res) => {
      const name = knownServer(req);
      const ecosystem = deps.inventory.server(name)?.ecosystem;
      const body = validate<{ version?: string }>(ecosystem === 'pypi' ? schemas.rollbackPypi : schemas.rollback, req.body, 'body');
      const facts = await activationFacts(deps.state, deps.layout, name);
      const plan = planActivation({ server: name, action: 'rollback', version: body.version }, facts);
      if (plan.kind === 'unchanged') throw new ConflictError(`${name} ${plan.target} is already the active version`);
      const { jobId, queue } = await deps.producer.rollback(name, {
        version: body.version,
        requestedBy: describeActor(actorOf(res)),
        ...(ecosystem ? { ecosystem } : {}),
      });
      audit(res, 'rollback', { server: name, from: facts.current, version: plan.target, jobId });
      deps.servers.invalidate();
      res.status(202).json({ jobId, queue });
    }),
  );

  router.post(
    '/cleanup',
    ...mutation,
    route(async (req, res) => {
      const body = validate<{ dryRun?: boolean; server?: string }>(schemas.cleanup, req.body, 'body');
      if (body.server && !deps.inventory.server(body.server)) throw new NotFoundError(`server "${body.server}" is not in the inventory`);
      const { jobId, queue } = await deps.producer.cleanup({ ...body, requestedBy: describeActor(actorOf(res)) });
      audit(res, 'cleanup', { dryRun: body.dryRun ?? false, server: body.server, jobId });
      res.status(202).json({ jobId, queue });
    }),
  );

  router.use((req, _res, next) => {
    next(new NotFoundError(`no such endpoint: ${req.method} ${req.baseUrl}${req.path}`, { hint: 'see the HTTP table in the README' }));
  });
  return router;
}
