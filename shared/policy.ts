/*
 * Which version may a server move to? A pure decision over a packument: the highest version the
 * policy allows relative to the current one, inside the optional range, at most the channel's
 * dist-tag, not deprecated, no prerelease unless the channel points at one, not a version that
 * failed before, not at or below a rollback's hold, old enough (minReleaseAge), and usable: an exact semver key, a strong integrity
 * (shared/integrity.ts) and a tarball URL that parses and points where tarballs may come from.
 * Unusable versions are reported (`unusable`) so check can fail each of them once, loudly,
 * instead of passing poison downstream.
 */
import semver from 'semver';
import { strongestIntegrity } from './integrity.js';
import type { Policy } from './inventory.js';
import type { ProvenanceSource } from './provenance.js';
import type { Packument, PackumentVersion } from './registry.js';
import { isExactVersion } from './schemas.js';
import { SEMVER_ORDER, type VersionOrder } from './versionOrder.js';

export interface CandidateSettings {
  policy: Policy;
  channel: string;
  range?: string;
  /** Version to install first / pin to. */
  version?: string;
  minReleaseAgeMs: number;
}

export interface CandidateInput {
  packument: Packument;
  /** Active version; undefined before the first install. */
  current?: string;
  settings: CandidateSettings;
  now: Date;
  /** Versions that failed before (skipped unless the check is forced). */
  exclude?: Iterable<string>;
  /**
   * The version an operator rolled back from: every version up to it is skipped ('held'), so the
   * server stays where it was put until a newer version is published (or a forced check).
   */
  hold?: string;
  /** Why a tarball URL may not be used (another host, another scheme), or undefined when it may. */
  tarballProblem?: (url: string) => string | undefined;
  /** Why a version whose dist is usable may still not be used (its registry signature), or undefined. */
  versionProblem?: (version: string) => string | undefined;
}

export type SkipReason =
  | 'deprecated'
  | 'yanked'
  | 'prerelease'
  | 'above-channel'
  | 'outside-range'
  | 'held'
  | 'policy'
  | 'too-young'
  | 'failed-before'
  | 'unusable';

/** What download needs of a version, validated. */
export interface UsableDist {
  integrity: string;
  tarball: string;
  /** The file's name, where the ecosystem picks one of several (a pypi wheel). */
  file?: string;
  /** Where the version was built, when its provenance verified (npm; workers/checking/provenance.ts). */
  provenance?: ProvenanceSource;
}

export interface CandidateDecision {
  /** What the channel's dist-tag points at. */
  latest?: string;
  /** Version to move to, when it differs from current. */
  candidate?: string;
  /** Highest allowed version (may equal current). */
  allowed?: string;
  /** A newer version exists than current (whether or not the policy lets us take it). */
  updateAvailable: boolean;
  /** One line for people: "update 1.2.3 -> 1.3.0", "up to date", "2.0.0 held back by policy minor". */
  summary: string;
  /** Why newer versions were not taken, newest first (at most 10). */
  skipped: Array<{ version: string; reason: SkipReason }>;
  /** Versions that would have been considered but whose registry data cannot be used. */
  unusable: Array<{ version: string; message: string }>;
  /** The candidate's validated integrity and tarball URL. */
  usable?: UsableDist;
  error?: { code: string; message: string; hint?: string };
}

/** The version's dist as download needs it, or what is wrong with it. */
export function usableDist(
  name: string,
  version: string,
  manifest: PackumentVersion | undefined,
  tarballProblem?: (url: string) => string | undefined,
): { ok: true; dist: UsableDist } | { ok: false; message: string } {
  const label = `${name}@${version}`;
  const dist = manifest && typeof manifest === 'object' ? manifest.dist : undefined;
  if (!dist || typeof dist !== 'object')
    return { ok: false, message: `${label}: the registry gives no dist (tarball and integrity) for this version` };
  const integrity = strongestIntegrity(dist.integrity, dist.shasum);
  if (!integrity.ok) return { ok: false, message: `${label}: ${integrity.problem}` };
  const tarball = dist.tarball;
  let url: URL | undefined;
  try {
    url = typeof tarball === 'string' && !/\s/.test(tarball) ? new URL(tarball) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    return { ok: false, message: `${label}: its tarball URL ${JSON.stringify(String(tarball).slice(0, 200))} is not an http(s) URL` };
  }
  const problem = tarballProblem?.(url.href);
  if (problem) return { ok: false, message: `${label}: ${problem}` };
  return { ok: true, dist: { integrity: integrity.integrity, tarball: url.href } };
}

