import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerTotals } from '../../src/ledger/ledger-queries.js';
import { WRITE_BATCH_EVENTS_MAX } from '../../src/metering/ingest-service.js';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { parseMetrics, sampleValue, type Sample } from '../support/prometheus.js';
import { testEngine } from '../support/test-db.js';

const METRICS_TOKEN = 'metrics_token_0123456789abcdef';
const clock = new ManualClock(new Date('2031-03-01T12:00:00Z'));
let server: TestServer;
let customer: Fixture;

beforeAll(async () => {
  server = await startServer({ clock, metricsToken: METRICS_TOKEN });
  await seedCatalog(server.api);
  customer = await createCustomer(server.api, { credit: '10.00' });
});
afterAll(() => server?.close());

async function scrape(): Promise<Sample[]> {
  const r = await server.api.get('/metrics', { token: METRICS_TOKEN });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(r.body as string);
}

const requests = (samples: Sample[], method: string, route: string, status: string) =>
  sampleValue(samples, 'tollgate_http_requests_total', { method, route, status }) ?? 0;

describe('GET /metrics', () => {
  it('wants the metrics token when one is configured, and is left out of the OpenAPI document', async () => {
    const open = await server.api.get('/metrics', { token: null });
    expect(open.status).toBe(401);
    expect(open.body).toMatchObject({ code: 'unauthorized' });
    expect((await server.api.get('/metrics', { token: 'tga_test_admin_token_0123456789' })).status).toBe(401);
    expect((await server.api.get('/metrics', { token: METRICS_TOKEN })).status).toBe(200);
    const spec = await server.api.get('/openapi.json');
    expect(Object.keys(spec.body.paths)).not.toContain('/metrics');
  });

  it('counts requests per route template and status, with their latency', async () => {
    const before = await scrape();
    const auth = await authorize(server.api, customer.apiKey, { megapixels: 4 });
    expect(auth.status).toBe(200);
    const settle = await server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: 1 } });
    expect(settle.status).toBe(200);
    expect((await authorize(server.api, 'tg_not_a_key_at_all_0123456789', { megapixels: 1 })).status).toBe(401);
    expect((await server.api.get('/v1/no/such/route')).status).toBe(404);
    const after = await scrape();

    const delta = (method: string, route: string, status: string) => requests(after, method, route, status) - requests(before, method, route, status);
    expect(delta('POST', '/v1/authorize', '200')).toBe(1);
    expect(delta('POST', '/v1/authorize', '401')).toBe(1);
    expect(delta('POST', '/v1/reservations/:id/settle', '200')).toBe(1);
    expect(delta('GET', 'unmatched', '404')).toBe(1);
    // No series per reservation id, and /metrics does not count itself.
    expect(after.some((s) => s.labels.route?.includes('res_'))).toBe(false);
    expect(after.some((s) => s.labels.route === '/metrics')).toBe(false);
    const latencyCount = sampleValue(after, 'tollgate_http_request_duration_seconds_count', { method: 'POST', route: '/v1/authorize' });
    expect(latencyCount).toBe(2 + (sampleValue(before, 'tollgate_http_request_duration_seconds_count', { method: 'POST', route: '/v1/authorize' }) ?? 0));
  });

  it('reports hot-path batches: size and commit time', async () => {
    const before = await scrape();
    const count = (samples: Sample[], name: string, labels: Record<string, string>) => sampleValue(samples, name, labels) ?? 0;
    const results = await Promise.all(Array.from({ length: 6 }, () => authorize(server.api, customer.apiKey, { megapixels: 1 })));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(200));
    const after = await scrape();
    const sizeSum = count(after, 'tollgate_batch_size_sum', { batcher: 'ledger' }) - count(before, 'tollgate_batch_size_sum', { batcher: 'ledger' });
    const batches = count(after, 'tollgate_batch_size_count', { batcher: 'ledger' }) - count(before, 'tollgate_batch_size_count', { batcher: 'ledger' });
    expect(sizeSum).toBe(6);
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(6);
    const commits = count(after, 'tollgate_batch_commit_seconds_count', { batcher: 'ledger', outcome: 'committed' }) - count(before, 'tollgate_batch_commit_seconds_count', { batcher: 'ledger', outcome: 'committed' });
    expect(commits).toBe(batches);
    for (const r of results) expect((await server.api.post(`/v1/reservations/${r.body.reservation.id}/release`)).status).toBe(200);
  });

  it('reports open and overdue holds, read from the database at scrape time', async () => {
    // Two customers: an operation on a customer also expires that customer's overdue holds.
    const c = await createCustomer(server.api, { credit: '5.00' });
    const other = await createCustomer(server.api, { credit: '5.00' });
    const holdsOf = async () => {
      const s = await scrape();
      return { open: sampleValue(s, 'tollgate_holds_open', { currency: 'USD' }) ?? 0, overdue: sampleValue(s, 'tollgate_holds_overdue', { currency: 'USD' }) ?? 0 };
    };
    const start = await holdsOf();
    const short = await authorize(server.api, c.apiKey, { megapixels: 1 }, { hold_seconds: 60 });
    const long = await authorize(server.api, other.apiKey, { megapixels: 1 }, { hold_seconds: 3600 });
    expect([short.status, long.status]).toEqual([200, 200]);
    expect(await holdsOf()).toEqual({ open: start.open + 2, overdue: start.overdue });
    clock.advance(120_000); // the short hold is past its expiry; no sweeper runs in this test
    expect(await holdsOf()).toEqual({ open: start.open + 2, overdue: start.overdue + 1 });
    await server.api.post(`/v1/reservations/${long.body.reservation.id}/release`);
    expect(await holdsOf()).toEqual({ open: start.open + 1, overdue: start.overdue + 1 });
  });

  it('counts usage events by result and rejection code, and the ingest batches', async () => {
    const before = await scrape();
    const event = (id: string, subject: string) => ({ specversion: '1.0', id, source: 'test/metrics', type: 'usage', subject, data: { product: 'fal-ai/flux/dev', megapixels: '1' } });
    const first = await server.api.post('/v1/events', [event('m-1', customer.customerId), event('m-2', 'nobody-at-all')]);
    expect(first.body.data.map((r: any) => r.status)).toEqual(['accepted', 'rejected']);
    const again = await server.api.post('/v1/events', [event('m-1', customer.customerId)]);
    expect(again.body.data[0].status).toBe('duplicate');
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(delta('tollgate_ingest_events_total', { status: 'accepted' })).toBe(1);
    expect(delta('tollgate_ingest_events_total', { status: 'duplicate' })).toBe(1);
    expect(delta('tollgate_ingest_events_total', { status: 'rejected' })).toBe(1);
    expect(delta('tollgate_ingest_rejected_total', { code: first.body.data[1].code })).toBe(1);
    expect(delta('tollgate_batch_size_sum', { batcher: 'ingest' })).toBe(2);
    expect(delta('tollgate_ingest_lag_seconds_count', {})).toBeGreaterThanOrEqual(1);
  });

  it("keeps each ingest write batch within its engine's limit, and shows batches past 1,024 events in the histogram", async () => {
    const limit = WRITE_BATCH_EVENTS_MAX[testEngine];
    // The histogram's buckets are powers of two: the smallest that holds a batch at the limit.
    const limitBucket = String(2 ** Math.ceil(Math.log2(limit)));
    const ingest = server.app.services.ingest;
    const requests = await Promise.all(Array.from({ length: 4 }, (_, r) =>
      ingest.prepare(Array.from({ length: 1_000 }, (_, i) => ({
        specversion: '1.0', id: `limit-${r}-${i}`, source: 'test/batch-limit', type: 'usage', subject: customer.customerId, data: { product: 'fal-ai/flux/dev', megapixels: '0.001' },
      }))),
    ));
    const before = await scrape();
    // Four requests' events queued at once: the writer takes as many as fit in a batch.
    const written = await Promise.all(requests.map(({ ready }) => ingest.write(ready.map((r) => r.event))));
    expect(written.flat().every((w) => w.status === 'accepted')).toBe(true);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(delta('tollgate_batch_size_sum', { batcher: 'ingest' })).toBe(4_000);
    expect(delta('tollgate_batch_size_count', { batcher: 'ingest' })).toBe(4_000 / limit);
    expect(delta('tollgate_batch_size_bucket', { batcher: 'ingest', le: '1024' })).toBe(0);
    expect(delta('tollgate_batch_size_bucket', { batcher: 'ingest', le: limitBucket })).toBe(4_000 / limit);
  });

  it('reports ledger totals per currency as the ledger totals query sums them, and an imbalance of 0', async () => {
    const samples = await scrape();
    for (const t of await ledgerTotals(server.database.db)) {
      expect(sampleValue(samples, 'tollgate_ledger_credits', { currency: t.currency, state: 'posted' })).toBeCloseTo(Number(t.credits_posted) / 1e9, 9);
      expect(sampleValue(samples, 'tollgate_ledger_imbalance', { currency: t.currency, state: 'posted' })).toBe(0);
      expect(sampleValue(samples, 'tollgate_ledger_imbalance', { currency: t.currency, state: 'pending' })).toBe(0);
    }
    expect(sampleValue(samples, 'tollgate_ledger_credits', { currency: 'USD', state: 'posted' })).toBeGreaterThanOrEqual(15);
  });

  it('reports the database pool (PostgreSQL) or engine, and process memory and event-loop delay', async () => {
    const samples = await scrape();
    expect(sampleValue(samples, 'tollgate_db_info', { engine: testEngine })).toBe(1);
    if (testEngine === 'postgres') {
      expect(sampleValue(samples, 'tollgate_db_pool_connections', { state: 'max' })).toBe(8);
      expect(sampleValue(samples, 'tollgate_db_pool_connections', { state: 'total' })).toBeGreaterThanOrEqual(1);
    }
    expect(sampleValue(samples, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(sampleValue(samples, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
  });

  // Last: it breaks the ledger on purpose.
  it('shows a broken double entry in the imbalance gauge, to the single ledger unit', async () => {
    await server.database.db.query(`UPDATE ledger_accounts SET debits_posted = debits_posted + 1 WHERE id = (SELECT min(id) FROM ledger_accounts WHERE currency = 'USD')`);
    const samples = await scrape();
    expect(sampleValue(samples, 'tollgate_ledger_imbalance', { currency: 'USD', state: 'posted' })).toBe(1e-9);
    expect(sampleValue(samples, 'tollgate_ledger_imbalance', { currency: 'USD', state: 'pending' })).toBe(0);
  });
});
