/*
 * mcp-updater's own version, from its package.json: one directory above shared/ when run from the
 * sources (tsx), two above dist/shared/ (or dist/cli-bundle/, the CLI bundle) when compiled.
 */
import fs from 'node:fs';

function readVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    const file = new URL(relative, import.meta.url);
    if (!fs.existsSync(file)) continue;
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version: string };
    if (manifest.name === 'mcp-updater') return manifest.version;
  }
  return 'unknown';
}

export const PACKAGE_VERSION = readVersion();
