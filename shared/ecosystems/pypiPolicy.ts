/*
 * Which release of a Python project may a server move to, and which of its files? Pure
 * decisions over the index's JSON API answer (docs/ARCHITECTURE.md "Ecosystems"), the PyPI
 * counterpart of shared/policy.ts: the highest release the policy allows relative to the current
 * one, inside the optional PEP 440 range, not yanked, no pre-release unless pinned, not a release
 * that failed before, old enough by its files' upload times (unknown = too young), and with a
 * file that fits this interpreter (a wheel; an sdist only with allowSdist) carrying a sha256.
 */
import {
  blockedTarget,
  chooseNewest,
  holdRule,
  type CandidateDecision,
  type CandidateSettings,
  type SkipReason,
  type UsableDist,
} from '../policy.js';
import { PEP440_ORDER } from '../versionOrder.js';
import { gtPypi, isPypiPrerelease, isPypiVersion, normalizePypiVersion, pypiPolicyAllows, rcomparePypi, satisfiesPypi } from './pep440.js';

/** One file of a release, as the JSON API lists it. */
export interface PypiFile {
  filename: string;
  url: string;
  /** Hex sha256 digest, when the index gives one. */
  sha256?: string;
  uploadTime?: string;
  yanked: boolean;
  packagetype: string;
  requiresPython?: string;
}

/** A project as the JSON API describes it, reduced to what decisions read. */
export interface PypiProject {
  name: string;
  /** `info.version`: the index's idea of the newest release. */
  latest?: string;
  /** Release keys as the index spells them -> their files. */
  releases: Record<string, PypiFile[]>;
}

export interface PypiCandidateInput {
  project: PypiProject;
  current?: string;
  settings: CandidateSettings & { allowSdist: boolean };
  now: Date;
  exclude?: Iterable<string>;
  /** Wheel tags the interpreter supports, most specific first (pip's `sys_tags`). */
  supportedTags: readonly string[];
  /** Why a file URL may not be used (another origin), or undefined when it may. */
  fileProblem?: (url: string) => string | undefined;
  /** The version an operator rolled back from: every version up to it is skipped ('held'), as for npm. */
  hold?: string;
}

const PURE_PYTHON = 'py3-none-any';

