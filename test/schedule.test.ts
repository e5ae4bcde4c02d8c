/*
 * Durations ("30s", "3d", "1h30m") and cron expressions (cron-parser, as BullMQ uses it).
 */
import { expect } from 'chai';
import { formatDuration, parseCron, parseDuration } from '../shared/schedule.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The message of what `fn` throws (fails the test when it does not throw). */
function thrownMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    return (error as Error).message;
  }
  return expect.fail('expected an error');
}

/** Hour and minute of `date` on the wall clock of `timeZone`. */
function wallClock(date: Date, timeZone: string): { hour: number; minute: number; weekday: string } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    weekday: 'short',
    hourCycle: 'h23',
  }).formatToParts(date);
  const part = (type: string): string => parts.find((p) => p.type === type)!.value;
  return { hour: Number(part('hour')), minute: Number(part('minute')), weekday: part('weekday') };
}

describe('schedule: parseDuration', () => {
  const valid: { input: string; ms: number }[] = [
    { input: '0', ms: 0 },
    { input: '0s', ms: 0 },
    { input: '500ms', ms: 500 },
    { input: '30s', ms: 30 * SECOND },
    { input: '10m', ms: 10 * MINUTE },
    { input: '6h', ms: 6 * HOUR },
    { input: '3d', ms: 3 * DAY },
    { input: '2w', ms: 14 * DAY },
    { input: '1h30m', ms: 90 * MINUTE },
    { input: '1d12h', ms: 36 * HOUR },
    { input: '1m5s', ms: 65 * SECOND },
    { input: '1s250ms', ms: 1250 },
    { input: '1.5h', ms: 90 * MINUTE },
    { input: '0.5s', ms: 500 },
    { input: '3 d', ms: 3 * DAY },
    { input: ' 30s ', ms: 30 * SECOND },
  ];
  for (const { input, ms } of valid) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
      expect(parseDuration(input)).to.equal(ms);
    });
  }

  const invalid = ['', ' ', '3', '00', '3 days', 'abc', 'h', '1x', '30s!', '-1s', '1h30', 's30', '1..5s', '30S', '3D', '1e3ms', '1h 30m'];
  for (const input of invalid) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      expect(thrownMessage(() => parseDuration(input))).to.equal(
        `"${input}" is not a duration; use a number with a unit: ms, s, m, h, d, w (e.g. 30s, 3d)`,
      );
    });
  }
});

describe('schedule: formatDuration', () => {
  const cases: { ms: number; text: string }[] = [
    { ms: 0, text: '0' },
    { ms: 1, text: '1ms' },
    { ms: 250, text: '250ms' },
    { ms: 999, text: '999ms' },
    { ms: SECOND, text: '1s' },
    { ms: 30 * SECOND, text: '30s' },
    { ms: MINUTE, text: '1m' },
    { ms: 90 * SECOND, text: '1m30s' },
    { ms: 90 * MINUTE, text: '1h30m' },
    { ms: DAY, text: '1d' },
    { ms: 3 * DAY, text: '3d' },
    { ms: DAY + HOUR + MINUTE + SECOND, text: '1d1h1m1s' },
    { ms: 7 * DAY, text: '7d' },
  ];
  for (const { ms, text } of cases) {
    it(`writes ${ms} ms as ${text}`, () => {
      expect(formatDuration(ms)).to.equal(text);
    });
  }

  it('rounds to whole seconds from one second up', () => {
    expect(formatDuration(1499)).to.equal('1s');
    expect(formatDuration(1500)).to.equal('2s');
  });

  it('round-trips with parseDuration', () => {
    for (const text of ['0', '250ms', '45s', '10m', '6h', '3d', '1h30m', '2d3h4m5s']) {
      expect(formatDuration(parseDuration(text)), text).to.equal(text);
    }
  });
});

describe('schedule: parseCron', () => {
  const valid: { expression: string; timezone: string; hour?: number; minute?: number; weekdays?: string[] }[] = [
    { expression: '0 */6 * * *', timezone: 'UTC', minute: 0 },
    { expression: '30 3 * * *', timezone: 'UTC', hour: 3, minute: 30 },
    { expression: '30 3 * * *', timezone: 'Europe/Berlin', hour: 3, minute: 30 },
    { expression: '0 9 * * MON-FRI', timezone: 'America/New_York', hour: 9, minute: 0, weekdays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'] },
    { expression: '15 0 * * 0', timezone: 'Asia/Tokyo', hour: 0, minute: 15, weekdays: ['Sun'] },
    { expression: '*/5 * * * * *', timezone: 'UTC' },
    { expression: '  0 3 * * *  ', timezone: 'UTC', hour: 3, minute: 0 },
  ];
  for (const { expression, timezone, hour, minute, weekdays } of valid) {
    it(`accepts ${JSON.stringify(expression)} in ${timezone} and returns the next run`, () => {
      const before = Date.now();
      const next = parseCron(expression, timezone);
      expect(next).to.be.instanceOf(Date);
      expect(next.getTime()).to.be.greaterThan(before - 1000);
      expect(next.getTime()).to.be.at.most(before + 8 * DAY);
      const clock = wallClock(next, timezone);
      if (hour !== undefined) expect(clock.hour).to.equal(hour);
      if (minute !== undefined) expect(clock.minute).to.equal(minute);
      if (weekdays) expect(weekdays).to.include(clock.weekday);
    });
  }

  it('reads the expression in UTC by default', () => {
    const next = parseCron('45 13 * * *');
    expect(next.getUTCHours()).to.equal(13);
    expect(next.getUTCMinutes()).to.equal(45);
  });

  const invalid: { expression: string; message: string }[] = [
    { expression: '61 * * * *', message: 'Constraint error, got value 61 expected range 0-59' },
    { expression: '0 25 * * *', message: 'Constraint error, got value 25 expected range 0-23' },
    { expression: '0 0 1 13 *', message: 'Constraint error, got value 13 expected range 1-12' },
    { expression: '0 0 * * 8', message: 'Constraint error, got value 8 expected range 0-7' },
    { expression: 'a b c d e', message: 'Invalid characters, got value: a' },
    { expression: '0 0 31 2 *', message: 'Invalid explicit day of month definition' },
    { expression: '* * *', message: '"* * *" has 3 fields; cron needs 5 (minute hour day month weekday) or 6' },
    { expression: '* * * * * * *', message: '"* * * * * * *" has 7 fields; cron needs 5 (minute hour day month weekday) or 6' },
    { expression: '', message: '"" has 1 fields; cron needs 5 (minute hour day month weekday) or 6' },
    { expression: '@daily', message: '"@daily" has 1 fields; cron needs 5 (minute hour day month weekday) or 6' },
  ];
  for (const { expression, message } of invalid) {
    it(`refuses ${JSON.stringify(expression)}`, () => {
      expect(thrownMessage(() => parseCron(expression, 'UTC'))).to.equal(message);
    });
  }
});
