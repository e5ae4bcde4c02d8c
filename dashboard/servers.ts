/*
 * The status page's, GET /api/v1/servers' and the metrics' view of the inventory servers: the
 * read model of shared/serverView.ts, read with one pipelined StateStore.getMany and kept for
 * about a second (one refresh at a time), so a thousand servers polled by many clients cost
 * Redis one round trip per second.
 */
import type { InventoryWatcher } from '../shared/inventory.js';
import type { InstallLayout } from '../shared/layout.js';
import { readServerDetail, readServerViews, type ServerDetail, type ServerView } from '../shared/serverView.js';
import type { StateStore } from '../shared/state.js';

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
    return settings ? readServerDetail(settings, this.options.state, this.options.layout) : undefined;
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
    const views = await readServerViews([...inventory.servers.values()], this.options.state, this.options.layout);
    const snapshot: Snapshot = { digest: inventory.digest, takenAt: Date.now(), views };
    if (generation === this.generation) this.snapshot = snapshot;
    return snapshot;
  }
}
