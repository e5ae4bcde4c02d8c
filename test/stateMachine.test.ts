/*
 * The state machine (shared/stateMachine.ts), the integrity choice (shared/integrity.ts) and the
 * rebuild rule for versions rolled away from (shared/state.ts), as tables.
 */
import { expect } from 'chai';
import { strongestIntegrity } from '../shared/integrity.js';
import { versionsRolledAwayFrom } from '../shared/state.js';
import {
  allowedTransitions,
  isBusy,
  nextState,
  SERVER_STATES,
  STATE_TABLE,
  stateAfterFailure,
  type ServerStateName,
  type StepEvent,
} from '../shared/stateMachine.js';

describe('state machine', () => {
  const cases: Array<{ from: ServerStateName; event: StepEvent; before?: ServerStateName; to: ServerStateName | undefined }> = [
    { from: 'idle', event: { step: 'check', event: 'start' }, to: 'checking' },
    { from: 'failed', event: { step: 'check', event: 'start' }, to: 'checking' },
    { from: 'awaiting-approval', event: { step: 'check', event: 'start' }, to: 'checking' },
    { from: 'checking', event: { step: 'check', event: 'start' }, to: 'checking' },
    { from: 'downloading', event: { step: 'check', event: 'start' }, to: undefined },
    { from: 'staging', event: { step: 'check', event: 'start' }, to: undefined },
    { from: 'activating', event: { step: 'check', event: 'start' }, to: undefined },
    { from: 'checking', event: { step: 'check', event: 'done', chain: false }, before: 'idle', to: 'idle' },
    { from: 'checking', event: { step: 'check', event: 'done', chain: false }, before: 'failed', to: 'failed' },
    { from: 'checking', event: { step: 'check', event: 'done', chain: false }, before: 'awaiting-approval', to: 'awaiting-approval' },
    { from: 'checking', event: { step: 'check', event: 'done', chain: false }, before: 'checking', to: 'idle' },
    { from: 'checking', event: { step: 'check', event: 'done', chain: true }, before: 'failed', to: 'idle' },
    { from: 'staging', event: { step: 'check', event: 'done', chain: true }, before: 'staging', to: undefined },
    { from: 'idle', event: { step: 'download', event: 'start' }, to: 'downloading' },
    { from: 'failed', event: { step: 'download', event: 'start' }, to: 'downloading' },
    { from: 'downloading', event: { step: 'download', event: 'done' }, to: undefined },
    { from: 'downloading', event: { step: 'stage', event: 'start' }, to: 'staging' },
    { from: 'staging', event: { step: 'stage', event: 'done', next: 'activate' }, to: undefined },
    { from: 'staging', event: { step: 'stage', event: 'done', next: 'awaiting-approval' }, to: 'awaiting-approval' },
    { from: 'staging', event: { step: 'activate', event: 'start' }, to: 'activating' },
    { from: 'awaiting-approval', event: { step: 'activate', event: 'start' }, to: 'activating' },
    { from: 'activating', event: { step: 'activate', event: 'done', stillAwaiting: false }, to: 'idle' },
    { from: 'activating', event: { step: 'activate', event: 'done', stillAwaiting: true }, to: 'awaiting-approval' },
    { from: 'checking', event: { step: 'rebuild', event: 'done' }, to: 'idle' },
  ];
  for (const { from, event, before, to } of cases) {
    const label = `${event.step}.${event.event}${'chain' in event ? `(chain ${event.chain})` : ''}${'next' in event ? `(${event.next})` : ''}${'stillAwaiting' in event ? `(stillAwaiting ${event.stillAwaiting})` : ''}`;
    it(`${from} --${label}${before ? ` [before ${before}]` : ''}--> ${to ?? '(unchanged)'}`, () => {
      expect(nextState(from, event, before)).to.equal(to);
    });
  }

  it('a failure ends in failed, except a check failing while another step owns the state', () => {
    for (const state of SERVER_STATES) {
      expect(stateAfterFailure(state, 'download')).to.equal('failed');
      expect(stateAfterFailure(state, 'stage')).to.equal('failed');
      expect(stateAfterFailure(state, 'activate')).to.equal('failed');
      expect(stateAfterFailure(state, 'check')).to.equal(isBusy(state) ? undefined : 'failed');
    }
  });

  it('busy means a download, stage or activation owns the state', () => {
    expect(SERVER_STATES.filter(isBusy)).to.deep.equal(['downloading', 'staging', 'activating']);
  });

  it('no transition leaves a state that nothing can leave, and checking always ends', () => {
    const transitions = allowedTransitions();
    for (const state of SERVER_STATES) expect([...transitions.get(state)!], state).to.not.be.empty;
    expect([...transitions.get('checking')!]).to.include.members(['awaiting-approval', 'failed', 'idle']);
    // Every state can reach idle.
    for (const state of SERVER_STATES) {
      const seen = new Set<ServerStateName>([state]);
      const queue = [state];
      while (queue.length > 0)
        for (const next of transitions.get(queue.shift()!)!)
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
      expect(seen.has('idle'), `${state} reaches idle`).to.equal(true);
    }
  });

  it('the documented table names every state once', () => {
    expect(STATE_TABLE.map((row) => row.state)).to.have.members([...SERVER_STATES]);
  });
});

