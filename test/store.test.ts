/*
 * The shared store (shared/store.ts) on real temporary directories: identical files of different
 * versions end up as one read-only inode, the exec bit is kept and is part of the key, contents
 * never change, a second run changes nothing, concurrent runs agree on one entry, pruning removes
 * only what nothing links to, and treeUsage counts each inode once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pruneStore, storeEntry, storeRoot, storeTree, treeUsage } from '../shared/store.js';

const SDK = 'export const sdk = "the same in every version";\n'.repeat(200);

interface TreeFile {
  path: string;
  body: string;
  mode?: number;
}

async function writeTree(dir: string, files: TreeFile[]): Promise<void> {
  for (const file of files) {
    const full = path.join(dir, file.path);
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.writeFile(full, file.body, { mode: file.mode ?? 0o644 });
    await fs.chmod(full, file.mode ?? 0o644);
  }
}

/** A version of a package: its own package.json and index.js, and a dependency shared by all. */
function version(name: string, v: string): TreeFile[] {
  return [
    { path: 'package.json', body: JSON.stringify({ name, version: v }) },
    { path: 'index.js', body: `#!/usr/bin/env node\nconsole.log(${JSON.stringify(`${name}@${v}`)});\n`, mode: 0o755 },
    { path: 'node_modules/sdk/package.json', body: '{"name":"sdk","version":"1.0.0"}' },
    { path: 'node_modules/sdk/index.js', body: SDK },
    { path: 'node_modules/sdk/bin/cli.js', body: '#!/usr/bin/env node\n', mode: 0o755 },
  ];
}

async function inode(file: string): Promise<string> {
  const stat = await fs.lstat(file);
  return `${stat.dev}:${stat.ino}`;
}

async function entryCount(store: string): Promise<number> {
  let count = 0;
  for (const folder of await fs.readdir(store).catch(() => [] as string[])) count += (await fs.readdir(path.join(store, folder))).length;
  return count;
}

