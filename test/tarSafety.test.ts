import { expect } from 'chai';
import { checkTarEntry, TarScan, type TarEntryInfo, type TarLimits, type TarProblemCode } from '../shared/tarSafety.js';

const LIMITS: TarLimits = { maxFiles: 10, maxTotalBytes: 1_000, maxFileBytes: 400 };

const file = (path: string, size = 10, mode = 0o644): TarEntryInfo => ({ path, type: 'File', size, mode });
const dir = (path: string): TarEntryInfo => ({ path, type: 'Directory', size: 0, mode: 0o755 });
const symlink = (path: string, linkpath: string): TarEntryInfo => ({ path, type: 'SymbolicLink', size: 0, linkpath });
const hardlink = (path: string, linkpath: string): TarEntryInfo => ({ path, type: 'Link', size: 0, linkpath });

describe('checkTarEntry', () => {
  const cases: Array<[string, TarEntryInfo, TarProblemCode | undefined]> = [
    ['a file under package/', file('package/index.js'), undefined],
    ['a nested file', file('package/lib/a/b.js'), undefined],
    ['another single top folder name', file('node-v1/index.js'), undefined],
    ['the package folder itself', dir('package/'), undefined],
    ['a directory with a trailing slash', dir('package/lib/'), undefined],
    ['an OldFile', { path: 'package/x', type: 'OldFile', size: 1 }, undefined],
    ['a ContiguousFile', { path: 'package/x', type: 'ContiguousFile', size: 1 }, undefined],
    ['an executable file', file('package/bin/cli.js', 10, 0o755), undefined],
    ['a "." segment in the middle', file('package/./x.js'), undefined],
    ['a file name with dots', file('package/..x/y..js'), undefined],
    ['an absolute path', file('/etc/passwd'), 'EABSPATH'],
    ['a backslash-rooted path', file('\\evil'), 'EABSPATH'],
    ['a drive letter path', file('C:/evil'), 'EABSPATH'],
    ['a leading ..', file('../evil'), 'EPATHTRAVERSAL'],
    ['.. inside the package', file('package/../../evil'), 'EPATHTRAVERSAL'],
    ['.. at the end', dir('package/lib/..'), 'EPATHTRAVERSAL'],
    ['.. behind a backslash', file('package/..\\..\\evil'), 'EPATHTRAVERSAL'],
    ['a file at the top level', file('evil.js'), 'EOUTSIDEROOT'],
    ['a ./ prefix', file('./package/x.js'), 'EOUTSIDEROOT'],
    ['an empty path', file(''), 'EOUTSIDEROOT'],
    ['a symlink at the top level', symlink('evil', 'package'), 'EOUTSIDEROOT'],
    ['a symlink beside its target', symlink('package/a', 'b.js'), undefined],
    ['a symlink into a sibling folder', symlink('package/lib/a', '../bin/b.js'), undefined],
    ['a symlink to the package root', symlink('package/lib/root', '..'), undefined],
    ['a symlink one level too far', symlink('package/lib/a', '../../x'), 'ELINKESCAPE'],
    ['a symlink to an absolute path', symlink('package/a', '/etc/passwd'), 'ELINKESCAPE'],
    ['a symlink without a target', symlink('package/a', ''), 'ELINKESCAPE'],
    ['a hard link to a package file', hardlink('package/a', 'package/b.js'), undefined],
    ['a hard link to an absolute path', hardlink('package/a', '/etc/passwd'), 'ELINKESCAPE'],
    ['a hard link with ..', hardlink('package/a', 'package/../../etc/passwd'), 'ELINKESCAPE'],
    ['a hard link into another top folder', hardlink('package/a', 'other/b.js'), 'ELINKESCAPE'],
    ['a hard link to the package folder', hardlink('package/a', 'package/'), 'ELINKESCAPE'],
    ['a character device', { path: 'package/null', type: 'CharacterDevice', size: 0 }, 'EDEVICE'],
    ['a block device', { path: 'package/sda', type: 'BlockDevice', size: 0 }, 'EDEVICE'],
    ['a FIFO', { path: 'package/pipe', type: 'FIFO', size: 0 }, 'EDEVICE'],
    ['an unknown type', { path: 'package/x', type: 'Unsupported', size: 0 }, 'EENTRYTYPE'],
    ['a set-user-id file', file('package/x', 10, 0o4755), 'ESETID'],
    ['a set-group-id directory', { ...dir('package/d'), mode: 0o2755 }, 'ESETID'],
    ['a file at the size limit', file('package/x', 400), undefined],
    ['a file over the size limit', file('package/x', 401), 'ETOOBIG'],
    ['a path deeper than node-tar allows', file(`package/${'d/'.repeat(1024)}x`), 'EPATHDEPTH'],
  ];
  for (const [name, entry, code] of cases) {
    it(`${code ?? 'accepts'}: ${name}`, () => {
      const problem = checkTarEntry(entry, LIMITS);
      expect(problem?.code).to.equal(code);
      if (problem) {
        expect(problem.path).to.equal(entry.path);
        expect(problem.message).to.include(JSON.stringify(entry.path));
      }
    });
  }
});

