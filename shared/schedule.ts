/*
 * Durations ("30s", "3d") and cron expressions. Cron is parsed by cron-parser, the same parser
 * BullMQ's Job Schedulers use, so what passes here is what BullMQ will run.
 */
import { createRequire } from 'node:module';
import { CronExpressionParser } from 'cron-parser';

/**
 * The Settings of the luxon that cron-parser loads (luxon's CommonJS build: `import 'luxon'` would
 * load its ESM build, another copy with Settings of its own).
 */
const luxonSettings = (
  createRequire(createRequire(import.meta.url).resolve('cron-parser'))('luxon') as { Settings: { defaultLocale: string } }
).Settings;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parse "500ms", "30s", "10m", "6h", "3d", "2w" (or a combination like "1h30m"; "0" is zero). */
export function parseDuration(text: string): number {
  const trimmed = String(text).trim();
  if (trimmed === '0') return 0;
  const pattern = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(pattern)) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new Error(`"${text}" is not a duration; use a number with a unit: ms, s, m, h, d, w (e.g. 30s, 3d)`);
  }
  return Math.round(total);
}

/** Short human form of a duration in ms ("3d", "1h30m", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** Validate a cron expression (5 or 6 fields) in a timezone; returns the next run. */
export function parseCron(expression: string, timezone = 'UTC'): Date {
  const fields = expression.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) {
    throw new Error(`"${expression}" has ${fields.length} fields; cron needs 5 (minute hour day month weekday) or 6`);
  }
  // Every luxon date takes the system locale unless told one, and asking ICU for it costs a fresh
  // process ~25 ms and 8 MB (the CLI validates every schedule it reads). Cron fields are numbers:
  // no locale changes a next run. The current date is passed for the same reason (luxon's "now"
  // asks ICU for the system timezone). Set for this synchronous parse only, so luxon elsewhere in
  // the process (BullMQ's job schedulers) keeps its defaults.
  const previousLocale = luxonSettings.defaultLocale;
  luxonSettings.defaultLocale = 'en-US';
  try {
    return CronExpressionParser.parse(expression, { tz: timezone, currentDate: new Date() }).next().toDate();
  } finally {
    luxonSettings.defaultLocale = previousLocale;
  }
}

/** Is `timezone` an IANA name this Node knows (UTC, Europe/Berlin)? */
export function isTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}
