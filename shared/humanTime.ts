/*
 * The one way a point in time is shown to people: "5 min ago", "in 3 h", "never". The status
 * page and the CLI both use it, so the same event reads the same everywhere. Durations are
 * shown with formatDuration (shared/schedule.ts), the inverse of the inventory's duration syntax.
 * Sizes likewise, with formatBytes.
 */

const MINUTE = 60;
const HOUR = 3_600;
const DAY = 86_400;

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago", "in 5 min"; "never" without a time. */
export function relativeTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return 'unknown';
  const seconds = Math.round((now.getTime() - then) / 1000);
  const magnitude = Math.abs(seconds);
  if (magnitude < 10) return 'just now';
  let text: string;
  if (magnitude < MINUTE) text = `${magnitude} s`;
  else if (magnitude < HOUR) text = `${Math.round(magnitude / MINUTE)} min`;
  // Hours up to two days: "30 h ago" says more than "1 day ago".
  else if (magnitude < 2 * DAY) text = `${Math.round(magnitude / HOUR)} h`;
  else text = `${Math.round(magnitude / DAY)} days`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
