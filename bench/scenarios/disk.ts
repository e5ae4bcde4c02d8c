/*
 * Scenario 9, disk: a fleet of fixture MCP servers whose every version carries the same
 * dependencies (an "SDK" of 40 files and a "schema" library, as real servers each carry the MCP
 * SDK, express, zod…), updated several times through the real pipeline (npm install in stage,
 * keep: 3, one SDK release on the way), then cleaned up. Reported: the bytes the kept versions take
 * on disk (each inode once: shared/store.ts treeUsage) against the bytes of the same versions as
 * full copies.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FixtureRegistry } from '../../test/support/registry.js';
import { fixturePackageDir } from '../../test/support/registry.js';
import { packEntries } from '../../test/support/tarball.js';
import { treeUsage } from '../../shared/store.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { fleet, inventoryYaml, type FleetServer } from '../lib/fleet.js';
import { mb, pollUntil, round } from '../lib/measure.js';
import { WorkerSession } from '../lib/workerSession.js';

export interface DiskResults {
  servers: number;
  /** Versions each server went through (the first install included). */
  versions: number;
  keep: number;
  /** Version directories left after cleanup. */
  keptVersions: number;
  /** The kept versions' files as full copies (MB). */
  fullCopiesMb: number;
  /** What the install root takes, each inode once (MB); allocated blocks in the second figure. */
  onDiskMb: number;
  allocatedMb: number;
  /** onDisk / fullCopies, %. */
  ratioPercent: number;
  /** Per server: each inode once, and what only it holds. */
  perServer: Array<{ name: string; mb: number; exclusiveMb: number }>;
}

const LONG_AGO = new Date(Date.now() - 30 * 86_400_000);

/** A dependency of `files` modules of about 24 KB each; `changed` of them differ in this release. */
function library(name: string, version: string, files: number, changed: number): Promise<Buffer> {
  const entries = [
    { path: 'package/package.json', body: `${JSON.stringify({ name, version, main: 'dist/file-00.js', license: 'MIT' }, null, 2)}\n` },
  ];
  for (let index = 0; index < files; index += 1) {
    const release = index < changed ? version : 'stable';
    const lines = Array.from(
      { length: 600 },
      (_, line) => `export const ${name.replace(/\W/g, '_')}_${index}_${line} = ${JSON.stringify(`${release}:${line * (index + 1)}`)};`,
    );
    entries.push({ path: `package/dist/file-${String(index).padStart(2, '0')}.js`, body: `${lines.join('\n')}\n` });
  }
  return packEntries(entries);
}

async function publishDependencies(registry: FixtureRegistry): Promise<void> {
  const publish = async (name: string, version: string, tarball: Buffer) =>
    registry.publish({ name, version, tarball, publishedAt: LONG_AGO });
  await publish('disk-sdk', '1.0.0', await library('disk-sdk', '1.0.0', 40, 40));
  await publish('disk-sdk', '1.1.0', await library('disk-sdk', '1.1.0', 40, 4));
  await publish('disk-schema', '1.0.0', await library('disk-schema', '1.0.0', 15, 15));
}

/** The fixture MCP server, depending on the SDK release of its time. */
async function publishServers(registry: FixtureRegistry, servers: FleetServer[], version: string, sdk: string): Promise<void> {
  await Promise.all(
    servers.map((server) =>
      registry.publish({
        name: server.package,
        version,
        fromDir: fixturePackageDir('mcp-healthy'),
        publishedAt: LONG_AGO,
        packageJson: { dependencies: { 'disk-sdk': sdk, 'disk-schema': '1.0.0' } },
      }),
    ),
  );
}

async function updateAll(session: WorkerSession, servers: FleetServer[], version: string): Promise<void> {
  await session.resetCounters();
  await session.client.checkAll(
    servers.map((server) => server.name),
    { reason: 'bench' },
  );
  let counts: Record<string, number> = {};
  await pollUntil(
    `the fleet to activate ${version}`,
    async () => {
      counts = await session.countsByResult('updates_total');
      return (counts.activated ?? 0) + (counts.failed ?? 0) >= servers.length;
    },
    { timeoutMs: 600_000, intervalMs: 100, stuck: session.stuck },
  );
  if (counts.failed) throw new Error(`${counts.failed} of ${servers.length} servers failed to activate ${version}`);
}

export async function diskScenario(options: { registry: FixtureRegistry; servers: number; versions: number }): Promise<DiskResults> {
  const servers = fleet(options.servers, 'disk-mcp');
  const versions = Array.from({ length: options.versions }, (_, index) => `1.${index}.0`);
  // The SDK's minor release arrives with the second half of the versions.
  const sdkFor = (index: number) => (index < Math.ceil(versions.length / 2) ? '1.0.0' : '1.1.0');
  await publishDependencies(options.registry);
  const env = await BenchEnv.create('disk', { registryUrl: options.registry.url });
  let session: WorkerSession | undefined;
  try {
    await env.writeInventory(inventoryYaml(servers, { smokeTest: false }));
    session = await WorkerSession.start(env);
    for (const [index, version] of versions.entries()) {
      await publishServers(options.registry, servers, version, sdkFor(index));
      await updateAll(session, servers, version);
    }
    const { jobId } = await session.client.cleanup({ reason: 'bench' });
    await session.client.waitFor('cleanup', jobId);

    const root = env.config.serversPath;
    const perServer: DiskResults['perServer'] = [];
    let fullCopies = 0;
    let keptVersions = 0;
    for (const server of servers) {
      const usage = await treeUsage(path.join(root, server.name));
      fullCopies += usage.logicalBytes;
      keptVersions += (await fs.readdir(path.join(root, server.name, 'versions'))).length;
      perServer.push({ name: server.name, mb: mb(usage.bytes), exclusiveMb: mb(usage.exclusiveBytes) });
    }
    // The whole install root, store included: its entries are further links to the same inodes,
    // counted once here (and never in the full copies).
    const total = await treeUsage(root);
    return {
      servers: servers.length,
      versions: versions.length,
      keep: 3,
      keptVersions,
      fullCopiesMb: mb(fullCopies),
      onDiskMb: mb(total.bytes),
      allocatedMb: mb(total.allocatedBytes),
      ratioPercent: round((total.bytes / fullCopies) * 100, 1),
      perServer,
    };
  } finally {
    await session?.stop();
    await env.cleanup();
  }
}
