/*
 * The deployment files, checked without a Docker engine: docker-compose.yml parsed as YAML
 * (services, replicas, volumes, health checks, every setting of the environment contract) and
 * the Dockerfile read as text (two stages, production dependencies only, a non-root user).
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import YAML from 'yaml';

const read = (file: string) => fs.readFile(fileURLToPath(new URL(`../${file}`, import.meta.url)), 'utf8');

/** The README's environment table: variable -> default ('' = unset by default). */
const DOCUMENTED_ENV: Record<string, string> = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  QUEUE_PREFIX: 'mcp',
  API_BASE_URL: '',
  MCP_SERVERS_CONFIG: './mcp-servers.yaml',
  MCP_SERVERS_PATH: './data/servers',
  STAGING_DIR: '',
  BACKUP_DIR: './data/backups',
  LOG_DIR: './data/logs',
  LOG_LEVEL: 'info',
  MAX_RETRIES: '3',
  HOST: '127.0.0.1',
  PORT: '10250',
  API_TOKEN: '',
  CHECK_SCHEDULE: '0 */6 * * *',
  CLEANUP_SCHEDULE: '30 3 * * *',
  WORKERS: 'check,download,stage,activate,cleanup',
  WEBHOOK_URLS: '',
};
/** Set inside the containers to the container's paths and addresses, not to the documented defaults. */
const CONTAINER_VALUES: Record<string, string> = {
  REDIS_URL: '${REDIS_URL:-redis://redis:6379}',
  MCP_SERVERS_CONFIG: '/config/mcp-servers.yaml',
  MCP_SERVERS_PATH: '/data/servers',
  BACKUP_DIR: '/data/backups',
  LOG_DIR: '/data/logs',
};
const APP_SERVICES = ['scheduler', 'worker', 'dashboard'];

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
}

describe('deployment: docker-compose.yml', () => {
  let compose: { services: Record<string, Service>; volumes: Record<string, unknown> };
  let configVariables: string[];

  before(async () => {
    compose = YAML.parse(await read('docker-compose.yml'), { merge: true });
    // Every variable shared/config.ts reads (its joi schema keys).
    const source = await read('shared/config.ts');
    const schema = source.slice(source.indexOf('const envSchema'), source.indexOf('}).unknown(', source.indexOf('const envSchema')));
    configVariables = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((match) => match[1]!);
  });

  it('has redis, one scheduler, three workers and the dashboard', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['dashboard', 'redis', 'scheduler', 'worker']);
    expect(compose.services.scheduler!.command).to.deep.equal(['start', '--role', 'scheduler']);
    expect(compose.services.scheduler!.deploy?.replicas ?? 1).to.equal(1);
    expect(compose.services.worker!.command).to.deep.equal(['start', '--role', 'worker']);
    expect(compose.services.worker!.deploy?.replicas).to.equal(3);
    expect(compose.services.dashboard!.command).to.deep.equal(['start', '--role', 'dashboard']);
  });

  it('runs Redis 7 with AOF, noeviction, a health check and a volume', () => {
    const redis = compose.services.redis!;
    expect(redis.image).to.equal('redis:7');
    expect(redis.command!.join(' ')).to.include('--appendonly yes').and.include('--maxmemory-policy noeviction');
    expect(redis.healthcheck!.test).to.deep.equal(['CMD', 'redis-cli', 'ping']);
    expect(redis.volumes).to.deep.equal(['redis-data:/data']);
  });

  it('starts every app service after Redis is healthy, from the one image, sharing the volumes', () => {
    for (const name of APP_SERVICES) {
      const service = compose.services[name]!;
      expect(service.depends_on, name).to.deep.equal({ redis: { condition: 'service_healthy' } });
      expect(service.build, name).to.equal('.');
      expect(service.image, name).to.equal('mcp-updater:latest');
      expect(service.volumes, name).to.include.members(['servers:/data/servers', 'backups:/data/backups', 'logs:/data/logs']);
      const inventory = service.volumes!.find((volume) => volume.includes(':/config/mcp-servers.yaml'));
      expect(inventory, `${name}: inventory mount`).to.match(/:ro$/);
    }
    expect(Object.keys(compose.volumes).sort()).to.deep.equal(['backups', 'logs', 'redis-data', 'servers']);
  });

  it('passes every variable of the environment contract and of shared/config.ts, with the documented defaults', () => {
    expect(configVariables).to.include.members(Object.keys(DOCUMENTED_ENV));
    expect(configVariables).to.include.members([
      'REGISTRY_TOKEN',
      'TARBALL_HOSTS',
      'SCHEDULE_TZ',
      'CONCURRENCY',
      'WEBHOOK_SECRET',
      'MAX_TARBALL_SIZE',
      'MAX_PACKAGE_SIZE',
      'MAX_PACKAGE_FILES',
    ]);
    for (const name of APP_SERVICES) {
      const environment = compose.services[name]!.environment!;
      expect(Object.keys(environment).sort(), name).to.deep.equal([...configVariables].sort());
      for (const [variable, defaultValue] of Object.entries(DOCUMENTED_ENV)) {
        const value = environment[variable];
        if (variable in CONTAINER_VALUES) {
          expect(value, `${name} ${variable}`).to.equal(CONTAINER_VALUES[variable]);
        } else if (name === 'dashboard' && variable === 'HOST') {
          expect(value).to.equal('0.0.0.0');
        } else if (defaultValue === '') {
          // Unset by default: passed through only when set (an empty value would not validate).
          expect(value === null || value === `\${${variable}:-}`, `${name} ${variable}: ${value}`).to.equal(true);
        } else {
          expect(value, `${name} ${variable}`).to.equal(`\${${variable}:-${defaultValue}}`);
        }
      }
      expect(environment.API_TOKEN, `${name}: API_TOKEN comes from the host environment`).to.equal(null);
    }
  });

  it('publishes the dashboard on 10250 with a health check', () => {
    const dashboard = compose.services.dashboard!;
    expect(dashboard.ports).to.deep.equal(['${DASHBOARD_BIND:-127.0.0.1}:${DASHBOARD_PORT:-10250}:${PORT:-10250}']);
    expect(dashboard.healthcheck!.test.join(' ')).to.include('/health');
  });
});

