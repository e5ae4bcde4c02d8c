/*
 * Child process of the HTTP scenario: the dashboard exactly as `start --role dashboard` builds it
 * (startDashboard(config, {inventory})), on its own core, so the load generator (autocannon, in
 * another process) never shares its event loop. The only change is a read rate limit high enough
 * never to answer 429 to one address sending thousands of requests a second; the limiter itself
 * still runs (one Redis command per request), as in production.
 */
import { startDashboard } from '../../dashboard/server.js';
import { loadConfig } from '../../shared/config.js';
import { inventoryDefaults, InventoryWatcher } from '../../shared/inventory.js';
import { configureLogging } from '../../shared/logger.js';

const config = loadConfig(process.env);
configureLogging({ logDir: config.logDir, logLevel: config.logLevel, console: 'off' });
const inventory = await InventoryWatcher.open(config.serversConfig, inventoryDefaults(config));
const dashboard = await startDashboard(config, { inventory, rateLimits: { read: 1_000_000_000 } });
process.send!({ type: 'ready', url: dashboard.url });

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  void dashboard.close().finally(() => {
    inventory.close();
    process.exit(0);
  });
});
