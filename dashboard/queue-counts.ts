/*
 * Job counts per queue and state for /metrics (queue_jobs), the status page, GET /status and the
 * CLI's `status`, read at most about once a second however often Prometheus or browsers ask.
 */
import type { Queue } from 'bullmq';
import type { QueueName } from '../shared/queues.js';

export const COUNTED_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;
export type CountedState = (typeof COUNTED_STATES)[number];

export type QueueCountMap = Partial<Record<QueueName, Record<CountedState, number>>>;

/**
 * What people are shown per queue. `delayed` keeps BullMQ's name (as queue_jobs does) but is shown
 * as "scheduled": it holds each server's next scheduled check and retries waiting out their backoff,
 * jobs that are not ready to run, unlike `waiting` ones, which wait for a free worker.
 */
export interface QueueSummary {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
}

export function summarizeQueue(counts: Record<CountedState, number>): QueueSummary {
  return {
    waiting: counts.waiting + counts.prioritized + counts['waiting-children'],
    active: counts.active,
    delayed: counts.delayed,
    failed: counts.failed,
    completed: counts.completed,
  };
}

export function summarizeQueues(counts: QueueCountMap): Partial<Record<QueueName, QueueSummary>> {
  return Object.fromEntries(Object.entries(counts).map(([name, byState]) => [name, summarizeQueue(byState)]));
}

export class QueueCounts {
  private cached?: { at: number; counts: QueueCountMap };
  private pending?: Promise<QueueCountMap>;

  constructor(
    private readonly queues: Partial<Record<QueueName, Queue>>,
    private readonly cacheMs = 1_000,
  ) {}

  async read(): Promise<QueueCountMap> {
    if (this.cached && Date.now() - this.cached.at < this.cacheMs) return this.cached.counts;
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<QueueCountMap> {
    const entries = await Promise.all(
      Object.entries(this.queues).map(async ([name, queue]) => {
        const counts = await queue.getJobCounts(...COUNTED_STATES);
        const byState = Object.fromEntries(COUNTED_STATES.map((state) => [state, counts[state] ?? 0])) as Record<CountedState, number>;
        return [name, byState] as const;
      }),
    );
    const counts = Object.fromEntries(entries) as QueueCountMap;
    this.cached = { at: Date.now(), counts };
    return counts;
  }
}