describe('deployment: Dockerfile', () => {
  let stages: Array<{ name: string; lines: string[] }>;

  before(async () => {
    stages = [];
    const lines = (await read('Dockerfile'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const line of lines) {
      const from = /^FROM\s+\S+\s+AS\s+(\S+)$/i.exec(line);
      if (from) stages.push({ name: from[1]!, lines: [] });
      else stages.at(-1)?.lines.push(line);
    }
  });

  it('has a build stage that installs everything and type-checks', () => {
    expect(stages.map((stage) => stage.name)).to.deep.equal(['build', 'runtime']);
    const build = stages[0]!.lines;
    expect(build).to.include('RUN npm ci --no-audit --no-fund');
    expect(build).to.include('RUN npm run build');
  });

  it('has a runtime stage with production dependencies, the sources and a non-root user', () => {
    const runtime = stages[1]!.lines;
    expect(runtime.some((line) => /^RUN npm ci --omit=dev\b/.test(line))).to.equal(true);
    for (const dir of ['bin', 'cli', 'producers', 'workers', 'dashboard', 'shared']) {
      expect(runtime, dir).to.include(`COPY --from=build /app/${dir} ./${dir}`);
    }
    const users = runtime.filter((line) => line.startsWith('USER '));
    expect(users).to.have.length.greaterThan(0);
    expect(users.at(-1)).to.not.match(/^USER\s+(root|0)(:|$)/);
    expect(runtime).to.include('ENTRYPOINT ["node", "bin/mcp-updater.js"]');
    expect(runtime).to.include('CMD ["start"]');
  });
});

describe('deployment: README', () => {
  it('documents every environment variable of shared/config.ts and every CLI command', async () => {
    const readme = await read('README.md');
    const environment = readme.slice(readme.indexOf('## Environment'), readme.indexOf('## CLI'));
    const source = await read('shared/config.ts');
    const schema = source.slice(source.indexOf('const envSchema'), source.indexOf('}).unknown(', source.indexOf('const envSchema')));
    for (const [, variable] of schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)) {
      expect(environment, variable).to.include(`\`${variable}\``);
    }
    for (const command of ['start', 'servers', 'check', 'status', 'approve', 'rollback', 'cleanup', 'import', 'config check']) {
      expect(readme, command).to.include(`mcp-updater ${command}`);
    }
    expect(readme).to.match(/## Benchmarks\n\n`npm run bench` measures[^#]*bench\/results\/latest\.json/);
  });
});
