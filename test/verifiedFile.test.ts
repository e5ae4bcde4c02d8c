import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import ssri from 'ssri';
import { writeVerifiedFile, type VerifiedFileOptions } from '../shared/verifiedFile.js';

describe('writeVerifiedFile: a download appears only once verified', () => {
  let dir: string;
  const body = Buffer.from('the bytes the index published\n');
  const integrity = ssri.fromData(body, { algorithms: ['sha256'] }).toString();

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mcpu-verified-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  function options(overrides: Partial<VerifiedFileOptions> = {}): VerifiedFileOptions {
    return {
      destination: path.join(dir, 'sub', 'file.whl'),
      integrity,
      maxBytes: 1_000,
      tooBig: () => Object.assign(new Error('too big'), { code: 'ETOOBIG' }),
      signal: new AbortController().signal,
      ...overrides,
    };
  }

  async function files(): Promise<string[]> {
    return (await fs.readdir(dir, { recursive: true })).map(String).sort();
  }

  it('writes the file (making its folder) and counts its bytes, handing each chunk to onChunk', async () => {
    const seen: Buffer[] = [];
    const result = await writeVerifiedFile(
      Readable.from([body.subarray(0, 10), body.subarray(10)]),
      options({ onChunk: (chunk) => seen.push(chunk) }),
    );
    expect(result).to.deep.equal({ bytes: body.length });
    expect(Buffer.concat(seen)).to.deep.equal(body);
    expect(await fs.readFile(path.join(dir, 'sub', 'file.whl'))).to.deep.equal(body);
    expect(await files()).to.deep.equal(['sub', path.join('sub', 'file.whl')]);
  });

  // Each failure many times over: the partial file must be gone whatever moment the pipeline failed at.
  const failures: Array<[string, () => { body: Readable; options: Partial<VerifiedFileOptions> }, string]> = [
    ['other bytes than the digest', () => ({ body: Readable.from([Buffer.from('other bytes')]), options: {} }), 'EINTEGRITY'],
    ['more bytes than the limit', () => ({ body: Readable.from([body]), options: { maxBytes: 5 } }), 'ETOOBIG'],
    [
      'an aborted download',
      () => {
        const controller = new AbortController();
        const slow = new Readable({ read() {} });
        slow.push(body.subarray(0, 5));
        setImmediate(() => controller.abort());
        return { body: slow, options: { signal: controller.signal } };
      },
      'ABORT_ERR',
    ],
  ];
  for (const [name, make, code] of failures) {
    it(`leaves nothing behind after ${name} (${code}), 25 times`, async () => {
      for (let round = 0; round < 25; round += 1) {
        const attempt = make();
        const error = await writeVerifiedFile(attempt.body, options(attempt.options)).then(
          () => undefined,
          (caught: unknown) => caught as { code?: string },
        );
        expect(error?.code, `round ${round}`).to.equal(code);
      }
      expect(await files()).to.deep.equal(['sub']);
    });
  }
});
