/*
 * The PyPI version scheme (docs/ARCHITECTURE.md "Ecosystems"): PEP 440 through
 * @renovatebot/pep440. A version mcp-updater installs is in normalized form, without an epoch
 * (`1!2.0`) or a local part (`1.0+abc`): those cannot name a directory safely and indexes do not
 * serve local versions.
 */
import pep440 from '@renovatebot/pep440';
import Joi from 'joi';
import type { Policy } from '../inventory.js';

/** What a normalized installable version may contain: digits, dots and PEP 440's lower-case tags. */
const SAFE_VERSION = /^[0-9][0-9a-z.]{0,127}$/;

/** The normalized form of `value` when it is an installable PEP 440 version, else undefined. */
export function normalizePypiVersion(value: string): string | undefined {
  const explained = pep440.explain(value);
  if (!explained || explained.epoch !== 0 || explained.local !== null) return undefined;
  const clean = pep440.clean(value);
  return clean !== null && SAFE_VERSION.test(clean) ? clean : undefined;
}

/** An exact, normalized PEP 440 version (what job payloads and directory names carry). */
export function isPypiVersion(value: string): boolean {
  return normalizePypiVersion(value) === value;
}

export function isPypiPrerelease(version: string): boolean {
  const explained = pep440.explain(version);
  return explained === null || explained.is_prerelease || explained.is_devrelease;
}

/** Oldest first. */
export function comparePypi(a: string, b: string): number {
  return pep440.compare(a, b);
}

/** Newest first. */
export function rcomparePypi(a: string, b: string): number {
  return pep440.rcompare(a, b);
}

export function gtPypi(a: string, b: string): boolean {
  return pep440.gt(a, b);
}

export function isPypiSpecifier(value: string): boolean {
  return pep440.validRange(value);
}

export function satisfiesPypi(version: string, specifier: string, prereleases = false): boolean {
  return pep440.satisfies(version, specifier, { prereleases });
}

/** The release segment padded to three numbers (`1` -> 1.0.0, `2026.10` -> 2026.10.0). */
function releaseOf(version: string): number[] {
  const release = pep440.explain(version)?.release ?? [];
  return [0, 1, 2].map((index) => release[index] ?? 0);
}

/**
 * How far the policy lets an update move, on release segments: patch keeps the first two, minor
 * the first, major anything. CalVer reads the same way (`2026.10.24`: minor keeps the year).
 */
export function pypiPolicyAllows(policy: Policy, current: string, version: string): boolean {
  const [fromMajor, fromMinor] = releaseOf(current);
  const [toMajor, toMinor] = releaseOf(version);
  switch (policy) {
    case 'pin':
      return false;
    case 'patch':
      return toMajor === fromMajor && toMinor === fromMinor;
    case 'minor':
      return toMajor === fromMajor;
    case 'major':
      return true;
  }
}

export const pypiVersionSchema = Joi.string()
  .max(128)
  .custom((value: string, helpers) => (isPypiVersion(value) ? value : helpers.error('version.pep440')))
  .messages({ 'version.pep440': '{#label} must be a normalized PEP 440 version such as 1.2.3 or 2.0rc1 (no epoch, no local part)' });
