/*
 * The CLI bundle (bin/build.js, bundleCli) is run only while node_modules holds the very versions
 * of the packages it took in; otherwise the bin runs dist/cli/main.js with node_modules as it is.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
// @ts-expect-error: bin/build.js is plain JavaScript without type declarations.
import { bundleIsCurrent } from '../bin/build.js';

const isCurrent = bundleIsCurrent as (root: string) => boolean;

describe('build: the CLI bundle matches node_modules', () => {
  let root: string;

  async function writeJson(file: string, value: unknown): Promise<void> {
    await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await fs.writeFile(path.join(root, file), JSON.stringify(value));
  }

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-build-'));
    await writeJson('node_modules/joi/package.json', { name: 'joi', version: '18.3.2' });
    await writeJson('node_modules/@hapi/hoek/package.json', { name: '@hapi/hoek', version: '11.0.7' });
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('is current when every bundled package has the recorded version', async () => {
    await writeJson('dist/cli-bundle/packages.json', { 'node_modules/joi': '18.3.2', 'node_modules/@hapi/hoek': '11.0.7' });
    expect(isCurrent(root)).to.equal(true);
  });

  it('is not current once a bundled package has another version (npm install after the build)', async () => {
    await writeJson('dist/cli-bundle/packages.json', { 'node_modules/joi': '18.3.1', 'node_modules/@hapi/hoek': '11.0.7' });
    expect(isCurrent(root)).to.equal(false);
  });

  it('is not current when a bundled package is gone', async () => {
    await writeJson('dist/cli-bundle/packages.json', { 'node_modules/joi': '18.3.2', 'node_modules/yaml': '2.9.1' });
    expect(isCurrent(root)).to.equal(false);
  });

  it('is not current without a bundle (built without esbuild)', () => {
    expect(isCurrent(root)).to.equal(false);
  });
});
