/*
 * The pipeline contract (docs/ARCHITECTURE.md "Job contract"): for each queue its job data type,
 * its result type, its joi schema and its job-id function, and the one internal way to enqueue
 * (validate, then add under the contract's id). Flags such as `force` travel in the job data;
 * nothing ever parses a job id.
 *
 * Chains: check starts a chain for one server and version; download, stage and the activate that
 * follows a stage share the chain's id (`data.chain`), one job per queue. A chain id is
 * `<server>@<version>` for the first chain of a version and `<server>@<version>#<run>` for any
 * later one (forced, or after an earlier chain of that version ended), so repeated checks add
 * nothing while a chain is alive and a dead chain never swallows a new one.
 */
import crypto from 'node:crypto';
import type { DefaultJobOptions, JobsOptions, Queue } from 'bullmq';
import Joi from 'joi';
import { pypiVersionSchema } from './ecosystems/pep440.js';
import { ValidationError } from './errors.js';
import type { Ecosystem } from './inventory.js';
import type { SmokeTestRecord } from './layout.js';
import type { ProvenanceSource } from './provenance.js';
import type { RetentionPlan } from './retention.js';
import { actorSchema, firstError, reasonSchema, serverNameSchema, strongIntegritySchema, versionSchema } from './schemas.js';

