/*
 * The server state machine (docs/ARCHITECTURE.md "States"): which states there are, which step
 * sets which, and what "busy" means. Only the step that runs a job sets the server's state: when
 * its job starts, and when it ends without a follow-up (a step that chains the next job leaves
 * its state until the next job starts). Every way a job can end badly goes through one failure
 * path (workers/failure.ts), which asks `stateAfterFailure` here.
 */

export const SERVER_STATES = ['idle', 'checking', 'downloading', 'staging', 'awaiting-approval', 'activating', 'failed'] as const;
export type ServerStateName = (typeof SERVER_STATES)[number];

/** The steps that run jobs, plus the start-up rebuild from disk. */
export type Step = 'check' | 'download' | 'stage' | 'activate' | 'rebuild';

/**
 * A download, stage or activation of this server is in flight: its step owns the state, and a
 * check that runs meanwhile neither writes `checking` nor its outcome (it still records what it
 * found: latest, candidate, last check).
 */
export const BUSY_STATES: readonly ServerStateName[] = ['downloading', 'staging', 'activating'];

export function isBusy(state: ServerStateName): boolean {
  return BUSY_STATES.includes(state);
}

export type StepEvent =
  /** The step's job starts running. */
  | { step: Step; event: 'start' }
  /** check finished: did it start (or find alive) a chain? */
  | { step: 'check'; event: 'done'; chain: boolean }
  /** stage finished: an activate job follows, or the version waits for approval. */
  | { step: 'stage'; event: 'done'; next: 'activate' | 'awaiting-approval' }
  /** activate finished (activated or unchanged); another staged version may still wait. */
  | { step: 'activate'; event: 'done'; stillAwaiting: boolean }
  /** download finished: its stage job follows. */
  | { step: 'download'; event: 'done' }
  /** rebuild from disk: a record was missing; nothing runs. */
  | { step: 'rebuild'; event: 'done' };

/**
 * The state to write after `event`, given the state now and (for check) the state the check found
 * when it started. `undefined`: leave the state as it is.
 */
export function nextState(current: ServerStateName, event: StepEvent, before?: ServerStateName): ServerStateName | undefined {
  switch (`${event.step}.${event.event}`) {
    case 'check.start':
      return isBusy(current) ? undefined : 'checking';
    case 'check.done': {
      if (current !== 'checking') return undefined;
      if ((event as { chain: boolean }).chain) return 'idle';
      // Nothing new to do: a failed update or a pending approval stays visible.
      return before === 'failed' || before === 'awaiting-approval' ? before : 'idle';
    }
    case 'download.start':
      return 'downloading';
    case 'download.done':
      return undefined;
    case 'stage.start':
      return 'staging';
    case 'stage.done':
      return (event as { next: string }).next === 'activate' ? undefined : 'awaiting-approval';
    case 'activate.start':
      return 'activating';
    case 'activate.done':
      return (event as { stillAwaiting: boolean }).stillAwaiting ? 'awaiting-approval' : 'idle';
    case 'rebuild.start':
      return undefined;
    case 'rebuild.done':
      return 'idle';
    default:
      throw new Error(`no transition for ${event.step}.${event.event}`);
  }
}

/** The state a download, stage or activate job writes when it starts. */
export function startState(step: 'download' | 'stage' | 'activate'): ServerStateName {
  return nextState('idle', { step, event: 'start' })!;
}

/**
 * The state after a job of `step` ended badly for good. A check that fails while another step
 * owns the state (busy) leaves it alone: the failure is still recorded in lastError and an event.
 */
export function stateAfterFailure(current: ServerStateName, step: Step): ServerStateName | undefined {
  if (step === 'check' && isBusy(current)) return undefined;
  return 'failed';
}

export interface StateRow {
  state: ServerStateName;
  meaning: string;
  setBy: string;
  leftBy: string;
}

/** The table, as docs/ARCHITECTURE.md and the closing notes print it. */
export const STATE_TABLE: readonly StateRow[] = [
  {
    state: 'idle',
    meaning: 'nothing runs; current (if any) is active',
    setBy: 'check done (nothing new, or a chain started), activate done, rebuild',
    leftBy: 'any step starting',
  },
  {
    state: 'checking',
    meaning: 'a check job asks the registry',
    setBy: 'check start (not while busy)',
    leftBy: 'check done -> idle, or back to failed/awaiting-approval; check failed -> failed',
  },
  {
    state: 'downloading',
    meaning: 'a download job fetches and verifies the tarball (or its stage job waits)',
    setBy: 'download start',
    leftBy: 'stage start; download failed -> failed',
  },
  {
    state: 'staging',
    meaning: 'a stage job extracts, installs and smoke-tests (or its activate job waits)',
    setBy: 'stage start',
    leftBy: 'activate start; stage done -> awaiting-approval; stage failed -> failed',
  },
  {
    state: 'awaiting-approval',
    meaning: 'a staged version waits for approve (activation: manual)',
    setBy: 'stage done (manual); activate done while another staged version waits; check done (kept)',
    leftBy: 'check start, activate start',
  },
  {
    state: 'activating',
    meaning: 'an activate job switches current and runs the post-activation check',
    setBy: 'activate start',
    leftBy: 'activate done -> idle/awaiting-approval; activate failed -> failed',
  },
  {
    state: 'failed',
    meaning: 'the last job of this server failed for good; lastError says why and what to do',
    setBy: 'the failure path of every step (thrown after the last attempt, invalid payload, stalled too often, unexpected exception)',
    leftBy: 'any step starting; check done with nothing new keeps it',
  },
];

/** Every transition the machine can make, derived from nextState/stateAfterFailure (for the table test and the docs). */
export function allowedTransitions(): Map<ServerStateName, Set<ServerStateName>> {
  const events: Array<{ event: StepEvent; before?: ServerStateName }> = [
    { event: { step: 'check', event: 'start' } },
    ...SERVER_STATES.flatMap((before) => [
      { event: { step: 'check', event: 'done', chain: true } as StepEvent, before },
      { event: { step: 'check', event: 'done', chain: false } as StepEvent, before },
    ]),
    { event: { step: 'download', event: 'start' } },
    { event: { step: 'stage', event: 'start' } },
    { event: { step: 'stage', event: 'done', next: 'awaiting-approval' } },
    { event: { step: 'activate', event: 'start' } },
    { event: { step: 'activate', event: 'done', stillAwaiting: true } },
    { event: { step: 'activate', event: 'done', stillAwaiting: false } },
    { event: { step: 'rebuild', event: 'done' } },
  ];
  const steps: Step[] = ['check', 'download', 'stage', 'activate'];
  const result = new Map<ServerStateName, Set<ServerStateName>>(SERVER_STATES.map((state) => [state, new Set()]));
  for (const from of SERVER_STATES) {
    for (const { event, before } of events) {
      const to = nextState(from, event, before);
      if (to !== undefined && to !== from) result.get(from)!.add(to);
    }
    for (const step of steps) {
      const to = stateAfterFailure(from, step);
      if (to !== undefined && to !== from) result.get(from)!.add(to);
    }
  }
  return result;
}
