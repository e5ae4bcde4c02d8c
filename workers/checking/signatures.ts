/*
 * The check's registry-signature step (docs/ARCHITECTURE.md "Registry signatures"): read the
 * registry's signing keys when the packument carries signatures (or `provenance: require`), judge
 * each version the policy would choose (shared/signatures.ts), and count the outcomes. A refused
 * version goes through check's unusable-version path: failed once, loudly, and skipped after.
 */
import type { ServerSettings } from '../../shared/inventory.js';
import type { Packument } from '../../shared/registry.js';
import { signatureRefusal, verifyRegistrySignatures, type RegistryKey, type SignatureOutcome } from '../../shared/signatures.js';
import type { WorkerContext } from '../context.js';

export interface SignatureCheck {
  /** For chooseCandidate: why this version may not be used, or undefined. */
  problem(version: string): string | undefined;
  /** Count the outcomes judged (provenance_total) and log the versions let through unverified. */
  record(): Promise<void>;
}

function hasSignatures(packument: Packument): boolean {
  return Object.values(packument.versions ?? {}).some(
    (entry) => Array.isArray(entry?.dist?.signatures) && entry.dist.signatures.length > 0,
  );
}

export async function checkSignatures(context: WorkerContext, settings: ServerSettings, packument: Packument): Promise<SignatureCheck> {
  const mode = settings.provenance;
  if (mode === 'off') return { problem: () => undefined, record: async () => undefined };
  let keys: RegistryKey[] | undefined;
  let keysError: string | undefined;
  if (mode === 'require' || hasSignatures(packument)) {
    try {
      keys = await context.registry.signingKeys();
    } catch (error) {
      // require: the check fails and is retried; warn: go on without them, and say so.
      if (mode === 'require') throw error;
      keysError = (error as Error).message;
    }
  }
  const outcomes = new Map<string, SignatureOutcome>();
  return {
    problem(version) {
      const entry = packument.versions[version];
      const signed = {
        name: packument.name,
        version,
        integrity: entry?.dist?.integrity,
        signatures: entry?.dist?.signatures,
        publishedAt: packument.time?.[version],
      };
      let outcome = verifyRegistrySignatures(signed, keys ?? []);
      if (!keys && outcome.result !== 'unsigned')
        outcome = {
          result: 'unverified',
          message: `${packument.name}@${version}: registry signature not verified (${keysError ?? 'no keys'})`,
        };
      outcomes.set(version, outcome);
      return signatureRefusal(mode, outcome);
    },
    async record() {
      for (const [version, outcome] of outcomes) {
        await context.metrics.increment('provenance_total', [settings.name, outcome.result]);
        if (outcome.result === 'unsigned' || outcome.result === 'unverified') {
          context.log.automation.warn(`${settings.name}: ${outcome.message} (provenance: ${mode})`, { server: settings.name, version });
        }
      }
    },
  };
}
