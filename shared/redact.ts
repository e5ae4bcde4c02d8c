/*
 * Secret redaction for everything that leaves the process: logs, job data shown in Bull Board,
 * API answers, events, webhooks. Redacts by key name (token, password, _authToken,
 * authorization, ...), by value shape (credentials inside URLs, bearer tokens, well-known token
 * formats) and any literal registered as a secret: the service's own secrets (config), every
 * smokeTest.env value and secret-looking smokeTest argument (inventory), webhook URLs (whole).
 */
const SECRET_KEY = /(^|_|-|\b)(pass(word)?|secret|token|_?authtoken|auth|authorization|api[-_]?key|cookie|credentials?|private[-_]?key)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const URL_USER_ONLY = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]+)@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi;
const NPMRC_AUTH = /(_authToken|_auth|_password)\s*=\s*\S+/gi;
const QUERY_SECRET = /([?&](?:access_token|token|api_key|apikey|password|secret|sig)=)([^&#\s]+)/gi;
/**
 * Token formats that are secret wherever they appear: GitHub, GitLab, npm, Slack, AWS access key
 * ids, Google API keys, `sk-`/`sk_live_`-style API keys (OpenAI, Stripe, Anthropic...), JWTs.
 */
const TOKEN_SHAPES = [
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g,
  /\bglpat-[A-Za-z0-9_-]{16,}/g,
  /\bnpm_[A-Za-z0-9]{30,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bAIza[0-9A-Za-z_-]{30,}/g,
  /\b[sr]k[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9_-]{16,}/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
];

/**
 * What every rule above needs to find in a text before it can match (their triggers, case
 * ignored): most strings that pass through (names, versions, times, plain messages) have none,
 * and one scan then replaces thirteen.
 */
const ANY_SHAPE =
  /:\/\/|\b(?:bearer|basic)\s|_auth|_password|[?&](?:access_token|token|api_key|apikey|password|secret|sig)=|gh[pousr]_|github_pat_|glpat-|npm_|xox[abposr]-|AKIA|AIza|[sr]k[-_]|eyJ/i;

export const REDACTED = '[REDACTED]';

/** Literals shorter than this are not registered: scrubbing "1" or "true" everywhere would mangle every message. */
export const MIN_SECRET_LENGTH = 6;

/** By name; camelCase keys (apiToken, webhookSecret, registryToken) are tested as snake_case too. */
function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) || SECRET_KEY.test(key.replace(/([a-z0-9])([A-Z])/g, '$1_$2'));
}

/** Literal secret -> what replaces it (REDACTED, or the redacted form of a webhook URL). */
const knownSecrets = new Map<string, string>();
/** One alternation of every known secret, longest first; rebuilt after a registration. */
let knownPattern: RegExp | undefined;
/** Files that hold secrets (API_TOKEN_FILE...): the smoke-test sandbox hides them. */
const knownSecretFiles = new Set<string>();

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function remember(secret: string, replacement: string): void {
  if (knownSecrets.get(secret) === replacement) return;
  knownSecrets.set(secret, replacement);
  knownPattern = undefined;
}

/** Register a literal secret (API_TOKEN, REGISTRY_TOKEN, a smokeTest.env value) to scrub wherever it appears. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= MIN_SECRET_LENGTH) remember(secret, REDACTED);
}

/**
 * Slack, Discord and most chat webhooks carry their secret in the path: only the scheme and host
 * of a webhook URL are ever shown ("https://hooks.example/[REDACTED]").
 */
export function redactWebhookUrl(url: string): string {
  try {
    return `${new URL(url).origin}/${REDACTED}`;
  } catch {
    return REDACTED;
  }
}

/** Register a webhook URL: wherever it appears it is replaced whole by its redacted form. */
export function registerWebhookUrl(url: string): void {
  remember(url, redactWebhookUrl(url));
  // The same URL without its trailing slash, as some messages print it.
  if (url.endsWith('/') && url.length > 1) remember(url.slice(0, -1), redactWebhookUrl(url));
}

export function registerSecretFile(file: string): void {
  knownSecretFiles.add(file);
}

/** Files registered as holding secrets. */
export function secretFiles(): string[] {
  return [...knownSecretFiles];
}

function literalPattern(): RegExp | undefined {
  if (knownSecrets.size === 0) return undefined;
  knownPattern ??= new RegExp(
    [...knownSecrets.keys()]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join('|'),
    'g',
  );
  return knownPattern;
}

export function redactString(text: string): string {
  // Registered literals first: a webhook URL must go whole before the URL rules cut it up.
  const literals = literalPattern();
  let result = literals ? text.replace(literals, (match) => knownSecrets.get(match) ?? REDACTED) : text;
  if (!ANY_SHAPE.test(result)) return result;
  result = result
    .replace(URL_CREDENTIALS, `$1${REDACTED}@`)
    .replace(URL_USER_ONLY, `$1${REDACTED}@`)
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(NPMRC_AUTH, `$1=${REDACTED}`)
    .replace(QUERY_SECRET, `$1${REDACTED}`);
  for (const shape of TOKEN_SHAPES) result = result.replace(shape, REDACTED);
  return result;
}

export function redactUrl(url: string): string {
  return redactString(url);
}

/** Flag or variable names whose value is a secret: --token, --api-key, DB_PASSWORD=, --client-secret. */
const SECRET_NAME =
  /(^|[-_.])(pass(word|wd)?|pwd|secret|token|auth|credentials?|(api|access|private|secret|license)?[-_]?key|apikey|dsn|cookie)$/i;
const FLAG = /^--?([A-Za-z0-9][A-Za-z0-9_.-]*)$/;
const ASSIGNMENT = /^(--?)?([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/s;
/** A long opaque value (no path or URL separators, letters and digits mixed) reads as a key. */
const OPAQUE = /^[A-Za-z0-9_+=-]{32,}$/;

function looksOpaque(value: string): boolean {
  return OPAQUE.test(value) && /[A-Za-z]/.test(value) && /[0-9]/.test(value);
}

/** The secret parts of one argument on its own (no look at its neighbours). */
function secretsInArgument(arg: string): string[] {
  const found: string[] = [];
  const assignment = ASSIGNMENT.exec(arg);
  if (assignment && assignment[3] && (SECRET_NAME.test(assignment[2]!) || looksOpaque(assignment[3]))) found.push(assignment[3]);
  for (const match of arg.matchAll(URL_CREDENTIALS)) found.push(match[3]!);
  for (const match of arg.matchAll(QUERY_SECRET)) found.push(match[2]!);
  for (const shape of TOKEN_SHAPES) for (const match of arg.matchAll(shape)) found.push(match[0]);
  if (found.length === 0 && looksOpaque(arg)) found.push(arg);
  return found;
}

/**
 * The secret values inside command-line arguments: the value of a secret-named flag
 * (`--token ghp_…`, `--api-key=…`, `DB_PASSWORD=…`), the password of a URL
 * (`postgres://user:pw@host/db`), query secrets, well-known token formats and long opaque keys.
 */
export function secretArguments(args: readonly string[]): string[] {
  const found = new Set<string>();
  args.forEach((arg, index) => {
    for (const secret of secretsInArgument(arg)) found.add(secret);
    const flag = FLAG.exec(arg);
    const next = args[index + 1];
    if (flag && SECRET_NAME.test(flag[1]!) && next !== undefined && !next.startsWith('-')) found.add(next);
  });
  return [...found].filter((secret) => secret.length > 0);
}

/** The arguments as they may be shown: every secret value of `secretArguments` replaced. */
export function redactArguments(args: readonly string[]): string[] {
  const secrets = secretArguments(args).sort((a, b) => b.length - a.length);
  return args.map((arg) => {
    if (secrets.includes(arg)) return REDACTED;
    let shown = arg;
    // A short secret (a one-letter URL password) is not replaced inside other text, where it would
    // mangle every occurrence of its letters; its URL form is redacted whole by redactString.
    for (const secret of secrets)
      if (secret.length >= MIN_SECRET_LENGTH && shown.includes(secret)) shown = shown.split(secret).join(REDACTED);
    return redactString(shown);
  });
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
