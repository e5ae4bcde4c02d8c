/*
 * Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time, and
 * the same summed by package (node_modules/<name>, node internals, our own files), within the
 * measured window only, so start-up (module loading, the inventory) does not crowd the list.
 * Profile timestamps are CLOCK_MONOTONIC microseconds, the clock of process.hrtime in every
 * process of the machine, so the bench's own hrtime marks the window.
 */
import fs from 'node:fs/promises';

/** Now on the clock of .cpuprofile timestamps (µs). */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  percent: number;
}

export interface ProfileSummary {
  /** Length of the window summarized (ms). */
  windowMs: number;
  /** Share of the window's samples that were not idle (program + GC). */
  busyPercent: number;
  /** Percentages are of the busy samples. */
  topFunctions: ProfileEntry[];
  byPackage: ProfileEntry[];
}

/** "node_modules/ioredis", "node:internal", "shared/registry.ts"… */
function ownerOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || 'native'})`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node: internals';
  const own = /\/(shared|workers|producers|cli|dashboard|bin|bench)\/([^/]+)$/.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

function shortUrl(url: string): string {
  return url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(shared|workers|producers|cli|dashboard)\//, '$1/');
}

export async function summarizeProfile(file: string, window?: { fromUs: number; toUs: number }, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await fs.readFile(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const hitsByNode = new Map<number, number>();
  let at = profile.startTime;
  let inWindow = 0;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = 0;
  (profile.samples ?? []).forEach((id, index) => {
    at += profile.timeDeltas?.[index] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    hitsByNode.set(id, (hitsByNode.get(id) ?? 0) + 1);
    inWindow += 1;
    windowStart = Math.min(windowStart, at);
    windowEnd = Math.max(windowEnd, at);
  });
  const msPerSample = inWindow > 1 ? (windowEnd - windowStart) / 1000 / inWindow : 0;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let idle = 0;
  for (const [id, hits] of hitsByNode) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += hits;
      continue;
    }
    const name = url ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : `${functionName}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    const owner = ownerOf(url, functionName);
    byPackage.set(owner, (byPackage.get(owner) ?? 0) + hits);
  }
  const busy = inWindow - idle;
  const entries = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, hits]) => ({
        name,
        selfMs: Math.round(hits * msPerSample),
        percent: busy > 0 ? Math.round((hits / busy) * 1000) / 10 : 0,
      }));
  return {
    windowMs: Math.round(msPerSample * inWindow),
    busyPercent: inWindow > 0 ? Math.round((busy / inWindow) * 1000) / 10 : 0,
    topFunctions: entries(byFunction),
    byPackage: entries(byPackage),
  };
}

/** The main thread's profile in `dir`: the largest file (tsx's loader thread writes a small one). */
export async function mainThreadProfile(dir: string): Promise<string | undefined> {
  const files = (await fs.readdir(dir)).filter((name) => name.endsWith('.cpuprofile'));
  const sized = await Promise.all(files.map(async (name) => ({ name, size: (await fs.stat(`${dir}/${name}`)).size })));
  sized.sort((a, b) => b.size - a.size);
  return sized[0] ? `${dir}/${sized[0].name}` : undefined;
}
