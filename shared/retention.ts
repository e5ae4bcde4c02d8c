/*
 * What cleanup may delete: a pure decision over facts the cleanup worker gathers (installed
 * versions, staging leftovers, backup tarballs, history). Per server it keeps the current, the
 * previous and the staged version plus the newest `keep`; backups stay while a kept or recently
 * used version may need them to be re-staged, so a rollback after cleanup still works.
 */
import type { Ecosystem } from './inventory.js';
import { SEMVER_ORDER, versionOrder, type VersionOrder } from './versionOrder.js';

/** A staging directory or an unknown backup younger than this may belong to a running job. */
export const IN_FLIGHT_GRACE_MS = 60 * 60 * 1000;

/** How many distinct versions of the history beyond `keep` keep their backup tarball. */
export const BACKUP_HISTORY_EXTRA = 2;

export interface RetentionServer {
  name: string;
  /** Whose version scheme says which versions are the newest (npm when absent). */
  ecosystem?: Ecosystem;
  /** Versions kept on disk besides current, previous and staged (inventory `keep`). */
  keep: number;
  current?: string;
  previous?: string;
  /** Staged version awaiting approval. */
  staged?: string;
  installed: Array<{ version: string; stagedAt: number }>;
  /** Distinct versions from the history, newest first. */
  recentVersions: string[];
  /** version -> SRI integrity of every version known for this server. */
  integrities: Record<string, string>;
}

export interface RetentionInput {
  servers: RetentionServer[];
  /** Leftover staging directories (a crashed or running stage); `died`: its run's process is gone. */
  staging: Array<{ path: string; mtimeMs: number; died?: boolean }>;
  /** Backup tarballs; `integrity` is undefined when no history or version record names the file. */
  backups: Array<{ file: string; integrity?: string; mtimeMs: number }>;
  /** Integrities that belong to servers outside this plan (not in the inventory, or another scope): never removed. */
  protectedIntegrities?: string[];
  now: number;
  /** Default IN_FLIGHT_GRACE_MS. */
  graceMs?: number;
}

export type VersionKeepReason = 'current' | 'previous' | 'staged' | 'newest';
export type BackupKeepReason = 'kept-version' | 'recent-history' | 'protected' | 'in-flight';

export interface RetentionPlan {
  removeVersions: Array<{ server: string; version: string }>;
  removeStaging: string[];
  removeBackups: string[];
  kept: {
    versions: Array<{ server: string; version: string; reasons: VersionKeepReason[] }>;
    staging: string[];
    backups: Array<{ file: string; reason: BackupKeepReason }>;
  };
}

/**
 * Newest first by the ecosystem's version scheme (semver, or PEP 440 for pypi: 1.0.0.post1 after
 * 1.0.0, 1.10.0 after 1.9), versions it can read before the others, ties by stagedAt descending.
 */
export function compareInstalledNewestFirst(
  a: { version: string; stagedAt: number },
  b: { version: string; stagedAt: number },
  order: VersionOrder = SEMVER_ORDER,
): number {
  const validA = order.valid(a.version);
  const validB = order.valid(b.version);
  if (validA && validB) {
    const newer = order.compare(b.version, a.version);
    if (newer !== 0) return newer;
  } else if (validA || validB) {
    return validA ? -1 : 1;
  }
  return b.stagedAt - a.stagedAt;
}

/** SRI strings may list several hashes; the first one names the backup file. */
function primaryIntegrity(integrity: string): string {
  return integrity.trim().split(/\s+/)[0] ?? integrity;
}

export function retentionPlan(input: RetentionInput): RetentionPlan {
  const graceMs = input.graceMs ?? IN_FLIGHT_GRACE_MS;
  const plan: RetentionPlan = {
    removeVersions: [],
    removeStaging: [],
    removeBackups: [],
    kept: { versions: [], staging: [], backups: [] },
  };
  const keptIntegrities = new Set<string>();
  const historyIntegrities = new Set<string>();

  for (const server of input.servers) {
    const reasons = new Map<string, VersionKeepReason[]>();
    const keepFor = (version: string | undefined, reason: VersionKeepReason) => {
      if (!version) return;
      reasons.set(version, [...(reasons.get(version) ?? []), reason]);
    };
    keepFor(server.current, 'current');
    keepFor(server.previous, 'previous');
    keepFor(server.staged, 'staged');
    const order = versionOrder(server.ecosystem);
    const installed = [...server.installed].sort((a, b) => compareInstalledNewestFirst(a, b, order));
    for (const { version } of installed.slice(0, Math.max(0, server.keep))) keepFor(version, 'newest');

    const seen = new Set<string>();
    for (const { version } of installed) {
      if (seen.has(version)) continue;
      seen.add(version);
      const why = reasons.get(version);
      if (why) plan.kept.versions.push({ server: server.name, version, reasons: why });
      else plan.removeVersions.push({ server: server.name, version });
    }

    // Kept versions count even when their directory is gone (current/previous re-staged from backup).
    for (const version of reasons.keys()) {
      const integrity = server.integrities[version];
      if (integrity) keptIntegrities.add(primaryIntegrity(integrity));
    }
    const recent = [...new Set(server.recentVersions)].slice(0, Math.max(0, server.keep) + BACKUP_HISTORY_EXTRA);
    for (const version of recent) {
      const integrity = server.integrities[version];
      if (integrity) historyIntegrities.add(primaryIntegrity(integrity));
    }
  }

  for (const leftover of input.staging) {
    if (leftover.died || input.now - leftover.mtimeMs > graceMs) plan.removeStaging.push(leftover.path);
    else plan.kept.staging.push(leftover.path);
  }

  const protectedIntegrities = new Set((input.protectedIntegrities ?? []).map(primaryIntegrity));
  for (const backup of input.backups) {
    const integrity = backup.integrity ? primaryIntegrity(backup.integrity) : undefined;
    let reason: BackupKeepReason | undefined;
    if (integrity && keptIntegrities.has(integrity)) reason = 'kept-version';
    else if (integrity && historyIntegrities.has(integrity)) reason = 'recent-history';
    else if (integrity && protectedIntegrities.has(integrity)) reason = 'protected';
    else if (input.now - backup.mtimeMs <= graceMs) reason = 'in-flight';
    if (reason) plan.kept.backups.push({ file: backup.file, reason });
    else plan.removeBackups.push(backup.file);
  }
  return plan;
}
