/*
 * /metrics: a prom-client registry with Node's default process metrics and every metric of
 * the README ("HTTP API", /metrics) under `mcp_updater_`. Pipeline counters live in Redis hashes (shared/metrics.ts) so
 * that the count covers every worker process; each scrape reads them once (shared by all metrics
 * of that scrape) and sets the prom-client values from them.
 */
import client, { type Metric, type MetricValueWithName } from 'prom-client';
import type { InventoryWatcher } from '../shared/inventory.js';
import type { MetricsRecorder } from '../shared/metrics.js';
import type { ServerView } from '../shared/serverView.js';
import type { QueueCounts } from './queue-counts.js';
import type { ServerOverview } from './servers.js';

export const METRIC_PREFIX = 'mcp_updater_';

type CounterRows = Array<{ labels: string[]; value: number }>;

interface ScrapeData {
  checks: CounterRows;
  updates: CounterRows;
  rollbacks: CounterRows;
  surfaceChanges: CounterRows;
  provenance: CounterRows;
  lastChecks: Record<string, number>;
  stageDurations: Awaited<ReturnType<MetricsRecorder['readStageDurations']>>;
  servers: ServerView[];
}

export interface MetricsDeps {
  recorder: MetricsRecorder;
  servers: ServerOverview;
  queueCounts: QueueCounts;
  inventory: InventoryWatcher;
  /** Default process metrics (cpu, memory, event loop lag...); on unless false. */
  processMetrics?: boolean;
}

/**
 * stage_duration_seconds as kept in Redis: cumulative bucket counts, sum and count. prom-client's
 * Histogram can only observe; this metric object hands the stored values to prom-client's own
 * formatter (Registry calls get() on anything registered).
 */
class StoredHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum' as const;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Promise<ScrapeData['stageDurations']>,
  ) {}

  /** What prom-client's Registry formats (the shape of Histogram#get()). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] }> {
    const data = await this.read();
    const values: MetricValueWithName<string>[] = data.buckets.map((bucket) => ({
      metricName: `${this.name}_bucket`,
      labels: { le: bucket.le },
      value: bucket.count,
    }));
    values.push(
      { metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: data.count },
      { metricName: `${this.name}_sum`, labels: {}, value: data.sum },
      { metricName: `${this.name}_count`, labels: {}, value: data.count },
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

export function createMetricsRegistry(deps: MetricsDeps): client.Registry {
  const registry = new client.Registry();
  if (deps.processMetrics !== false) client.collectDefaultMetrics({ register: registry });

  // One Redis read per scrape, shared by every metric that the scrape collects.
  let scrape: { at: number; data: Promise<ScrapeData> } | undefined;
  const data = (): Promise<ScrapeData> => {
    if (!scrape || Date.now() - scrape.at > 250) {
      const loading = Promise.all([
        deps.recorder.readCounter('checks_total'),
        deps.recorder.readCounter('updates_total'),
        deps.recorder.readCounter('rollbacks_total'),
        deps.recorder.readCounter('surface_changes_total'),
        deps.recorder.readCounter('provenance_total'),
        deps.recorder.readLastChecks(),
        deps.recorder.readStageDurations(),
        deps.servers.list(),
      ]).then(([checks, updates, rollbacks, surfaceChanges, provenance, lastChecks, stageDurations, servers]) => ({
        checks,
        updates,
        rollbacks,
        surfaceChanges,
        provenance,
        lastChecks,
        stageDurations,
        servers,
      }));
      scrape = { at: Date.now(), data: loading };
      loading.catch(() => {
        scrape = undefined;
      });
    }
    return scrape.data;
  };

  /*
   * The ecosystem label (npm | pypi) is the one the inventory gives the server now: a function of
   * the server, so it adds no series; a server gone from the inventory is "unknown".
   */
  const ecosystemOf = (server: string): string => {
    const settings = deps.inventory.server(server);
    return settings ? (settings.ecosystem ?? 'npm') : 'unknown';
  };

  const storedCounter = <L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    rows: (d: ScrapeData) => CounterRows,
    options: { ecosystem?: boolean } = {},
  ) =>
    new client.Counter<L | 'ecosystem'>({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: options.ecosystem ? [...labelNames, 'ecosystem'] : labelNames,
      registers: [registry],
      async collect() {
        const scraped = rows(await data());
        this.reset();
        for (const row of scraped) {
          if (row.labels.length !== labelNames.length) continue;
          const labels = Object.fromEntries(labelNames.map((label, index) => [label, row.labels[index]!])) as Partial<
            Record<L | 'ecosystem', string>
          >;
          // Counter rows start with the server name (shared/metrics.ts).
          if (options.ecosystem) labels.ecosystem = ecosystemOf(row.labels[0]!);
          this.inc(labels, row.value);
        }
      },
    });

  storedCounter(
    'checks_total',
    'Checks run, by server, result (up-to-date, held-back, update, error) and ecosystem (npm, pypi).',
    ['server', 'result'],
    (d) => d.checks,
    { ecosystem: true },
  );
  storedCounter('updates_total', 'Updates attempted, by server, result and ecosystem.', ['server', 'result'], (d) => d.updates, {
    ecosystem: true,
  });
  storedCounter('rollbacks_total', 'Rollbacks done, by server and ecosystem.', ['server'], (d) => d.rollbacks, { ecosystem: true });
  storedCounter(
    'surface_changes_total',
    'Staged versions whose MCP surface differed from the active one, by server and class (additive, changed, breaking).',
    ['server', 'class'],
    (d) => d.surfaceChanges,
  );
  storedCounter(
    'provenance_total',
    'Registry signature checks of candidate versions, by server and result (verified, unsigned, invalid, unknown-key, expired-key, unverified).',
    ['server', 'result'],
    (d) => d.provenance,
  );

  registry.registerMetric(
    new StoredHistogram(
      `${METRIC_PREFIX}stage_duration_seconds`,
      'Duration of stage jobs (extract, install dependencies, smoke test) in seconds.',
      async () => (await data()).stageDurations,
    ) as unknown as Metric,
  );

  new client.Gauge<'server' | 'version' | 'ecosystem'>({
    name: `${METRIC_PREFIX}server_info`,
    help: 'The active version of each server, with its ecosystem (value is always 1).',
    labelNames: ['server', 'version', 'ecosystem'],
    registers: [registry],
    async collect() {
      const { servers } = await data();
      this.reset();
      for (const server of servers) {
        if (server.current) this.set({ server: server.name, version: server.current, ecosystem: server.ecosystem }, 1);
      }
    },
  });

  new client.Gauge<'server'>({
    name: `${METRIC_PREFIX}server_update_available`,
    help: '1 when the policy allows a version other than the active one.',
    labelNames: ['server'],
    registers: [registry],
    async collect() {
      const { servers } = await data();
      this.reset();
      for (const server of servers) this.set({ server: server.name }, server.updateAvailable ? 1 : 0);
    },
  });

  new client.Gauge<'server'>({
    name: `${METRIC_PREFIX}last_check_timestamp_seconds`,
    help: 'Unix time of the last finished check of each server.',
    labelNames: ['server'],
    registers: [registry],
    async collect() {
      const { lastChecks } = await data();
      this.reset();
      for (const [server, seconds] of Object.entries(lastChecks)) {
        if (deps.inventory.server(server)) this.set({ server }, seconds);
      }
    },
  });

  new client.Gauge<'queue' | 'state'>({
    name: `${METRIC_PREFIX}queue_jobs`,
    help: 'Jobs per queue and state.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const counts = await deps.queueCounts.read();
      this.reset();
      for (const [queue, byState] of Object.entries(counts)) {
        for (const [state, count] of Object.entries(byState)) this.set({ queue, state }, count);
      }
    },
  });

  return registry;
}