describe('TarScan', () => {
  /** Add every entry; the first problem (from add or finish) or undefined. */
  function scan(entries: TarEntryInfo[], limits: TarLimits = LIMITS) {
    const tarScan = new TarScan(limits);
    for (const entry of entries) {
      const problem = tarScan.add(entry);
      if (problem) return { problem, tarScan };
    }
    return { problem: tarScan.finish(), tarScan };
  }

  const cases: Array<[string, TarEntryInfo[], TarProblemCode | undefined, string?]> = [
    ['an ordinary package', [file('package/package.json'), dir('package/lib'), file('package/lib/a.js')], undefined],
    ['a second top folder', [file('package/a.js'), file('other/b.js')], 'EOUTSIDEROOT', 'other/b.js'],
    ['too many entries', Array.from({ length: 11 }, (_, i) => file(`package/f${i}`)), 'ETOOMANYFILES', 'package/f10'],
    ['exactly maxFiles entries', Array.from({ length: 10 }, (_, i) => file(`package/f${i}`)), undefined],
    [
      'files adding up over the total',
      [file('package/a', 400), file('package/b', 400), file('package/c', 300)],
      'EPACKAGETOOBIG',
      'package/c',
    ],
    ['files adding up to the total', [file('package/a', 400), file('package/b', 400), file('package/c', 200)], undefined],
    ['a link chain that stays inside', [symlink('package/a', 'b'), symlink('package/b', 'lib/c'), file('package/lib/c')], undefined],
    ['a chain whose second hop escapes', [symlink('package/lib/a', '../b'), symlink('package/b', '../x')], 'ELINKESCAPE', 'package/b'],
    [
      'a link that escapes through a link to the root',
      [symlink('package/self', '.'), symlink('package/x', 'self/../y')],
      'ELINKESCAPE',
      'package/x',
    ],
    [
      'the same escape with the links in the other order',
      [symlink('package/x', 'self/../y'), symlink('package/self', '.')],
      'ELINKESCAPE',
      'package/x',
    ],
    ['a link whose target resolves through a deeper link', [symlink('package/deep', 'a/b/c'), symlink('package/up', 'deep/..')], undefined],
    // Judged lexically first, as node-tar does: deep/../.. leaves the folder of "up".
    [
      'a link that only stays inside through a deeper link',
      [symlink('package/deep', 'a/b/c'), symlink('package/up', 'deep/../..')],
      'ELINKESCAPE',
    ],
    ['a link loop', [symlink('package/a', 'b'), symlink('package/b', 'a')], 'ELINKLOOP'],
    [
      'a file written through a symlink',
      [symlink('package/lib', 'real'), file('package/lib/evil.js')],
      'ELINKTHROUGH',
      'package/lib/evil.js',
    ],
    [
      'a symlink declared after a file below it',
      [file('package/lib/a.js'), symlink('package/lib', 'real')],
      'ELINKTHROUGH',
      'package/lib/a.js',
    ],
    ['a hard link to an earlier file', [file('package/a.js'), hardlink('package/b.js', 'package/a.js')], undefined],
    ['a hard link to a later file', [hardlink('package/b.js', 'package/a.js'), file('package/a.js')], 'ELINKTARGET', 'package/b.js'],
    ['a hard link to a directory', [dir('package/d'), hardlink('package/b', 'package/d')], 'ELINKTARGET'],
    [
      'a hard link naming a file through a symlink',
      [file('package/a'), symlink('package/self', '.'), hardlink('package/h', 'package/self/a')],
      'ELINKTARGET',
    ],
    ['a symlink replaced by a file', [symlink('package/a', 'b'), file('package/a')], 'EDUPLICATE', 'package/a'],
    ['a file replaced by a symlink', [file('package/a'), symlink('package/a', 'b')], 'EDUPLICATE'],
    ['a file appearing twice', [file('package/a'), file('package/a')], undefined],
  ];
  for (const [name, entries, code, culprit] of cases) {
    it(`${code ?? 'accepts'}: ${name}`, () => {
      const { problem } = scan(entries);
      expect(problem?.code, problem?.message).to.equal(code);
      if (culprit) expect(problem?.path).to.equal(culprit);
    });
  }

  it('counts entries and file bytes and remembers the top folder', () => {
    const { tarScan } = scan([dir('pkg/'), file('pkg/a', 100), file('pkg/b', 50), symlink('pkg/c', 'a')]);
    expect(tarScan.files).to.equal(4);
    expect(tarScan.bytes).to.equal(150);
    expect(tarScan.root).to.equal('pkg');
  });
});
