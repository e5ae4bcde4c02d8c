/*
 * Bull Board at /admin/queues over the pipeline queues and the webhook queue. Read-only when
 * API_TOKEN is unset. Job data, return values and every API answer of the board pass through
 * redact, so a secret that slipped into a payload or an error is not shown.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import { PIPELINE_QUEUES, type QueueName } from '../shared/queues.js';
import { redact } from '../shared/redact.js';

export const BOARD_PATH = '/admin/queues';

/** The queues the board shows, in pipeline order. */
export const BOARD_QUEUES: readonly QueueName[] = [...PIPELINE_QUEUES, 'webhook'];

export interface BoardOptions {
  queues: Partial<Record<QueueName, Queue>>;
  readOnly: boolean;
}

export function createBoardRouter(options: BoardOptions): RequestHandler {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  const adapters = BOARD_QUEUES.flatMap((name) => {
    const queue = options.queues[name];
    if (!queue) return [];
    const adapter = new BullMQAdapter(queue, {
      readOnlyMode: options.readOnly,
      allowRetries: !options.readOnly,
      description: name === 'webhook' ? 'event delivery to WEBHOOK_URLS' : `pipeline stage: ${name}`,
    });
    adapter.setFormatter('data', (data: unknown) => redact(data));
    adapter.setFormatter('returnValue', (value: unknown) => redact(value));
    return [adapter];
  });
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'mcp-updater',
        miscLinks: [{ text: 'Status page', url: '/' }],
        hideDocsLink: true,
      },
      // Failed reasons and stack traces are not covered by the formatters above.
      handlerHooks: { after: (_context, result) => ({ ...result, body: redact(result.body) }) },
    },
  });
  return serverAdapter.getRouter() as RequestHandler;
}
