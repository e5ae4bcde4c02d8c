/*
 * Who is asking, and by which name. The dashboard answers only its own names (HOST, the loopback
 * names, ALLOWED_HOSTS): a DNS-rebinding page reaches it under the attacker's name and is
 * refused. Mutating endpoints and Bull Board take `Authorization: Bearer $API_TOKEN` (compared
 * in constant time on equal-length hashes) or a session cookie from the /login form. The cookie
 * holds a random session id kept in Redis with a TTL, never the token. A request that rides on
 * the cookie must also come from one of our own origins (Origin or Referer naming an allowed
 * host on the port the request came to), because browsers attach cookies to cross-site form
 * posts too.
 */
import crypto from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { appKey } from '../shared/redis.js';
import { ForbiddenError, MisdirectedError, readOnlyError, UnauthorizedError } from './errors.js';

export const SESSION_COOKIE = 'mcpu_session';
export const SESSION_TTL_SECONDS = 12 * 3600;
const SESSION_ID_PATTERN = /^[a-f0-9]{64}$/;

export interface Actor {
  via: 'token' | 'session';
  /** First 8 hex digits of sha256(token): names the token without revealing it. */
  fingerprint: string;
  ip: string;
  /** `token:ab12cd34` or `session:ab12cd34`. */
  label: string;
}

export function tokenFingerprint(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex').slice(0, 8);
}

/** Constant-time comparison; hashing first makes both sides the same length. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** "token:ab12cd34 from 127.0.0.1": what jobs and audit lines record as requestedBy. */
export function describeActor(actor: Actor): string {
  return `${actor.label} from ${actor.ip}`;
}

/** The cookie's value; undefined when absent or not decodable (`%E0%A4%A`): no session, not an error. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) {
      try {
        return decodeURIComponent(part.slice(index + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
/** Addresses that mean "every interface": no client uses them as a name. */
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '[::]']);

