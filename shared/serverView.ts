/*
 * The one read model of a server: its inventory settings joined with its state in Redis, as the
 * status page, GET /api/v1/servers[/:name], GET /status and the CLI (`servers`, `status`) show
 * it. Every key is always present (an absent value is null), error text is redacted, and the
 * settings leave out smoke-test env values (they are often API keys).
 */
import type { Activation, Ecosystem, Policy, PythonSettings, ServerSettings, SmokeTestSettings } from './inventory.js';
import { formatBytes, relativeTime } from './humanTime.js';
import type { HistoryEntry, InstallLayout } from './layout.js';
import type { ProvenanceSource } from './provenance.js';
import { redact, redactArguments, redactString, REDACTED } from './redact.js';
import type { ServerState, ServerStateName, StateStore } from './state.js';
import type { ServerDiskUsage } from './store.js';
import { SERVER_STATES } from './stateMachine.js';

export interface ServerView {
  name: string;
  /** Where the package comes from: npm, or pypi (docs/ARCHITECTURE.md "Ecosystems"). */
  ecosystem: Ecosystem;
  package: string;
  /** The dist-tag followed. */
  channel: string;
  policy: Policy;
  activation: Activation;
  /** Active version: what bin/<name> runs. */
  current: string | null;
  previous: string | null;
  /** What the followed dist-tag points at. */
  latest: string | null;
  /** Highest version the policy allows now (may equal current). */
  candidate: string | null;
  /** A candidate other than the current version exists. */
  updateAvailable: boolean;
  /** Staged version waiting for approval. */
  staged: string | null;
  /** Why it waits when the surface gate holds it: the class and what changed (see /diff). */
  gate: string | null;
  state: ServerStateName;
  lastCheck: string | null;
  /** Short outcome of the last check ("up to date", "update 1.2.3"). */
  lastCheckResult: string | null;
  lastError: string | null;
  /** Versions that failed for a cause of their own; checks skip them unless forced. */
  failedVersions: string[];
  /** After a rollback down: the version rolled away from; checks stay at or below it until a newer one is published. */
  hold: string | null;
  /** The path MCP clients run: $MCP_SERVERS_PATH/bin/<name>. */
  launcher: string;
  /** Bytes on disk (shared/store.ts ServerDiskUsage), measured after the last stage, activation or cleanup; null before any. */
  disk: ServerDiskUsage | null;
}

/** Optional keys made required, absent as null: the JSON always has every key. */
type WithNulls<T> = { [K in keyof T]-?: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K] };

/**
 * The settings that decide updates, as the inventory resolved them. Derived from ServerSettings,
 * so a setting added there does not compile until publicSettings() decides how to show it.
 */
export type PublicSettings = WithNulls<Omit<ServerSettings, 'name' | 'package' | 'smokeTest' | 'python'>> & {
  python: WithNulls<PythonSettings> | null;
  /** `env` keys only: every value is "[REDACTED]". */
  smokeTest: WithNulls<SmokeTestSettings>;
};

export interface ServerDetail extends ServerView {
  settings: PublicSettings;
  /** Newest first. */
  history: HistoryEntry[];
  /** Where the current version was built, as its verified provenance says (npm); null when unknown. */
  source: ProvenanceSource | null;
}

export function serverView(settings: ServerSettings, state: ServerState, layout: Pick<InstallLayout, 'launcher'>): ServerView {
  return {
    name: settings.name,
    ecosystem: settings.ecosystem ?? 'npm',
    package: settings.package,
    channel: settings.channel,
    policy: settings.policy,
    activation: settings.activation,
    current: state.current ?? null,
    previous: state.previous ?? null,
    latest: state.latest ?? null,
    candidate: state.candidate ?? null,
    updateAvailable: state.candidate !== undefined && state.candidate !== state.current,
    staged: state.staged ?? null,
    gate: state.gate === undefined ? null : redactString(state.gate),
    state: state.state,
    lastCheck: state.lastCheck ?? null,
    lastCheckResult: state.lastCheckResult === undefined ? null : redactString(state.lastCheckResult),
    lastError: state.lastError === undefined ? null : redactString(state.lastError),
    failedVersions: state.failedVersions,
    hold: state.hold ?? null,
    launcher: layout.launcher(settings.name),
    disk: state.disk ?? null,
  };
}

