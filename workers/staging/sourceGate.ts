/*
 * The source-repository gate (docs/ARCHITECTURE.md "Provenance attestations"): a version whose
 * verified provenance names another source repository than the active version's was built from
 * another repo than the one before it. Without an inventory `repository` (which check enforces
 * itself) such a version waits for approval beside the surface gate, with the reason in the
 * record's `gate`, and counts provenance_total{result="repository-changed"} once.
 */
import type { ServerSettings } from '../../shared/inventory.js';
import type { ProvenanceSource } from '../../shared/provenance.js';
import type { SurfaceGateAction } from '../../shared/surface.js';
import type { WorkerContext } from '../context.js';

export interface SourceGateDecision {
  action: SurfaceGateAction;
  reason?: string;
}

export async function sourceGate(
  context: WorkerContext,
  settings: ServerSettings,
  staged: { server: string; version: string; provenance?: ProvenanceSource },
): Promise<SourceGateDecision> {
  const { server, version, provenance } = staged;
  // An explicit repository was enforced by check; nothing verified, nothing to compare.
  if (settings.provenance === 'off' || settings.repository || !provenance) return { action: 'auto' };
  const from = await context.layout.currentVersion(server);
  if (!from || from === version) return { action: 'auto' };
  const before = (await context.layout.readVersionRecord(server, from).catch(() => undefined))?.provenance;
  if (!before || before.repository === provenance.repository) return { action: 'auto' };
  const reason = `source repository changed: ${from} was built from ${before.repository}, ${version} from ${provenance.repository}`;
  // A later check re-runs the chain of a version still waiting: count its change once.
  const record = await context.state.get(server);
  if (!(record.staged === version && record.gate?.includes(reason)))
    await context.metrics.increment('provenance_total', [server, 'repository-changed']);
  return { action: 'approve', reason };
}
