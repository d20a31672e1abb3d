import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import type { FlushObserver } from '../platform/batcher.js';
import type { Db } from '../platform/db.js';
import { withSpan } from './tracing.js';

/** Seconds: from sub-millisecond hot-path commits to slow requests. */
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Operations per batch; ingest's batches count events, up to a few thousand. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/**
 * How often the event loop's delay is sampled (prom-client's default). Its `nodejs_eventloop_lag_*`
 * figures are the times between samples, this interval included: an idle loop reads 0.010 s.
 */
export const EVENT_LOOP_SAMPLE_MS = 10;

/** One read shared by the gauges collected in the same scrape (prom-client collects them concurrently). */
export function sharedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () => (inFlight ??= read().finally(() => (inFlight = null)));
}

/** Sets a scrape-time gauge's values: one per label set. */
export type GaugeCollector = (set: (labels: Record<string, string>, value: number) => void) => Promise<void> | void;

/**
 * Tollgate's Prometheus registry. A module adds its metric in one line (`metrics.counter(...)`,
 * `metrics.histogram(...)`, or `metrics.gauge(..., collect)` for a value read at scrape time) and
 * keeps the returned metric; /metrics serves everything registered here plus the process's
 * default metrics (memory, CPU, event-loop delay, GC).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly collectErrors: Counter<'collector'>;
  private readonly batchSize: Histogram<'batcher'>;
  private readonly batchSeconds: Histogram<'batcher' | 'outcome'>;

  constructor(private readonly log: FastifyBaseLogger) {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    this.collectErrors = this.counter('tollgate_metrics_collect_errors_total', 'Scrape-time gauges that could not be read (e.g. the database was down), by gauge', ['collector']);
    this.batchSize = this.histogram('tollgate_batch_size', 'Operations per group-commit batch', ['batcher'], BATCH_SIZE_BUCKETS);
    this.batchSeconds = this.histogram('tollgate_batch_commit_seconds', 'Time to apply and commit one group-commit batch (one transaction)', ['batcher', 'outcome']);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets = LATENCY_BUCKETS_SECONDS): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /**
   * A gauge computed when Prometheus scrapes. A collector that fails leaves the gauge without
   * values for that scrape (absent, not a stale or made-up number) and counts the failure.
   */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: GaugeCollector): Gauge<L> {
    const { log, collectErrors } = this;
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          await collect((labels, value) => this.set(labels as Record<L, string>, value));
        } catch (err) {
          this.reset();
          collectErrors.inc({ collector: name });
          log.warn({ err, gauge: name }, 'metrics gauge could not be read');
        }
      },
    });
  }

  /**
   * Size and commit latency of a group-commit batcher (the ledger's hot path, event ingestion),
   * each flush in its own trace span; `committed` sees the items of each batch that committed.
   */
  batchObserver<I>(batcher: string, committed?: (items: readonly I[]) => void): FlushObserver<I> {
    const size = this.batchSize;
    const seconds = this.batchSeconds;
    return async (items, flush) => {
      size.observe({ batcher }, items.length);
      const end = seconds.startTimer({ batcher });
      try {
        const results = await withSpan(`${batcher}.batch`, { 'tollgate.batch.size': items.length }, flush);
        end({ outcome: 'committed' });
        committed?.(items);
        return results;
      } catch (error) {
        end({ outcome: 'failed' });
        throw error;
      }
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Database connection pool use (PostgreSQL); PGlite reports only which engine runs. */
export function registerDbMetrics(metrics: Metrics, db: Db) {
  metrics.gauge('tollgate_db_info', 'The database engine in use (value 1)', ['engine'], (set) => set({ engine: db.kind }, 1));
  metrics.gauge('tollgate_db_pool_connections', 'PostgreSQL pool connections: max, total open, idle, and requests waiting for one (none on PGlite)', ['state'], (set) => {
    const use = db.poolUse?.();
    if (use) for (const state of ['max', 'total', 'idle', 'waiting'] as const) set({ state }, use[state]);
  });
}