/** `Host`-style `name[:port]` (or `[v6]:port`) -> lower-case name without brackets or trailing dot, and port. */
export function parseHost(value: string): { name: string; port: string } | undefined {
  try {
    const url = new URL(`http://${value}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
    return {
      name: url.hostname
        .replace(/^\[|\]$/g, '')
        .replace(/\.$/, '')
        .toLowerCase(),
      port: url.port,
    };
  } catch {
    return undefined;
  }
}

/** The names the dashboard answers to: HOST (unless a wildcard address), the loopback names, ALLOWED_HOSTS. */
export class HostAllowlist {
  readonly names: ReadonlySet<string>;

  constructor(config: Pick<Config, 'host' | 'allowedHosts'>) {
    const names = new Set([...LOOPBACK_NAMES, ...config.allowedHosts.map((host) => host.toLowerCase().replace(/\.$/, ''))]);
    if (!WILDCARD_ADDRESSES.has(config.host)) names.add(config.host.toLowerCase().replace(/^\[|\]$/g, ''));
    this.names = names;
  }

  allows(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * 421 for a Host that is not one of ours (DNS rebinding), 400 for a missing or malformed one.
   * Probes (/health, /ready) are mounted before it: orchestrators call them by address.
   */
  guard(): RequestHandler {
    return (req, _res, next) => {
      const header = req.get('host');
      const host = header === undefined ? undefined : parseHost(header);
      if (!host) {
        next(
          new MisdirectedError('EBADHOST', header === undefined ? 'the request has no Host header' : 'the Host header is not a host name'),
        );
        return;
      }
      if (!this.allows(host.name)) {
        next(
          new MisdirectedError('EHOST', `this dashboard does not answer to the name "${host.name}"`, {
            hint: `reach it by ${[...this.names].join(', ')}, or add the name to ALLOWED_HOSTS`,
          }),
        );
        return;
      }
      next();
    };
  }
}

/** The Host header's port, or the scheme's default when it names none. */
function portOf(port: string, protocol: string): string {
  return port || (protocol === 'https:' ? '443' : '80');
}

/**
 * Origin (or, lacking it, Referer) is one of our allowed names, on the port the request came
 * to. It is compared with the allowed names, never with Host alone: under DNS rebinding Host is
 * the attacker's name too.
 */
export function isSameOrigin(req: Request): boolean {
  const source = req.get('origin') ?? req.get('referer');
  const host = parseHost(req.get('host') ?? '');
  const allowlist = req.app.locals.hostAllowlist as HostAllowlist | undefined;
  if (!source || !host || source === 'null' || !allowlist) return false;
  let origin: URL;
  try {
    origin = new URL(source);
  } catch {
    return false;
  }
  const name = origin.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    (origin.protocol === 'http:' || origin.protocol === 'https:')
    && allowlist.allows(name)
    && portOf(origin.port, origin.protocol) === portOf(host.port, origin.protocol)
  );
}

interface SessionRecord {
  fingerprint: string;
  ip: string;
  createdAt: string;
}

/** Login sessions in Redis under QUEUE_PREFIX, so every dashboard process honours them. */
export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly config: Pick<Config, 'queuePrefix'>,
    readonly ttlSeconds = SESSION_TTL_SECONDS,
  ) {}

  private key(id: string): string {
    return appKey(this.config, 'session', id);
  }

  async create(fingerprint: string, ip: string): Promise<string> {
    const id = crypto.randomBytes(32).toString('hex');
    const record: SessionRecord = { fingerprint, ip, createdAt: new Date().toISOString() };
    await this.redis.set(this.key(id), JSON.stringify(record), 'EX', this.ttlSeconds);
    return id;
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    if (!SESSION_ID_PATTERN.test(id)) return undefined;
    const value = await this.redis.get(this.key(id));
    return value ? (JSON.parse(value) as SessionRecord) : undefined;
  }

  async destroy(id: string): Promise<void> {
    if (SESSION_ID_PATTERN.test(id)) await this.redis.del(this.key(id));
  }
}

export interface Identity {
  actor?: Actor;
  /** An Authorization header was sent and was wrong: never fall back to the cookie then. */
  badToken: boolean;
}

export class Authenticator {
  private readonly fingerprint?: string;

  constructor(
    private readonly config: Pick<Config, 'apiToken'>,
    readonly sessions: SessionStore,
  ) {
    this.fingerprint = config.apiToken ? tokenFingerprint(config.apiToken) : undefined;
  }

  get readOnly(): boolean {
    return !this.config.apiToken;
  }

  /** Does this token open the API? */
  accepts(token: string): boolean {
    return this.config.apiToken !== undefined && tokensEqual(token, this.config.apiToken);
  }

  /** Who sent the request (memoised on res.locals); no Redis call without a session cookie. */
  async identify(req: Request, res: Response): Promise<Identity> {
    const memo = res.locals.identity as Identity | undefined;
    if (memo) return memo;
    const identity = await this.resolve(req);
    res.locals.identity = identity;
    return identity;
  }

  private async resolve(req: Request): Promise<Identity> {
    if (!this.config.apiToken || !this.fingerprint) return { badToken: false };
    const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const authorization = req.get('authorization');
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match || !this.accepts(match[1]!)) return { badToken: true };
      return { badToken: false, actor: { via: 'token', fingerprint: this.fingerprint, ip, label: `token:${this.fingerprint}` } };
    }
    const sessionId = readCookie(req.get('cookie'), SESSION_COOKIE);
    if (!sessionId) return { badToken: false };
    const session = await this.sessions.get(sessionId);
    // A session made with an earlier API_TOKEN dies with that token.
    if (!session || session.fingerprint !== this.fingerprint) return { badToken: false };
    return { badToken: false, actor: { via: 'session', fingerprint: this.fingerprint, ip, label: `session:${this.fingerprint}` } };
  }

  /**
   * Guard for anything that changes state: 403 EREADONLY without API_TOKEN, 401 without valid
   * credentials, 403 EORIGIN for a cookie request from another origin. Sets res.locals.actor.
   */
  requireToken(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      if (this.readOnly) {
        next(readOnlyError());
        return;
      }
      this.identify(req, res).then((identity) => {
        if (!identity.actor) {
          next(new UnauthorizedError(identity.badToken ? 'the bearer token is not valid' : 'authentication required'));
          return;
        }
        if (identity.actor.via === 'session' && !isReadRequest(req) && !isSameOrigin(req)) {
          next(
            new ForbiddenError(
              'EORIGIN',
              'cross-origin request refused: a cookie-authenticated change must carry an Origin (or Referer) header of this host',
            ),
          );
          return;
        }
        res.locals.actor = identity.actor;
        next();
      }, next);
    };
  }
}

export function isReadRequest(req: Request): boolean {
  return req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
}

/** The authenticated actor that requireToken put on the response. */
export function actorOf(res: Response): Actor {
  const actor = res.locals.actor as Actor | undefined;
  if (!actor) throw new UnauthorizedError('authentication required');
  return actor;
}