function policyAllows(policy: Policy, current: string, version: string): boolean {
  switch (policy) {
    case 'pin':
      return false;
    case 'patch':
      return semver.major(version) === semver.major(current) && semver.minor(version) === semver.minor(current);
    case 'minor':
      return semver.major(version) === semver.major(current);
    case 'major':
      return true;
  }
}

/** Age in ms of `version` by the packument's `time`, or undefined when time is missing. */
function ageOf(packument: Packument, version: string, now: Date): number | undefined {
  const published = packument.time?.[version];
  if (!published) return undefined;
  const at = Date.parse(published);
  return Number.isFinite(at) ? now.getTime() - at : undefined;
}

/**
 * The rollback hold as a check applies it (for every ecosystem): the hold when the scheme can
 * read it, and whether a version is at or below it.
 */
export function holdRule(hold: string | undefined, order: VersionOrder): { hold?: string; held: (version: string) => boolean } {
  const valid = hold !== undefined && order.valid(hold) ? hold : undefined;
  return { hold: valid, held: (version) => valid !== undefined && order.valid(version) && order.compare(version, valid) <= 0 };
}

export function chooseCandidate(input: CandidateInput): CandidateDecision {
  const { packument, current, settings, now } = input;
  const excluded = new Set(input.exclude ?? []);
  const { hold, held } = holdRule(input.hold, SEMVER_ORDER);
  const latest = packument['dist-tags']?.[settings.channel];
  const skipped: CandidateDecision['skipped'] = [];
  const unusable: CandidateDecision['unusable'] = [];
  if (!latest || !isExactVersion(latest)) {
    const tags = Object.keys(packument['dist-tags'] ?? {}).join(', ') || 'none';
    return {
      updateAvailable: false,
      summary: `channel "${settings.channel}" not found`,
      skipped,
      unusable,
      error: {
        code: 'ECHANNEL',
        message: `${packument.name} has no dist-tag "${settings.channel}" with a version (dist-tags: ${tags})`,
        hint: 'set channel to one of them',
      },
    };
  }
  const allowPrerelease = semver.prerelease(latest) !== null;
  const keys = Object.keys(packument.versions ?? {});
  const versions = keys.filter(isExactVersion).sort(semver.rcompare);
  const currentValid = current !== undefined && semver.valid(current) !== null;
  const isNewer = (version: string) => !currentValid || semver.gt(version, current!);
  // Keys semver would read after trimming or dropping a "v" ("1.0.1 ", "v1.0.1"): never
  // installable, and reported rather than silently ignored when they would count as newer.
  for (const key of keys) {
    const loose = semver.valid(key);
    if (loose !== null && loose !== key && isNewer(loose) && semver.lte(loose, latest)) {
      unusable.push({
        version: key,
        message: `${packument.name}: the registry lists a version key ${JSON.stringify(key)} that is not an exact semver version`,
      });
    }
  }
  const updateAvailable = currentValid
    ? versions.some(
        (version) => semver.gt(version, current!) && semver.lte(version, latest) && (allowPrerelease || !semver.prerelease(version)),
      )
    : versions.length > 0;
  const dists = new Map<string, UsableDist>();
  const checkUsable = (version: string): boolean => {
    const usable = usableDist(packument.name, version, packument.versions[version], input.tarballProblem);
    const problem = usable.ok ? input.versionProblem?.(version) : usable.message;
    if (problem !== undefined) {
      unusable.push({ version, message: problem });
      return false;
    }
    if (usable.ok) dists.set(version, usable.dist);
    return true;
  };

  const acceptable = (version: string, enforcePolicy: boolean): SkipReason | undefined => {
    const manifest = packument.versions[version];
    if (manifest?.deprecated) return 'deprecated';
    if (semver.prerelease(version) && !allowPrerelease) return 'prerelease';
    if (semver.gt(version, latest)) return 'above-channel';
    if (settings.range && !semver.satisfies(version, settings.range, { includePrerelease: allowPrerelease })) return 'outside-range';
    if (held(version)) return 'held';
    if (enforcePolicy && currentValid && !policyAllows(settings.policy, current!, version)) return 'policy';
    if (excluded.has(version)) return 'failed-before';
    if (settings.minReleaseAgeMs > 0) {
      const age = ageOf(packument, version, now);
      if (age === undefined || age < settings.minReleaseAgeMs) return 'too-young';
    }
    // Last: only a version that would be chosen is judged (and reported) for its registry data.
    if (!checkUsable(version)) return 'unusable';
    return undefined;
  };

  // First install (or pin): the configured version when there is one, exactly.
  const target = settings.policy === 'pin' || (current === undefined && settings.version) ? settings.version : undefined;
  if (target !== undefined) {
    const exists = packument.versions?.[target];
    if (!exists) {
      return {
        latest,
        updateAvailable,
        skipped,
        unusable,
        summary: `${target} not published`,
        error: {
          code: 'ETARGET',
          message: `${packument.name}@${target} is not published`,
          hint: 'fix servers.<name>.version in the inventory',
        },
      };
    }
    const blocked = blockedTarget(target, current, { held, hold, excluded }, { latest, updateAvailable, unusable });
    if (blocked) return blocked;
    const candidate = current === target ? undefined : target;
    if (candidate && !checkUsable(candidate)) {
      const message = unusable.at(-1)!.message;
      return {
        latest,
        allowed: current,
        updateAvailable,
        skipped: [{ version: target, reason: 'unusable' }],
        unusable,
        summary: `${target} cannot be installed`,
        error: { code: 'EBADVERSION', message, hint: "the registry's data for this version is unusable; pin another version" },
      };
    }
    const heldBack = updateAvailable && settings.policy === 'pin' ? ` (${latest} available, pinned)` : '';
    return {
      latest,
      candidate,
      allowed: target,
      updateAvailable,
      skipped,
      unusable,
      ...(candidate ? { usable: dists.get(candidate) } : {}),
      summary: candidate ? `install ${target}${heldBack}` : `pinned at ${target}${heldBack}`,
    };
  }

  const decision = chooseNewest({
    versions,
    current,
    isNewer,
    acceptable: (version) => acceptable(version, true),
    reported: (reason) => (reason === 'above-channel' ? undefined : reason),
    found: { latest, updateAvailable, skipped, unusable, dists },
    policy: settings.policy,
    hold,
  });
  if (!decision.allowed && current === undefined) {
    // A first install with nothing allowed is a failure, not "up to date": nothing is installed.
    const why =
      skipped.length > 0
        ? skipped
            .slice(0, 5)
            .map((skip) => `${skip.version} ${skip.reason}`)
            .join(', ')
        : `no published version up to the "${settings.channel}" dist-tag (${latest})`;
    decision.error = {
      code: 'ENOVERSION',
      message: `no version of ${packument.name} may be installed (${why})`,
      hint: 'widen range or policy, lower minReleaseAge, or set version in the inventory; nothing was installed',
    };
  }
  return decision;
}

