/*
 * Errors of mcp-updater. Every failure carries a stable `code` (like pacote's EINTEGRITY) and a
 * `hint` that tells the reader what to do. `isRetryable` is the one place that decides whether
 * trying again can help; workers turn everything else into BullMQ's UnrecoverableError.
 */

export interface MCPErrorOptions {
  hint?: string;
  cause?: unknown;
  retryable?: boolean;
  /** The cause belongs to the version itself (its bytes, its package, its behaviour): checks skip it until forced. */
  versionFault?: boolean;
  /** Extra facts for logs and API answers (never secrets). */
  details?: Record<string, unknown>;
}

export class MCPError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;
  /** Explicit override of the retry decision; undefined = decided by `isRetryable`. */
  readonly retryable?: boolean;
  readonly versionFault?: boolean;

  constructor(code: string, message: string, options: MCPErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
    this.retryable = options.retryable;
    this.versionFault = options.versionFault;
  }

  /** "message: hint" — what a person reads in a log line, the CLI or a failed job. */
  override toString(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

/** Bad input: API payloads, job payloads, CLI arguments. Never retryable. */
export class ValidationError extends MCPError {
  constructor(message: string, options: MCPErrorOptions & { path?: string } = {}) {
    super('EVALIDATION', message, { ...options, retryable: false });
    this.path = options.path;
  }
  readonly path?: string;
}

/** Bad environment or inventory. Start-up stops with exit code 78 (EX_CONFIG). */
export class ConfigurationError extends MCPError {
  readonly path?: string;
  constructor(message: string, options: MCPErrorOptions & { path?: string } = {}) {
    super('ECONFIG', message, { ...options, retryable: false });
    this.path = options.path;
  }
}

/** The registry answered badly or not at all. Retryable unless the answer was final (404, 401...). */
export class RegistryError extends MCPError {
  constructor(code: string, message: string, options: MCPErrorOptions = {}) {
    super(code, message, options);
  }
}

/** Downloaded bytes do not match the published SRI integrity. Never retryable. */
export class IntegrityError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('EINTEGRITY', message, { ...options, retryable: false });
  }
}

/** Extraction, dependency installation or the on-disk layout failed. */
export class StagingError extends MCPError {}

/** The package refused to act as an MCP server (no handshake, no tools/list, crash, timeout). */
export class SmokeTestError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('ESMOKETEST', message, { ...options, retryable: options.retryable ?? false });
  }
}

/** Another process holds the per-server activation lock. Retryable. */
export class LockError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('ELOCKED', message, { ...options, retryable: true });
  }
}

/** A request that conflicts with the current state (approve a version that is not staged...). */
export class ConflictError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('ECONFLICT', message, { ...options, retryable: false });
  }
}

export class NotFoundError extends MCPError {
  constructor(message: string, options: MCPErrorOptions = {}) {
    super('ENOTFOUND', message, { ...options, retryable: false });
  }
}

/** Node/network error codes after which the same request may well succeed. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTFOUND_DNS',
  'ERR_SOCKET_TIMEOUT',
  'UND_ERR_SOCKET',
  'FETCH_ERROR',
  'ERR_STREAM_PREMATURE_CLOSE',
  'EBUSY',
  'EAGAIN',
  'ELOCKED',
  'ETARGET_RETRY',
  'EINVALIDRESPONSE',
]);

/** File-system and programming errors that the same attempt would hit again. */
const PERMANENT_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);

/** The single decision "can trying again help?" used by workers and `retry`. */
export function isRetryable(error: unknown): boolean {
  // BullMQ's UnrecoverableError, known by name: this module is loaded by every CLI command, BullMQ is not.
  if (error instanceof Error && error.name === 'UnrecoverableError') return false;
  if (error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError) return false;
  if (typeof (error as { code?: unknown })?.code === 'string' && PERMANENT_CODES.has((error as { code: string }).code)) return false;
  if (error instanceof MCPError && error.retryable !== undefined) return error.retryable;
  if (error instanceof ValidationError || error instanceof ConfigurationError) return false;
  const err = error as { code?: unknown; statusCode?: unknown; status?: unknown; type?: unknown };
  const status = Number(err?.statusCode ?? err?.status);
  if (Number.isFinite(status) && status > 0) return status >= 500 || status === 408 || status === 429;
  if (typeof err?.code === 'string') {
    if (err.code === 'EINTEGRITY') return false;
    if (TRANSIENT_CODES.has(err.code)) return true;
    if (err.code.startsWith('E') && /^E[0-9]{3}$/.test(err.code)) {
      const httpStatus = Number(err.code.slice(1));
      return httpStatus >= 500 || httpStatus === 408 || httpStatus === 429;
    }
  }
  if (err?.type === 'system' || err?.type === 'request-timeout' || err?.type === 'body-timeout') return true;
  // JSON parse failures of a truncated registry answer are transient.
  if (error instanceof SyntaxError) return true;
  return error instanceof MCPError ? false : true;
}

/**
 * Codes whose cause is the version itself: its digest, where the registry says it lives, its
 * archive, its package.json, its bin, its smoke test. Everything else (an outage, a full disk, a
 * lock, a permission) is not the version's fault, and the next check tries the version again.
 */
const VERSION_FAULT_CODES = new Set([
  'EINTEGRITY',
  'EWEAKINTEGRITY',
  'ETARBALLHOST',
  'EBADTARBALLURL',
  'ETOOBIG',
  'EPACKAGETOOBIG',
  'ETOOMANYFILES',
  'ETARBALL',
  'EABSPATH',
  'EDEVICE',
  'EDUPLICATE',
  'EENTRYTYPE',
  'ELINKESCAPE',
  'ELINKLOOP',
  'ELINKTARGET',
  'ELINKTHROUGH',
  'EOUTSIDEROOT',
  'EPATHDEPTH',
  'EPATHTRAVERSAL',
  'ESETID',
  'EPKGJSON',
  'EPKGMISMATCH',
  'ENOBIN',
  'EBINESCAPE',
  'EBINMISSING',
  'ESMOKETEST',
  'EPOSTACTIVATION',
  'EBADVERSION',
]);

/** Does this failure block the version for good (until a forced check)? */
export function isVersionFault(error: unknown): boolean {
  if (error instanceof MCPError && error.versionFault !== undefined) return error.versionFault;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && VERSION_FAULT_CODES.has(code);
}

/** Short "CODE: message: hint" text for state records, events and API answers. */
export function describeError(error: unknown): string {
  if (error instanceof MCPError) return `${error.code}: ${error.toString()}`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.startsWith(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

export interface RetryOptions {
  /** Total attempts including the first. */
  attempts?: number;
  /** First delay; doubles each time. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called before waiting; useful for logs. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  shouldRetry?: (error: unknown) => boolean;
}

const RETRY_DEFAULTS = { attempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 } as const;

/** Exponential backoff with equal jitter: a random delay in [ceiling/2, ceiling], ceiling = min(max, base·2^(attempt-1)). */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Retry helper for calls made outside BullMQ (BullMQ jobs use the queue's own backoff). */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  // `??` rather than spread: an explicit `attempts: undefined` must not replace the default (endless loop).
  const attempts = options.attempts ?? RETRY_DEFAULTS.attempts;
  const baseDelayMs = options.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs;
  const maxDelayMs = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
  const shouldRetry = options.shouldRetry ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= attempts || !shouldRetry(error)) throw error;
      const delayMs = backoffDelay(attempt, baseDelayMs, maxDelayMs);
      options.onRetry?.(error, attempt, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