describe('strongestIntegrity', () => {
  const sha512 = `sha512-${Buffer.alloc(64, 1).toString('base64')}`;
  const sha384 = `sha384-${Buffer.alloc(48, 2).toString('base64')}`;
  const sha256 = `sha256-${Buffer.alloc(32, 3).toString('base64')}`;
  const sha1 = `sha1-${Buffer.alloc(20, 4).toString('base64')}`;
  const cases: Array<{ name: string; sri: unknown; shasum?: string; expected: string | RegExp }> = [
    { name: 'one sha512', sri: sha512, expected: sha512 },
    { name: 'sha512 and sha1 (npm publishes both in some registries)', sri: `${sha512} ${sha1}`, expected: sha512 },
    { name: 'sha1 first, sha512 second', sri: `${sha1} ${sha512}`, expected: sha512 },
    { name: 'sha256 and sha384', sri: `${sha256} ${sha384}`, expected: sha384 },
    { name: 'sha256 only', sri: sha256, expected: sha256 },
    { name: 'sha1 only', sri: sha1, expected: /EWEAKINTEGRITY.*sha1/ },
    { name: 'shasum only', sri: undefined, shasum: 'ab'.repeat(20), expected: /EWEAKINTEGRITY.*shasum/ },
    { name: 'nothing', sri: undefined, expected: /EBADINTEGRITY.*no integrity/ },
    { name: 'not SRI', sri: 'garbage', expected: /EBADINTEGRITY.*not an SRI string/ },
    { name: 'a short digest', sri: 'sha512-abc', expected: /EBADINTEGRITY.*64-byte/ },
    { name: 'a number', sri: 42, expected: /EBADINTEGRITY/ },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const choice = strongestIntegrity(testCase.sri, testCase.shasum);
      if (typeof testCase.expected === 'string') {
        expect(choice).to.deep.equal({ ok: true, integrity: testCase.expected });
      } else {
        expect(choice.ok).to.equal(false);
        if (!choice.ok) expect(`${choice.code} ${choice.problem}`).to.match(testCase.expected);
      }
    });
  }
});

describe('versionsRolledAwayFrom (rebuilt failed list)', () => {
  const entry = (action: 'install' | 'activate' | 'approve' | 'rollback' | 'auto-rollback', to: string, from?: string) => ({
    action,
    to,
    ...(from ? { from } : {}),
    at: '2026-01-01T00:00:00.000Z',
  });
  const cases = [
    { name: 'installs and updates hold nothing', entries: [entry('install', '1.0.0'), entry('activate', '1.1.0', '1.0.0')], held: [] },
    {
      name: 'a rollback holds the version rolled away from',
      entries: [entry('install', '1.0.0'), entry('activate', '1.1.0', '1.0.0'), entry('rollback', '1.0.0', '1.1.0')],
      held: ['1.1.0'],
    },
    {
      name: 'an automatic rollback holds the failed version',
      entries: [entry('install', '1.0.0'), entry('activate', '1.1.0', '1.0.0'), entry('auto-rollback', '1.0.0', '1.1.0')],
      held: ['1.1.0'],
    },
    {
      name: 'activating the version again lifts the hold',
      entries: [
        entry('install', '1.0.0'),
        entry('activate', '1.1.0', '1.0.0'),
        entry('rollback', '1.0.0', '1.1.0'),
        entry('approve', '1.1.0', '1.0.0'),
      ],
      held: [],
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      expect(versionsRolledAwayFrom({ entries: testCase.entries })).to.deep.equal(testCase.held);
    });
  }
});
