/*
 * Issue 15: registry requests hand npm's keep-alive agent its protocol, so agent-base never
 * captures a stack trace to guess it (shared/httpAgent.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getAgent } from '@npmcli/agent';
import { expect } from 'chai';
import { fetchAgent } from '../shared/httpAgent.js';
import { RegistryClient } from '../shared/registry.js';

describe('registry requests: the keep-alive agent knows its protocol', function () {
  it("is the agent npm's fetch stack would use for the origin, told http: or https:", () => {
    for (const href of ['http://127.0.0.1:4873/', 'https://registry.example.test/']) {
      const url = new URL(href);
      const agent = fetchAgent(url, 5_000);
      expect(agent).to.equal(getAgent(href, { timeout: 5_000, rejectUnauthorized: true }));
      expect(agent.protocol).to.equal(url.protocol);
      expect(agent.defaultPort).to.equal(url.protocol === 'https:' ? 443 : 80);
    }
  });

  it('reads no stack trace in agent-base while a packument is fetched', async () => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: 'pkg', 'dist-tags': { latest: '1.0.0' }, versions: {} }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const original = Error.prepareStackTrace;
    const formatted: string[] = [];
    Error.prepareStackTrace = (error, frames) => {
      formatted.push(frames.map((frame) => frame.getFileName() ?? '').join('\n'));
      return original ? original(error, frames) : String(error);
    };
    try {
      const client = new RegistryClient({ apiBaseUrl: registry, tarballHosts: [], maxTarballBytes: 1024 }, {});
      for (let i = 0; i < 3; i++) expect((await client.packument('pkg', false)).name).to.equal('pkg');
    } finally {
      Error.prepareStackTrace = original;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(formatted.filter((stack) => stack.includes('agent-base'))).to.deep.equal([]);
  });
});
