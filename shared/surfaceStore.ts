/*
 * Where the MCP surface of a version lives (`versions/<v>/.mcp-updater/surface.json`) and the
 * comparison of two installed versions that `mcp-updater diff`, GET /api/v1/servers/:name/diff
 * and the status page's diff view show. The classification itself is shared/surface.ts.
 */
import { NotFoundError, ValidationError } from './errors.js';
import { readJson, writeFileAtomic, type InstallLayout } from './layout.js';
import { redact } from './redact.js';
import { isExactVersion } from './schemas.js';
import type { StateStore } from './state.js';
import { buildSurfaceRecord, diffSurfaces, summarizeDiff, type SurfaceDiff, type SurfaceRecord, type SurfaceSummary } from './surface.js';

export async function readSurface(layout: InstallLayout, server: string, version: string): Promise<SurfaceRecord | undefined> {
  return readJson<SurfaceRecord>(layout.surfaceFile(layout.versionDir(server, version)));
}

export async function writeSurface(layout: InstallLayout, dir: string, surface: SurfaceRecord): Promise<void> {
  await writeFileAtomic(layout.surfaceFile(dir), `${JSON.stringify(surface, null, 2)}\n`);
}

export interface SurfaceComparison {
  server: string;
  /** The baseline; null when nothing is active to compare with (every item is then "added"). */
  from: { version: string; hash: string } | null;
  to: { version: string; hash: string };
  diff: SurfaceDiff;
  summary: SurfaceSummary;
}

/**
 * Compare two installed versions. Without `to`: the staged version, else the current one.
 * Without `from`: the current version, or the previous one when `to` is current.
 */
export async function compareSurfaces(
  layout: InstallLayout,
  state: Pick<StateStore, 'get'>,
  server: string,
  request: { from?: string; to?: string } = {},
): Promise<SurfaceComparison> {
  for (const [name, value] of Object.entries(request)) {
    if (value !== undefined && !isExactVersion(value)) {
      throw new ValidationError(`${name} "${value}" is not an exact version such as 1.2.3`, {
        path: name,
        hint: 'name installed versions (mcp-updater status <name> lists them)',
      });
    }
  }
  const record = await state.get(server);
  const current = await layout.currentVersion(server);
  const to = request.to ?? record.staged ?? current;
  if (!to) {
    throw new NotFoundError(`${server} has no version installed or staged to show the surface of`, {
      hint: `run mcp-updater check ${server} to stage one`,
    });
  }
  const from = request.from ?? (to !== current ? current : record.previous);
  const toSurface = await surfaceOf(layout, server, to);
  const fromSurface = from
    ? await surfaceOf(layout, server, from)
    : buildSurfaceRecord({ tools: [], prompts: [], resources: [], resourceTemplates: [] });
  const diff = diffSurfaces(fromSurface, toSurface);
  // A candidate can echo the smoke test's env (API keys) into a description: shown redacted.
  return redact({
    server,
    from: from ? { version: from, hash: fromSurface.hash } : null,
    to: { version: to, hash: toSurface.hash },
    diff,
    summary: summarizeDiff(diff),
  });
}

async function surfaceOf(layout: InstallLayout, server: string, version: string): Promise<SurfaceRecord> {
  const installed = await layout.installedVersions(server);
  if (!installed.includes(version)) {
    throw new NotFoundError(`${server} ${version} is not installed`, {
      hint: `choose an installed version: ${installed.length > 0 ? installed.sort().join(', ') : '(none)'}`,
      details: { server, version },
    });
  }
  const surface = await readSurface(layout, server, version);
  if (!surface) {
    throw new NotFoundError(
      `${server} ${version} has no surface record (it was staged with smoke tests off, or before surfaces were recorded)`,
      {
        hint: `a forced check (mcp-updater check ${server} --force) stages the newest version again and records its surface`,
        details: { server, version },
      },
    );
  }
  return surface;
}
