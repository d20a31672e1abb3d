import type { FlushObserver } from '../platform/batcher.js';
import type { Clock } from '../platform/clock.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventSink } from './events-routes.js';
import type { EventResult } from './model.js';
import type { RatedEvent } from './ingest-service.js';

/** Counts what POST /v1/events answered per event: accepted, duplicate, rejected (by code). */
export function countedEventSink(sink: EventSink, metrics: Metrics): EventSink {
  const events = metrics.counter('tollgate_ingest_events_total', 'Usage events received, by result (accepted, duplicate, rejected)', ['status']);
  const rejected = metrics.counter('tollgate_ingest_rejected_total', 'Usage events rejected, by code', ['code']);
  const count = (results: EventResult[]) => {
    for (const result of results) {
      events.inc({ status: result.status });
      if (result.status === 'rejected') rejected.inc({ code: result.code });
    }
  };
  const counted: EventSink = {
    async ingest(inputs) {
      const results = await sink.ingest(inputs);
      count(results);
      return results;
    },
  };
  if (sink.ingestOnce) {
    const ingestOnce = sink.ingestOnce.bind(sink);
    counted.ingestOnce = async (inputs, request) => {
      const reply = await ingestOnce(inputs, request);
      // A replay was counted when it was first answered.
      if (!reply.replayed) count((reply.body as { data: EventResult[] }).data);
      return reply;
    };
  }
  return counted;
}

/**
 * The ingest writer's batches: size, commit time, and lag, the time from the API's receipt of an
 * event to its commit (in NATS mode, what the events waited in JetStream and in the worker).
 */
export function ingestBatchObserver(metrics: Metrics, clock: Clock): FlushObserver<RatedEvent> {
  const lag = metrics.histogram('tollgate_ingest_lag_seconds', 'Time from receiving a usage event to committing it (the oldest event of each batch)', [], [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900]);
  return metrics.batchObserver<RatedEvent>('ingest', (events) => {
    const oldest = events.reduce((min, e) => Math.min(min, e.receivedAt.getTime()), Infinity);
    lag.observe(Math.max(0, clock.now().getTime() - oldest) / 1_000);
  });
}

/** `tollgate worker`'s own metric: the shared JetStream consumer's backlog, read at scrape time (absent while not connected). */
export function registerWorkerMetrics(metrics: Metrics, backlog: () => Promise<{ pending: number; ackPending: number } | null>): void {
  metrics.gauge('tollgate_nats_consumer_pending', "The workers' JetStream consumer backlog: usage events not yet delivered (state pending) or delivered and not yet acked (ack_pending)", ['state'], async (set) => {
    const now = await backlog();
    if (!now) return;
    set({ state: 'pending' }, now.pending);
    set({ state: 'ack_pending' }, now.ackPending);
  });
}
