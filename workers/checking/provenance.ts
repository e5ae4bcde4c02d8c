/*
 * The check's provenance-attestation step (docs/ARCHITECTURE.md "Provenance attestations"): for
 * the version the policy chose, read its attestations document from the registry, verify the
 * SLSA provenance bundle (shared/sigstore.ts) and apply `provenance` and the inventory's
 * `repository` (shared/provenance.ts). A refused version goes through check's unusable-version
 * path like a bad registry signature: failed once, loudly, and skipped after; the check then
 * tries the next version the policy allows. The verified source travels with the chain to stage,
 * which records it and gates a change of source repository.
 */
import { describeError, MCPError } from '../../shared/errors.js';
import type { ServerSettings } from '../../shared/inventory.js';
import {
  attestationRefusal,
  expectRepository,
  isProvenancePredicate,
  type AttestationOutcome,
  type ProvenanceSource,
} from '../../shared/provenance.js';
import type { Packument } from '../../shared/registry.js';
import type { WorkerContext } from '../context.js';

export interface ProvenanceCheck {
  /** Verify `version`'s provenance: why it may not be used, or undefined. */
  judge(version: string): Promise<string | undefined>;
  /** The verified source of a judged version. */
  source(version: string): ProvenanceSource | undefined;
  /** Count the outcomes (provenance_total) and log what `warn` let through. */
  record(): Promise<void>;
}

/** `dist.attestations.url` when the version advertises SLSA provenance. */
function attestationsUrl(packument: Packument, version: string): string | undefined {
  const attestations = packument.versions[version]?.dist?.attestations as
    { url?: unknown; provenance?: { predicateType?: unknown } } | undefined;
  if (!attestations || typeof attestations.url !== 'string') return undefined;
  return isProvenancePredicate(attestations.provenance?.predicateType) ? attestations.url : undefined;
}

export function checkProvenance(context: WorkerContext, settings: ServerSettings, packument: Packument): ProvenanceCheck {
  const mode = settings.provenance;
  const outcomes = new Map<string, AttestationOutcome>();
  const judgeOne = async (version: string): Promise<AttestationOutcome> => {
    const label = `${packument.name}@${version}`;
    const url = attestationsUrl(packument, version);
    if (!url) return { result: 'no-attestation', message: `${label} carries no provenance attestation` };
    let attestations: Awaited<ReturnType<WorkerContext['registry']['attestations']>>;
    try {
      attestations = await context.registry.attestations(url, label);
    } catch (error) {
      // An outage is retried under require; what the registry cannot give is the version's fault.
      if (mode === 'require' && error instanceof MCPError && error.retryable) throw error;
      const result = error instanceof MCPError && !error.retryable ? 'attestation-invalid' : 'attestation-unverified';
      return { result, message: `${label}: its provenance could not be read (${describeError(error)})` };
    }
    const provenance = attestations.find((entry) => isProvenancePredicate(entry.predicateType));
    if (!provenance) return { result: 'attestation-invalid', message: `${label}: its attestations hold no SLSA provenance` };
    const integrity = packument.versions[version]?.dist?.integrity;
    const outcome = await context.provenance.verify({ name: packument.name, version, integrity }, provenance.bundle);
    return expectRepository(outcome, settings.repository, label);
  };
  return {
    async judge(version) {
      if (mode === 'off') return undefined;
      const outcome = await judgeOne(version);
      outcomes.set(version, outcome);
      return attestationRefusal(mode, outcome);
    },
    source: (version) => outcomes.get(version)?.source,
    async record() {
      for (const [version, outcome] of outcomes) {
        await context.metrics.increment('provenance_total', [settings.name, outcome.result]);
        if (outcome.result !== 'attested' && !attestationRefusal(mode, outcome)) {
          context.log.automation.warn(`${settings.name}: ${outcome.message} (provenance: ${mode})`, { server: settings.name, version });
        }
      }
    },
  };
}
