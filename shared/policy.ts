/*
 * Which version may a server move to? A pure decision over a packument: the highest version the
 * policy allows relative to the current one, inside the optional range, at most the channel's
 * dist-tag, not deprecated, no prerelease unless the channel points at one, not a version that
 * failed before, and old enough (minReleaseAge).
 */
import semver from 'semver';
import type { Policy } from './inventory.js';
import type { Packument } from './registry.js';

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
}

export type SkipReason = 'deprecated' | 'prerelease' | 'above-channel' | 'outside-range' | 'policy' | 'too-young' | 'failed-before' | 'no-tarball';

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
  error?: { code: string; message: string };
}

function policyAllows(policy: Policy, current: string, version: string): boolean {
  switch (policy) {
    case 'pin': return false;
    case 'patch': return semver.major(version) === semver.major(current) && semver.minor(version) === semver.minor(current);
    case 'minor': return semver.major(version) === semver.major(current);
    case 'major': return true;
  }
}

/** Age in ms of `version` by the packument's `time`, or undefined when time is missing. */
function ageOf(packument: Packument, version: string, now: Date): number | undefined {
  const published = packument.time?.[version];
  if (!published) return undefined;
  const at = Date.parse(published);
  return Number.isFinite(at) ? now.getTime() - at : undefined;
}

export function chooseCandidate(input: CandidateInput): CandidateDecision {
  const { packument, current, settings, now } = input;
  const excluded = new Set(input.exclude ?? []);
  const latest = packument['dist-tags']?.[settings.channel];
  const skipped: CandidateDecision['skipped'] = [];
  if (!latest || !semver.valid(latest)) {
    const tags = Object.keys(packument['dist-tags'] ?? {}).join(', ') || 'none';
    return {
      updateAvailable: false,
      summary: `channel "${settings.channel}" not found`,
      skipped,
      error: { code: 'ECHANNEL', message: `${packument.name} has no dist-tag "${settings.channel}" (dist-tags: ${tags}); set channel to one of them` },
    };
  }
  const allowPrerelease = semver.prerelease(latest) !== null;
  const versions = Object.keys(packument.versions ?? {})
    .filter((version) => semver.valid(version) !== null)
    .sort(semver.rcompare);
  const updateAvailable = current !== undefined && semver.valid(current) !== null
    ? versions.some((version) => semver.gt(version, current) && semver.lte(version, latest) && (allowPrerelease || !semver.prerelease(version)))
    : versions.length > 0;

  const acceptable = (version: string, enforcePolicy: boolean): SkipReason | undefined => {
    const manifest = packument.versions[version]!;
    if (!manifest.dist?.tarball || !manifest.dist.integrity) return 'no-tarball';
    if (manifest.deprecated) return 'deprecated';
    if (semver.prerelease(version) && !allowPrerelease) return 'prerelease';
    if (semver.gt(version, latest)) return 'above-channel';
    if (settings.range && !semver.satisfies(version, settings.range, { includePrerelease: allowPrerelease })) return 'outside-range';
    if (enforcePolicy && current && semver.valid(current) && !policyAllows(settings.policy, current, version)) return 'policy';
    if (excluded.has(version)) return 'failed-before';
    if (settings.minReleaseAgeMs > 0) {
      const age = ageOf(packument, version, now);
      if (age === undefined || age < settings.minReleaseAgeMs) return 'too-young';
    }
    return undefined;
  };

  // First install (or pin): the configured version when there is one, exactly.
  const target = settings.policy === 'pin' || (current === undefined && settings.version) ? settings.version : undefined;
  if (target !== undefined) {
    const exists = packument.versions?.[target];
    if (!exists) {
      return {
        latest, updateAvailable, skipped,
        summary: `${target} not published`,
        error: { code: 'ETARGET', message: `${packument.name}@${target} is not published; fix servers.<name>.version` },
      };
    }
    if (current !== target && excluded.has(target)) {
      return {
        latest, allowed: current, updateAvailable, skipped: [{ version: target, reason: 'failed-before' }],
        summary: `${target} failed or was rolled back before; a forced check tries it again`,
      };
    }
    const candidate = current === target ? undefined : target;
    const heldBack = updateAvailable && settings.policy === 'pin' ? ` (${latest} available, pinned)` : '';
    return {
      latest, candidate, allowed: target, updateAvailable, skipped,
      summary: candidate ? `install ${target}${heldBack}` : `pinned at ${target}${heldBack}`,
    };
  }

  let allowed: string | undefined;
  for (const version of versions) {
    if (current && semver.valid(current) && semver.lte(version, current)) {
      allowed ??= current;
      break;
    }
    const reason = acceptable(version, true);
    if (reason === undefined) {
      allowed = version;
      break;
    }
    if (skipped.length < 10 && reason !== 'above-channel') skipped.push({ version, reason });
  }
  const candidate = allowed && allowed !== current ? allowed : undefined;
  let summary: string;
  if (candidate) summary = current ? `update ${current} -> ${candidate}` : `install ${candidate}`;
  else if (!allowed) summary = 'no version satisfies the policy';
  else if (skipped.length > 0) {
    // Say why the newest version that was *eligible but for one rule* was not taken.
    const telling = skipped.find((skip) => skip.reason !== 'policy') ?? skipped[0]!;
    summary = telling.reason === 'policy'
      ? `up to date; ${telling.version} held back by policy ${settings.policy}`
      : `up to date; ${telling.version} skipped (${telling.reason})`;
  }
  else summary = 'up to date';
  return { latest, candidate, allowed, updateAvailable, skipped, summary };
}

/** Do we need the full packument (with `time`) for this decision? */
export function needsFullMetadata(settings: Pick<CandidateSettings, 'minReleaseAgeMs'>): boolean {
  return settings.minReleaseAgeMs > 0;
}
