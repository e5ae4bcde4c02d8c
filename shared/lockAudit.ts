/*
 * Is a resolved dependency tree (npm's package-lock.json) fit to install? Pure decisions, made
 * after npm resolved the tree (nothing executed, nothing extracted into place) and before
 * `npm ci` installs exactly that lock: every dependency comes from the registry (or a
 * TARBALL_HOSTS host) with an integrity, none is a git, file, link or URL spec (also in
 * overrides), and, when a minimum release age is set, every dependency version was published
 * longer ago than that — a version without a publish time counts as too young, as check counts
 * it for the package itself. Each refusal names the dependency and why.
 */
import semver from 'semver';
import { strongestIntegrity } from './integrity.js';
import type { Packument } from './registry.js';

export interface LockEntry {
  version?: unknown;
  resolved?: unknown;
  integrity?: unknown;
  link?: unknown;
  inBundle?: unknown;
  name?: unknown;
  dependencies?: unknown;
  optionalDependencies?: unknown;
  peerDependencies?: unknown;
}

export interface PackageLock {
  packages?: Record<string, LockEntry>;
}

export interface LockProblem {
  /** `name@version` (or `name@spec`) of the offending dependency, and where it sits in the tree. */
  dependency: string;
  /** Why it was refused, for people. */
  reason: string;
  /** The version's own fault (a hostile source), or a matter of time (too young). */
  kind: 'source' | 'too-young';
}

/** A dependency the registry serves: its publish time and dist are checked against the packument. */
export interface RegistryDependency {
  name: string;
  version: string;
  integrity: string;
  /** Where it sits in the tree (`node_modules/a/node_modules/b`). */
  location: string;
}

export interface LockAuditInput {
  lock: PackageLock;
  /** The server package: the one entry that may come from a file (the verified backup tarball). */
  topPackage: string;
  /** Does `resolved` (a `file:` spec, relative to the lock) name the verified backup tarball? */
  isBackupTarball: (resolved: string) => boolean;
  /** Why a tarball URL may not be used, or undefined when it may (registry host or TARBALL_HOSTS). */
  tarballProblem: (url: string) => string | undefined;
  /** The server package's `overrides` (npm applies a project's overrides; hostile ones are refused all the same). */
  overrides?: unknown;
}

const NON_REGISTRY_SPEC =
  /^(?:https?:|git\+|git:|github:|gitlab:|bitbucket:|gist:|file:|link:|workspace:|ssh:|[^@:/\s]+\/[^@:/\s]+(?:#.*)?$)/i;

/** Is this a dependency spec npm would fetch from somewhere other than the registry? */
export function nonRegistrySpec(spec: string): string | undefined {
  const trimmed = spec.trim();
  if (trimmed.startsWith('npm:')) return nonRegistrySpec(trimmed.slice(trimmed.indexOf('@', 5) + 1 || trimmed.length));
  if (!NON_REGISTRY_SPEC.test(trimmed)) return undefined;
  if (/^https?:/i.test(trimmed)) return 'a URL';
  if (/^(?:git\+|git:|ssh:|github:|gitlab:|bitbucket:|gist:)/i.test(trimmed) || /^[^@:/\s]+\/[^@:/\s]+/.test(trimmed))
    return 'a git repository';
  if (/^file:/i.test(trimmed)) return 'a local file or folder';
  if (/^link:/i.test(trimmed)) return 'a link to a local folder';
  return 'a workspace reference';
}

/** Hostile specs among a manifest's dependency maps and overrides (nested objects as npm allows). */
export function specProblems(owner: string, maps: Record<string, unknown>): LockProblem[] {
  const problems: LockProblem[] = [];
  const visit = (field: string, value: unknown, trail: string[]) => {
    if (typeof value === 'string') {
      const what = nonRegistrySpec(value);
      const name = trail.at(-1) === '.' ? trail.at(-2) : trail.at(-1);
      if (what) {
        problems.push({
          dependency: `${name ?? '?'}@${value}`,
          reason: `${owner} ${field === 'overrides' ? 'overrides' : 'depends on'} ${trail.join(' > ')} as ${what} (${JSON.stringify(value)}); only registry versions are installed`,
          kind: 'source',
        });
      }
      return;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, child] of Object.entries(value)) visit(field, child, [...trail, key]);
    }
  };
  for (const [field, value] of Object.entries(maps)) visit(field, value, []);
  return problems;
}

/** The package name of a lock location: the part after its last `node_modules/`. */
export function nameAt(location: string): string {
  const index = location.lastIndexOf('node_modules/');
  return index === -1 ? location : location.slice(index + 'node_modules/'.length);
}

/**
 * The structural audit: where every entry comes from. Returns the problems, and the registry
 * dependencies whose packuments must confirm their publish time and dist.
 */
