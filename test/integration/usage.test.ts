import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageService } from '../../src/metering/usage-service.js';
import { ManualClock } from '../../src/platform/clock.js';
import { add, cmp, formatDecimal, parseDecimal, ZERO, type Decimal } from '../../src/platform/decimal.js';
import { parseAmount } from '../../src/platform/money.js';
import { createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';

/*
 * GET /v1/usage and /v1/me/usage (docs/metering.md, "Usage"). First over rollup rows written
 * directly (the queries on their own), then end to end through POST /v1/events and settle, where
 * a property checks the rollups against two recomputations from the raw events.
 */

const NOW = new Date('2027-01-01T00:02:00.000Z');
const ODD_PRICES: Record<string, string> = { input_tokens: '0.000000333333', output_tokens: '0.000000777777', gpu_seconds: '0.000123456789' };
const clock = new ManualClock(NOW);
let server: TestServer;
let usageService: UsageService;
const products: Record<string, string> = {}; // key -> id
const prices: Record<string, string> = {}; // "product meter" -> USD price id

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
  await ok(server.api.post('/v1/meters', { key: 'users', name: 'Distinct users', unit: 'user', aggregation: 'unique_count' }));
  await ok(server.api.post('/v1/products', { key: 'acme/unpriced', name: 'No price yet' }));
  // Three meters at 12-decimal prices: costs round, and charges split with remainders.
  await ok(server.api.post('/v1/products', { key: 'acme/odd', name: 'Odd prices' }));
  for (const [meter, unitAmount] of Object.entries(ODD_PRICES)) {
    await ok(server.api.post('/v1/prices', { product: 'acme/odd', meter, currency: 'USD', scheme: 'per_unit', unit_amount: unitAmount, effective_at: '2020-01-01T00:00:00Z' }));
  }
  await ok(server.api.post('/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'EUR', scheme: 'per_unit', unit_amount: '0.02', effective_at: '2020-01-01T00:00:00Z' }));
  for (const p of (await ok(server.api.get('/v1/products?limit=100'))).data) products[p.key] = p.id;
  for (const p of (await ok(server.api.get('/v1/prices?limit=100'))).data) if (p.currency === 'USD' && !p.customer_id) prices[`${p.product} ${p.meter}`] = p.id;
  usageService = new UsageService(server.database.db, server.app.services.catalog);
});
afterAll(() => server?.close());

async function ok(request: Promise<ApiResponse>): Promise<any> {
  const r = await request;
  if (r.status >= 300) throw new Error(`request failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function expectProblem(r: ApiResponse, status: number, code: string, path?: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body.code).toBe(code);
  if (path) expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
}

type Row = {
  window_start: string; product: string | null; meter: string | null; api_key_id: string | null; currency: string;
  sum: string | null; count: number; max: string | null; unique_count: number | null; charged: string;
};

async function usage(query: Record<string, string>, token?: string): Promise<Row[]> {
  const path = token ? '/v1/me/usage' : '/v1/usage';
  const r = await server.api.get(`${path}?${new URLSearchParams(query)}`, token ? { token } : {});
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data;
}

const byKey = (rows: Row[]) =>
  [...rows].sort((a, b) => (a.window_start + a.product + a.meter + a.api_key_id + a.currency < b.window_start + b.product + b.meter + b.api_key_id + b.currency ? -1 : 1));
const row = (r: Partial<Row> & Pick<Row, 'window_start'>): Row => ({
  product: null, meter: null, api_key_id: null, currency: 'USD', sum: null, count: 0, max: null, unique_count: null, charged: '0.00', ...r,
});

// ---------------------------------------------------------------------------------------------

describe('queries over stored rollups', () => {
  let a: Fixture;
  let b: Fixture;
  let aSecondKey: string;

  interface Rollup { customer: string; product: string; apiKey?: string; meter: string; hour: string; sum?: string; max?: string | null; count: number; charged?: bigint; currency?: string; values?: string[] }

  async function putRollups(rows: Rollup[]) {
    for (const r of rows) {
      await server.database.db.query(
        `INSERT INTO usage_rollups (customer_id, product_id, api_key_id, meter_key, bucket_start, currency, quantity_sum, quantity_max, event_count, charged)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [r.customer, products[r.product], r.apiKey ?? '', r.meter, new Date(r.hour), r.currency ?? 'USD', r.sum ?? '0', r.max ?? null, r.count, (r.charged ?? 0n).toString()],
      );
      for (const value of r.values ?? []) {
        await server.database.db.query(
          `INSERT INTO usage_rollup_values (customer_id, product_id, api_key_id, meter_key, bucket_start, value) VALUES ($1, $2, $3, $4, $5, $6)`,
          [r.customer, products[r.product], r.apiKey ?? '', r.meter, new Date(r.hour), value],
        );
      }
    }
  }

  const DAY1 = '2026-11-30T00:00:00.000Z';
  const DAY2 = '2026-12-01T00:00:00.000Z';
  const range = { from: '2026-11-01T00:00:00Z', to: '2027-01-01T00:00:00Z' };

  beforeAll(async () => {
    a = await createCustomer(server.api);
    b = await createCustomer(server.api);
    aSecondKey = (await ok(server.api.post(`/v1/customers/${a.customerId}/api_keys`, { name: 'second' }))).id;
    const flux = 'fal-ai/flux/dev';
    const llama = 'meta/llama-3-70b';
    await putRollups([
      // Customer a: megapixels on both sides of midnight (and of a month end), one hour with a key.
      { customer: a.customerId, product: flux, meter: 'megapixels', hour: '2026-11-30T23:00:00Z', sum: '1.500000000000', max: '1', count: 2, charged: 37_500_000n },
      { customer: a.customerId, product: flux, meter: 'megapixels', hour: '2026-12-01T00:00:00Z', sum: '2.25', max: '2.25', count: 1, charged: 56_250_000n },
      { customer: a.customerId, product: flux, apiKey: a.apiKeyId, meter: 'megapixels', hour: '2026-12-01T05:00:00Z', sum: '4', max: '4', count: 1, charged: 100_000_000n },
      { customer: a.customerId, product: llama, apiKey: aSecondKey, meter: 'input_tokens', hour: '2026-12-01T05:00:00Z', sum: '1000', max: '1000', count: 1, charged: 600_000n },
      { customer: a.customerId, product: llama, apiKey: aSecondKey, meter: 'output_tokens', hour: '2026-12-01T05:00:00Z', sum: '500', max: '500', count: 1, charged: 400_000n },
      // Distinct users: u2 is seen in both hours and counts once in the day.
      { customer: a.customerId, product: llama, apiKey: aSecondKey, meter: 'users', hour: '2026-12-01T05:00:00Z', count: 2, values: ['u1', 'u2'] },
      { customer: a.customerId, product: llama, apiKey: aSecondKey, meter: 'users', hour: '2026-12-01T06:00:00Z', count: 2, values: ['u2', 'u3'] },
      // Customer b.
      { customer: b.customerId, product: flux, meter: 'megapixels', hour: '2026-12-01T00:00:00Z', sum: '10', max: '10', count: 1, charged: 250_000_000n },
      { customer: b.customerId, product: llama, meter: 'users', hour: '2026-12-01T05:00:00Z', count: 1, values: ['u1'] },
    ]);
  });

  it('adds hours up into UTC days per product and meter: sums, counts, maxes, distinct values and charges', async () => {
    const rows = await usage({ customer: a.customerId, ...range, window: 'day', group_by: 'product,meter' });
    expect(byKey(rows)).toEqual(byKey([
      row({ window_start: DAY1, product: 'fal-ai/flux/dev', meter: 'megapixels', sum: '1.5', count: 2, max: '1', charged: '0.0375' }),
      row({ window_start: DAY2, product: 'fal-ai/flux/dev', meter: 'megapixels', sum: '6.25', count: 2, max: '4', charged: '0.15625' }),
      row({ window_start: DAY2, product: 'meta/llama-3-70b', meter: 'input_tokens', sum: '1000', count: 1, max: '1000', charged: '0.0006' }),
      row({ window_start: DAY2, product: 'meta/llama-3-70b', meter: 'output_tokens', sum: '500', count: 1, max: '500', charged: '0.0004' }),
      row({ window_start: DAY2, product: 'meta/llama-3-70b', meter: 'users', count: 4, unique_count: 3 }),
    ]));
  });

  it('without group_by, gives one row per window and currency: charges and counts, no quantities across meters', async () => {
    expect(await usage({ customer: a.customerId, ...range, window: 'month' })).toEqual([
      row({ window_start: '2026-11-01T00:00:00.000Z', count: 2, charged: '0.0375' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', count: 8, charged: '0.15725' }),
    ]);
    // Filtered to one meter, a row is one meter again: its quantities are shown.
    expect(await usage({ customer: a.customerId, ...range, window: 'month', meter: 'megapixels' })).toEqual([
      row({ window_start: '2026-11-01T00:00:00.000Z', sum: '1.5', max: '1', count: 2, charged: '0.0375' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', sum: '6.25', max: '4', count: 2, charged: '0.15625' }),
    ]);
    expect(await usage({ customer: a.customerId, ...range, window: 'day', meter: 'users' })).toEqual([row({ window_start: DAY2, count: 4, unique_count: 3 })]);
    expect(await usage({ customer: a.customerId, ...range, window: 'hour', meter: 'users' })).toEqual([
      row({ window_start: '2026-12-01T05:00:00.000Z', count: 2, unique_count: 2 }),
      row({ window_start: '2026-12-01T06:00:00.000Z', count: 2, unique_count: 2 }),
    ]);
  });

  it('for the operator, adds every customer up unless one is asked for', async () => {
    const rows = await usage({ ...range, window: 'day', group_by: 'meter', meter: 'megapixels' });
    const ours = rows.filter((r) => r.window_start === DAY2);
    // Only this part writes rows dated 2026 (the end-to-end part lives in 2027 and later).
    expect(ours).toEqual([row({ window_start: DAY2, meter: 'megapixels', sum: '16.25', max: '10', count: 3, charged: '0.40625' })]);
    const users = await usage({ ...range, window: 'month', meter: 'users', product: 'meta/llama-3-70b' });
    expect(users).toEqual([row({ window_start: '2026-12-01T00:00:00.000Z', count: 5, unique_count: 3 })]);
  });

  it('groups and filters by API key (events without a key have api_key_id null) and by product key or id', async () => {
    const rows = await usage({ customer: a.customerId, ...range, window: 'month', group_by: 'api_key' });
    expect(byKey(rows)).toEqual(byKey([
      row({ window_start: '2026-11-01T00:00:00.000Z', count: 2, charged: '0.0375' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', count: 1, charged: '0.05625' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', api_key_id: a.apiKeyId, count: 1, charged: '0.10' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', api_key_id: aSecondKey, count: 6, charged: '0.001' }),
    ]));
    expect(await usage({ customer: a.customerId, ...range, api_key: a.apiKeyId, group_by: 'product,meter,api_key' })).toEqual([
      row({ window_start: DAY2, product: 'fal-ai/flux/dev', meter: 'megapixels', api_key_id: a.apiKeyId, sum: '4', max: '4', count: 1, charged: '0.10' }),
    ]);
    const byId = await usage({ customer: a.customerId, ...range, product: products['meta/llama-3-70b'], group_by: 'product' });
    expect(byId).toEqual(await usage({ customer: a.customerId, ...range, product: 'meta/llama-3-70b', group_by: 'product' }));
    expect(byId).toEqual([row({ window_start: DAY2, product: 'meta/llama-3-70b', count: 6, charged: '0.001' })]);
  });

  it('counts event times from `from` (inclusive) to `to` (exclusive), in whole UTC hours', async () => {
    const rows = await usage({ customer: a.customerId, from: '2026-11-30T23:00:00Z', to: '2026-12-01T05:00:00Z', window: 'hour', meter: 'megapixels' });
    expect(rows).toEqual([
      row({ window_start: '2026-11-30T23:00:00.000Z', sum: '1.5', max: '1', count: 2, charged: '0.0375' }),
      row({ window_start: '2026-12-01T00:00:00.000Z', sum: '2.25', max: '2.25', count: 1, charged: '0.05625' }),
    ]);
    // A day window cut by the range shows the part inside it, under the day's start.
    expect(await usage({ customer: a.customerId, from: '2026-12-01T05:00:00Z', to: '2026-12-01T06:00:00Z', window: 'day', meter: 'users' })).toEqual([
      row({ window_start: DAY2, count: 2, unique_count: 2 }),
    ]);
    expect(await usage({ customer: a.customerId, from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' })).toEqual([]);
  });

  it('keeps quantities and charges exact far beyond a double', async () => {
    const c = await createCustomer(server.api, { currency: 'JPY' });
    const big = '123456789012345.123456789012';
    await putRollups([
      { customer: c.customerId, product: 'gpu/h100', meter: 'gpu_seconds', hour: '2026-12-31T22:00:00Z', sum: big, max: big, count: 1, charged: 10n ** 18n, currency: 'JPY' },
      { customer: c.customerId, product: 'gpu/h100', meter: 'gpu_seconds', hour: '2026-12-31T23:00:00Z', sum: big, max: '0.000000000001', count: 9_007_199_254, charged: 10n ** 18n + 1n, currency: 'JPY' },
    ]);
    expect(await usage({ customer: c.customerId, ...range, group_by: 'meter', window: 'month' })).toEqual([
      row({ window_start: '2026-12-01T00:00:00.000Z', meter: 'gpu_seconds', currency: 'JPY', sum: '246913578024690.246913578024', max: big, count: 9_007_199_255, charged: '2000000000.000000001' }),
    ]);
  });

  it('limits /v1/me/usage to the key\'s customer', async () => {
    const admin = await usage({ customer: a.customerId, ...range, window: 'day', group_by: 'product,meter,api_key' });
    expect(await usage({ ...range, window: 'day', group_by: 'product,meter,api_key' }, a.apiKey)).toEqual(admin);
    expect(await usage({ ...range, window: 'month', meter: 'users' }, b.apiKey)).toEqual([row({ window_start: '2026-12-01T00:00:00.000Z', count: 1, unique_count: 1 })]);
    // Another customer's key id filters down to nothing.
    expect(await usage({ ...range, api_key: a.apiKeyId }, b.apiKey)).toEqual([]);
    const sneaky = await server.api.get(`/v1/me/usage?${new URLSearchParams({ ...range, customer: a.customerId })}`, { token: b.apiKey });
    expectProblem(sneaky, 400, 'invalid_request');
  });

  it('refuses a bad query with 400 naming the parameter, unknown products and meters included', async () => {
    const get = (q: Record<string, string>) => server.api.get(`/v1/usage?${new URLSearchParams(q)}`);
    expectProblem(await get({ to: range.to }), 400, 'invalid_request', 'from');
    expectProblem(await get({ from: range.from }), 400, 'invalid_request', 'to');
    expectProblem(await get({ from: 'yesterday', to: range.to }), 400, 'invalid_request', 'from');
    expectProblem(await get({ from: range.to, to: range.from }), 400, 'invalid_request', 'to');
    expectProblem(await get({ from: range.from, to: range.from }), 400, 'invalid_request', 'to');
    expectProblem(await get({ from: '2026-11-01T00:30:00Z', to: range.to }), 400, 'invalid_request', 'from');
    expectProblem(await get({ from: range.from, to: '2026-12-01T00:00:00.001Z' }), 400, 'invalid_request', 'to');
    expectProblem(await get({ ...range, window: 'week' }), 400, 'invalid_request', 'window');
    for (const groupBy of ['customer', 'product,', 'product,,meter', 'PRODUCT', 'product,meter,api_key,product']) {
      expectProblem(await get({ ...range, group_by: groupBy }), 400, 'invalid_request', 'group_by');
    }
    expectProblem(await get({ ...range, customer: 'acme' }), 400, 'invalid_request', 'customer');
    expectProblem(await get({ ...range, api_key: 'key_x' }), 400, 'invalid_request', 'api_key');
    expectProblem(await get({ ...range, limit: '5' }), 400, 'invalid_request');
    expectProblem(await get({ ...range, product: 'no/such/model' }), 400, 'invalid_request', 'product');
    expectProblem(await get({ ...range, product: 'prd_00000000000000000000000000' }), 400, 'invalid_request', 'product');
    expectProblem(await get({ ...range, meter: 'no_such_meter' }), 400, 'invalid_request', 'meter');
    // 10,000 windows at most: 10,000 hours pass, one more is refused; days and months go further.
    const from = new Date('2026-01-01T00:00:00Z');
    const hours = (n: number) => new Date(from.getTime() + n * 3_600_000).toISOString();
    expect((await get({ from: from.toISOString(), to: hours(10_000), window: 'hour' })).status).toBe(200);
    expectProblem(await get({ from: from.toISOString(), to: hours(10_001), window: 'hour' }), 400, 'invalid_request', 'to');
    expect((await get({ from: '2000-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z', window: 'day' })).status).toBe(200);
    expectProblem(await get({ from: '1000-01-01T00:00:00Z', to: '9999-01-01T00:00:00Z', window: 'month' }), 400, 'invalid_request', 'to');
  });

  it('answers only the right credentials', async () => {
    const q = `?${new URLSearchParams(range)}`;
    expectProblem(await server.api.get(`/v1/usage${q}`, { token: a.apiKey }), 403, 'forbidden');
    expectProblem(await server.api.get(`/v1/me/usage${q}`), 403, 'forbidden');
    expectProblem(await server.api.get(`/v1/me/usage${q}`, { token: null }), 401, 'unauthorized');
  });

  it('recomputes the same answer from raw events, splitting each charge over its meters', async () => {
    const c = await createCustomer(server.api);
    const llama = products['meta/llama-3-70b'];
    const insertEvent = (id: string, time: string, quantities: Record<string, string>, priceIds: string[], charged: bigint, apiKeyId: string | null = null) =>
      server.database.db.query(
        `INSERT INTO usage_events (id, source, event_id, type, time, received_at, customer_id, product_id, api_key_id, currency, quantities, status, price_ids, amount, charged, uncollected)
         VALUES ($1, 'test', $1, 'usage', $2, $2, $3, $4, $5, 'USD', $6, 'charged', $7, $8, $8, 0)`,
        [id, new Date(time), c.customerId, llama, apiKeyId, JSON.stringify(quantities), JSON.stringify(priceIds), charged.toString()],
      );
    const llamaPrices = [prices['meta/llama-3-70b input_tokens'], prices['meta/llama-3-70b output_tokens']];
    // Costs 0.0006 and 0.0004: 999,999 units split 599,999 / 400,000; the second event adds 1 unit.
    await insertEvent(`evt_${c.customerId}_1`, '2026-12-01T05:30:00Z', { output_tokens: '500', input_tokens: '1000', users: 'u1' }, llamaPrices, 999_999n, c.apiKeyId);
    await insertEvent(`evt_${c.customerId}_2`, '2026-12-01T06:10:00Z', { input_tokens: '1', users: 'u1' }, llamaPrices, 1n);
    const query = { ...range, window: 'day' as const, group_by: 'meter' };
    expect((await usageService.recompute(c.customerId, query)).data).toEqual([
      row({ window_start: DAY2, meter: 'input_tokens', sum: '1001', max: '1000', count: 2, charged: '0.0006' }),
      row({ window_start: DAY2, meter: 'output_tokens', sum: '500', max: '500', count: 1, charged: '0.0004' }),
      row({ window_start: DAY2, meter: 'users', count: 2, unique_count: 1 }),
    ]);
    // The rollups for these events, written by hand, give the same reply.
    await putRollups([
      { customer: c.customerId, product: 'meta/llama-3-70b', apiKey: c.apiKeyId, meter: 'input_tokens', hour: '2026-12-01T05:00:00Z', sum: '1000', max: '1000', count: 1, charged: 599_999n },
      { customer: c.customerId, product: 'meta/llama-3-70b', apiKey: c.apiKeyId, meter: 'output_tokens', hour: '2026-12-01T05:00:00Z', sum: '500', max: '500', count: 1, charged: 400_000n },
      { customer: c.customerId, product: 'meta/llama-3-70b', apiKey: c.apiKeyId, meter: 'users', hour: '2026-12-01T05:00:00Z', count: 1, values: ['u1'] },
      { customer: c.customerId, product: 'meta/llama-3-70b', meter: 'input_tokens', hour: '2026-12-01T06:00:00Z', sum: '1', max: '1', count: 1, charged: 1n },
      { customer: c.customerId, product: 'meta/llama-3-70b', meter: 'users', hour: '2026-12-01T06:00:00Z', count: 1, values: ['u1'] },
    ]);
    for (const window of ['hour', 'day', 'month']) {
      for (const groupBy of ['', 'meter', 'product,meter,api_key', 'api_key']) {
        const q = { ...range, window, ...(groupBy ? { group_by: groupBy } : {}) };
        expect(await usage({ customer: c.customerId, ...q })).toEqual((await usageService.recompute(c.customerId, q as never)).data);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('end to end', () => {
  // Events must be at most 35 days old: this part lives in May and June 2027, apart from the rows above.
  const E2E_NOW = new Date('2027-06-01T00:02:00.000Z');
  const span = { from: '2027-04-01T00:00:00Z', to: '2027-07-01T00:00:00Z' };
  let seq = 0;

  beforeAll(() => clock.set(E2E_NOW));

  const event = (c: Fixture, time: string, data: Record<string, unknown>, id = `usage-${process.pid}-${++seq}`) => ({
    specversion: '1.0', id, source: 'test/usage', type: 'usage', time, subject: c.customerId, data,
  });

  async function send(events: unknown[]) {
    const r = await ok(server.api.post('/v1/events', events));
    return r.data as Array<{ status: string; code?: string }>;
  }

  it('shows events sent through POST /v1/events and settles in /v1/usage and /v1/me/usage, exactly', async () => {
    const c = await createCustomer(server.api, { credit: '10.00' });
    const flux = (time: string, megapixels: string | number, extra: Record<string, unknown> = {}) => event(c, time, { product: 'fal-ai/flux/dev', megapixels, ...extra });
    const llama = (time: string, data: Record<string, unknown>) => event(c, time, { product: 'meta/llama-3-70b', ...data });
    const first = flux('2027-05-31T23:59:59Z', '4', { api_key_id: c.apiKeyId });
    expect((await send([
      first,
      flux('2027-06-01T00:00:00Z', '1.048576'),
      llama('2027-05-31T10:15:00Z', { output_tokens: 500, input_tokens: '1000', users: 'alice' }),
      llama('2027-05-31T11:00:00Z', { input_tokens: 1, users: 'bob' }),
      llama('2027-05-31T23:30:00Z', { users: 'alice', input_tokens: 2 }),
      event(c, '2027-05-31T12:00:00Z', { product: 'acme/unpriced', megapixels: 3 }),
    ])).map((x) => x.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
    // The same event again, even with other data, changes nothing.
    expect((await send([{ ...first, data: { product: 'fal-ai/flux/dev', megapixels: 400 } }])).map((x) => x.status)).toEqual(['duplicate']);
    const auth = await ok(server.api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 2 } }));
    await ok(server.api.post(`/v1/reservations/${auth.reservation.id}/settle`, { usage: { megapixels: 1 } }));

    const MAY = '2027-05-01T00:00:00.000Z';
    const JUNE = '2027-06-01T00:00:00.000Z';
    const expected = [
      row({ window_start: MAY, product: 'acme/unpriced', meter: 'megapixels', sum: '3', max: '3', count: 1, charged: '0.00' }),
      row({ window_start: MAY, product: 'fal-ai/flux/dev', meter: 'megapixels', sum: '4', max: '4', count: 1, charged: '0.10' }),
      // 0.0006 of the first event (its 0.001 split 0.0006 / 0.0004), then 0.0000006 and 0.0000012.
      row({ window_start: MAY, product: 'meta/llama-3-70b', meter: 'input_tokens', sum: '1003', max: '1000', count: 3, charged: '0.0006018' }),
      row({ window_start: MAY, product: 'meta/llama-3-70b', meter: 'output_tokens', sum: '500', max: '500', count: 1, charged: '0.0004' }),
      row({ window_start: MAY, product: 'meta/llama-3-70b', meter: 'users', count: 3, unique_count: 2 }),
      // The settle (1 megapixel at 0.025) is usage at the time it was settled.
      row({ window_start: JUNE, product: 'fal-ai/flux/dev', meter: 'megapixels', sum: '2.048576', max: '1.048576', count: 2, charged: '0.0512144' }),
    ];
    const query = { ...span, window: 'month', group_by: 'product,meter' };
    expect(byKey(await usage({ customer: c.customerId, ...query }))).toEqual(expected);
    expect(byKey(await usage(query, c.apiKey))).toEqual(expected);
    // Rows add up to the ledger: everything charged is what the balance lost.
    const charged = (await usage({ customer: c.customerId, ...span, window: 'month' })).reduce((sum, r) => sum + parseAmount(r.charged), 0n);
    const balance = await ok(server.api.get(`/v1/customers/${c.customerId}/balance`));
    expect(parseAmount('10') - charged).toBe(parseAmount(balance.posted));
    // By key, by the hour, around midnight.
    expect(await usage({ ...span, window: 'hour', group_by: 'api_key', meter: 'megapixels', product: 'fal-ai/flux/dev', from: '2027-05-31T23:00:00Z', to: '2027-06-01T01:00:00Z' }, c.apiKey)).toEqual([
      row({ window_start: '2027-05-31T23:00:00.000Z', api_key_id: c.apiKeyId, sum: '4', max: '4', count: 1, charged: '0.10' }),
      row({ window_start: '2027-06-01T00:00:00.000Z', sum: '1.048576', max: '1.048576', count: 1, charged: '0.0262144' }),
      row({ window_start: '2027-06-01T00:00:00.000Z', api_key_id: c.apiKeyId, sum: '1', max: '1', count: 1, charged: '0.025' }),
    ]);
  });

  it('splits a partly collected charge over the meters in proportion to their cost', async () => {
    const c = await createCustomer(server.api, { credit: '0.0005' });
    expect((await send([event(c, '2027-05-20T08:00:00Z', { product: 'meta/llama-3-70b', output_tokens: '500', input_tokens: '1000' })])).map((x) => x.status)).toEqual(['accepted']);
    const [listed] = (await ok(server.api.get(`/v1/events?customer=${c.customerId}`))).data;
    expect(listed).toMatchObject({ amount: '0.001', charged: '0.0005', uncollected: '0.0005' });
    expect(await usage({ customer: c.customerId, ...span, group_by: 'meter' })).toEqual([
      row({ window_start: '2027-05-20T00:00:00.000Z', meter: 'input_tokens', sum: '1000', max: '1000', count: 1, charged: '0.0003' }),
      row({ window_start: '2027-05-20T00:00:00.000Z', meter: 'output_tokens', sum: '500', max: '500', count: 1, charged: '0.0002' }),
    ]);
  });

  describe('property: the rollups always equal a recomputation from the raw events', () => {
    let pool: Array<Fixture & { keys: string[] }>;

    beforeAll(async () => {
      const make = async (options: Parameters<typeof createCustomer>[1]) => {
        const c = await createCustomer(server.api, options);
        const second = (await ok(server.api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'second' }))).id;
        return { ...c, keys: [c.apiKeyId, second] };
      };
      pool = [
        await make({ credit: '0.50' }), // runs out: later events are partly or not collected
        await make({ credit: '100000.00' }),
        await make({ credit: '100.00', currency: 'EUR' }), // only flux has a EUR price
        await make({ billing_mode: 'postpaid', credit_limit: '0.05' }),
      ];
    });

    /**
     * Each run lives in its own three months (its "now" is 00:02 on the first of a month, three
     * months after the last run's), so a failing run shrinks without the others' data in the way.
     * Times fall around the previous month's start, its middle, its last hour and now itself (of
     * which at most 5 minutes may be in the future: a few are rejected as too_new).
     */
    const arbTime = fc.oneof(
      fc.tuple(fc.constantFrom(0, 1, 2), fc.integer({ min: -90 * 60, max: 90 * 60 })),
      fc.tuple(fc.constant(3), fc.integer({ min: -90 * 60, max: 6 * 60 })),
    );
    let runs = 0;
    function nextRun() {
      const month = new Date(Date.UTC(2028, 3 * runs++, 1));
      const previous = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() - 1, 1));
      const boundaries = [previous.getTime(), previous.getTime() + 14.5 * 86_400_000, month.getTime() - 3_600_000, month.getTime()];
      const iso = (d: Date) => d.toISOString();
      return {
        now: new Date(month.getTime() + 120_000),
        timeOf: ([at, seconds]: [number, number]) => iso(new Date(boundaries[at] + seconds * 1000)),
        span: { from: iso(new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() - 2, 1))), to: iso(new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1))) },
      };
    }
    const arbMegapixels = fc.tuple(fc.nat(50), fc.nat(999_999)).map(([i, f]) => `${i}.${String(f).padStart(6, '0')}`);
    const arbData = fc.oneof(
      fc.record({ product: fc.constant('fal-ai/flux/dev'), megapixels: arbMegapixels }),
      fc.record({ product: fc.constant('meta/llama-3-70b'), input_tokens: fc.nat(5_000), output_tokens: fc.nat(5_000) }, { requiredKeys: ['product'] }),
      fc.record({ product: fc.constant('gpu/h100'), gpu_seconds: fc.nat(8_000) }),
      fc.record({ product: fc.constant('acme/unpriced'), megapixels: arbMegapixels }),
      fc.record({ product: fc.constant('acme/odd'), input_tokens: fc.nat(5_000), output_tokens: fc.nat(5_000), gpu_seconds: fc.nat(5_000) }, { requiredKeys: ['product'] }),
    );
    const arbEvent = fc.record({
      customer: fc.nat(3),
      key: fc.constantFrom(null, 0, 1),
      time: arbTime,
      data: arbData,
      users: fc.option(fc.constantFrom('u1', 'u2', 'u3', 'u4'), { nil: undefined }),
      reverseKeys: fc.boolean(),
      /** Re-sends (as a duplicate, with other data) the event this many places back, if any. */
      duplicateOf: fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 1 }),
    });

    type EventSpec = typeof arbEvent extends fc.Arbitrary<infer T> ? T : never;

    function toCloudEvent(e: EventSpec, ids: string[], timeOf: (t: [number, number]) => string) {
      const c = pool[e.customer];
      const entries = Object.entries({ ...e.data, ...(e.users ? { users: e.users } : {}), ...(e.key === null ? {} : { api_key_id: c.keys[e.key] }) });
      // The order the fields are sent in must not matter (jsonb does not keep it).
      const data = Object.fromEntries(e.reverseKeys ? entries.reverse() : entries);
      const id = e.duplicateOf && ids.length >= e.duplicateOf ? ids[ids.length - e.duplicateOf] : `prop-${process.pid}-${++seq}`;
      ids.push(id);
      return event(c, timeOf(e.time), data, id);
    }

    it('for every group_by and window, and for /v1/me/usage', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(arbEvent, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 3 }), fc.nat(3), fc.boolean(), async (events, batches, me, settle) => {
          const run = nextRun();
          clock.set(run.now);
          const ids: string[] = [];
          const cloudEvents = events.map((e) => toCloudEvent(e, ids, run.timeOf));
          const size = Math.ceil(cloudEvents.length / batches);
          for (let i = 0; i < cloudEvents.length; i += size) await send(cloudEvents.slice(i, i + size));
          if (settle) {
            // A settle is usage too, split over three meters at the reservation's prices.
            const auth = await server.api.post('/v1/authorize', { api_key: pool[1].apiKey, product: 'acme/odd', estimate: { input_tokens: 100, output_tokens: 100, gpu_seconds: 100 } });
            expect(auth.status, JSON.stringify(auth.body)).toBe(200);
            await ok(server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { output_tokens: 33, gpu_seconds: 7, input_tokens: 71 } }));
          }
          const listed = await allEvents(run.span);
          for (const window of ['hour', 'day', 'month'] as const) {
            for (const groupBy of GROUP_BYS) {
              const query = { ...run.span, window, ...(groupBy ? { group_by: groupBy } : {}) };
              const fromRollups = await usage(query);
              expect(fromRollups, `${window} ${groupBy}: rollups vs recomputeUsageFromEvents`).toEqual((await usageService.recompute(null, query)).data);
              expect(fromRollups, `${window} ${groupBy}: rollups vs GET /v1/events`).toEqual(reference(listed, window, groupBy));
            }
          }
          const mine = { ...run.span, window: 'day', group_by: 'product,meter,api_key' };
          expect(await usage(mine, pool[me].apiKey)).toEqual(reference(listed.filter((e) => e.customer_id === pool[me].customerId), 'day', mine.group_by));
          // Every charge is in the rows: they add up to what the events were charged.
          const total = (await usage({ ...run.span, window: 'month' })).reduce((sum, r) => sum + parseAmount(r.charged), 0n);
          expect(total).toBe(listed.reduce((sum, e) => sum + parseAmount(e.charged), 0n));
        }),
        { numRuns: 12 },
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The in-test recomputation: from GET /v1/events alone, with the catalog's prices written out.

const GROUP_BYS = ['', 'product', 'meter', 'api_key', 'product,meter', 'product,api_key', 'meter,api_key', 'product,meter,api_key'];

interface ListedEvent {
  customer_id: string; product_id: string; product: string; api_key_id: string | null; currency: string; time: string;
  quantities: Record<string, string>; charged: string; status: string;
}

async function allEvents(span: { from: string; to: string }): Promise<ListedEvent[]> {
  const out: ListedEvent[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await ok(server.api.get(`/v1/events?${new URLSearchParams(span)}&limit=100${cursor ? `&cursor=${cursor}` : ''}`));
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

const dec = (text: string) => parseDecimal(text);
const mul = (a: Decimal, b: Decimal): Decimal => ({ coef: a.coef * b.coef, scale: a.scale + b.scale });

/** Exact cost per priced meter, as the seeded catalog prices it (the unpriced product and `users` cost nothing). */
function costsOf(e: ListedEvent): Array<[string, Decimal]> {
  const q = (meter: string) => dec(e.quantities[meter]);
  const has = (meter: string) => meter in e.quantities;
  switch (e.product) {
    case 'fal-ai/flux/dev':
      return [['megapixels', mul(q('megapixels'), dec(e.currency === 'EUR' ? '0.02' : '0.025'))]];
    case 'meta/llama-3-70b':
      return [
        ...(has('input_tokens') ? [['input_tokens', mul(q('input_tokens'), dec('0.0000006'))] as [string, Decimal]] : []),
        ...(has('output_tokens') ? [['output_tokens', mul(q('output_tokens'), dec('0.0000008'))] as [string, Decimal]] : []),
      ];
    case 'gpu/h100': {
      const s = q('gpu_seconds');
      const first = cmp(s, dec('3600')) > 0 ? dec('3600') : s;
      const rest = cmp(s, dec('3600')) > 0 ? add(s, { coef: -3600n, scale: 0 }) : ZERO;
      return [['gpu_seconds', add(mul(first, dec('0.001')), mul(rest, dec('0.0005')))]];
    }
    case 'acme/odd':
      return Object.keys(ODD_PRICES).filter(has).map((meter) => [meter, mul(q(meter), dec(ODD_PRICES[meter]))]);
    default:
      return [];
  }
}

/** floor(charged * running / total) differences over meters in key order (docs/metering.md). */
function shares(charged: bigint, costs: Array<[string, Decimal]>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  if (charged === 0n) return out;
  const sorted = [...costs].sort(([a], [b]) => (a < b ? -1 : 1));
  const units = sorted.map(([, c]) => c.coef * 10n ** BigInt(40 - c.scale));
  const total = units.reduce((a, b) => a + b, 0n);
  let before = 0n;
  let running = 0n;
  sorted.forEach(([meter], i) => {
    running += units[i];
    const upTo = (charged * running) / total;
    out.set(meter, upTo - before);
    before = upTo;
  });
  return out;
}

const windowOf = (iso: string, window: string) =>
  window === 'hour' ? `${iso.slice(0, 13)}:00:00.000Z` : window === 'day' ? `${iso.slice(0, 10)}T00:00:00.000Z` : `${iso.slice(0, 7)}-01T00:00:00.000Z`;

function reference(events: ListedEvent[], window: string, groupBy: string): Row[] {
  const dims = new Set(groupBy.split(',').filter(Boolean));
  const groups = new Map<string, { sortKey: string[]; row: Row; sum: Decimal; max: Decimal | null; charged: bigint; values: Set<string> }>();
  for (const e of events) {
    const split = shares(parseAmount(e.charged), costsOf(e));
    for (const [meter, value] of Object.entries(e.quantities)) {
      const w = windowOf(new Date(e.time).toISOString(), window);
      const product = dims.has('product') ? e.product_id : null;
      const m = dims.has('meter') ? meter : null;
      const key = dims.has('api_key') ? e.api_key_id : null;
      const sortKey = [w, e.currency, product ?? '', m ?? '', key ?? ''];
      const id = JSON.stringify(sortKey.concat(String(product === null), String(key === null)));
      let g = groups.get(id);
      if (!g) {
        g = { sortKey, row: row({ window_start: w, product: product && e.product, meter: m, api_key_id: key, currency: e.currency }), sum: ZERO, max: null, charged: 0n, values: new Set() };
        groups.set(id, g);
      }
      g.row.count += 1;
      g.charged += split.get(meter) ?? 0n;
      if (meter === 'users') g.values.add(`${meter}\n${value}`);
      else {
        g.sum = add(g.sum, dec(value));
        g.max = g.max === null || cmp(dec(value), g.max) > 0 ? dec(value) : g.max;
      }
    }
  }
  const single = dims.has('meter');
  return [...groups.values()]
    .sort((a, b) => {
      for (let i = 0; i < a.sortKey.length; i++) if (a.sortKey[i] !== b.sortKey[i]) return a.sortKey[i] < b.sortKey[i] ? -1 : 1;
      return 0;
    })
    .map((g) => {
      const unique = single && g.row.meter === 'users';
      return {
        ...g.row,
        sum: single && !unique ? formatDecimal(g.sum) : null,
        max: single && !unique && g.max ? formatDecimal(g.max) : null,
        unique_count: unique ? g.values.size : null,
        charged: formatMoney(g.charged, g.row.currency),
      };
    });
}

function formatMoney(units: bigint, currency: string): string {
  const text = formatDecimal({ coef: units, scale: 9 });
  const [int, frac = ''] = text.split('.');
  const minor = currency === 'JPY' || currency === 'KRW' ? 0 : 2;
  const f = frac.padEnd(minor, '0');
  return f ? `${int}.${f}` : int;
}
