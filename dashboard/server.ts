/*
 * Runs the dashboard on HOST:PORT with its own Redis connection and producer client; `close()`
 * stops listening, ends open connections and closes what it opened (not the inventory, which
 * belongs to the caller).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProducerClient } from '../producers/client.js';
import type { Config } from '../shared/config.js';
import { ConfigurationError } from '../shared/errors.js';
import type { InventoryWatcher } from '../shared/inventory.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, waitForRedis } from '../shared/redis.js';
import { createDashboardApp, type DashboardOptions } from './app.js';

export { createDashboardApp, type DashboardDeps, type DashboardOptions } from './app.js';
export { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limit.js';

export interface RunningDashboard {
  /** http://HOST:PORT (the bound port when PORT is 0). */
  url: string;
  close(): Promise<void>;
}

export interface StartDashboardOptions extends DashboardOptions {
  inventory: InventoryWatcher;
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

export async function startDashboard(config: Config, options: StartDashboardOptions): Promise<RunningDashboard> {
  const { inventory, ...dashboardOptions } = options;
  const redis = createRedis(config, 'producer');
  const producer = ProducerClient.connect(config);
  // The rate limiters load their Redis scripts at once; give the connection a moment to be up
  // (when Redis is down the dashboard still starts: /ready says why, and the limiters retry).
  await waitForRedis(redis, config.redisUrl, 3_000).catch(() => undefined);
  const app = createDashboardApp({ ...dashboardOptions, config, inventory, redis, producer });
  const server = http.createServer(app);
  // Behind a proxy idle keep-alive sockets must outlive the proxy's own timeout.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await producer.close();
    redis.disconnect();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new ConfigurationError(`PORT/HOST: cannot listen on ${config.host}:${config.port} (${code})`, {
        path: code === 'EADDRNOTAVAIL' ? 'HOST' : 'PORT',
        cause: error,
        hint:
          code === 'EADDRINUSE'
            ? 'another process uses that port: stop it or set PORT to a free port'
            : 'set HOST/PORT to an address this process may bind',
      });
    }
    throw error;
  }
  const url = urlOf(server.address() as AddressInfo);
  createLogger('monitoring').info(`dashboard listening on ${url}`, { url, readOnly: !config.apiToken });
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await producer.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
