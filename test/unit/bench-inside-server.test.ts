import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { bucketsBetween, insideServer, quantile, shareOver } from '../../bench/inside-server.js';
import { parseMetrics } from '../support/prometheus.js';

// The bench reads the server's own latency histograms between two scrapes; what it computes must
// be what PromQL's histogram_quantile would say of the same buckets.

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

function server() {
  const registry = new Registry();
  const requests = new Histogram({ name: 'tollgate_http_request_duration_seconds', help: 'h', labelNames: ['method', 'route'], buckets: BUCKETS, registers: [registry] });
  const commits = new Histogram({ name: 'tollgate_batch_commit_seconds', help: 'h', labelNames: ['batcher', 'outcome'], buckets: BUCKETS, registers: [registry] });
  return { scrape: async () => parseMetrics(await registry.metrics()), requests, commits };
}

describe('bench: the server-side latency of a window', () => {
  it('counts only what was observed between the scrapes, on the hot path, and interpolates as histogram_quantile', async () => {
    const { scrape, requests, commits } = server();
    // Before the window: slow answers that must not count.
    for (let i = 0; i < 50; i++) requests.observe({ method: 'POST', route: '/v1/authorize' }, 0.09);
    const before = await scrape();
    // In it: 98 fast answers split over both routes, 2 between 10 and 25 ms; other routes and methods are not the hot path.
    for (let i = 0; i < 49; i++) requests.observe({ method: 'POST', route: '/v1/authorize' }, 0.002);
    for (let i = 0; i < 49; i++) requests.observe({ method: 'POST', route: '/v1/reservations/:id/settle' }, 0.002);
    requests.observe({ method: 'POST', route: '/v1/reservations/:id/settle' }, 0.02);
    requests.observe({ method: 'POST', route: '/v1/authorize' }, 0.02);
    for (let i = 0; i < 30; i++) requests.observe({ method: 'GET', route: '/v1/reservations/:id' }, 0.09);
    for (let i = 0; i < 10; i++) requests.observe({ method: 'POST', route: '/v1/events' }, 0.09);
    for (let i = 0; i < 10; i++) commits.observe({ batcher: 'ledger', outcome: 'committed' }, 0.004);
    for (let i = 0; i < 10; i++) commits.observe({ batcher: 'ingest', outcome: 'committed' }, 0.09);
    const after = await scrape();

    const seen = insideServer(before, after);
    expect(seen.requestsOver10ms).toBeCloseTo(0.02, 9);
    // Rank 99 of 100: the first of the 2 in (10, 25] ms, half-way through that bucket.
    expect(seen.requestP99Ms).toBeCloseTo(10 + 15 * 0.5, 6);
    expect(seen.commitsOver10ms).toBe(0);
    // Rank 9.9 of 10, all in (2.5, 5] ms.
    expect(seen.commitP99Ms).toBeCloseTo(2.5 + 2.5 * 0.99, 6);
  });

  it('says nothing of a window without observations, and stops at the last finite bound', async () => {
    const { scrape } = server();
    const samples = await scrape();
    expect(insideServer(samples, samples)).toEqual({ requestP99Ms: null, requestsOver10ms: null, commitP99Ms: null, commitsOver10ms: null });
    const buckets = [{ le: 0.01, count: 1 }, { le: 0.1, count: 1 }, { le: Infinity, count: 100 }];
    expect(quantile(buckets, 0.99)).toBe(0.1);
    expect(shareOver(buckets, 0.01)).toBeCloseTo(0.99, 9);
    expect(shareOver(buckets, 0.02)).toBeNull();
  });

  it('reads buckets of series that appear only after the first scrape', async () => {
    const { scrape, commits } = server();
    const before = await scrape();
    commits.observe({ batcher: 'ledger', outcome: 'failed' }, 0.03);
    const buckets = bucketsBetween(before, await scrape(), 'tollgate_batch_commit_seconds');
    expect(buckets.at(-1)).toEqual({ le: Infinity, count: 1 });
    expect(buckets.find((b) => b.le === 0.025)?.count).toBe(0);
  });
});
