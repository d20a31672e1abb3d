import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { gcTotals, loopDelay } from '../../bench/gc.js';
import { parseMetrics } from '../support/prometheus.js';

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

  it('reads nothing from a text without the series', () => {
    expect(gcTotals(parseMetrics('# no metrics\nother_metric 1\n'))).toEqual({ seconds: 0, count: 0, under10ms: 0, full: 0 });
  });
});