export const QUEUE_NAMES = ['check', 'download', 'stage', 'activate', 'cleanup', 'webhook'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** The pipeline queues in order (webhook delivery is a side queue). */
export const PIPELINE_QUEUES = ['check', 'download', 'stage', 'activate', 'cleanup'] as const satisfies readonly QueueName[];

/** The queues one chain runs through after its check, in order. */
export const CHAIN_QUEUES = ['download', 'stage', 'activate'] as const satisfies readonly QueueName[];
export type ChainQueue = (typeof CHAIN_QUEUES)[number];

export type ActivateAction = 'activate' | 'approve' | 'rollback';

// ---------------------------------------------------------------------------------------------
// Job data

/** Public payload of `check`: other services may enqueue it directly. */
export interface CheckJobData {
  server: string;
  /** Try versions that failed before, and start a new chain even if one of this version ran. */
  force?: boolean;
  reason?: string;
}

interface ChainJobData {
  server: string;
  /** The chain this job belongs to; also its job id. */
  chain: string;
  version: string;
  reason?: string;
  /** The chain was started by a forced check. */
  force?: boolean;
}

export interface DownloadJobData extends ChainJobData {
  /** Absent: npm. pypi: `version` is PEP 440 and `tarball` the chosen file's URL (docs/ARCHITECTURE.md "Ecosystems"). */
  ecosystem?: Ecosystem;
  /** The chosen file's name (pypi: the wheel). */
  file?: string;
  package: string;
  /** The strongest single SRI hash the registry published for the tarball. */
  integrity: string;
  tarball: string;
  /** Where the version was built, when check verified its provenance (npm). */
  provenance?: ProvenanceSource;
}

export interface StageJobData extends ChainJobData {
  ecosystem?: Ecosystem;
  package: string;
  integrity: string;
  /** Passed on from download: recorded with the version, compared with the active version's. */
  provenance?: ProvenanceSource;
}

export interface ActivateJobData {
  server: string;
  /** Job id: the chain of an auto activation, or a request id of its own for approve/rollback. */
  chain: string;
  /** activate: after a stage (auto); approve: operator; rollback: operator. */
  action: ActivateAction;
  /** Absent: npm; says how `version` is spelled. */
  ecosystem?: Ecosystem;
  /** Required for activate and approve; a rollback without one goes to the previous version. */
  version?: string;
  reason?: string;
  /** Who asked (token fingerprint, IP, "cli:user"); for the audit log. */
  requestedBy?: string;
  force?: boolean;
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

// ---------------------------------------------------------------------------------------------
// Job results (what `waitFor` resolves to)

export interface CheckResult {
  server: string;
  current?: string;
  latest?: string;
  /** The version a chain runs for (started now or already running). */
  candidate?: string;
  summary: string;
  /** Id of the chain (its download job) started or found alive. */
  chain?: string;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  /** The verified tarball was already in the backup store. */
  cached: boolean;
  chain: string;
}

export interface StageResult {
  version: string;
  dir: string;
  toolCount?: number;
  /** versions/<version> already held this integrity; nothing was done. */
  reused: boolean;
  /** What happens next: an activate job of the same chain, or waiting for approval. */
  next: 'activate' | 'awaiting-approval';
  chain: string;
}

export interface ActivateResult {
  /** `unchanged`: the target already was the current version. */
  outcome: 'activated' | 'unchanged';
  server: string;
  action: ActivateAction;
  version: string;
  from?: string;
  /** The version directory was re-created from its backup tarball. */
  restaged: boolean;
  /** The post-activation check (absent when smoke tests are disabled or nothing changed). */
  smokeTest?: SmokeTestRecord;
}

export interface CleanupResult {
  dryRun: boolean;
  plan: RetentionPlan;
  /** Bytes actually deleted (0 in a dry run). */
  bytesFreed: number;
  /** What the plan's removals take on disk (what a real run would free). */
  bytesPlanned: number;
  /** Removals not done: the version became current/previous/staged meanwhile, or the server was busy. */
  skipped: Array<{ server: string; version?: string; reason: string }>;
}

export interface WebhookResult {
  status: number;
}

export interface JobResultByQueue {
  check: CheckResult;
  download: DownloadResult;
  stage: StageResult;
  activate: ActivateResult;
  cleanup: CleanupResult;
  webhook: WebhookResult;
}

// ---------------------------------------------------------------------------------------------
// Schemas

const chainIdSchema = Joi.string()
  .max(400)
  .pattern(/^[a-z0-9][a-z0-9-]{0,62}[@~][A-Za-z0-9.+#~-]+$/)
  .messages({
    'string.pattern.base': '{#label} must be a chain id such as memory@1.2.3',
  });
const packageName = Joi.string().max(214);
const serverName = serverNameSchema.required();

const ecosystemSchema = Joi.string().valid('npm', 'pypi');
/** Exact semver for npm, a normalized PEP 440 version for pypi. */
const ecosystemVersion = Joi.when('ecosystem', { is: 'pypi', then: pypiVersionSchema, otherwise: versionSchema });

const sourceText = Joi.string().max(500);
/** A verified provenance source (shared/provenance.ts) as check found it. */
const provenanceSchema = Joi.object<ProvenanceSource>({
  repository: Joi.string()
    .max(300)
    .pattern(/^[a-z0-9.:-]+\/[a-z0-9_.-]+\/[a-z0-9_.-]+$/)
    .required()
    .messages({ 'string.pattern.base': '{#label} must be a source repository such as github.com/owner/repo' }),
  commit: sourceText,
  workflow: sourceText,
  ref: sourceText,
  builder: sourceText,
  issuer: sourceText,
  predicateType: sourceText.required(),
});

const chainFields = {
  server: serverName,
  chain: chainIdSchema.required(),
  ecosystem: ecosystemSchema,
  version: ecosystemVersion.required(),
  reason: reasonSchema,
  force: Joi.boolean(),
};

export const jobSchemas: { [Q in QueueName]: Joi.ObjectSchema<JobDataByQueue[Q]> } = {
  check: Joi.object<CheckJobData>({
    server: serverName,
    force: Joi.boolean(),
    reason: reasonSchema,
  }),
  download: Joi.object<DownloadJobData>({
    ...chainFields,
    file: Joi.string()
      .max(300)
      .pattern(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/)
      .messages({ 'string.pattern.base': '{#label} must be a file name' }),
    package: packageName.required(),
    integrity: strongIntegritySchema.required(),
    tarball: Joi.string()
      .uri({ scheme: ['http', 'https'] })
      .required(),
    provenance: provenanceSchema,
  }),
  stage: Joi.object<StageJobData>({
    ...chainFields,
    package: packageName.required(),
    integrity: strongIntegritySchema.required(),
    provenance: provenanceSchema,
  }),
  activate: Joi.object<ActivateJobData>({
    server: serverName,
    chain: chainIdSchema.required(),
    action: Joi.string().valid('activate', 'approve', 'rollback').required(),
    ecosystem: ecosystemSchema,
    version: ecosystemVersion.when('action', { is: Joi.valid('activate', 'approve'), then: Joi.required() }),
    reason: reasonSchema,
    requestedBy: actorSchema,
    force: Joi.boolean(),
  }),
  cleanup: Joi.object<CleanupJobData>({
    dryRun: Joi.boolean(),
    server: serverNameSchema,
    reason: reasonSchema,
    requestedBy: actorSchema,
  }),
  webhook: Joi.object<WebhookJobData>({
    url: Joi.string()
      .uri({ scheme: ['http', 'https'] })
      .required(),
    event: Joi.object().required(),
  }),
};

/** Validate a job payload; throws ValidationError naming the bad field. */
export function validateJobData<Q extends QueueName>(queue: Q, data: unknown): JobDataByQueue[Q] {
  const { value, error } = jobSchemas[queue].validate(data, { abortEarly: true, stripUnknown: false, convert: false });
  if (error) {
    const first = firstError(error);
    throw new ValidationError(`invalid ${queue} job data: ${first.raw}`, {
      path: first.path,
      hint: `send a payload of the form documented for the ${queue} queue (docs/ARCHITECTURE.md "Job contract")`,
    });
  }
  return value as JobDataByQueue[Q];
}

// ---------------------------------------------------------------------------------------------
// Job ids

function runToken(): string {
  return `${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;
}

/** The first chain of a version; later chains add a run token (`memory@1.2.3#lx2k9a1b2c3`). */
export function chainId(server: string, version: string, fresh = false): string {
  return fresh ? `${server}@${version}#${runToken()}` : `${server}@${version}`;
}

/** An operator's approve or rollback: a chain of its own (`memory~rollback~lx2k9a1b2c3`). */
export function requestChainId(server: string, action: Exclude<ActivateAction, 'activate'>): string {
  return `${server}~${action}~${runToken()}`;
}

/** The job id under which each queue adds a job with this data. */
export function jobIdFor<Q extends QueueName>(queue: Q, data: JobDataByQueue[Q]): string | undefined {
  switch (queue) {
    case 'download':
    case 'stage':
    case 'activate':
      return (data as ChainJobData).chain;
    case 'cleanup': {
      const { dryRun, server } = data as CleanupJobData;
      return `cleanup-${dryRun ? 'dry-run-' : ''}${server ?? 'all'}-${runToken()}`;
    }
    // check: one waiting and at most one running per server, by deduplication (checkJobOptions).
    default:
      return undefined;
  }
}

/** Checks are deduplicated per server: one waiting and at most one running. */
export function checkJobOptions(server: string): JobsOptions {
  return { deduplication: { id: `check-${server}`, keepLastIfActive: true } };
}

function addOptions<Q extends QueueName>(queue: Q, data: JobDataByQueue[Q]): JobsOptions {
  if (queue === 'check') return checkJobOptions((data as CheckJobData).server);
  const jobId = jobIdFor(queue, data);
  return jobId ? { jobId } : {};
}

/** The queues the contract adds to (a QueueSet, or the part of one a caller has). */
export type ContractQueues = { [Q in QueueName]: Queue<JobDataByQueue[Q], JobResultByQueue[Q]> };

/** The one internal way to add a job: validate the payload, then add it under the contract's id. */
export async function enqueue<Q extends QueueName>(
  queues: Pick<ContractQueues, Q>,
  queue: Q,
  data: JobDataByQueue[Q],
  extra: Pick<JobsOptions, 'delay' | 'priority'> = {},
) {
  const payload = validateJobData(queue, data);
  const target = queues[queue] as unknown as Queue;
  return target.add(queue, payload, { ...addOptions(queue, payload), ...extra });
}

/** Many checks in one round trip (check all). */
export async function enqueueChecks(queues: Pick<ContractQueues, 'check'>, items: CheckJobData[]) {
  const bulk = items.map((item) => {
    const data = validateJobData('check', item);
    return { name: 'check', data, opts: checkJobOptions(data.server) };
  });
  return (queues.check as unknown as Queue).addBulk(bulk);
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
