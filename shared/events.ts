/*
 * Events (README "HTTP API", docs/ARCHITECTURE.md: "update.available" ... "cleanup.done"): appended to a capped Redis stream
 * (status page, API, CLI), written to audit.log, and handed to the webhook queue when
 * WEBHOOK_URLS is set. Shape: {type, server, ecosystem?, version, from?, at, reason?, jobId} plus extras.
 */
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Config } from './config.js';
import type { Ecosystem } from './inventory.js';
import { createLogger } from './logger.js';
import type { WebhookJobData } from './queues.js';
import { redact } from './redact.js';
import { appKey } from './redis.js';

export const EVENT_TYPES = [
  'update.available',
  'update.downloaded',
  'update.staged',
  'update.awaiting-approval',
  'update.activated',
  'update.failed',
  'update.rolled-back',
  'update.data-preserved',
  'update.surface-changed',
  'cleanup.done',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface UpdateEvent {
  type: EventType;
  server: string;
  /** The server's ecosystem (npm, pypi) when the publisher knows the server. */
  ecosystem?: Ecosystem;
  version?: string;
  from?: string;
  at: string;
  reason?: string;
  jobId?: string;
  /** Who asked for it (audit: token fingerprint or IP), when an operator did. */
  actor?: string;
  /** Extra facts: bytesFreed for cleanup.done, toolCount for update.staged... */
  details?: Record<string, unknown>;
}

export interface EventQuery {
  server?: string;
  type?: EventType;
  limit?: number;
}

const STREAM_MAX_LENGTH = 10_000;

export class EventLog {
  /** Created on first publish: readers (status, API) must not create audit.log. */
  private get audit() {
    return createLogger('audit');
  }

  constructor(
    private readonly redis: Redis,
    private readonly config: Pick<Config, 'queuePrefix' | 'webhookUrls'>,
    private readonly webhookQueue?: Queue<WebhookJobData>,
    /** The server's ecosystem, added to every event published for it (workers know the inventory). */
    private readonly ecosystemOf?: (server: string) => Ecosystem | undefined,
  ) {}

  private get streamKey(): string {
    return appKey(this.config, 'events');
  }

  async publish(input: Omit<UpdateEvent, 'at'> & { at?: string }): Promise<UpdateEvent> {
    const ecosystem = input.ecosystem ?? this.ecosystemOf?.(input.server);
    const event = redact({ ...input, ...(ecosystem ? { ecosystem } : {}), at: input.at ?? new Date().toISOString() }) as UpdateEvent;
    const json = JSON.stringify(event);
    await this.redis.xadd(this.streamKey, 'MAXLEN', '~', String(STREAM_MAX_LENGTH), '*', 'event', json);
    this.audit.info(event.type, { event });
    if (this.webhookQueue && this.config.webhookUrls.length > 0) {
      await this.webhookQueue.addBulk(
        this.config.webhookUrls.map((url) => ({
          name: event.type,
          data: { url, event: event as unknown as Record<string, unknown> },
        })),
      );
    }
    return event;
  }

  /** Newest first. Filters by server and type while reading the stream backwards. */
  async list(query: EventQuery = {}): Promise<UpdateEvent[]> {
    const limit = Math.max(1, Math.min(query.limit ?? 50, 1_000));
    const results: UpdateEvent[] = [];
    let end = '+';
    const batch = query.server || query.type ? 500 : limit;
    while (results.length < limit) {
      const entries = await this.redis.xrevrange(this.streamKey, end, '-', 'COUNT', batch);
      if (entries.length === 0) break;
      for (const [, fields] of entries) {
        // Redacted again on the way out: a secret registered after the event was written (an
        // inventory edit) is scrubbed from old events too.
        const event = redact(JSON.parse(fields[1] ?? '{}')) as UpdateEvent;
        if (query.server && event.server !== query.server) continue;
        if (query.type && event.type !== query.type) continue;
        results.push(event);
        if (results.length >= limit) break;
      }
      if (entries.length < batch) break;
      end = `(${entries[entries.length - 1]![0]}`;
    }
    return results;
  }
}
