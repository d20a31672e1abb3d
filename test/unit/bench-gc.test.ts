import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { gcTotals, loopDelay, loopLateMaxMs } from '../../bench/gc.js';
import { EVENT_LOOP_SAMPLE_MS } from '../../src/observability/metrics.js';
import { parseMetrics, sampleValue } from '../support/prometheus.js';

// The bench reads the server's collection pauses from its /metrics text; the parse must agree with
// what prom-client itself holds, in the format it writes.

describe('bench: GC totals from a /metrics text', () => {
  it("matches prom-client's own GC histogram and event-loop delay", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    let keep: unknown[] = [];
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 20_000; i++) keep.push({ i, text: `x${i}` });
      if (keep.length > 200_000) keep = [];
      await new Promise((resolve) => setImmediate(resolve));
    }
    const samples = parseMetrics(await registry.metrics());
    const [histogram] = (await registry.getMetricsAsJSON()).filter((m) => m.name === 'nodejs_gc_duration_seconds') as unknown as Array<{ values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> }>;
    const of = (metricName: string, match: (labels: Record<string, string | number>) => boolean = () => true) =>
      histogram!.values.filter((v) => v.metricName === metricName && match(v.labels)).reduce((total, v) => total + v.value, 0);

    const totals = gcTotals(samples);
    expect(totals.count).toBeGreaterThan(0);
    expect(totals.count).toBe(of('nodejs_gc_duration_seconds_count'));
    expect(totals.seconds).toBeCloseTo(of('nodejs_gc_duration_seconds_sum'), 9);
    expect(totals.under10ms).toBe(of('nodejs_gc_duration_seconds_bucket', (l) => Number(l.le) === 0.01));
    expect(totals.full).toBe(of('nodejs_gc_duration_seconds_count', (l) => l.kind === 'major'));
    const delay = loopDelay(samples);
    expect(Number.isFinite(delay.maxMs) && Number.isFinite(delay.p99Ms)).toBe(true);
  });

  it("takes the sampling interval off the event loop's figures, which an idle loop's samples all contain", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const samples = parseMetrics(await registry.metrics());
    const seconds = (name: string) => sampleValue(samples, name)!;
    // A timer never runs early: every sample is at least the interval (libuv counts whole ms).
    expect(seconds('nodejs_eventloop_lag_min_seconds') * 1000).toBeGreaterThanOrEqual(EVENT_LOOP_SAMPLE_MS - 1);
    // Every sample may come in under the interval by up to 1 ms, whereupon the delay is 0, not negative.
    expect(loopDelay(samples).maxMs).toBeCloseTo(Math.max(0, seconds('nodejs_eventloop_lag_max_seconds') * 1000 - EVENT_LOOP_SAMPLE_MS), 6);

    const late = loopDelay(parseMetrics('nodejs_eventloop_lag_max_seconds 0.0325\nnodejs_eventloop_lag_p99_seconds 0.0093\n'));
    expect(late.maxMs).toBeCloseTo(22.5, 6);
    expect(late.p99Ms).toBe(0);
  });

  it('reads results written before the interval was taken off as 10 ms less', () => {
    const gc = { pauseMsPerS: 16, longPausesPer10s: 0, fullPer10s: 1 };
    expect(loopLateMaxMs({ ...gc, loopDelayMaxMs: 18.9, loopDelayP99Ms: 13 })).toBeCloseTo(8.9, 6);
    expect(loopLateMaxMs({ ...gc, loopDelayMaxMs: 9.5, loopDelayP99Ms: 9.5 })).toBe(0);
    expect(loopLateMaxMs({ ...gc, loopLateMaxMs: 3, loopLateP99Ms: 1 })).toBe(3);
  });

  it('reads nothing from a text without the series', () => {
    expect(gcTotals(parseMetrics('# no metrics\nother_metric 1\n'))).toEqual({ seconds: 0, count: 0, under10ms: 0, full: 0 });
  });
});