export function auditLockEntries(input: LockAuditInput): { problems: LockProblem[]; registry: RegistryDependency[] } {
  const problems: LockProblem[] = [];
  const registry: RegistryDependency[] = [];
  const packages = input.lock.packages;
  if (!packages || typeof packages !== 'object') {
    return {
      problems: [
        { dependency: input.topPackage, reason: 'npm wrote no lock entries (package-lock.json has no "packages")', kind: 'source' },
      ],
      registry,
    };
  }
  if (input.overrides !== undefined) problems.push(...specProblems(input.topPackage, { overrides: input.overrides }));
  for (const [location, entry] of Object.entries(packages)) {
    if (location === '') continue;
    const name = typeof entry.name === 'string' ? entry.name : nameAt(location);
    const version = typeof entry.version === 'string' ? entry.version : undefined;
    const label = `${name}@${version ?? '?'}`;
    problems.push(
      ...specProblems(label, {
        dependencies: entry.dependencies,
        optionalDependencies: entry.optionalDependencies,
        peerDependencies: entry.peerDependencies,
      }),
    );
    if (entry.link === true) {
      problems.push({ dependency: label, reason: `${location} is a link to a folder outside the registry`, kind: 'source' });
      continue;
    }
    // Bundled dependencies come inside their parent's tarball, which is checked itself.
    if (entry.inBundle === true) continue;
    const resolved = typeof entry.resolved === 'string' ? entry.resolved : undefined;
    if (location === `node_modules/${input.topPackage}`) {
      if (!resolved || !input.isBackupTarball(resolved)) {
        problems.push({
          dependency: label,
          reason: `npm resolved the server package to ${JSON.stringify(resolved)}, not to its verified tarball`,
          kind: 'source',
        });
      }
      continue;
    }
    if (!version || !semver.valid(version) || semver.clean(version) !== version) {
      problems.push({
        dependency: label,
        reason: `${location} is not an exact registry version (${JSON.stringify(entry.version)})`,
        kind: 'source',
      });
      continue;
    }
    if (resolved !== undefined) {
      const what = nonRegistrySpec(resolved);
      if (what && !/^https?:/i.test(resolved)) {
        problems.push({ dependency: label, reason: `${location} is resolved to ${what} (${JSON.stringify(resolved)})`, kind: 'source' });
        continue;
      }
      const problem = /^https?:/i.test(resolved)
        ? input.tarballProblem(resolved)
        : `its resolved location ${JSON.stringify(resolved)} is not an http(s) URL`;
      if (problem) {
        problems.push({
          dependency: label,
          reason: `${location} would be downloaded from ${JSON.stringify(resolved)}: ${problem}`,
          kind: 'source',
        });
        continue;
      }
    }
    const integrity = strongestIntegrity(entry.integrity, undefined);
    if (!integrity.ok) {
      problems.push({
        dependency: label,
        reason: `${location} has no usable integrity in the lock (${integrity.problem})`,
        kind: 'source',
      });
      continue;
    }
    registry.push({ name, version, integrity: integrity.integrity, location });
  }
  return { problems, registry };
}

/**
 * What the registry says about each dependency: the version exists, its tarball lives where
 * tarballs may come from, its integrity is the lock's, and it is old enough.
 */
export function auditRegistryDependencies(input: {
  dependencies: readonly RegistryDependency[];
  packuments: ReadonlyMap<string, Packument>;
  minReleaseAgeMs: number;
  now: Date;
  tarballProblem: (url: string) => string | undefined;
}): LockProblem[] {
  const problems: LockProblem[] = [];
  for (const dependency of input.dependencies) {
    const label = `${dependency.name}@${dependency.version}`;
    const packument = input.packuments.get(dependency.name);
    const manifest = packument?.versions?.[dependency.version];
    if (!manifest) {
      problems.push({ dependency: label, reason: `the registry does not list ${label}`, kind: 'source' });
      continue;
    }
    const tarball = manifest.dist?.tarball;
    const hostProblem = typeof tarball === 'string' ? input.tarballProblem(tarball) : 'the registry gives no tarball URL';
    if (hostProblem) {
      problems.push({ dependency: label, reason: `its tarball ${JSON.stringify(tarball)} is refused: ${hostProblem}`, kind: 'source' });
      continue;
    }
    const published = strongestIntegrity(manifest.dist?.integrity, undefined);
    if (!published.ok || !sameDigest(published.integrity, dependency.integrity)) {
      problems.push({
        dependency: label,
        reason: `the lock's integrity ${dependency.integrity.slice(0, 20)}… is not the one the registry publishes`,
        kind: 'source',
      });
      continue;
    }
    if (input.minReleaseAgeMs > 0) {
      const time = packument.time?.[dependency.version];
      const at = time ? Date.parse(time) : NaN;
      if (!Number.isFinite(at)) {
        problems.push({
          dependency: label,
          reason: 'the registry gives no publish time for it, so it counts as younger than minReleaseAge',
          kind: 'too-young',
        });
      } else if (input.now.getTime() - at < input.minReleaseAgeMs) {
        problems.push({ dependency: label, reason: `it was published ${time}, less than minReleaseAge ago`, kind: 'too-young' });
      }
    }
  }
  return problems;
}

function sameDigest(a: string, b: string): boolean {
  return a.trim() === b.trim();
}
