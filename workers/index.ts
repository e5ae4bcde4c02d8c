/*
 * Starts and closes the workers of the queues this process works on (WORKERS).
 */
import type { Worker } from 'bullmq';
import type { QueueName } from '../shared/queues.js';
import { createActivateWorker } from './activate.js';
import { createCheckWorker } from './check.js';
import { createCleanupWorker } from './cleanup.js';
import type { WorkerContext } from './context.js';
import { createDownloadWorker } from './download.js';
import { createStageWorker } from './stage.js';
import { createWebhookWorker } from './webhook.js';

const FACTORIES: Record<QueueName, (context: WorkerContext) => Worker> = {
  check: createCheckWorker,
  download: createDownloadWorker,
  stage: createStageWorker,
  activate: createActivateWorker,
  cleanup: createCleanupWorker,
  webhook: createWebhookWorker,
} as Record<QueueName, (context: WorkerContext) => Worker>;

export interface RunningWorkers {
  workers: Worker[];
  /** Stop taking jobs, let active ones finish, then close. */
  close(): Promise<void>;
}

export function startWorkers(context: WorkerContext, queues: readonly QueueName[]): RunningWorkers {
  const names = new Set<QueueName>(queues);
  // Whoever emits events also delivers them when webhooks are configured.
  if (context.config.webhookUrls.length > 0) names.add('webhook');
  const workers = [...names].map((name) => FACTORIES[name](context));
  context.log.orchestration.info(`workers started: ${[...names].join(', ')}`, { queues: [...names] });
  return {
    workers,
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
    },
  };
}
