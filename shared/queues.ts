/*
 * Queue names (public: other services enqueue `check` directly), job payload types with their joi
 * schemas (validated by producers and again by workers), and the job options every queue uses.
 */
import Joi from 'joi';
import type { DefaultJobOptions } from 'bullmq';
import { ValidationError } from './errors.js';

export const QUEUE_NAMES = ['check', 'download', 'stage', 'activate', 'cleanup', 'webhook'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** The pipeline queues in order (webhook delivery is a side queue). */
export const PIPELINE_QUEUES = ['check', 'download', 'stage', 'activate', 'cleanup'] as const satisfies readonly QueueName[];

export const SERVER_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const optionalServerName = Joi.string().pattern(SERVER_NAME_PATTERN).messages({
  'string.pattern.base': '{#label} must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit',
});
const serverName = optionalServerName.required();
const version = Joi.string().max(256).pattern(/^[0-9A-Za-z.+-]+$/).messages({
  'string.pattern.base': '{#label} must be a semver version such as 1.2.3',
});
const integrity = Joi.string().pattern(/^sha(256|384|512)-[A-Za-z0-9+/=]+$/).messages({
  'string.pattern.base': '{#label} must be an SRI string such as sha512-…',
});
const reason = Joi.string().max(500);

/** Public payload of `check`. */
export interface CheckJobData {
  server: string;
  force?: boolean;
  reason?: string;
}

export interface DownloadJobData {
  server: string;
  package: string;
  version: string;
  integrity: string;
  tarball: string;
  reason?: string;
}

export interface StageJobData {
  server: string;
  package: string;
  version: string;
  integrity: string;
  reason?: string;
  /** Activate right after staging even with `activation: manual` (rollback to a cleaned-up version). */
  activateAfter?: ActivateJobData['action'];
}

export interface ActivateJobData {
  server: string;
  /** activate: after a stage (auto); approve: operator; rollback: operator or post-activation failure. */
  action: 'activate' | 'approve' | 'rollback';
  version?: string;
  reason?: string;
  /** Who asked (token fingerprint, IP, "scheduler"); for the audit log. */
  requestedBy?: string;
}

export interface CleanupJobData {
  dryRun?: boolean;
  server?: string;
  reason?: string;
  requestedBy?: string;
}

export interface WebhookJobData {
  url: string;
  event: Record<string, unknown>;
}

export interface JobDataByQueue {
  check: CheckJobData;
  download: DownloadJobData;
  stage: StageJobData;
  activate: ActivateJobData;
  cleanup: CleanupJobData;
  webhook: WebhookJobData;
}

export const jobSchemas: { [Q in QueueName]: Joi.ObjectSchema<JobDataByQueue[Q]> } = {
  check: Joi.object<CheckJobData>({
    server: serverName,
    force: Joi.boolean(),
    reason,
  }),
  download: Joi.object<DownloadJobData>({
    server: serverName,
    package: Joi.string().max(214).required(),
    version: version.required(),
    integrity: integrity.required(),
    tarball: Joi.string().uri({ scheme: ['http', 'https'] }).required(),
    reason,
  }),
  stage: Joi.object<StageJobData>({
    server: serverName,
    package: Joi.string().max(214).required(),
    version: version.required(),
    integrity: integrity.required(),
    reason,
    activateAfter: Joi.string().valid('activate', 'approve', 'rollback'),
  }),
  activate: Joi.object<ActivateJobData>({
    server: serverName,
    action: Joi.string().valid('activate', 'approve', 'rollback').required(),
    version: version.when('action', { is: Joi.valid('activate', 'approve'), then: Joi.required() }),
    reason,
    requestedBy: Joi.string().max(200),
  }),
  cleanup: Joi.object<CleanupJobData>({
    dryRun: Joi.boolean(),
    server: optionalServerName,
    reason,
    requestedBy: Joi.string().max(200),
  }),
  webhook: Joi.object<WebhookJobData>({
    url: Joi.string().uri({ scheme: ['http', 'https'] }).required(),
    event: Joi.object().required(),
  }),
};

/** Validate a job payload; throws ValidationError naming the bad field. */
export function validateJobData<Q extends QueueName>(queue: Q, data: unknown): JobDataByQueue[Q] {
  const { value, error } = jobSchemas[queue].validate(data, { abortEarly: true, stripUnknown: false, convert: false });
  if (error) {
    const detail = error.details[0]!;
    throw new ValidationError(`invalid ${queue} job data: ${detail.message}`, {
      path: detail.path.join('.'),
      hint: `send a payload of the form documented for the ${queue} queue`,
    });
  }
  return value as JobDataByQueue[Q];
}

/** Options every job gets; attempts come from MAX_RETRIES, the first retry delay from RETRY_BACKOFF. */
export function defaultJobOptions(maxRetries: number, backoffMs = 1_000): DefaultJobOptions {
  return {
    attempts: maxRetries,
    backoff: { type: 'exponential', delay: backoffMs, jitter: 0.5 },
    removeOnComplete: { age: 24 * 3600, count: 1_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 5_000 },
  };
}

/** Job id that makes a step idempotent per server and version ("memory@1.2.3"). */
export function versionJobId(server: string, version: string): string {
  return `${server}@${version}`;
}

/** Checks are deduplicated per server: one waiting and at most one running. */
export function checkJobOptions(server: string) {
  return { deduplication: { id: `check-${server}`, keepLastIfActive: true } };
}
