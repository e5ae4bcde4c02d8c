/*
 * How things are shown to people: the CLI's tables and detail fields, cut error text, and the one
 * relative-time formatter the CLI and the status page share.
 */
import { expect } from 'chai';
import { cell, fields, listNames, table, truncate } from '../cli/format.js';
import { formatBytes } from '../shared/humanTime.js';
import { relativeTime } from '../shared/humanTime.js';
import { formatDuration } from '../shared/schedule.js';

describe('format: tables and fields', () => {
  it('pads columns to the widest cell, two spaces apart, with no trailing blanks', () => {
    const text = table(
      ['NAME', 'STATE', 'LAST ERROR'],
      [
        ['memory', 'idle', null],
        ['filesystem-long', 'failed', 'EINTEGRITY: bad tarball'],
      ],
    );
    expect(text).to.equal(
      ['NAME             STATE   LAST ERROR', 'memory           idle    -', 'filesystem-long  failed  EINTEGRITY: bad tarball', ''].join(
        '\n',
      ),
    );
    for (const line of text.split('\n')) expect(line).to.equal(line.trimEnd());
  });

  it('shows absent values as "-" and numbers as text', () => {
    expect([cell(null), cell(undefined), cell(''), cell(0), cell('x')]).to.deep.equal(['-', '-', '-', '0', 'x']);
    expect(table(['A', 'B'], [[1, undefined]])).to.equal('A  B\n1  -\n');
  });

  it('aligns "key: value" fields', () => {
    expect(
      fields([
        ['state', 'idle'],
        ['last error', null],
      ]),
    ).to.equal('state:       idle\nlast error:  -\n');
  });

  it('cuts long text to one line of at most the given length', () => {
    expect(truncate(null, 10)).to.equal(null);
    expect(truncate('short', 10)).to.equal('short');
    expect(truncate('exactly 10', 10)).to.equal('exactly 10');
    expect(truncate('line one\n  line two', 40)).to.equal('line one line two');
    const cut = truncate('ESTAGE: npm install failed with exit code 1', 20)!;
    expect(cut).to.equal('ESTAGE: npm install…');
    expect(cut).to.have.length.at.most(20);
  });

  it('formats byte sizes and name lists', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(5 * 1024 ** 3), formatBytes(undefined)]).to.deep.equal([
      '512 B',
      '1.5 KiB',
      '5.0 GiB',
      '-',
    ]);
    expect(listNames([])).to.equal('(none)');
    expect(listNames(['a', 'b', 'c'], 2)).to.equal('a, b and 1 more');
  });
});

describe('format: relative times and durations', () => {
  const now = new Date('2026-05-01T12:00:00Z');
  const cases: Array<[string | null | undefined, string]> = [
    [undefined, 'never'],
    [null, 'never'],
    ['garbage', 'unknown'],
    ['2026-05-01T11:59:58Z', 'just now'],
    ['2026-05-01T12:00:05Z', 'just now'],
    ['2026-05-01T11:59:30Z', '30 s ago'],
    ['2026-05-01T11:55:00Z', '5 min ago'],
    ['2026-05-01T09:00:00Z', '3 h ago'],
    ['2026-04-30T06:00:00Z', '30 h ago'],
    ['2026-04-28T12:00:00Z', '3 days ago'],
    ['2025-05-01T12:00:00Z', '365 days ago'],
    ['2026-05-01T12:10:00Z', 'in 10 min'],
    ['2026-05-01T18:00:00Z', 'in 6 h'],
  ];
  for (const [iso, text] of cases) {
    it(`${String(iso)} -> "${text}"`, () => {
      expect(relativeTime(iso, now)).to.equal(text);
    });
  }

  it("shows durations in the inventory's own syntax", () => {
    expect([formatDuration(15_000), formatDuration(600_000), formatDuration(3 * 86_400_000), formatDuration(5_400_000)]).to.deep.equal([
      '15s',
      '10m',
      '3d',
      '1h30m',
    ]);
  });
});
