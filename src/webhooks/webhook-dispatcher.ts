import type { FastifyBaseLogger } from 'fastify';
import { trace } from '@opentelemetry/api';
import { withSpan } from '../observability/tracing.js';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { newId } from '../platform/ids.js';
import { emit, envelope, event, eventsByIds, processOutbox, type OutboxEvent } from '../outbox/outbox.js';
import { Poller } from '../outbox/poller.js';
import { endpointWants, retryDelayMs, shouldDisable, signedHeaders } from './webhook-rules.js';
import { sendWebhook } from './webhook-sender.js';
import type { DeliveryObserver } from './webhook-metrics.js';
import * as store from './webhook-store.js';
import type { WebhooksService } from './webhooks-service.js';

const FANOUT_BATCH = 200;

/** Ids are time-ordered (ULID after the prefix, increasing within a process): compare creation. */
const createdAfter = (a: string, b: string) => a.slice(a.indexOf('_') + 1) > b.slice(b.indexOf('_') + 1);
const DELIVERY_BATCH = 64;
const DELIVERY_CONCURRENCY = 16;
/** A claimed delivery not recorded by the end of its timeout plus this is claimed again. */
const LEASE_MARGIN_MS = 5_000;

export interface WebhookDispatcherOptions {
  db: Db;
  clock: Clock;
  webhooks: WebhooksService;
  log: FastifyBaseLogger;
  timeoutMs: number;
  allowPrivate: boolean;
  intervalMs: number;
  random?: () => number;
  /** Told how each attempt ended and how long it took (metrics). */
  observe?: DeliveryObserver;
}

/**
 * Delivers the outbox to webhook endpoints, at least once: fans new events out into one delivery
 * per wanting endpoint, then sends due deliveries and records each attempt, retrying on the
 * schedule of webhook-rules.ts. Safe on several processes at once (SKIP LOCKED claims and leases).
 */
export class WebhookDispatcher {
  private readonly poller: Poller;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.poller = new Poller('webhook dispatch', options.intervalMs, options.log, () => this.runOnce());
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** One pass: fan out what is new, then send what is due. Returns how much it did. */
  async runOnce(): Promise<number> {
    const fannedOut = await this.fanOut();
    return fannedOut + (await this.deliverDue());
  }

  private fanOut(): Promise<number> {
    const now = this.options.clock.now();
    return processOutbox(this.options.db, 'dispatched_at', FANOUT_BATCH, now, async (tx, events) => {
      const customers = [...new Set(events.flatMap((e) => (e.customerId ? [e.customerId] : [])))];
      const endpoints = await store.endpointsFor(tx, customers);
      const rows = events.flatMap((e) =>
        endpoints
          // An endpoint gets the events that happen once it exists; earlier ones only by a replay.
          .filter((ep) => createdAfter(e.id, ep.id) && endpointWants({ customerId: ep.customer_id, eventTypes: ep.event_types, enabled: ep.enabled }, e))
          .map((ep) => ({ id: newId('whd', now.getTime()), endpoint_id: ep.id, event_id: e.id })),
      );
      await store.upsertDeliveries(tx, rows, now, false);
    });
  }

  private async deliverDue(): Promise<number> {
    const { db, clock, timeoutMs } = this.options;
    const now = clock.now();
    const claimed = await store.claimDue(db, now, new Date(now.getTime() + timeoutMs + LEASE_MARGIN_MS), DELIVERY_BATCH);
    if (claimed.length === 0) return 0;
    const endpoints = await store.endpointsByIds(db, [...new Set(claimed.map((d) => d.endpoint_id))]);
    const events = await eventsByIds(db, [...new Set(claimed.map((d) => d.event_id))]);
    let next = 0;
    const worker = async () => {
      while (next < claimed.length) {
        const delivery = claimed[next++]!;
        const endpoint = endpoints.get(delivery.endpoint_id);
        const ev = events.get(delivery.event_id);
        if (endpoint && ev) await this.attempt(delivery, endpoint, ev);
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELIVERY_CONCURRENCY, claimed.length) }, worker));
    return claimed.length;
  }

  private async attempt(delivery: store.DeliveryRow, endpoint: store.EndpointRow, ev: OutboxEvent): Promise<void> {
    const { db, clock, webhooks } = this.options;
    const body = JSON.stringify(envelope(ev));
    // webhook-timestamp is the real time of sending: receivers check it against their own clocks.
    const headers = signedHeaders(webhooks.signingSecrets(endpoint, clock.now()), ev.id, Math.floor(Date.now() / 1000), body);
    const result = await withSpan('webhook delivery', { 'tollgate.webhook.endpoint': endpoint.id, 'tollgate.event.type': ev.type, 'tollgate.webhook.attempt': delivery.attempts + 1 }, async () => {
      const sent = await sendWebhook(endpoint.url, headers, body, { timeoutMs: this.options.timeoutMs, allowPrivate: this.options.allowPrivate });
      trace.getActiveSpan()?.setAttribute('http.response.status_code', sent.statusCode ?? 0);
      return sent;
    });
    const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    this.options.observe?.(ok ? 'delivered' : result.statusCode === null ? 'error' : 'rejected', result.latencyMs / 1000);
    const at = clock.now();
    const attempt = delivery.attempts + 1;
    const delay = ok ? null : retryDelayMs(attempt, (this.options.random ?? Math.random)());
    const next = ok
      ? { status: 'succeeded' as const, nextAttemptAt: null }
      : delay === null
        ? { status: 'failed' as const, nextAttemptAt: null }
        : { status: 'pending' as const, nextAttemptAt: new Date(at.getTime() + delay) };
    await db.transaction(async (tx) => {
      await store.recordAttempt(
        tx,
        { delivery_id: delivery.id, attempt, attempted_at: at, status_code: result.statusCode, latency_ms: result.latencyMs, response_excerpt: result.excerpt, error: result.error },
        next,
      );
      const after = await store.noteEndpointOutcome(tx, endpoint.id, ok, at);
      if (after?.enabled && next.status === 'failed' && shouldDisable(after.failing_since ? new Date(after.failing_since) : null, at)) await this.disable(tx, after, at);
    });
  }

  /** An endpoint that kept failing is disabled, and an event says so (to the operator's endpoints too). */
  private async disable(tx: Queryable, endpoint: store.EndpointRow, at: Date): Promise<void> {
    const reason = `every delivery failed since ${new Date(endpoint.failing_since!).toISOString()}`;
    await store.disableEndpoint(tx, endpoint.id, reason, at);
    await emit(tx, [event('webhook_endpoint.disabled', endpoint.customer_id, { id: endpoint.id, customer_id: endpoint.customer_id, url: endpoint.url, reason })], at);
    this.options.log.warn({ endpoint: endpoint.id }, 'webhook endpoint disabled: it kept failing');
  }
}
