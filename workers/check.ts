/*
 * check: ask the registry what the server's package offers and decide (shared/policy.ts) whether
 * to move. Records latest, candidate and the check time. A candidate starts a chain (a download
 * job, docs/ARCHITECTURE.md "Job contract") unless a chain of that version is still alive; a
 * chain that ended without making the version current (a transient failure after its last
 * attempt, a version cleaned up) is replaced by a fresh one, so recovery needs no `--force`.
 * Versions whose registry data is unusable (a weak or malformed integrity, a tarball URL that
 * does not parse or points elsewhere, a version key that is not exact semver, a registry
 * signature that does not verify: workers/checking/signatures.ts) fail here, each once, with a
 * message naming what was wrong.
 * Checks are enqueued by producers/ (scheduler, client); `{server, force?, reason?}` is public.
 */
import { describeError, MCPError } from '../shared/errors.js';
import type { ServerSettings } from '../shared/inventory.js';
import { chooseCandidate, needsFullMetadata, type CandidateDecision } from '../shared/policy.js';
import { CHAIN_QUEUES, chainId, enqueue, type CheckJobData, type CheckResult } from '../shared/queues.js';
import type { ServerState } from '../shared/state.js';
import { nextState } from '../shared/stateMachine.js';
import { checkProvenance } from './checking/provenance.js';
import { checkSignatures } from './checking/signatures.js';
import type { WorkerContext } from './context.js';
import { serverSettings } from './context.js';
import { pypiDecider, type DecisionInput } from './checking/pypi.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export function createCheckWorker(context: WorkerContext) {
  return createPipelineWorker('check', context, execCheckJob);
}

/** Job states in which a chain's job will still run. */
const ALIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

export async function execCheckJob(job: JobLike<CheckJobData>, context: WorkerContext): Promise<CheckResult> {
  const { server, force } = job.data;
  const settings = serverSettings(context, server);
  const before = await context.state.get(server);
  const current = before.current ?? (await context.layout.currentVersion(server));
  const starting = nextState(before.state, { step: 'check', event: 'start' });
  // "checking" is written while the registry answers: one round trip less on every check.
  const [decide] = await Promise.all([
    settings.ecosystem === 'pypi' ? pypiDecider(context, settings) : npmDecider(context, settings),
    starting ? context.state.update(server, { state: starting, package: settings.package }) : undefined,
  ]);
  const now = context.now();
  const decision: CandidateDecision = await decide({
    current,
    now,
    exclude: force ? [] : before.failedVersions,
    hold: force ? undefined : before.hold,
  });
  const checkedAt = now.toISOString();
  const refused = await refuseUnusableVersions(context, job, decision, before.failedVersions);
  if (decision.error) {
    throw new MCPError(decision.error.code, decision.error.message, { retryable: false, hint: decision.error.hint });
  }
  if (refused.length > 0 && !decision.candidate) {
    // Nothing usable to move to: the check fails, naming every refused version.
    throw new MCPError('EBADVERSION', refused.map((entry) => entry.message).join('; '), {
      retryable: false,
      hint: "the registry's data for these versions is unusable; they are skipped from now on (a forced check tries them again)",
    });
  }

  // A forced check lifts a rollback's hold (docs/ARCHITECTURE.md "Activation").
  if (force && before.hold) await context.state.setHold(server, undefined);
  // A staged version waiting for approval is not staged again by every check; a forced check does.
  const awaiting = decision.candidate !== undefined && decision.candidate === before.staged && !force;
  if (awaiting) decision.summary = `${decision.candidate} is staged and waits for approval`;
  const result: CheckResult = { server, current, latest: decision.latest, summary: decision.summary };
  const chain = decision.candidate && !awaiting ? await chainFor(context, before, decision.candidate, Boolean(force)) : undefined;
  const self = starting ? 'checking' : before.state;
  const ending = nextState(self, { step: 'check', event: 'done', chain: chain !== undefined }, before.state);
  const recorded = context.state.update(server, {
    package: settings.package,
    current: current ?? null,
    latest: decision.latest ?? null,
    candidate: decision.allowed ?? null,
    lastCheck: checkedAt,
    lastCheckResult: decision.summary,
    ...(ending ? { state: ending } : {}),
    ...(chain?.started ? { chain: chain.id, chainVersion: decision.candidate } : {}),
  });
  if (!decision.candidate || !chain) {
    // The record and the metric leave in one write (the processors' connection auto-pipelines).
    await Promise.all([recorded, context.metrics.checked(server, decision.updateAvailable ? 'held-back' : 'up-to-date', now)]);
    return result;
  }
  await recorded;
  const candidate = decision.candidate;
  result.candidate = candidate;
  result.chain = chain.id;
  if (chain.started) {
    if (force) await context.state.clearFailedVersion(server, candidate);
    await context.events.publish({
      type: 'update.available',
      server,
      version: candidate,
      from: current,
      jobId: job.id,
      reason: job.data.reason,
      details: {
        latest: decision.latest,
        policy: settings.policy,
        chain: chain.id,
        ...(settings.ecosystem === 'pypi' ? { file: decision.usable?.file } : {}),
      },
    });
    const usable = decision.usable!;
    await enqueue(context.queues, 'download', {
      server,
      chain: chain.id,
      ...(settings.ecosystem === 'pypi' ? { ecosystem: 'pypi' as const, file: usable.file } : {}),
      package: settings.package,
      version: candidate,
      integrity: usable.integrity,
      tarball: usable.tarball,
      ...(usable.provenance ? { provenance: usable.provenance } : {}),
      ...(job.data.reason ? { reason: job.data.reason } : {}),
      ...(force ? { force: true } : {}),
    });
  }
  await context.metrics.checked(server, 'update', now);
  return result;
}

