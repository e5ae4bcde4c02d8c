/*
 * How the CLI prints: plain padded tables for people, `--json` for scripts (one JSON document on
 * stdout, stable keys: absent values are null, never missing) and byte sizes. Times and durations
 * use shared/humanTime.ts and shared/schedule.ts, as the status page does.
 */

/** Cell text for a value that may be absent. */
export function cell(value: string | number | null | undefined): string {
  return value === undefined || value === null || value === '' ? '-' : String(value);
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [headers, ...rows.map((row) => row.map(cell))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return (
    cells
      .map((row) =>
        row
          .map((text, column) => (column === row.length - 1 ? text : text.padEnd(widths[column]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** "key: value" lines with the keys aligned (detail views). */
export function fields(entries: Array<[string, string | number | null | undefined]>): string {
  const width = Math.max(...entries.map(([key]) => key.length)) + 1;
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${cell(value)}`).join('\n') + '\n';
}

/** One line of at most `max` characters ("…" marks a cut): long error text in a table cell. */
export function truncate(text: string | null | undefined, max: number): string | null {
  if (text === null || text === undefined) return null;
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
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