/** `name-ver(-build)?-py-abi-plat.whl` -> every tag it declares (`py3-none-any`, …). */
export function wheelTags(filename: string): string[] | undefined {
  const match = /^[^-]+-[^-]+(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$/.exec(filename);
  if (!match) return undefined;
  const [, pythons, abis, platforms] = match as unknown as [string, string, string, string];
  const tags: string[] = [];
  for (const python of pythons.split('.'))
    for (const abi of abis.split('.')) for (const platform of platforms.split('.')) tags.push(`${python}-${abi}-${platform}`);
  return tags;
}

function isSdist(file: PypiFile): boolean {
  return file.packagetype === 'sdist' || /\.(tar\.gz|zip)$/.test(file.filename);
}

/**
 * The file to install: a pure-Python wheel first, else the wheel whose best tag comes first in
 * the interpreter's list, else (allowSdist) an sdist. The error names the files that exist.
 */
export function chooseFile(
  files: readonly PypiFile[],
  supportedTags: readonly string[],
  allowSdist: boolean,
): { ok: true; file: PypiFile } | { ok: false; code: string; message: string } {
  const usable = files.filter((file) => !file.yanked);
  const rank = new Map(supportedTags.map((tag, index) => [tag, index] as const));
  let best: { file: PypiFile; score: number } | undefined;
  for (const file of usable) {
    if (!file.filename.endsWith('.whl')) continue;
    const tags = wheelTags(file.filename) ?? [];
    const score = tags.includes(PURE_PYTHON) ? -1 : Math.min(...tags.map((tag) => rank.get(tag) ?? Infinity));
    if (Number.isFinite(score) && (!best || score < best.score)) best = { file, score };
  }
  if (best) return { ok: true, file: best.file };
  const sdist = usable.find(isSdist);
  if (sdist && allowSdist) return { ok: true, file: sdist };
  const names = files.map((file) => file.filename).join(', ') || 'none';
  if (sdist) {
    return {
      ok: false,
      code: 'ESDISTONLY',
      message: `has no wheel for this interpreter, only a source distribution (files: ${names}); building it runs the package's code, so it is refused unless allowSdist: true`,
    };
  }
  return {
    ok: false,
    code: 'ENOWHEEL',
    message: `has no wheel this interpreter can install (files: ${names}; supported: ${PURE_PYTHON} and ${supportedTags.length} platform tags)`,
  };
}

/** An index's hex sha256 as one SRI hash, or undefined when it is not one. */
export function sha256Integrity(hex: string | undefined): string | undefined {
  return hex && /^[0-9a-f]{64}$/i.test(hex) ? `sha256-${Buffer.from(hex, 'hex').toString('base64')}` : undefined;
}

/** The earliest upload time of a release's files, in ms since the epoch; undefined when unknown. */
export function releaseUploadedAt(files: readonly PypiFile[]): number | undefined {
  const times = files.map((file) => (file.uploadTime ? Date.parse(file.uploadTime) : Number.NaN));
  if (times.length === 0 || times.some((time) => !Number.isFinite(time))) return undefined;
  return Math.min(...times);
}

/** A release counts as yanked when every one of its files is (PEP 592). */
function isYanked(files: readonly PypiFile[]): boolean {
  return files.length > 0 && files.every((file) => file.yanked);
}

/** The release's chosen file as download needs it, or what is wrong with it. */
export function usablePypiDist(
  input: PypiCandidateInput,
  key: string,
  version: string,
): { ok: true; dist: UsableDist } | { ok: false; message: string } {
  const label = `${input.project.name} ${version}`;
  const chosen = chooseFile(input.project.releases[key] ?? [], input.supportedTags, input.settings.allowSdist);
  if (!chosen.ok) return { ok: false, message: `${label} ${chosen.message}` };
  const { file } = chosen;
  const integrity = sha256Integrity(file.sha256);
  if (!integrity) return { ok: false, message: `${label}: the index gives no sha256 digest for ${file.filename}` };
  let url: URL | undefined;
  try {
    url = new URL(file.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:'))
    return { ok: false, message: `${label}: the URL of ${file.filename} is not an http(s) URL` };
  const problem = input.fileProblem?.(url.href);
  if (problem) return { ok: false, message: `${label}: ${problem}` };
  return { ok: true, dist: { integrity, tarball: url.href, file: file.filename } };
}

export function choosePypiCandidate(input: PypiCandidateInput): CandidateDecision {
  const { project, current, settings, now } = input;
  const excluded = new Set(input.exclude ?? []);
  const { hold, held } = holdRule(input.hold, PEP440_ORDER);
  const skipped: CandidateDecision['skipped'] = [];
  const unusable: CandidateDecision['unusable'] = [];
  // Normalized version -> the index's key; keys that are not installable PEP 440 are left out.
  const keys = new Map<string, string>();
  for (const key of Object.keys(project.releases)) {
    const version = normalizePypiVersion(key);
    if (version && !keys.has(version)) keys.set(version, key);
  }
  const files = (version: string) => project.releases[keys.get(version)!] ?? [];
  const versions = [...keys.keys()].filter((version) => files(version).length > 0).sort(rcomparePypi);
  const stable = versions.filter((version) => !isPypiPrerelease(version) && !isYanked(files(version)));
  const latest = stable[0] ?? versions[0];
  const currentValid = current !== undefined && isPypiVersion(current);
  const updateAvailable = currentValid ? stable.some((version) => gtPypi(version, current!)) : stable.length > 0;
  const dists = new Map<string, UsableDist>();
  const checkUsable = (version: string): boolean => {
    const usable = usablePypiDist(input, keys.get(version)!, version);
    if (usable.ok) dists.set(version, usable.dist);
    else unusable.push({ version, message: usable.message });
    return usable.ok;
  };

  const target = settings.policy === 'pin' || (current === undefined && settings.version) ? settings.version : undefined;
  if (target !== undefined) {
    const version = normalizePypiVersion(target);
    if (!version || !keys.has(version) || files(version).length === 0) {
      return {
        latest,
        updateAvailable,
        skipped,
        unusable,
        summary: `${target} not published`,
        error: {
          code: 'ETARGET',
          message: `${project.name} ${target} is not on the index (or has no files)`,
          hint: 'fix servers.<name>.version in the inventory',
        },
      };
    }
    const blocked = blockedTarget(version, current, { held, hold, excluded }, { latest, updateAvailable, unusable });
    if (blocked) return blocked;
    const candidate = current === version ? undefined : version;
    if (candidate && !checkUsable(candidate)) {
      return {
        latest,
        allowed: current,
        updateAvailable,
        skipped: [{ version, reason: 'unusable' }],
        unusable,
        summary: `${version} cannot be installed`,
        error: { code: 'EBADVERSION', message: unusable.at(-1)!.message, hint: 'pin another version, or allow what it needs (allowSdist)' },
      };
    }
    const heldBack = updateAvailable && settings.policy === 'pin' && latest !== version ? ` (${latest} available, pinned)` : '';
    return {
      latest,
      candidate,
      allowed: version,
      updateAvailable,
      skipped,
      unusable,
      ...(candidate ? { usable: dists.get(candidate) } : {}),
      summary: candidate ? `install ${version}${heldBack}` : `pinned at ${version}${heldBack}`,
    };
  }

  const acceptable = (version: string): SkipReason | undefined => {
    if (isYanked(files(version))) return 'deprecated';
    if (isPypiPrerelease(version)) return 'prerelease';
    if (settings.range && !satisfiesPypi(version, settings.range)) return 'outside-range';
    if (held(version)) return 'held';
    if (currentValid && !pypiPolicyAllows(settings.policy, current!, version)) return 'policy';
    if (excluded.has(version)) return 'failed-before';
    if (settings.minReleaseAgeMs > 0) {
      const uploaded = releaseUploadedAt(files(version));
      if (uploaded === undefined || now.getTime() - uploaded < settings.minReleaseAgeMs) return 'too-young';
    }
    if (!checkUsable(version)) return 'unusable';
    return undefined;
  };

  const decision = chooseNewest({
    versions,
    current,
    isNewer: (version) => !currentValid || gtPypi(version, current!),
    acceptable,
    reported: (reason) => (reason === 'deprecated' ? 'yanked' : reason),
    found: { latest, updateAvailable, skipped, unusable, dists },
    policy: settings.policy,
    hold,
  });
  if (!decision.allowed && current === undefined) {
    const why =
      [
        ...unusable.slice(0, 3).map((entry) => entry.message),
        ...skipped
          .filter((skip) => skip.reason !== 'unusable')
          .slice(0, 5)
          .map((skip) => `${skip.version} ${skip.reason}`),
      ].join('; ') || 'no release with files';
    decision.error = {
      code: 'ENOVERSION',
      message: `no release of ${project.name} may be installed (${why})`,
      hint: 'widen range or policy, lower minReleaseAge, or set version in the inventory; nothing was installed',
    };
  }
  return decision;
}
