/*
 * How each ecosystem orders its versions (docs/ARCHITECTURE.md "Ecosystems", version scheme), for
 * the decisions that compare versions outside a check: a rollback's hold (shared/policy.ts) and
 * which installed versions are the newest (shared/retention.ts). semver for npm, PEP 440 for pypi
 * (`1.0.0 < 1.0.0.post1 < 1.10.0 < 2026.1.5`, `1.1` is a version).
 */
import semver from 'semver';
import { comparePypi, normalizePypiVersion } from './ecosystems/pep440.js';
import type { Ecosystem } from './inventory.js';

export interface VersionOrder {
  /** A version this scheme can compare. */
  valid(version: string): boolean;
  /** Negative when a is older than b, 0 when equal, positive when newer. */
  compare(a: string, b: string): number;
}

export const SEMVER_ORDER: VersionOrder = {
  valid: (version) => semver.valid(version) !== null,
  compare: (a, b) => semver.compare(a, b),
};

export const PEP440_ORDER: VersionOrder = {
  valid: (version) => normalizePypiVersion(version) !== undefined,
  compare: (a, b) => comparePypi(a, b),
};

export function versionOrder(ecosystem: Ecosystem | undefined): VersionOrder {
  return ecosystem === 'pypi' ? PEP440_ORDER : SEMVER_ORDER;
}
