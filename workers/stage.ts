/*
 * stage: turn a verified tarball from the backup store into $MCP_SERVERS_PATH/<name>/versions/<v>
 * (the steps live in workers/staging/: tarball.ts, package.ts, npmInstall.ts, version.ts), then
 * add the activate job of its chain (activation: auto, and the gates let it through: the surface
 * gate, workers/staging/surfaceGate.ts, and the source-repository gate, workers/staging/sourceGate.ts)
 * or leave the version waiting for approval.
 */
import { enqueue, type StageJobData, type StageResult } from '../shared/queues.js';
import { nextState, startState } from '../shared/stateMachine.js';
import type { SurfaceGateAction } from '../shared/surface.js';
import type { WorkerContext } from './context.js';
import { measureServerDisk, serverSettings } from './context.js';
import { sourceGate } from './staging/sourceGate.js';
import { surfaceGate } from './staging/surfaceGate.js';
import { stageVersion } from './staging/version.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export function createStageWorker(context: WorkerContext) {
  return createPipelineWorker('stage', context, execStageJob, { lockDurationMs: 120_000 });
}

export async function execStageJob(job: JobLike<StageJobData>, context: WorkerContext): Promise<StageResult> {
  const { server, version, chain } = job.data;
  const settings = serverSettings(context, server);
  await context.state.update(server, { state: startState('stage'), package: settings.package });
  const started = performance.now();
  const staged = await stageVersion(context, {
    server,
    package: job.data.package,
    version,
    integrity: job.data.integrity,
    jobId: job.id ?? chain,
    settings,
    ...(job.data.provenance ? { provenance: job.data.provenance } : {}),
  });
  if (!staged.reused) await context.metrics.observeStageDuration((performance.now() - started) / 1000);
  const smokeTest = staged.record.smokeTest;
  const { current } = await context.state.get(server);
  await context.events.publish({
    type: 'update.staged',
    server,
    version,
    from: current,
    jobId: job.id,
    reason: job.data.reason,
    details: {
      toolCount: smokeTest?.toolCount,
      serverName: smokeTest?.serverName,
      smokeTestSkipped: smokeTest?.skipped,
      reused: staged.reused,
    },
  });
  const gate = combineGates([
    await surfaceGate(context, settings, { server, version, jobId: job.id, reason: job.data.reason }),
    await sourceGate(context, settings, { server, version, provenance: job.data.provenance }),
  ]);
  const next = settings.activation === 'auto' && gate.action === 'auto' ? 'activate' : 'awaiting-approval';
  const result: StageResult = { version, dir: staged.dir, toolCount: smokeTest?.toolCount, reused: staged.reused, next, chain };

  if (next === 'activate') {
    // Its activate job measures the server's bytes on disk (one walk of its tree per update).
    await Promise.all([
      context.state.update(server, { lastError: null, gate: null }),
      enqueue(context.queues, 'activate', {
        server,
        chain,
        action: 'activate',
        version,
        ...(job.data.ecosystem ? { ecosystem: job.data.ecosystem } : {}),
        ...(job.data.reason ? { reason: job.data.reason } : {}),
        ...(job.data.force ? { force: true } : {}),
      }),
    ]);
  } else {
    await context.state.update(server, {
      state: nextState('staging', { step: 'stage', event: 'done', next }),
      staged: version,
      gate: gate.reason ?? null,
      lastError: null,
      disk: staged.reused ? undefined : await measureServerDisk(context, server),
    });
    await context.events.publish({
      type: 'update.awaiting-approval',
      server,
      version,
      from: current,
      jobId: job.id,
      reason: gate.reason ?? job.data.reason,
      ...(gate.reason
        ? { details: { gate: gate.reason, surfaceHash: staged.record.smokeTest?.surfaceHash, provenance: job.data.provenance } }
        : {}),
    });
  }
  return result;
}

/** One gate path: the version waits when any gate holds it, for all their reasons. */
function combineGates(gates: Array<{ action: SurfaceGateAction; reason?: string }>): { action: SurfaceGateAction; reason?: string } {
  const holding = gates.filter((gate) => gate.action === 'approve');
  if (holding.length === 0) return { action: 'auto' };
  const reasons = holding.map((gate) => gate.reason).filter((reason): reason is string => Boolean(reason));
  return { action: 'approve', ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}) };
}
