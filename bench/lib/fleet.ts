/*
 * A generated fleet: N servers, each with its own package in the fixture registry (so every check
 * fetches a packument of its own, as in a real inventory), the inventory YAML for them, and
 * seeding of their state in Redis.
 */
import { FixtureRegistry, fixturePackageDir } from '../../test/support/registry.js';
import { packDirectory, packEntries } from '../../test/support/tarball.js';
import { StateStore } from '../../shared/state.js';
import type { BenchEnv } from './benchEnv.js';

export interface FleetServer {
  name: string;
  package: string;
}

/** `count` servers named s00000… with packages `<packagePrefix>-00000…`. */
export function fleet(count: number, packagePrefix: string): FleetServer[] {
  const width = Math.max(5, String(count - 1).length);
  return Array.from({ length: count }, (_, index) => {
    const id = String(index).padStart(width, '0');
    return { name: `s${id}`, package: `${packagePrefix}-${id}` };
  });
}

export interface InventoryOptions {
  smokeTest: boolean;
  /** Smoke-test timeout (a loaded 2-core machine starts node slowly). */
  smokeTimeout?: string;
}

/** Inventory YAML: minReleaseAge 0 (abbreviated packuments), policy minor, activation auto. */
export function inventoryYaml(servers: FleetServer[], options: InventoryOptions): string {
  const lines = [
    'defaults:',
    '  policy: minor',
    '  minReleaseAge: 0',
    '  activation: auto',
    `  smokeTest: { enabled: ${options.smokeTest}, timeout: ${options.smokeTimeout ?? '30s'} }`,
    'servers:',
  ];
  for (const server of servers) lines.push(`  ${server.name}: { package: ${server.package} }`);
  return `${lines.join('\n')}\n`;
}

/**
 * A tiny zero-dependency package: package.json and a one-line bin script. Built in memory
 * (packEntries), so publishing ten thousand of them takes seconds.
 */
export async function tinyTarball(name: string, version: string): Promise<Buffer> {
  const packageJson = { name, version, description: 'bench package', bin: { [name]: 'server.js' }, license: 'MIT' };
  return packEntries([
    { path: 'package/package.json', body: `${JSON.stringify(packageJson, null, 2)}\n` },
    { path: 'package/server.js', body: '#!/usr/bin/env node\nprocess.stdin.resume();\n', mode: 0o755 },
  ]);
}

const PUBLISHED_LONG_AGO = new Date(Date.now() - 30 * 86_400_000);

/** Publish `version` of every server's package: tiny ones, or the fixture MCP server `fromFixture`. */
export async function publishFleet(
  registry: FixtureRegistry,
  servers: FleetServer[],
  version: string,
  fromFixture?: string,
): Promise<void> {
  const batch = 200;
  for (let start = 0; start < servers.length; start += batch) {
    await Promise.all(
      servers.slice(start, start + batch).map(async (server) => {
        const tarball = fromFixture
          ? await packDirectory(fixturePackageDir(fromFixture), { name: server.package, version })
          : await tinyTarball(server.package, version);
        await registry.publish({ name: server.package, version, tarball, publishedAt: PUBLISHED_LONG_AGO });
      }),
    );
  }
}

/** Record `current` for every server, as if it had been installed (the check reads Redis state). */
export async function seedCurrent(env: BenchEnv, servers: FleetServer[], current: string): Promise<void> {
  const store = new StateStore(env.redis, env.config);
  const batch = 1_000;
  for (let start = 0; start < servers.length; start += batch) {
    await Promise.all(
      servers.slice(start, start + batch).map((server) => store.update(server.name, { current, package: server.package, state: 'idle' })),
    );
  }
}
