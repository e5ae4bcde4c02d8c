/*
 * loadConfig: every environment variable of the README "Environment", its default, and the exact
 * ConfigurationError ("<VARIABLE>: <what is wrong>", path = the variable) for bad values.
 * Every env object sets API_BASE_URL (or npm_config_registry) so loadConfig never runs npm.
 */
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig, npmConfiguredRegistry, resolveRegistry } from '../shared/config.js';
import { ConfigurationError } from '../shared/errors.js';

const REGISTRY = 'http://127.0.0.1:9/';

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { API_BASE_URL: REGISTRY, ...extra };
}

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  expect.fail('expected a ConfigurationError');
}

describe('config: loadConfig', () => {
  describe('defaults', () => {
    it('fills in every documented default when the environment is empty', () => {
      const config = loadConfig(env());
      expect(config.redisUrl).to.equal('redis://127.0.0.1:6379');
      expect(config.queuePrefix).to.equal('mcp');
      expect(config.apiBaseUrl).to.equal(REGISTRY);
      expect(config.serversConfig).to.equal(path.resolve('./mcp-servers.yaml'));
      expect(config.serversPath).to.equal(path.resolve('./data/servers'));
      expect(config.stagingDir).to.equal(path.resolve('./data/servers/.staging'));
      expect(config.backupDir).to.equal(path.resolve('./data/backups'));
      expect(config.logDir).to.equal(path.resolve('./data/logs'));
      expect(config.logLevel).to.equal('info');
      expect(config.maxRetries).to.equal(3);
      expect(config.host).to.equal('127.0.0.1');
      expect(config.port).to.equal(10250);
      expect(config.apiToken).to.equal(undefined);
      expect(config.registryToken).to.equal(undefined);
      expect(config.webhookSecret).to.equal(undefined);
      expect(config.checkSchedule).to.equal('0 */6 * * *');
      expect(config.cleanupSchedule).to.equal('30 3 * * *');
      expect(config.timezone).to.equal('UTC');
      expect(config.workers).to.deep.equal(['check', 'download', 'stage', 'activate', 'cleanup']);
      expect(config.webhookUrls).to.deep.equal([]);
      expect(config.tarballHosts).to.deep.equal([]);
      expect(config.concurrency).to.deep.equal({ check: 50, download: 10, stage: 4, activate: 4, cleanup: 1, webhook: 10 });
      expect(config.maxPackageFiles).to.equal(100_000);
    });

    it('gives the size limits as numbers of bytes by default', () => {
      const config = loadConfig(env());
      expect(config.maxTarballBytes).to.equal(100 * 1024 * 1024);
      expect(config.maxPackageBytes).to.equal(500 * 1024 * 1024);
    });

    it('returns a frozen object', () => {
      const config = loadConfig(env());
      expect(Object.isFrozen(config)).to.equal(true);
    });

    it('ignores unrelated environment variables', () => {
      const config = loadConfig(env({ HOME: '/root', PATH: '/usr/bin', SOMETHING_ELSE: 'x y z' }));
      expect(config.port).to.equal(10250);
    });
  });

  describe('registry', () => {
    it('uses npm_config_registry from the environment when API_BASE_URL is unset, with a trailing slash', () => {
      const config = loadConfig({ npm_config_registry: 'https://registry.example.com/npm' });
      expect(config.apiBaseUrl).to.equal('https://registry.example.com/npm/');
    });

    it('prefers API_BASE_URL over npm_config_registry', () => {
      const config = loadConfig({ API_BASE_URL: 'https://a.example/', npm_config_registry: 'https://b.example/' });
      expect(config.apiBaseUrl).to.equal('https://a.example/');
    });

    it('adds a trailing slash to API_BASE_URL', () => {
      expect(loadConfig({ API_BASE_URL: 'https://npm.example.com/registry' }).apiBaseUrl).to.equal('https://npm.example.com/registry/');
    });

    it('npmConfiguredRegistry reads npm_config_registry and NPM_CONFIG_REGISTRY', () => {
      expect(npmConfiguredRegistry({ npm_config_registry: 'https://x.example/' })).to.equal('https://x.example/');
      expect(npmConfiguredRegistry({ NPM_CONFIG_REGISTRY: 'https://y.example/' })).to.equal('https://y.example/');
    });

    it('refuses an npm registry that is not an http(s) URL when a role resolves it, not when loading', () => {
      const config = loadConfig({ npm_config_registry: 'registry.invalid' });
      const error = configError(() => resolveRegistry(config));
      expect(error.message).to.equal('API_BASE_URL: npm\'s configured registry "registry.invalid" is not an http(s) URL');
      expect(error.path).to.equal('API_BASE_URL');
    });
  });

  describe('parsing of valid values', () => {
    it('reads numbers, levels, hosts, schedules and the timezone', () => {
      const config = loadConfig(
        env({
          MAX_RETRIES: '7',
          PORT: '0',
          LOG_LEVEL: 'debug',
          HOST: '0.0.0.0',
          CHECK_SCHEDULE: '*/15 * * * *',
          CLEANUP_SCHEDULE: '0 4 * * SUN',
          SCHEDULE_TZ: 'Europe/Berlin',
          QUEUE_PREFIX: '{mcp}',
          REDIS_URL: 'rediss://cache.example:6380/2',
          API_TOKEN: '0123456789abcdef',
          REGISTRY_TOKEN: 'npm_abc',
          WEBHOOK_SECRET: 'whsec',
          MAX_PACKAGE_FILES: '100',
        }),
      );
      expect(config.maxRetries).to.equal(7);
      expect(config.port).to.equal(0);
      expect(config.logLevel).to.equal('debug');
      expect(config.host).to.equal('0.0.0.0');
      expect(config.checkSchedule).to.equal('*/15 * * * *');
      expect(config.cleanupSchedule).to.equal('0 4 * * SUN');
      expect(config.timezone).to.equal('Europe/Berlin');
      expect(config.queuePrefix).to.equal('{mcp}');
      expect(config.redisUrl).to.equal('rediss://cache.example:6380/2');
      expect(config.apiToken).to.equal('0123456789abcdef');
      expect(config.registryToken).to.equal('npm_abc');
      expect(config.webhookSecret).to.equal('whsec');
      expect(config.maxPackageFiles).to.equal(100);
    });

    it('resolves paths and puts STAGING_DIR under MCP_SERVERS_PATH unless set', () => {
      const config = loadConfig(env({ MCP_SERVERS_PATH: '/srv/mcp', MCP_SERVERS_CONFIG: 'conf/servers.yaml', LOG_DIR: '/var/log/mcp' }));
      expect(config.serversPath).to.equal('/srv/mcp');
      expect(config.stagingDir).to.equal('/srv/mcp/.staging');
      expect(config.serversConfig).to.equal(path.resolve('conf/servers.yaml'));
      expect(config.logDir).to.equal('/var/log/mcp');
      expect(loadConfig(env({ MCP_SERVERS_PATH: '/srv/mcp', STAGING_DIR: '/srv/stage' })).stagingDir).to.equal('/srv/stage');
    });

    const sizes: { input: string; bytes: number }[] = [
      { input: '2048', bytes: 2048 },
      { input: '512b', bytes: 512 },
      { input: '500kb', bytes: 500 * 1024 },
      { input: '1mb', bytes: 1024 * 1024 },
      { input: '1 GB', bytes: 1024 ** 3 },
    ];
    for (const { input, bytes } of sizes) {
      it(`MAX_TARBALL_SIZE=${input} is ${bytes} bytes`, () => {
        expect(loadConfig(env({ MAX_TARBALL_SIZE: input, MAX_PACKAGE_SIZE: input })).maxTarballBytes).to.equal(bytes);
        expect(loadConfig(env({ MAX_PACKAGE_SIZE: input })).maxPackageBytes).to.equal(bytes);
      });
    }

    it('splits WORKERS, trimming blanks', () => {
      expect(loadConfig(env({ WORKERS: ' check , stage,,' })).workers).to.deep.equal(['check', 'stage']);
    });

    it('overrides only the named CONCURRENCY entries', () => {
      const config = loadConfig(env({ CONCURRENCY: 'check=5, stage=2' }));
      expect(config.concurrency).to.deep.equal({ check: 5, download: 10, stage: 2, activate: 4, cleanup: 1, webhook: 10 });
    });

    it('splits WEBHOOK_URLS and lower-cases TARBALL_HOSTS', () => {
      const config = loadConfig(
        env({
          WEBHOOK_URLS: 'https://hooks.example/a, http://127.0.0.1:8080/b',
          TARBALL_HOSTS: 'CDN.Example.com, files.example',
        }),
      );
      expect(config.webhookUrls).to.deep.equal(['https://hooks.example/a', 'http://127.0.0.1:8080/b']);
      expect(config.tarballHosts).to.deep.equal(['cdn.example.com', 'files.example']);
    });
  });

  describe('invalid values', () => {
    const cases: { name: string; input: Record<string, string>; message: string; path: string }[] = [
      { name: 'MAX_RETRIES=abc', input: { MAX_RETRIES: 'abc' }, path: 'MAX_RETRIES', message: 'MAX_RETRIES: must be a number' },
      {
        name: 'MAX_RETRIES=0',
        input: { MAX_RETRIES: '0' },
        path: 'MAX_RETRIES',
        message: 'MAX_RETRIES: must be greater than or equal to 1',
      },
      { name: 'MAX_RETRIES=1.5', input: { MAX_RETRIES: '1.5' }, path: 'MAX_RETRIES', message: 'MAX_RETRIES: must be an integer' },
      {
        name: 'RATE_LIMIT_READ=-1',
        input: { RATE_LIMIT_READ: '-1' },
        path: 'RATE_LIMIT_READ',
        message: 'RATE_LIMIT_READ: must be greater than or equal to 0',
      },
      {
        name: 'RATE_LIMIT_LOGIN=lots',
        input: { RATE_LIMIT_LOGIN: 'lots' },
        path: 'RATE_LIMIT_LOGIN',
        message: 'RATE_LIMIT_LOGIN: must be a number',
      },
      { name: 'PORT=70000', input: { PORT: '70000' }, path: 'PORT', message: 'PORT: must be less than or equal to 65535' },
      { name: 'PORT=-1', input: { PORT: '-1' }, path: 'PORT', message: 'PORT: must be greater than or equal to 0' },
      { name: 'PORT empty', input: { PORT: '' }, path: 'PORT', message: 'PORT: must be a number' },
      {
        name: 'LOG_LEVEL=loud',
        input: { LOG_LEVEL: 'loud' },
        path: 'LOG_LEVEL',
        message: 'LOG_LEVEL: must be one of [error, warn, info, debug]',
      },
      {
        name: 'LOG_LEVEL=INFO (case matters)',
        input: { LOG_LEVEL: 'INFO' },
        path: 'LOG_LEVEL',
        message: 'LOG_LEVEL: must be one of [error, warn, info, debug]',
      },
      {
        name: 'REDIS_URL=http://x',
        input: { REDIS_URL: 'http://x' },
        path: 'REDIS_URL',
        message: 'REDIS_URL: must be a valid uri with a scheme matching the redis|rediss pattern',
      },
      { name: 'REDIS_URL empty', input: { REDIS_URL: '' }, path: 'REDIS_URL', message: 'REDIS_URL: is not allowed to be empty' },
      {
        name: 'QUEUE_PREFIX with spaces',
        input: { QUEUE_PREFIX: 'my prefix' },
        path: 'QUEUE_PREFIX',
        message: 'QUEUE_PREFIX: must be 1-64 characters of letters, digits, _ : - { }',
      },
      {
        name: 'QUEUE_PREFIX of 65 characters',
        input: { QUEUE_PREFIX: 'a'.repeat(65) },
        path: 'QUEUE_PREFIX',
        message: 'QUEUE_PREFIX: must be 1-64 characters of letters, digits, _ : - { }',
      },
      {
        name: 'API_BASE_URL=ftp://x',
        input: { API_BASE_URL: 'ftp://x' },
        path: 'API_BASE_URL',
        message: 'API_BASE_URL: must be a valid uri with a scheme matching the http|https pattern',
      },
      {
        name: 'CHECK_SCHEDULE="61 * * * *"',
        input: { CHECK_SCHEDULE: '61 * * * *' },
        path: 'CHECK_SCHEDULE',
        message: 'CHECK_SCHEDULE: must be a valid cron expression (Constraint error, got value 61 expected range 0-59)',
      },
      {
        name: 'CHECK_SCHEDULE with 3 fields',
        input: { CHECK_SCHEDULE: '* * *' },
        path: 'CHECK_SCHEDULE',
        message:
          'CHECK_SCHEDULE: must be a valid cron expression ("* * *" has 3 fields; cron needs 5 (minute hour day month weekday) or 6)',
      },
      {
        name: 'CLEANUP_SCHEDULE="0 25 * * *"',
        input: { CLEANUP_SCHEDULE: '0 25 * * *' },
        path: 'CLEANUP_SCHEDULE',
        message: 'CLEANUP_SCHEDULE: must be a valid cron expression (Constraint error, got value 25 expected range 0-23)',
      },
      {
        name: 'WORKERS=check,bogus',
        input: { WORKERS: 'check,bogus' },
        path: 'WORKERS',
        message: 'WORKERS: "bogus" is not a queue; use a comma-separated list of check, download, stage, activate, cleanup',
      },
      {
        name: 'API_TOKEN too short',
        input: { API_TOKEN: 'short' },
        path: 'API_TOKEN',
        message: 'API_TOKEN: must be at least 16 characters (use `openssl rand -hex 32`)',
      },
      {
        name: 'WEBHOOK_URLS with a non-URL',
        input: { WEBHOOK_URLS: 'https://hooks.example/ok,not a url' },
        path: 'WEBHOOK_URLS',
        message: 'WEBHOOK_URLS: "not a url" is not an http(s) URL',
      },
      {
        name: 'WEBHOOK_URLS with a non-http scheme',
        input: { WEBHOOK_URLS: 'ftp://hooks.example/x' },
        path: 'WEBHOOK_URLS',
        message: 'WEBHOOK_URLS: "ftp://hooks.example/x" is not an http(s) URL',
      },
      {
        name: 'CONCURRENCY=stage=0',
        input: { CONCURRENCY: 'stage=0' },
        path: 'CONCURRENCY',
        message: 'CONCURRENCY: "stage=0" must look like check=50,stage=4 (queue=positive number)',
      },
      {
        name: 'CONCURRENCY with an unknown queue',
        input: { CONCURRENCY: 'check=5,bogus=3' },
        path: 'CONCURRENCY',
        message: 'CONCURRENCY: "bogus=3" must look like check=50,stage=4 (queue=positive number)',
      },
      {
        name: 'CONCURRENCY without a number',
        input: { CONCURRENCY: 'stage' },
        path: 'CONCURRENCY',
        message: 'CONCURRENCY: "stage" must look like check=50,stage=4 (queue=positive number)',
      },
      {
        name: 'MAX_TARBALL_SIZE=huge',
        input: { MAX_TARBALL_SIZE: 'huge' },
        path: 'MAX_TARBALL_SIZE',
        message: 'MAX_TARBALL_SIZE: must be a size like 500kb, 100mb or 1gb',
      },
      {
        name: 'MAX_PACKAGE_SIZE=12tb',
        input: { MAX_PACKAGE_SIZE: '12tb' },
        path: 'MAX_PACKAGE_SIZE',
        message: 'MAX_PACKAGE_SIZE: must be a size like 500kb, 100mb or 1gb',
      },
      {
        name: 'MAX_PACKAGE_FILES=0',
        input: { MAX_PACKAGE_FILES: '0' },
        path: 'MAX_PACKAGE_FILES',
        message: 'MAX_PACKAGE_FILES: must be greater than or equal to 1',
      },
      {
        name: 'SCHEDULE_TZ=Mars/Olympus',
        input: { SCHEDULE_TZ: 'Mars/Olympus' },
        path: 'SCHEDULE_TZ',
        message: 'SCHEDULE_TZ: must be an IANA timezone such as UTC or Europe/Berlin',
      },
      { name: 'HOST with spaces', input: { HOST: 'not a host!' }, path: 'HOST', message: 'HOST: must be a valid hostname' },
    ];

    for (const { name, input, message, path: variable } of cases) {
      it(`refuses ${name}`, () => {
        const error = configError(() => loadConfig(env(input)));
        expect(error.message).to.equal(message);
        expect(error.path).to.equal(variable);
        expect(error.code).to.equal('ECONFIG');
        expect(error.hint).to.include(variable);
      });
    }
  });
});