describe('shared store on disk', () => {
  let root: string;
  let store: string;
  const versionDir = (server: string, v: string) => path.join(root, server, 'versions', v);

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-test-store-'));
    store = storeRoot(root);
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('keeps identical files of two versions once, read-only, with the same contents', async () => {
    await writeTree(versionDir('memory', '1.0.0'), version('memory', '1.0.0'));
    await writeTree(versionDir('memory', '1.1.0'), version('memory', '1.1.0'));
    const first = await storeTree(versionDir('memory', '1.0.0'), store);
    const second = await storeTree(versionDir('memory', '1.1.0'), store);

    expect(first).to.deep.include({ files: 5, added: 5, shared: 0, unchanged: 0, bytesSaved: 0 });
    // The dependency's three files are shared; package.json and index.js differ.
    expect(second).to.deep.include({ files: 5, added: 2, shared: 3, unchanged: 0 });
    expect(second.bytesSaved).to.equal(Buffer.byteLength(SDK) + '{"name":"sdk","version":"1.0.0"}'.length + '#!/usr/bin/env node\n'.length);
    for (const file of ['node_modules/sdk/index.js', 'node_modules/sdk/package.json', 'node_modules/sdk/bin/cli.js']) {
      expect(await inode(path.join(versionDir('memory', '1.1.0'), file)), file).to.equal(
        await inode(path.join(versionDir('memory', '1.0.0'), file)),
      );
    }
    expect(await inode(path.join(versionDir('memory', '1.1.0'), 'index.js'))).to.not.equal(
      await inode(path.join(versionDir('memory', '1.0.0'), 'index.js')),
    );
    expect(await fs.readFile(path.join(versionDir('memory', '1.1.0'), 'node_modules/sdk/index.js'), 'utf8')).to.equal(SDK);
    expect(await fs.readFile(path.join(versionDir('memory', '1.1.0'), 'index.js'), 'utf8')).to.include('memory@1.1.0');
    expect((await fs.stat(path.join(versionDir('memory', '1.0.0'), 'package.json'))).mode & 0o777).to.equal(0o444);
    expect((await fs.stat(path.join(versionDir('memory', '1.0.0'), 'index.js'))).mode & 0o777).to.equal(0o555);
    expect((await fs.stat(path.join(versionDir('memory', '1.0.0'), 'node_modules/sdk/index.js'))).nlink).to.equal(3);
    expect(await entryCount(store)).to.equal(7);
  });

  it('shares files across servers and names entries by sha256 and the exec bit', async () => {
    const body = 'same bytes\n';
    await writeTree(versionDir('a', '1.0.0'), [
      { path: 'plain.txt', body },
      { path: 'tool', body, mode: 0o755 },
    ]);
    await writeTree(versionDir('b', '2.0.0'), [{ path: 'copy.txt', body, mode: 0o600 }]);
    await storeTree(versionDir('a', '1.0.0'), store);
    await storeTree(versionDir('b', '2.0.0'), store);

    const hash = crypto.createHash('sha256').update(body).digest('hex');
    expect(await inode(storeEntry(store, hash, false))).to.equal(await inode(path.join(versionDir('a', '1.0.0'), 'plain.txt')));
    expect(await inode(storeEntry(store, hash, false))).to.equal(await inode(path.join(versionDir('b', '2.0.0'), 'copy.txt')));
    // Same bytes, but executable: an entry of its own, so the other file does not become executable.
    expect(await inode(storeEntry(store, hash, true))).to.equal(await inode(path.join(versionDir('a', '1.0.0'), 'tool')));
    expect((await fs.stat(path.join(versionDir('b', '2.0.0'), 'copy.txt'))).mode & 0o777).to.equal(0o444);
    expect(path.relative(store, storeEntry(store, hash, true))).to.equal(path.join(hash.slice(0, 2), `${hash.slice(2)}-x`));
  });

  it('leaves symbolic links and directories alone', async () => {
    const dir = versionDir('links', '1.0.0');
    await writeTree(dir, [{ path: 'lib/main.js', body: 'module.exports = 1;\n' }]);
    await fs.mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
    await fs.symlink('../../lib/main.js', path.join(dir, 'node_modules/.bin/main'));
    const report = await storeTree(dir, store);
    expect(report.files).to.equal(1);
    expect(await fs.readlink(path.join(dir, 'node_modules/.bin/main'))).to.equal('../../lib/main.js');
    expect((await fs.stat(path.join(dir, 'lib'))).mode & 0o777).to.equal(0o755);
  });

  it('leaves the version record and run script alone: they name their version', async () => {
    const one = versionDir('meta', '1.0.0');
    const two = versionDir('meta', '1.1.0');
    for (const dir of [one, two])
      await writeTree(dir, [
        { path: '.mcp-updater/run', body: '#!/bin/sh\n', mode: 0o755 },
        { path: 'index.js', body: 'same\n' },
      ]);
    const report = await storeTree(two, store);
    await storeTree(one, store);
    expect(report.files).to.equal(1);
    expect(await inode(path.join(one, '.mcp-updater/run'))).to.not.equal(await inode(path.join(two, '.mcp-updater/run')));
    expect((await fs.stat(path.join(one, '.mcp-updater/run'))).mode & 0o777).to.equal(0o755);
    expect(await inode(path.join(one, 'index.js'))).to.equal(await inode(path.join(two, 'index.js')));
  });

  it('changes nothing when run again on a stored tree', async () => {
    await writeTree(versionDir('memory', '1.0.0'), version('memory', '1.0.0'));
    await storeTree(versionDir('memory', '1.0.0'), store);
    const before = await inode(path.join(versionDir('memory', '1.0.0'), 'index.js'));
    const again = await storeTree(versionDir('memory', '1.0.0'), store);
    expect(again).to.deep.equal({ files: 5, shared: 0, added: 0, unchanged: 5, bytesSaved: 0 });
    expect(await inode(path.join(versionDir('memory', '1.0.0'), 'index.js'))).to.equal(before);
    expect(await entryCount(store)).to.equal(5);
  });

  it('agrees on one entry per content when several versions are stored at once', async () => {
    const versions = ['1.0.0', '1.0.1', '1.0.2', '1.0.3', '1.0.4', '1.0.5'];
    for (const v of versions) await writeTree(versionDir('race', v), version('race', '9.9.9'));
    await Promise.all(versions.map((v) => storeTree(versionDir('race', v), store)));
    const inodes = new Set(await Promise.all(versions.map((v) => inode(path.join(versionDir('race', v), 'node_modules/sdk/index.js')))));
    expect(inodes.size).to.equal(1);
    expect(await entryCount(store)).to.equal(5);
    expect((await fs.stat(path.join(versionDir('race', '1.0.0'), 'node_modules/sdk/index.js'))).nlink).to.equal(versions.length + 1);
  });

  it('prunes only entries nothing links to any more', async () => {
    await writeTree(versionDir('memory', '1.0.0'), version('memory', '1.0.0'));
    await writeTree(versionDir('memory', '1.1.0'), version('memory', '1.1.0'));
    await storeTree(versionDir('memory', '1.0.0'), store);
    await storeTree(versionDir('memory', '1.1.0'), store);
    expect(await pruneStore(store)).to.deep.equal({ removed: 0, bytesFreed: 0 });

    const onlyOld = ['package.json', 'index.js'].map((file) => path.join(versionDir('memory', '1.0.0'), file));
    const freed = (await Promise.all(onlyOld.map((file) => fs.stat(file)))).reduce((sum, stat) => sum + stat.size, 0);
    await fs.rm(versionDir('memory', '1.0.0'), { recursive: true });
    expect(await pruneStore(store)).to.deep.equal({ removed: 2, bytesFreed: freed });
    expect(await entryCount(store)).to.equal(5);
    expect(await fs.readFile(path.join(versionDir('memory', '1.1.0'), 'node_modules/sdk/index.js'), 'utf8')).to.equal(SDK);

    await fs.rm(versionDir('memory', '1.1.0'), { recursive: true });
    expect((await pruneStore(store)).removed).to.equal(5);
    expect(await fs.readdir(store)).to.deep.equal([]);
  });

  it('prunes a store that does not exist to nothing', async () => {
    expect(await pruneStore(path.join(root, 'missing'))).to.deep.equal({ removed: 0, bytesFreed: 0 });
  });

  it('counts each inode once, and what only this server holds', async () => {
    await writeTree(versionDir('memory', '1.0.0'), version('memory', '1.0.0'));
    await writeTree(versionDir('memory', '1.1.0'), version('memory', '1.1.0'));
    await writeTree(versionDir('other', '5.0.0'), version('other', '5.0.0'));
    const plain = await treeUsage(path.join(root, 'memory'));
    for (const v of ['1.0.0', '1.1.0']) await storeTree(versionDir('memory', v), store);
    const memory = await treeUsage(path.join(root, 'memory'));

    const sdkBytes = Buffer.byteLength(SDK) + '{"name":"sdk","version":"1.0.0"}'.length + '#!/usr/bin/env node\n'.length;
    expect(plain.files).to.equal(10);
    expect(plain.bytes).to.equal(plain.logicalBytes);
    expect(plain.exclusiveBytes).to.equal(plain.bytes);
    expect(memory.files).to.equal(10);
    expect(memory.logicalBytes).to.equal(plain.logicalBytes);
    expect(memory.bytes).to.equal(plain.bytes - sdkBytes);
    expect(memory.allocatedBytes).to.be.below(plain.allocatedBytes);
    expect(memory.exclusiveBytes).to.equal(memory.bytes);

    // Once another server shares the dependency, memory alone no longer holds it.
    await storeTree(versionDir('other', '5.0.0'), store);
    const shared = await treeUsage(path.join(root, 'memory'));
    expect(shared.bytes).to.equal(memory.bytes);
    expect(shared.exclusiveBytes).to.equal(memory.bytes - sdkBytes);
  });

  it('reports nothing for a tree that does not exist', async () => {
    expect(await treeUsage(path.join(root, 'nothing-here'))).to.deep.equal({
      files: 0,
      logicalBytes: 0,
      bytes: 0,
      allocatedBytes: 0,
      exclusiveBytes: 0,
    });
  });
});
