/*
 * webhook: deliver one event to one WEBHOOK_URLS endpoint as JSON, with a Slack-compatible
 * `text` line, signed with HMAC-SHA256 over the exact body (`X-MCP-Updater-Signature:
 * sha256=<hex>`) when WEBHOOK_SECRET is set. Non-2xx answers and network errors are retried by
 * BullMQ with backoff; 4xx other than 408/429 are final. A webhook URL is shown only as its
 * origin (chat webhooks carry their secret in the path).
 */
import crypto from 'node:crypto';
import { MCPError } from '../shared/errors.js';
import type { WebhookJobData, WebhookResult } from '../shared/queues.js';
import { redactString, redactWebhookUrl } from '../shared/redact.js';
import type { WorkerContext } from './context.js';
import { createPipelineWorker, type JobLike } from './worker.js';

export type { WebhookJobData };

export const SIGNATURE_HEADER = 'X-MCP-Updater-Signature';
const TIMEOUT_MS = 10_000;

export function createWebhookWorker(context: WorkerContext) {
  return createPipelineWorker('webhook', context, execWebhookJob);
}

/**
 * Text a package controls (a failure reason quotes its stderr) must not become chat markup:
 * Slack's `<!channel>`, `<@U123>` and `<https://evil|label>` need `<`, `>` and `&` (escaped the
 * way Slack documents), Discord's and Mattermost's mass mentions an `@` before everyone, here or
 * channel (a zero-width space after it keeps the text readable).
 */
export function escapeChatMarkup(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replace(/@(everyone|here|channel|all)\b/gi, '@\u200b$1');
}

/** One readable line for chat tools. */
export function eventText(event: Record<string, unknown>): string {
  const version = event.version ? ` ${String(event.version)}` : '';
  const from = event.from ? ` (from ${String(event.from)})` : '';
  const reason = event.reason ? `: ${String(event.reason)}` : '';
  return escapeChatMarkup(`[mcp-updater] ${String(event.server)}: ${String(event.type)}${version}${from}${reason}`);
}

export function signBody(body: string, secret: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

export async function execWebhookJob(job: JobLike<WebhookJobData>, context: WorkerContext): Promise<WebhookResult> {
  const { url, event } = job.data;
  const body = JSON.stringify({ ...event, text: eventText(event) });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'mcp-updater' };
  if (context.config.webhookSecret) headers[SIGNATURE_HEADER] = signBody(body, context.config.webhookSecret);
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new MCPError('EWEBHOOK', `webhook ${redactWebhookUrl(url)} unreachable (${redactString((error as Error).message)})`, {
      retryable: true,
      cause: error,
    });
  }
  await response.body?.cancel();
  if (!response.ok) {
    const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
    throw new MCPError('EWEBHOOK', `webhook ${redactWebhookUrl(url)} answered ${response.status}`, {
      retryable,
      hint: retryable ? 'retried with backoff' : 'fix the receiver or WEBHOOK_URLS',
    });
  }
  return { status: response.status };
}
