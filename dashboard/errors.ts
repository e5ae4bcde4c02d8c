/*
 * How the HTTP side answers failures: always `{error: {code, message}}` with the status that fits
 * the error's stable code (README "HTTP API": 400 bad input, 401 no/bad token, 404 unknown server,
 * 429 over the limit, 503 Redis down). Messages pass through redact before they leave.
 */
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { describeError, MCPError, ValidationError, type MCPErrorOptions } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { redactString } from '../shared/redact.js';
import { RedisUnavailableError } from '../shared/redis.js';
import { renderErrorPage } from './views.js';

/** No or wrong credentials. */
export class UnauthorizedError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('EUNAUTHORIZED', message, { hint: 'send `Authorization: Bearer $API_TOKEN` or log in at /login', ...options, retryable: false });
  }
}

/** Authenticated (or not needed) but not allowed: read-only API, foreign Origin. */
export class ForbiddenError extends MCPError {
  constructor(code: 'EREADONLY' | 'EORIGIN' | 'EFORBIDDEN', message: string, options: MCPErrorOptions = {}) {
    super(code, message, { ...options, retryable: false });
  }
}

/** Not one of the dashboard's names (421 Misdirected Request), or no usable Host at all (400). */
export class MisdirectedError extends MCPError {
  constructor(code: 'EHOST' | 'EBADHOST', message: string, options: MCPErrorOptions = {}) {
    super(code, message, { ...options, retryable: false });
  }
}

export const READ_ONLY_MESSAGE = 'API_TOKEN is not set: the API is read-only';

export function readOnlyError(): ForbiddenError {
  return new ForbiddenError('EREADONLY', READ_ONLY_MESSAGE, { hint: 'set API_TOKEN (e.g. `openssl rand -hex 32`) and restart' });
}

const STATUS_BY_CODE: Record<string, number> = {
  EVALIDATION: 400,
  EBADHOST: 400,
  EUNAUTHORIZED: 401,
  EREADONLY: 403,
  EORIGIN: 403,
  EFORBIDDEN: 403,
  ENOTFOUND: 404,
  ECONFLICT: 409,
  ETOOLARGE: 413,
  EHOST: 421,
  ERATELIMIT: 429,
  EREDIS: 503,
};

export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

export function errorBody(code: string, message: string, hint?: string): ErrorBody {
  return { error: { code, message: redactString(message), ...(hint ? { hint: redactString(hint) } : {}) } };
}

export function sendError(res: Response, status: number, code: string, message: string, hint?: string): void {
  res.status(status).json(errorBody(code, message, hint));
}

/** Does this request want an HTML page rather than JSON (a person's browser on a page route)? */
export function wantsHtml(req: Request): boolean {
  return !req.path.startsWith('/api/') && req.accepts(['json', 'html']) === 'html';
}

/** body-parser's own errors carry a `type` and a `status`. */
function bodyParserError(error: unknown): MCPError | undefined {
  const type = (error as { type?: unknown })?.type;
  if (type === 'entity.parse.failed') return new ValidationError('request body is not valid JSON');
  if (type === 'entity.too.large') return new MCPError('ETOOLARGE', 'request body is too large');
  if ((typeof type === 'string' && type.startsWith('encoding.')) || type === 'charset.unsupported') {
    return new ValidationError(`request body cannot be read (${(error as Error).message})`);
  }
  return undefined;
}

export interface ErrorHandlerDeps {
  config: Pick<Config, 'redisUrl'>;
  redis: Redis;
}

/** The last middleware: maps any error to its status and the JSON (or HTML) error body. */
export function errorHandler(deps: ErrorHandlerDeps): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    let mapped = bodyParserError(error) ?? (error instanceof MCPError ? error : undefined);
    // ioredis fails fast while disconnected ("Stream isn't writeable..."): that is Redis being down.
    if (!mapped && deps.redis.status !== 'ready') mapped = new RedisUnavailableError(deps.config.redisUrl, error);
    const status = mapped ? (STATUS_BY_CODE[mapped.code] ?? 500) : 500;
    if (status >= 500) {
      createLogger('monitoring').error(`${req.method} ${req.path} failed: ${describeError(error)}`, {
        status,
        method: req.method,
        path: req.path,
      });
    }
    const code = mapped && status !== 500 ? mapped.code : 'EINTERNAL';
    const message = mapped && status !== 500 ? mapped.message : 'internal error; see monitoring.log';
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="mcp-updater"');
    if (status === 503) res.setHeader('Retry-After', '5');
    if (wantsHtml(req)) {
      res
        .status(status)
        .type('html')
        .send(renderErrorPage(status, redactString(message), res.locals.cspNonce as string | undefined));
      return;
    }
    sendError(res, status, code, message, status !== 500 ? mapped?.hint : undefined);
  };
}