/**
 * A pinned or first-install target that the rollback hold or an earlier failure keeps out (for
 * every ecosystem): the decision to stay on current, or undefined when it may be installed.
 */
export function blockedTarget(
  target: string,
  current: string | undefined,
  rules: { held: (version: string) => boolean; hold?: string; excluded: ReadonlySet<string> },
  found: Pick<ChoiceFacts, 'latest' | 'updateAvailable' | 'unusable'>,
): CandidateDecision | undefined {
  if (current === target) return undefined;
  const stay = { latest: found.latest, allowed: current, updateAvailable: found.updateAvailable, unusable: found.unusable };
  if (rules.held(target)) return { ...stay, skipped: [{ version: target, reason: 'held' }], summary: heldSummary(current, rules.hold!) };
  if (rules.excluded.has(target)) {
    return {
      ...stay,
      skipped: [{ version: target, reason: 'failed-before' }],
      summary: `${target} failed or was rolled back before; a forced check tries it again`,
    };
  }
  return undefined;
}

/** What a chooser has gathered of an ecosystem's versions when it decides. */
export interface ChoiceFacts {
  latest?: string;
  updateAvailable: boolean;
  skipped: CandidateDecision['skipped'];
  unusable: CandidateDecision['unusable'];
  /** What download needs of each version found usable. */
  dists: ReadonlyMap<string, UsableDist>;
}

