/*
 * What the status page, GET /api/v1/servers and the metrics show for each inventory server: its
 * settings joined with its state in Redis. Read with one pipelined StateStore.getMany and kept
 * for about a second (one refresh at a time), so a thousand servers polled by many clients cost
 * Redis one round trip per second.
 */
import type { InventoryWatcher, ServerSettings } from '../shared/inventory.js';
import type { HistoryEntry, InstallLayout } from '../shared/layout.js';
import { redact, redactArguments, redactString, REDACTED } from '../shared/redact.js';
import type { ServerState, ServerStateName, StateStore } from '../shared/state.js';

export interface ServerView {
  name: string;
  package: string;
  current?: string;
  previous?: string;
  /** What the followed dist-tag points at. */
  latest?: string;
  /** Highest version the policy allows now (may equal current). */
  candidate?: string;
  /** A candidate other than the current version exists. */
  updateAvailable: boolean;
  /** Staged version waiting for approval. */
  staged?: string;
  state: ServerStateName;
  lastCheck?: string;
  lastCheckResult?: string;
  lastError?: string;
  failedVersions: string[];
  policy: ServerSettings['policy'];
  channel: string;
  activation: ServerSettings['activation'];
  /** The path MCP clients run: $MCP_SERVERS_PATH/bin/<name>. */
  launcher: string;
}

/**
 * Settings as the API shows them: smoke-test environment values are hidden (they may be keys),
 * and so is every secret-looking smoke-test argument (`--token …`, a DSN's password).
 */
export type PublicSettings = Omit<ServerSettings, 'name' | 'package'>;

export interface ServerDetail extends ServerView {
  settings: PublicSettings;
  history: HistoryEntry[];
}

interface Snapshot {
  digest: string;
  takenAt: number;
  views: ServerView[];
  json?: string;
}

export interface ServerOverviewOptions {
  inventory: InventoryWatcher;
  state: StateStore;
  layout: InstallLayout;
  /** How long a snapshot is served (ms). */
  cacheMs?: number;
}

export function serverView(settings: ServerSettings, state: ServerState, layout: InstallLayout): ServerView {
  return {
    name: settings.name,
    package: settings.package,
    current: state.current,
    previous: state.previous,
    latest: state.latest,
    candidate: state.candidate,
    updateAvailable: state.candidate !== undefined && state.candidate !== state.current,
    staged: state.staged,
    state: state.state,
    lastCheck: state.lastCheck,
    lastCheckResult: state.lastCheckResult === undefined ? undefined : redactString(state.lastCheckResult),
    lastError: state.lastError === undefined ? undefined : redactString(state.lastError),
    failedVersions: state.failedVersions,
    policy: settings.policy,
    channel: settings.channel,
    activation: settings.activation,
    launcher: layout.launcher(settings.name),
  };
}

export function publicSettings(settings: ServerSettings): PublicSettings {
  const { name: _name, package: _package, ...rest } = settings;
  const env = Object.fromEntries(Object.keys(settings.smokeTest.env).map((key) => [key, REDACTED]));
  return { ...rest, smokeTest: { ...settings.smokeTest, args: redactArguments(settings.smokeTest.args), env } };
}

export class ServerOverview {
  private snapshot?: Snapshot;
  private refreshing?: Promise<Snapshot>;
  /** Bumped by invalidate(), so a read that started before a change is not kept. */
  private generation = 0;
  private readonly cacheMs: number;

  constructor(private readonly options: ServerOverviewOptions) {
    this.cacheMs = options.cacheMs ?? 1_000;
  }

  /** Every inventory server, in inventory order. */
  async list(): Promise<ServerView[]> {
    return (await this.current()).views;
  }

  /** `{"servers":[...]}` rendered once per snapshot. */
  async listJson(): Promise<string> {
    const snapshot = await this.current();
    snapshot.json ??= JSON.stringify({ servers: snapshot.views });
    return snapshot.json;
  }

  /** One server with its settings and history, read fresh; undefined when not in the inventory. */
  async detail(name: string): Promise<ServerDetail | undefined> {
    const settings = this.options.inventory.server(name);
    if (!settings) return undefined;
    const [state, history] = await Promise.all([this.options.state.get(name), this.options.state.history(name)]);
    return { ...serverView(settings, state, this.options.layout), settings: publicSettings(settings), history: redact(history) };
  }

  /** Forget the snapshot (after a change made through the API). */
  invalidate(): void {
    this.snapshot = undefined;
    this.refreshing = undefined;
    this.generation++;
  }

  private async current(): Promise<Snapshot> {
    const digest = this.options.inventory.inventory.digest;
    const snapshot = this.snapshot;
    if (snapshot && snapshot.digest === digest && Date.now() - snapshot.takenAt < this.cacheMs) return snapshot;
    if (!this.refreshing) {
      const refreshing = this.take().finally(() => {
        if (this.refreshing === refreshing) this.refreshing = undefined;
      });
      this.refreshing = refreshing;
    }
    return this.refreshing;
  }

  private async take(): Promise<Snapshot> {
    const generation = this.generation;
    const inventory = this.options.inventory.inventory;
    const settings = [...inventory.servers.values()];
    const states = await this.options.state.getMany(settings.map((server) => server.name));
    const views = settings.map((server, index) => serverView(server, states[index]!, this.options.layout));
    const snapshot: Snapshot = { digest: inventory.digest, takenAt: Date.now(), views };
    if (generation === this.generation) this.snapshot = snapshot;
    return snapshot;
  }
}
