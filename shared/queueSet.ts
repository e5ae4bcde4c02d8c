/*
 * BullMQ's objects for the contract's queues (shared/queues.ts): one Queue per queue name on a
 * shared connection, QueueEvents on a connection of their own. Apart from shared/redis.ts so that a
 * process that only reads Redis (`mcp-updater servers`) never loads BullMQ.
 */
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import {
  defaultJobOptions,
  QUEUE_NAMES,
  type ContractQueues,
  type JobDataByQueue,
  type JobResultByQueue,
  type QueueName,
} from './queues.js';
import { ownedConnection } from './redis.js';

export type QueueSet = ContractQueues;

export function createQueue<Q extends QueueName>(
  name: Q,
  config: Config,
  connection: Redis,
): Queue<JobDataByQueue[Q], JobResultByQueue[Q]> {
  const queue = new Queue<JobDataByQueue[Q], JobResultByQueue[Q]>(name, {
    connection,
    prefix: config.queuePrefix,
    defaultJobOptions: defaultJobOptions(config.maxRetries, config.retryBackoffMs),
  });
  queue.on('error', () => undefined);
  return queue;
}

export function createQueueEvents(name: QueueName, config: Config, lastEventId?: string): QueueEvents {
  const events = new QueueEvents(name, {
    connection: ownedConnection(config, 'worker'),
    prefix: config.queuePrefix,
    ...(lastEventId ? { lastEventId } : {}),
  });
  events.on('error', () => undefined);
  return events;
}

/** One Queue object per queue name, sharing one connection. */
export function createQueues(config: Config, connection: Redis): QueueSet {
  return Object.fromEntries(QUEUE_NAMES.map((name) => [name, createQueue(name, config, connection)])) as unknown as QueueSet;
}

export async function closeQueues(queues: QueueSet): Promise<void> {
  await Promise.all(Object.values(queues).map((queue) => queue.close()));
}
