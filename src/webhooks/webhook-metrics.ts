import { sharedRead, type Metrics } from '../observability/metrics.js';
import type { Clock } from '../platform/clock.js';
import type { Queryable } from '../platform/db.js';
import { queueStats } from './webhook-store.js';

/** How one delivery attempt ended: `delivered` (2xx), `rejected` (another status), `error` (no answer: refused, timeout, address refused). */
export type DeliveryOutcome = 'delivered' | 'rejected' | 'error';
export type DeliveryObserver = (outcome: DeliveryOutcome, seconds: number) => void;

/**
 * Webhook delivery counters and latency (observed by the dispatcher per attempt), and the
 * background queues' depth and oldest age, read at scrape time.
 */
export function registerWebhookMetrics(metrics: Metrics, db: Queryable, clock: Clock): DeliveryObserver {
  const deliveries = metrics.counter('tollgate_webhook_deliveries_total', 'Webhook delivery attempts by outcome (delivered: 2xx; rejected: another status; error: no answer)', ['outcome']);
  const latency = metrics.histogram('tollgate_webhook_delivery_seconds', 'Webhook delivery attempt duration, by outcome', ['outcome']);
  const queues = sharedRead(() => queueStats(db, clock.now()));
  metrics.gauge('tollgate_job_queue_depth', 'Background work waiting: outbox events not yet fanned out, webhook deliveries due', ['queue'], async (set) => {
    for (const q of await queues()) set({ queue: q.queue }, q.depth);
  });
  metrics.gauge('tollgate_job_queue_oldest_seconds', 'Age of the oldest waiting item per background queue (0 when empty)', ['queue'], async (set) => {
    for (const q of await queues()) set({ queue: q.queue }, q.oldest_seconds);
  });
  return (outcome, seconds) => {
    deliveries.inc({ outcome });
    latency.observe({ outcome }, seconds);
  };
}