/**
 * The walk every ecosystem's chooser ends with: through `versions` (newest first) down to
 * current, take the first that `acceptable` lets through; the skipped ones are reported (at most
 * 10) under the reason `reported` gives, or not at all.
 */
export function chooseNewest(input: {
  versions: readonly string[];
  current: string | undefined;
  /** Whether a version is above current (always, when there is no readable current). */
  isNewer: (version: string) => boolean;
  acceptable: (version: string) => SkipReason | undefined;
  reported: (reason: SkipReason) => SkipReason | undefined;
  found: ChoiceFacts;
  policy: Policy;
  hold?: string;
}): CandidateDecision {
  const { current, found } = input;
  let allowed: string | undefined;
  for (const version of input.versions) {
    if (!input.isNewer(version)) {
      allowed ??= current;
      break;
    }
    const reason = input.acceptable(version);
    if (reason === undefined) {
      allowed = version;
      break;
    }
    const shown = input.reported(reason);
    if (found.skipped.length < 10 && shown !== undefined) found.skipped.push({ version, reason: shown });
  }
  const candidate = allowed && allowed !== current ? allowed : undefined;
  return {
    latest: found.latest,
    candidate,
    allowed,
    updateAvailable: found.updateAvailable,
    skipped: found.skipped,
    unusable: found.unusable,
    ...(candidate ? { usable: found.dists.get(candidate) } : {}),
    summary: decisionSummary(current, candidate, allowed, found.skipped, input.policy, input.hold),
  };
}

/** One line for people, for every ecosystem: "update 1.2.3 -> 1.3.0", "up to date; 2.0.0 held back by policy minor". */
export function decisionSummary(
  current: string | undefined,
  candidate: string | undefined,
  allowed: string | undefined,
  skipped: CandidateDecision['skipped'],
  policy: Policy,
  hold?: string,
): string {
  if (candidate) return current ? `update ${current} -> ${candidate}` : `install ${candidate}`;
  if (!allowed) return 'no version satisfies the policy';
  if (skipped.length === 0) return 'up to date';
  // Say why the newest version that was *eligible but for one rule* was not taken.
  const telling = skipped.find((skip) => skip.reason !== 'policy') ?? skipped[0]!;
  if (telling.reason === 'held') return heldSummary(current, hold!);
  return telling.reason === 'policy'
    ? `up to date; ${telling.version} held back by policy ${policy}`
    : `up to date; ${telling.version} skipped (${telling.reason})`;
}

export function heldSummary(current: string | undefined, hold: string): string {
  return `held at ${current ?? '(none)'} after a rollback from ${hold}; a version newer than ${hold} moves on (or check --force)`;
}

/**
 * The rollback hold after a switch of `current` from `from` to `to`: a rollback down holds the
 * server below the version it left (the higher of that and an existing hold); an approve lifts
 * it; so does activating a version newer than the hold. Anything else keeps it.
 */
export function holdAfterSwitch(
  input: {
    action: 'activate' | 'approve' | 'rollback';
    from?: string;
    to: string;
    hold?: string;
  },
  order: VersionOrder = SEMVER_ORDER,
): string | undefined {
  const { action, from, to, hold } = input;
  const valid = (version: string | undefined): version is string => version !== undefined && order.valid(version);
  if (action === 'rollback' && valid(from) && valid(to) && order.compare(to, from) < 0) {
    return valid(hold) && order.compare(hold, from) > 0 ? hold : from;
  }
  if (action === 'approve') return undefined;
  if (valid(hold) && valid(to) && order.compare(to, hold) > 0) return undefined;
  return hold;
}

/** Do we need the full packument (with `time`) for this decision? */
export function needsFullMetadata(settings: Pick<CandidateSettings, 'minReleaseAgeMs'>): boolean {
  return settings.minReleaseAgeMs > 0;
}
