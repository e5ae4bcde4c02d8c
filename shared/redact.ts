/*
 * Secret redaction for everything that leaves the process: logs, job data shown in Bull Board,
 * API answers, events. Redacts by key name (token, password, _authToken, authorization, ...), by
 * value shape (credentials inside URLs, bearer tokens) and any literal secret registered at start.
 */
const SECRET_KEY = /(^|_|-|\b)(pass(word)?|secret|token|_?authtoken|auth|authorization|api[-_]?key|cookie|credentials?|private[-_]?key)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const URL_USER_ONLY = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]+)@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi;
const NPMRC_AUTH = /(_authToken|_auth|_password)\s*=\s*\S+/gi;
const QUERY_SECRET = /([?&](?:access_token|token|api_key|apikey|password|secret|sig)=)[^&#\s]+/gi;

export const REDACTED = '[REDACTED]';

/** By name; camelCase keys (apiToken, webhookSecret, registryToken) are tested as snake_case too. */
function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) || SECRET_KEY.test(key.replace(/([a-z0-9])([A-Z])/g, '$1_$2'));
}

const knownSecrets = new Set<string>();

/** Register literal secrets (API_TOKEN, REGISTRY_TOKEN, WEBHOOK_SECRET) to scrub wherever they appear. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 6) knownSecrets.add(secret);
}

export function redactString(text: string): string {
  let result = text
    .replace(URL_CREDENTIALS, `$1${REDACTED}@`)
    .replace(URL_USER_ONLY, `$1${REDACTED}@`)
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(NPMRC_AUTH, `$1=${REDACTED}`)
    .replace(QUERY_SECRET, `$1${REDACTED}`);
  for (const secret of knownSecrets) {
    if (result.includes(secret)) result = result.split(secret).join(REDACTED);
  }
  return result;
}

export function redactUrl(url: string): string {
  return redactString(url);
}

/** Deep copy of `value` with secrets replaced; safe on cycles and class instances like Error. */
export function redact<T>(value: T, seen = new WeakMap<object, unknown>()): T {
  if (typeof value === 'string') return redactString(value) as T;
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value) as T;
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(redact(item, seen));
    return copy as T;
  }
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const copy: Record<string | symbol, unknown> = {};
  seen.set(value, copy);
  if (value instanceof Error) {
    copy.name = value.name;
    copy.message = redactString(value.message);
    if (value.stack) copy.stack = redactString(value.stack);
  }
  for (const key of Reflect.ownKeys(value)) {
    const item = (value as Record<string | symbol, unknown>)[key];
    if (typeof key === 'string' && isSecretKey(key) && item !== undefined && item !== null && item !== '') {
      copy[key] = REDACTED;
    } else {
      copy[key] = redact(item, seen);
    }
  }
  return copy as T;
}
