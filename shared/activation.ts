/*
 * The activation rules (docs/ARCHITECTURE.md "Activation"): which version an activate, approve or
 * rollback moves to, whether it is allowed, whether it finishes an interrupted run of the same
 * job, and what the history calls it. One pure function, used by the activate worker (under the
 * server's lock), by the API and by the CLI (to answer 409 before enqueueing anything).
 */
import { ConflictError } from './errors.js';
import type { DiskHistory, HistoryEntry, InstallLayout } from './layout.js';
import type { ActivateAction } from './queues.js';
import type { StateStore } from './state.js';

export interface ActivationRequest {
  server: string;
  action: ActivateAction;
  version?: string;
  /** The activate job's id: a job that switched `current` and died is finished, not repeated. */
  jobId?: string;
}

/** What the rules look at; `activationFacts` reads it from the disk and Redis. */
export interface ActivationFacts {
  /** The version the `current` link points at (the disk is the truth). */
  current?: string;
  /** `previous` of the server's record, then of history.json. */
  previous?: string;
  historyPrevious?: string;
  /** The version waiting for approval. */
  staged?: string;
  /** Versions with a directory under versions/. */
  installed: readonly string[];
  /** Versions whose tarball integrity history.json knows (re-stageable from a backup). */
  restorable: readonly string[];
  /** The newest history entry. */
  lastEntry?: HistoryEntry;
  /** history.json as it was read for these facts (the activate job goes on from it). */
  history?: DiskHistory;
}

export type ActivationPlan =
  /** Switch `current` from `from` to `target`. */
  | { kind: 'switch'; target: string; from?: string; historyAction: HistoryEntry['action'] }
  /** This very job switched `current` to `target` and died before its check passed: finish it. */
  | { kind: 'resume'; target: string; from?: string; entry: HistoryEntry }
  /** `target` already is current. */
  | { kind: 'unchanged'; target: string };

export function planActivation(request: ActivationRequest, facts: ActivationFacts): ActivationPlan {
  const { server, action, jobId } = request;
  const { lastEntry } = facts;
  if (jobId !== undefined && lastEntry?.jobId === jobId && facts.current !== undefined && lastEntry.to === facts.current) {
    return { kind: 'resume', target: lastEntry.to, from: lastEntry.from, entry: lastEntry };
  }
  const target = targetOf(request, facts);
  if (target === facts.current) return { kind: 'unchanged', target };
  const available = facts.installed.includes(target) || facts.restorable.includes(target);
  if (action === 'approve' && facts.staged !== target && !facts.installed.includes(target)) {
    throw new ConflictError(`${server} ${target} is not staged (${facts.staged ? `staged: ${facts.staged}` : 'nothing is staged'})`, {
      hint: `mcp-updater check ${server} stages the version the policy allows; approve what it staged`,
    });
  }
  if (!available) {
    throw new ConflictError(`${server} ${target} is not installed and no backup of it is known`, {
      hint: `choose an installed version (mcp-updater status ${server}), or run a check to download and stage one`,
      details: { server, version: target },
    });
  }
  const historyAction = facts.current === undefined && action === 'activate' ? 'install' : action;
  return { kind: 'switch', target, from: facts.current, historyAction };
}

function targetOf(request: ActivationRequest, facts: ActivationFacts): string {
  const { server, action } = request;
  if (request.version) return request.version;
  if (action === 'approve') {
    if (facts.staged) return facts.staged;
    throw new ConflictError(`${server} has no version staged for approval`, {
      hint: `name the version (mcp-updater approve ${server} <version>) or wait for a check to stage one`,
    });
  }
  if (action === 'rollback') {
    const previous = [facts.previous, facts.historyPrevious].find((version) => version && version !== facts.current);
    if (previous) return previous;
    throw new ConflictError(`${server} has no previous version to roll back to`, {
      hint: `name the version: mcp-updater rollback ${server} --to <version>`,
    });
  }
  throw new ConflictError(`${action} of ${server} needs a version`, { hint: 'name the version to activate' });
}

/** Read the facts the rules need from the disk and the server's record. */
export async function activationFacts(state: Pick<StateStore, 'get'>, layout: InstallLayout, server: string): Promise<ActivationFacts> {
  const [record, current, history, installed] = await Promise.all([
    state.get(server),
    layout.currentVersion(server),
    layout.readHistory(server),
    layout.installedVersions(server),
  ]);
  return {
    current,
    previous: record.previous,
    historyPrevious: history?.previous,
    staged: record.staged,
    installed,
    restorable: Object.keys(history?.integrities ?? {}),
    lastEntry: history?.entries.at(-1),
    ...(history ? { history } : {}),
  };
}
