/*
 * The surface gate (docs/ARCHITECTURE.md "Surface gate"): after a stage, compare the staged
 * version's MCP surface with the active version's and decide, by the server's `surfaceChange`
 * settings, whether it may activate on its own or waits for approval. A change is announced once
 * (`update.surface-changed`, surface_changes_total), with the counts, the names and the first lines
 * of each changed description.
 */
import type { ServerSettings } from '../../shared/inventory.js';
import type { InstallLayout, SmokeTestRecord } from '../../shared/layout.js';
import type { SmokeTestResult } from '../../shared/smokeTest.js';
import {
  describeDiff,
  diffSurfaces,
  summarizeDiff,
  surfaceGateAction,
  type SurfaceDiff,
  type SurfaceGateAction,
} from '../../shared/surface.js';
import { readSurface, writeSurface } from '../../shared/surfaceStore.js';
import type { WorkerContext } from '../context.js';

/** Write the recorded surface beside version.json; what stays in version.json is its hash. */
export async function storeSurface(layout: InstallLayout, dir: string, result: SmokeTestResult): Promise<SmokeTestRecord> {
  const { surface, ...record } = result;
  if (!surface) return record;
  await writeSurface(layout, dir, surface);
  return { ...record, surfaceHash: surface.hash };
}

export interface SurfaceGateDecision {
  action: SurfaceGateAction;
  /** Why the version waits ("surface change breaking: removed tool add"), when it does. */
  reason?: string;
  diff?: SurfaceDiff;
  /** The active version compared with. */
  from?: string;
}

/**
 * Nothing to compare (a first install, smoke tests off, an active version staged before surfaces
 * were recorded) lets the version through: the gate holds back changes, and there is no change
 * to see. The activation setting still applies.
 */
export async function surfaceGate(
  context: WorkerContext,
  settings: ServerSettings,
  staged: { server: string; version: string; jobId?: string; reason?: string },
): Promise<SurfaceGateDecision> {
  const { layout } = context;
  const { server, version } = staged;
  const from = await layout.currentVersion(server);
  if (!from || from === version) return { action: 'auto' };
  const [before, after] = await Promise.all([readSurface(layout, server, from), readSurface(layout, server, version)]);
  if (!before || !after) {
    context.log.automation.info(`${server} ${version}: surface not compared (${before ? version : from} has no surface record)`, {
      server,
      version,
    });
    return { action: 'auto', from };
  }
  const diff = diffSurfaces(before, after);
  if (diff.class === 'unchanged') return { action: 'auto', diff, from };
  const action = surfaceGateAction(diff.class, settings.surfaceChange);
  const reason = action === 'approve' ? `surface change ${describeDiff(diff)} (surfaceChange.${diff.class}: approve)` : undefined;

  // A later check re-runs the chain of a version still waiting: announce its change only once.
  const record = await context.state.get(server);
  const announced = record.staged === version && reason !== undefined && record.gate?.startsWith(reason) === true;
  if (!announced) {
    await context.metrics.increment('surface_changes_total', [server, diff.class]);
    await context.events.publish({
      type: 'update.surface-changed',
      server,
      version,
      from,
      jobId: staged.jobId,
      reason: staged.reason,
      details: { ...summarizeDiff(diff), gated: action === 'approve', fromHash: diff.fromHash, toHash: diff.toHash },
    });
  }
  return { action, reason, diff, from };
}
