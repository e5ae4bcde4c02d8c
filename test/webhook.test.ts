/*
 * Webhook delivery against a local node:http receiver: JSON body with a Slack-compatible `text`,
 * HMAC-SHA256 signature checked on the receiving side, retryable failures (5xx, 429, network)
 * versus final ones (4xx, bad payload), and the whole path from EventLog.publish through the
 * webhook queue and a real BullMQ worker.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnrecoverableError } from 'bullmq';
import { expect } from 'chai';
import { isRetryable, MCPError } from '../shared/errors.js';
import { EventLog } from '../shared/events.js';
import type { WebhookJobData } from '../shared/queues.js';
import type { WorkerContext } from '../workers/context.js';
import { createWebhookWorker, eventText, execWebhookJob, signBody, SIGNATURE_HEADER } from '../workers/webhook.js';
import { runProcessor, type JobLike } from '../workers/worker.js';
import { createTestEnv, type TestEnv } from './support/env.js';

const SECRET = 'whsec-test-0123456789';

interface Received {
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The receiver's own verdict on the signature header. */
  signatureValid: boolean;
}

/** A webhook receiver that verifies signatures the way a user's endpoint would. */
class Receiver {
  readonly received: Received[] = [];
  /** Statuses to answer, in order; 200 once they run out. */
  statuses: number[] = [];
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const header = String(req.headers[SIGNATURE_HEADER.toLowerCase()] ?? '');
        const expected = `sha256=${crypto.createHmac('sha256', SECRET).update(body).digest('hex')}`;
        const signatureValid = header.length === expected.length && crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected));
        this.received.push({ method: req.method ?? '', headers: req.headers, body, signatureValid });
        res.statusCode = this.statuses.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  reset(): void {
    this.received.length = 0;
    this.statuses = [];
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

const EVENT = {
  type: 'update.activated',
  server: 'memory',
  version: '1.2.0',
  from: '1.1.0',
  at: '2026-03-01T10:00:00.000Z',
  reason: 'scheduled check',
  jobId: 'memory@1.2.0',
};

function job(url: string, attemptsMade = 0, event: Record<string, unknown> = EVENT): JobLike<WebhookJobData> {
  return { id: `hook-${attemptsMade}`, name: 'update.activated', data: { url, event }, attemptsMade, opts: { attempts: 3 } };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  expect.fail('expected a rejection');
}

describe('webhook delivery', function () {
  this.timeout(30_000);
  const receiver = new Receiver();
  let env: TestEnv;
  let context: WorkerContext;

  before(async () => {
    await receiver.start();
    env = await createTestEnv({ env: { WEBHOOK_SECRET: SECRET, WEBHOOK_URLS: receiver.url } });
    context = await env.context();
  });

  beforeEach(() => receiver.reset());

  after(async () => {
    await env?.cleanup();
    await receiver.close();
  });

  it('POSTs the event as JSON with a Slack-compatible text line', async () => {
    const result = await runProcessor('webhook', job(receiver.url), context, execWebhookJob);
    expect(result).to.deep.equal({ status: 200 });
    expect(receiver.received).to.have.length(1);
    const [delivery] = receiver.received;
    expect(delivery!.method).to.equal('POST');
    expect(delivery!.headers['content-type']).to.equal('application/json');
    const body = JSON.parse(delivery!.body) as Record<string, unknown>;
    expect(body).to.include(EVENT);
    expect(body.text).to.equal('[mcp-updater] memory: update.activated 1.2.0 (from 1.1.0): scheduled check');
    expect(body.text).to.equal(eventText(EVENT));
  });

  it('signs the exact body with HMAC-SHA256 of WEBHOOK_SECRET', async () => {
    await runProcessor('webhook', job(receiver.url), context, execWebhookJob);
    const [delivery] = receiver.received;
    expect(delivery!.signatureValid, 'signature verified by the receiver').to.equal(true);
    expect(delivery!.headers[SIGNATURE_HEADER.toLowerCase()]).to.equal(signBody(delivery!.body, SECRET));
    expect(delivery!.body).to.not.include(SECRET);
  });

  it('sends no signature without WEBHOOK_SECRET', async () => {
    const unsigned = { ...context, config: { ...context.config, webhookSecret: undefined } };
    await runProcessor('webhook', job(receiver.url), unsigned, execWebhookJob);
    expect(receiver.received[0]!.headers[SIGNATURE_HEADER.toLowerCase()]).to.equal(undefined);
  });

  it('retries after a 500: a retryable error first, then delivery', async () => {
    receiver.statuses = [500];
    const error = await rejection(runProcessor('webhook', job(receiver.url, 0), context, execWebhookJob));
    expect(error).to.not.be.instanceOf(UnrecoverableError);
    expect(error).to.be.instanceOf(MCPError);
    expect((error as MCPError).code).to.equal('EWEBHOOK');
    expect(error.message).to.include('answered 500');
    expect(isRetryable(error)).to.equal(true);
    const result = await runProcessor('webhook', job(receiver.url, 1), context, execWebhookJob);
    expect(result.status).to.equal(200);
    expect(receiver.received).to.have.length(2);
    expect(receiver.received[1]!.body).to.equal(receiver.received[0]!.body);
  });

  it('retries on 429 and 408 too', async () => {
    for (const status of [429, 408, 503]) {
      receiver.statuses = [status];
      const error = await rejection(runProcessor('webhook', job(receiver.url), context, execWebhookJob));
      expect(error, String(status)).to.not.be.instanceOf(UnrecoverableError);
    }
  });

  it('gives up at once on a 400 (UnrecoverableError)', async () => {
    receiver.statuses = [400];
    const error = await rejection(runProcessor('webhook', job(receiver.url), context, execWebhookJob));
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(error.message).to.include('answered 400');
    expect(isRetryable(error)).to.equal(false);
  });

  it('retries when the receiver is unreachable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await rejection(runProcessor('webhook', job(`http://127.0.0.1:${port}/hook`), context, execWebhookJob));
    expect(error).to.not.be.instanceOf(UnrecoverableError);
    expect(error.message).to.include('unreachable');
  });

  it('refuses an invalid payload without sending anything', async () => {
    const bad = { id: 'bad', data: { url: 'ftp://example.invalid/', event: EVENT }, attemptsMade: 0, opts: { attempts: 3 } };
    const error = await rejection(runProcessor('webhook', bad, context, execWebhookJob));
    expect(error).to.be.instanceOf(UnrecoverableError);
    expect(receiver.received).to.have.length(0);
  });

  it('delivers published events through the webhook queue and a real worker, retrying a 500', async () => {
    receiver.statuses = [500];
    const worker = createWebhookWorker(context);
    try {
      const events = new EventLog(context.redis, context.config, context.queues.webhook);
      await events.publish({
        type: 'update.failed',
        server: 'memory',
        version: '1.3.0',
        reason: 'smoke test failed',
        jobId: 'memory@1.3.0',
      });
      const deadline = Date.now() + 15_000;
      while (receiver.received.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(receiver.received).to.have.length(2);
      for (const delivery of receiver.received) {
        expect(delivery.signatureValid).to.equal(true);
        const body = JSON.parse(delivery.body) as Record<string, unknown>;
        expect(body).to.include({ type: 'update.failed', server: 'memory', version: '1.3.0' });
        expect(body.text).to.equal('[mcp-updater] memory: update.failed 1.3.0: smoke test failed');
      }
      // The receiver answers before the worker records the job as completed: wait for that record.
      let completed = await context.queues.webhook.getCompleted();
      while (completed.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        completed = await context.queues.webhook.getCompleted();
      }
      expect(completed).to.have.length(1);
      expect(completed[0]!.attemptsMade).to.equal(2);
    } finally {
      await worker.close();
    }
  });
});