/** Listed key by key, so a setting added later is not published before someone decides it may be. */
export function publicSettings(settings: ServerSettings): PublicSettings {
  const smokeTest = settings.smokeTest;
  return {
    ecosystem: settings.ecosystem ?? 'npm',
    python: settings.python
      ? {
          python: settings.python.python ?? null,
          extras: settings.python.extras,
          allowSdist: settings.python.allowSdist,
          command: settings.python.command ?? null,
        }
      : null,
    version: settings.version ?? null,
    channel: settings.channel,
    range: settings.range ?? null,
    bin: settings.bin ?? null,
    schedule: settings.schedule,
    timezone: settings.timezone,
    policy: settings.policy,
    minReleaseAgeMs: settings.minReleaseAgeMs,
    activation: settings.activation,
    keep: settings.keep,
    allowScripts: settings.allowScripts ?? null,
    smokeTest: {
      enabled: smokeTest.enabled,
      timeoutMs: smokeTest.timeoutMs,
      command: smokeTest.command ?? null,
      args: redactArguments(smokeTest.args),
      network: smokeTest.network,
      env: Object.fromEntries(
        Object.keys(smokeTest.env)
          .sort()
          .map((key) => [key, REDACTED]),
      ),
    },
    surfaceChange: { ...settings.surfaceChange },
    provenance: settings.provenance,
    repository: settings.repository ?? null,
  };
}

/** Views of many servers, in the order given, with one pipelined read of Redis. */
export async function readServerViews(
  servers: ServerSettings[],
  state: StateStore,
  layout: Pick<InstallLayout, 'launcher'>,
): Promise<ServerView[]> {
  const states = await state.getMany(servers.map((server) => server.name));
  return servers.map((server, index) => serverView(server, states[index]!, layout));
}

/** One server with its settings and version history. */
export async function readServerDetail(
  settings: ServerSettings,
  state: StateStore,
  layout: Pick<InstallLayout, 'launcher'>,
): Promise<ServerDetail> {
  const [current, history] = await Promise.all([state.get(settings.name), state.history(settings.name)]);
  // The switch that made the current version current carries its verified source.
  const source = current.current ? history.find((entry) => entry.to === current.current)?.provenance : undefined;
  return { ...serverView(settings, current, layout), settings: publicSettings(settings), history: redact(history), source: source ?? null };
}

/** The package as people read it: npm names as they are, index projects as `pypi:<project>`. */
export function packageLabel(view: Pick<ServerView, 'ecosystem' | 'package'>): string {
  return view.ecosystem === 'pypi' ? `pypi:${view.package}` : view.package;
}

/** How many servers are in each state; every state is a key, zero included. */
export function countByState(views: Array<Pick<ServerView, 'state'>>): Record<ServerStateName, number> {
  const counts = Object.fromEntries(SERVER_STATES.map((state) => [state, 0])) as Record<ServerStateName, number>;
  for (const view of views) counts[view.state] = (counts[view.state] ?? 0) + 1;
  return counts;
}

/**
 * A server's bytes on disk as people read them: "2.4 MiB (1.1 MiB shared with other servers;
 * 13.0 MiB as full copies)", and with `when`, ", measured 5 min ago". Null before any measurement.
 */
export function diskSummary(disk: ServerView['disk'], when = false, now = new Date()): string | null {
  if (!disk) return null;
  const shared = disk.sharedBytes > 0 ? `${formatBytes(disk.sharedBytes)} shared with other servers; ` : '';
  const measured = when ? `, measured ${relativeTime(disk.measuredAt, now)}` : '';
  return `${formatBytes(disk.bytes)} (${shared}${formatBytes(disk.fullCopyBytes)} as full copies)${measured}`;
}
