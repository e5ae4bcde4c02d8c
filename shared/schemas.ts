/*
 * The schema kit: the joi pieces that config, the inventory, the job contract and the HTTP API
 * share, so a server name, a version, a cron expression or a timezone is judged the same way
 * everywhere, and the first joi error reads the same everywhere.
 */
import Joi from 'joi';
import semver from 'semver';
import { DIGEST_BYTES } from './integrity.js';
import { isTimezone, parseCron } from './schedule.js';

export const SERVER_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Names the install layout uses: `$MCP_SERVERS_PATH/bin` (launchers), `.staging` (the default
 * STAGING_DIR), and the names a server directory holds (`current`, `versions`, `history.json`,
 * the `.mcp-updater` meta directory). A server with one of them could name another part of the layout.
 */
export const RESERVED_SERVER_NAMES: readonly string[] = ['bin', 'current', 'versions', '.staging', 'history.json', '.mcp-updater'];

export const SERVER_NAME_RULE = 'must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit';

export const serverNameSchema = Joi.string()
  .pattern(SERVER_NAME_PATTERN)
  .invalid(...RESERVED_SERVER_NAMES)
  .messages({
    'string.pattern.base': `{#label} ${SERVER_NAME_RULE}`,
    'any.invalid': '{#label} is a name the install layout uses (bin, current, versions, …); choose another',
  });

/** An exact semver version as npm publishes it: no whitespace, no `v`, no range, not `.` or `..`. */
export function isExactVersion(value: string): boolean {
  return value.length <= 256 && semver.valid(value) === value;
}

export const versionSchema = Joi.string()
  .max(256)
  .custom((value: string, helpers) => (isExactVersion(value) ? value : helpers.error('version.exact')))
  .messages({ 'version.exact': '{#label} must be an exact semver version such as 1.2.3' });

/** A single SRI hash of a strong algorithm with a digest of its length (what check hands downstream; see shared/integrity.ts). */
export const strongIntegritySchema = Joi.string()
  .pattern(/^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$/)
  .custom((value: string, helpers) => {
    const [algorithm, digest] = value.split('-') as [string, string];
    return Buffer.from(digest, 'base64').length === DIGEST_BYTES[algorithm] ? value : helpers.error('integrity.length');
  })
  .messages({
    'string.pattern.base': '{#label} must be one SRI hash such as sha512-… (sha256, sha384 or sha512)',
    'integrity.length': "{#label} must hold a digest of its algorithm's length (sha256: 32, sha384: 48, sha512: 64 bytes, base64)",
  });

export const cronSchema = Joi.string().custom((value: string, helpers) => {
  try {
    parseCron(value);
    return value;
  } catch (error) {
    return helpers.message({ custom: `must be a valid cron expression (${(error as Error).message})` });
  }
});

export const timezoneSchema = Joi.string().custom((value: string, helpers) =>
  isTimezone(value) ? value : helpers.message({ custom: 'must be an IANA timezone such as UTC or Europe/Berlin' }),
);

export const reasonSchema = Joi.string().max(500);
export const actorSchema = Joi.string().max(200);

export interface FirstError {
  /** Dotted path of the bad key ("servers.memory.policy"), empty for the whole value. */
  path: string;
  /** joi's message without the leading label ("must be one of …"). */
  message: string;
  /** joi's message as it is ("\"version\" is required"). */
  raw: string;
}

/** Validate and return the value, or the first problem. */
export function validateWith<T>(
  schema: Joi.Schema,
  value: unknown,
  options: Joi.ValidationOptions = {},
): { value: T; error?: undefined } | { value?: undefined; error: FirstError } {
  const result = schema.validate(value, { abortEarly: true, ...options });
  if (!result.error) return { value: result.value as T };
  return { error: firstError(result.error) };
}

export function firstError(error: Joi.ValidationError): FirstError {
  const detail = error.details[0]!;
  const path = detail.path.join('.');
  return { path, message: detail.message.replace(/^"[^"]*" /, ''), raw: detail.message };
}
