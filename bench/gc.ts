// The server's garbage-collection pauses and event-loop delay while a scenario is measured, read from
// its own /metrics (prom-client's default metrics) at the start and end of the window: what in a run's
// latency tail is the server stopping, rather than a batch waiting. The same two scrapes give the
// server's own latency over the window (bench/inside-server.ts).
import { EVENT_LOOP_SAMPLE_MS } from '../src/observability/metrics.js';
import { insideServer, type InsideServer } from './inside-server.js';
// The parser the tests read /metrics with.
import { matching, parseMetrics, sampleValue, type Sample } from '../test/support/prometheus.js';

/** Over one measured window. */
export interface GcUse {
  /** Milliseconds of pause per second of the window, every kind of collection together. */
  pauseMsPerS: number;
  /** Pauses of 10 ms or more, per 10 s of the window. */
  longPausesPer10s: number;
  /** Full (mark-compact) collections per 10 s. */
  fullPer10s: number;
  /**
   * The event loop's longest delay in the window and its 99th percentile, ms: how late its timer
   * ran, past the sampling interval (prom-client resets them at every scrape).
   */
  loopLateMaxMs: number;
  loopLateP99Ms: number;
}

/** As results written before 2026-12-08 hold it: the loop's figures with the sampling interval in them. */
type GcUseBefore20261208 = Omit<GcUse, 'loopLateMaxMs' | 'loopLateP99Ms'> & { loopDelayMaxMs: number; loopDelayP99Ms: number };
export type SavedGcUse = GcUse | GcUseBefore20261208;

/** A figure of prom-client's event-loop histogram, ms, less the sampling interval it contains. */
const pastSampleInterval = (ms: number) => Math.max(0, ms - EVENT_LOOP_SAMPLE_MS);

/** The event loop's longest delay in a result's window, past the sampling interval, whichever the result's age. */
export function loopLateMaxMs(gc: SavedGcUse): number {
  return 'loopLateMaxMs' in gc ? gc.loopLateMaxMs : pastSampleInterval(gc.loopDelayMaxMs);
}

interface GcTotals {
  seconds: number;
  count: number;
  /** Pauses under 10 ms (the `le="0.01"` bucket). */
  under10ms: number;
  full: number;
}

const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) => matching(samples, name, labels).reduce((sum, s) => sum + s.value, 0);

export function gcTotals(samples: Sample[]): GcTotals {
  return {
    seconds: total(samples, 'nodejs_gc_duration_seconds_sum'),
    count: total(samples, 'nodejs_gc_duration_seconds_count'),
    under10ms: total(samples, 'nodejs_gc_duration_seconds_bucket', { le: '0.01' }),
    full: total(samples, 'nodejs_gc_duration_seconds_count', { kind: 'major' }),
  };
}

/**
 * How late the event loop ran since the previous scrape, ms: prom-client's figures are the times
 * between its samples, so the sampling interval is taken off (an idle loop reads 0, not 10).
 */
export function loopDelay(samples: Sample[]): { maxMs: number; p99Ms: number } {
  const ms = (name: string) => pastSampleInterval((sampleValue(samples, name) ?? NaN) * 1000);
  return { maxMs: ms('nodejs_eventloop_lag_max_seconds'), p99Ms: ms('nodejs_eventloop_lag_p99_seconds') };
}

async function scrape(url: string): Promise<Sample[] | null> {
  try {
    const res = await fetch(`${url}/metrics`);
    return res.ok ? parseMetrics(await res.text()) : null;
  } catch {
    return null;
  }
}

/** What the server's own /metrics say of one measured window. */
export interface ServerWindow {
  gc: GcUse;
  inside: InsideServer;
}

/**
 * Starts the window with a scrape (which also resets the event-loop histogram); the returned
 * function ends it with another. Null where the server has no /metrics (the hello-world server).
 */
export async function watchServer(url: string): Promise<(() => Promise<ServerWindow | null>) | null> {
  const first = await scrape(url);
  if (first === null) return null;
  const before = gcTotals(first);
  const started = performance.now();
  return async () => {
    const last = await scrape(url);
    if (last === null) return null;
    const seconds = (performance.now() - started) / 1000;
    const after = gcTotals(last);
    const pauses = after.count - before.count;
    const delay = loopDelay(last);
    const gc = {
      pauseMsPerS: ((after.seconds - before.seconds) * 1000) / seconds,
      longPausesPer10s: ((pauses - (after.under10ms - before.under10ms)) * 10) / seconds,
      fullPer10s: ((after.full - before.full) * 10) / seconds,
      loopLateMaxMs: delay.maxMs,
      loopLateP99Ms: delay.p99Ms,
    };
    return { gc, inside: insideServer(first, last) };
  };
}