/**
 * The chain to follow for `version`: one still alive (waiting or running in any chain queue), or
 * a new one. The first chain of a version gets the plain id; a version whose earlier chain ended
 * (failed after its attempts on a transient cause, or completed without the version staying
 * current) gets a fresh one. A forced check always starts a fresh chain.
 */
async function chainFor(
  context: WorkerContext,
  record: Pick<ServerState, 'name' | 'chain' | 'chainVersion'>,
  version: string,
  force: boolean,
): Promise<{ id: string; started: boolean }> {
  const server = record.name;
  const plain = chainId(server, version);
  if (force) return { id: chainId(server, version, true), started: true };
  // The record read when this check started: only checks write the chain, one per server at a time.
  const ids = [plain, ...(record.chain && record.chainVersion === version && record.chain !== plain ? [record.chain] : [])];
  let plainUsed = false;
  for (const id of ids) {
    const states = await Promise.all(CHAIN_QUEUES.map((queue) => context.queues[queue].getJobState(id)));
    if (states.some((jobState) => ALIVE_STATES.has(jobState))) return { id, started: false };
    if (id === plain && states.some((jobState) => jobState !== 'unknown')) plainUsed = true;
  }
  return { id: plainUsed ? chainId(server, version, true) : plain, started: true };
}

/** Candidates whose provenance one check judges before it gives up on this check's registry data. */
const MAX_PROVENANCE_TRIES = 5;

/**
 * Ask the registry (and check its signatures), then decide over what it said. The chosen
 * version's provenance is verified last (it costs a request); a refused one is set aside and the
 * policy chooses again among the rest.
 */
async function npmDecider(context: WorkerContext, settings: ServerSettings): Promise<(input: DecisionInput) => Promise<CandidateDecision>> {
  const packument = await context.registry.packument(settings.package, needsFullMetadata(settings));
  const signatures = await checkSignatures(context, settings, packument);
  const provenance = checkProvenance(context, settings, packument);
  return async ({ current, now, exclude, hold }) => {
    const refused: CandidateDecision['unusable'] = [];
    let decision: CandidateDecision;
    for (;;) {
      decision = chooseCandidate({
        packument,
        current,
        settings,
        now,
        exclude: [...exclude, ...refused.map((entry) => entry.version)],
        hold,
        tarballProblem: (url) => tarballProblem(context, url),
        versionProblem: (version) => signatures.problem(version),
      });
      if (!decision.candidate) break;
      if (refused.length >= MAX_PROVENANCE_TRIES) {
        // The rest waits for the next check, which skips the refused ones.
        decision = {
          ...decision,
          candidate: undefined,
          usable: undefined,
          summary: `${refused.length} versions refused for their provenance`,
        };
        break;
      }
      const message = await provenance.judge(decision.candidate);
      if (!message) break;
      refused.push({ version: decision.candidate, message });
    }
    await signatures.record();
    await provenance.record();
    decision.unusable.push(...refused);
    // "Nothing allowed" because every candidate was refused: the refusals are the error.
    if (refused.length > 0 && !decision.candidate && decision.error?.code === 'ENOVERSION') decision = { ...decision, error: undefined };
    const source = decision.candidate ? provenance.source(decision.candidate) : undefined;
    if (source && decision.usable) decision.usable = { ...decision.usable, provenance: source };
    return decision;
  };
}

function tarballProblem(context: WorkerContext, url: string): string | undefined {
  try {
    context.registry.assertTarballHost(url);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

/**
 * Versions whose registry data cannot be used fail here, each once: the version goes on the
 * failed list. When the check still has a usable candidate, each refusal is also recorded on its
 * own (lastError, one `update.failed`, one metric); otherwise the check fails with all of them
 * through the one failure path.
 */
async function refuseUnusableVersions(
  context: WorkerContext,
  job: JobLike<CheckJobData>,
  decision: CandidateDecision,
  alreadyFailed: readonly string[],
): Promise<CandidateDecision['unusable']> {
  const { server } = job.data;
  const refused = decision.unusable.filter((entry) => !alreadyFailed.includes(entry.version));
  for (const { version, message } of refused) {
    await context.state.markFailedVersion(server, version);
    context.log.automation.warn(`${server}: refused ${version}: ${message}`, { server, version, jobId: job.id });
    if (!decision.candidate) continue;
    await context.state.update(server, { lastError: message });
    await context.events.publish({
      type: 'update.failed',
      server,
      version,
      jobId: job.id,
      reason: message,
      details: { step: 'check', kind: 'unusable-version' },
    });
    await context.metrics.increment('updates_total', [server, 'failed']);
  }
  return refused;
}
