/*
 * How the CLI prints: plain padded tables for people, `--json` for scripts (one JSON document on
 * stdout, stable keys: absent values are null, never missing), relative times and byte sizes.
 */

/** Cell text for a value that may be absent. */
export function cell(value: string | number | null | undefined): string {
  return value === undefined || value === null || value === '' ? '-' : String(value);
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [headers, ...rows.map((row) => row.map(cell))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return cells
    .map((row) => row.map((text, column) => (column === row.length - 1 ? text : text.padEnd(widths[column]!))).join('  ').trimEnd())
    .join('\n') + '\n';
}

/** "key: value" lines with the keys aligned (detail views). */
export function fields(entries: Array<[string, string | number | null | undefined]>): string {
  const width = Math.max(...entries.map(([key]) => key.length)) + 1;
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${cell(value)}`).join('\n') + '\n';
}

const UNITS: Array<[number, string]> = [
  [365 * 86_400_000, 'y'], [30 * 86_400_000, 'mo'], [7 * 86_400_000, 'w'], [86_400_000, 'd'],
  [3_600_000, 'h'], [60_000, 'min'], [1_000, 's'],
];

/** "5 min ago", "in 3 h", "just now"; "-" when there is no time. */
export function relativeTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const delta = now.getTime() - at;
  const magnitude = Math.abs(delta);
  if (magnitude < 5_000) return 'just now';
  const [size, unit] = UNITS.find(([unitSize]) => magnitude >= unitSize) ?? UNITS[UNITS.length - 1]!;
  const amount = Math.floor(magnitude / size);
  return delta >= 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
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

/** "memory, filesystem and 3 more". */
export function listNames(names: string[], max = 10): string {
  if (names.length === 0) return '(none)';
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Notes for people that must not mix with machine-readable stdout (YAML, JSON). */
export function note(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}
