/*
 * Scenario 6, the HTTP API: autocannon (its own process) against the dashboard (a child process of
 * its own) for `/health` and for `/api/v1/servers` with N servers whose state is in Redis, as after
 * a check sweep. Two seconds of warm-up per endpoint are not counted.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { StateStore } from '../../shared/state.js';
import { BenchEnv } from '../lib/benchEnv.js';
import { fleet, inventoryYaml } from '../lib/fleet.js';
import { round } from '../lib/measure.js';
import { TsxChild } from '../lib/tsxChild.js';
import { PROJECT_ROOT } from '../lib/workerProcess.js';

export interface EndpointResult {
  path: string;
  seconds: number;
  connections: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  requests: number;
  /** Answers other than 2xx, and connection errors/timeouts: a non-zero count spoils the figure. */
  non2xx: number;
  errors: number;
}

export interface HttpResults {
  servers: number;
  health: EndpointResult;
  servers_list: EndpointResult;
}

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

async function autocannon(url: string, seconds: number, connections: number): Promise<AutocannonJson> {
  const cli = path.join(PROJECT_ROOT, 'node_modules', 'autocannon', 'autocannon.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, '--json', '--no-progress', '-c', String(connections), '-d', String(seconds), url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}: ${stderr}`));
      try {
        resolve(JSON.parse(stdout) as AutocannonJson);
      } catch (error) {
        reject(new Error(`autocannon printed no JSON (${(error as Error).message}): ${stdout.slice(0, 500)} ${stderr.slice(0, 500)}`));
      }
    });
  });
}

async function endpoint(base: string, urlPath: string, seconds: number, connections: number): Promise<EndpointResult> {
  await autocannon(`${base}${urlPath}`, Math.min(2, seconds), connections);
  const result = await autocannon(`${base}${urlPath}`, seconds, connections);
  return {
    path: urlPath,
    seconds,
    connections,
    requestsPerSecond: round(result.requests.average, 0),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** Redis state as a sweep leaves it: every server checked, a tenth of them with an update waiting. */
async function seedStates(env: BenchEnv, servers: ReturnType<typeof fleet>): Promise<void> {
  const store = new StateStore(env.redis, env.config);
  const at = new Date().toISOString();
  await Promise.all(
    servers.map((server, index) => {
      const update = index % 10 === 0;
      return store.update(server.name, {
        package: server.package,
        current: '1.0.0',
        latest: update ? '1.1.0' : '1.0.0',
        candidate: update ? '1.1.0' : '1.0.0',
        state: 'idle',
        lastCheck: at,
        lastCheckResult: update ? 'update 1.0.0 -> 1.1.0' : 'up to date',
      });
    }),
  );
}

export async function httpScenario(options: {
  registryUrl: string;
  servers: number;
  seconds: number;
  connections?: number;
}): Promise<HttpResults> {
  const connections = options.connections ?? 10;
  const env = await BenchEnv.create('http', { registryUrl: options.registryUrl, env: { PORT: '0', HOST: '127.0.0.1' } });
  let dashboard: TsxChild | undefined;
  try {
    const servers = fleet(options.servers, 'http-pkg');
    await env.writeInventory(inventoryYaml(servers, { smokeTest: false }));
    await seedStates(env, servers);
    dashboard = new TsxChild('dashboard.ts', env.env);
    const { url } = (await dashboard.next('ready', 60_000)) as unknown as { url: string };
    const health = await endpoint(url, '/health', options.seconds, connections);
    const list = await endpoint(url, '/api/v1/servers', options.seconds, connections);
    return { servers: servers.length, health, servers_list: list };
  } finally {
    await dashboard?.stop();
    await env.cleanup();
  }
}
