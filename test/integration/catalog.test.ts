import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type Api, type ApiResponse, type TestServer } from '../support/harness.js';
import { balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

let server: TestServer;
let clock: ManualClock;
let payer: Fixture; // a USD customer with plenty of credit, to rate things through authorize

const EPOCH = '2020-01-01T00:00:00Z';

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-06-01T12:00:00.000Z'));
  server = await startServer({ clock });
  await seedCatalog(server.api);
  for (const meter of [
    { key: 'images', name: 'Images', unit: 'image' },
    { key: 'characters', name: 'Characters', unit: 'character' },
    { key: 'video_seconds', name: 'Video seconds', unit: 'second' },
    { key: 'requests', name: 'Requests', unit: 'request' },
  ]) await ok(server.api.post('/v1/meters', meter));
  payer = await createCustomer(server.api, { credit: '100000' });
});
afterAll(() => server?.close());

async function ok(p: Promise<ApiResponse>, status = 201) {
  const r = await p;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
}

let productSeq = 0;
/** A new product with the given prices (effective since 2020 unless said otherwise). */
async function product(prices: Array<Record<string, unknown>>, key = `acme/model-${++productSeq}/v1`) {
  await ok(server.api.post('/v1/products', { key, name: key }));
  const created = [];
  for (const price of prices) created.push(await ok(server.api.post('/v1/prices', { product: key, currency: 'USD', effective_at: EPOCH, ...price })));
  return { key, prices: created };
}

/** What authorize holds for these quantities: the exact rated amount as the API shows it. */
async function held(productKey: string, estimate: Record<string, string | number>, apiKey = payer.apiKey, api: Api = server.api) {
  const r = await api.post('/v1/authorize', { api_key: apiKey, product: productKey, estimate });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  await api.post(`/v1/reservations/${r.body.reservation.id}/release`);
  return r.body.reservation.amount as string;
}

describe('meters', () => {
  it('creates a meter (aggregation defaults to sum) and lists meters newest first', async () => {
    const { api } = server;
    const created = await api.post('/v1/meters', { key: 'audio_seconds', name: 'Audio seconds', unit: 'second' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^met_[0-9a-z]{26}$/),
      key: 'audio_seconds',
      name: 'Audio seconds',
      unit: 'second',
      aggregation: 'sum',
      created_at: clock.now().toISOString(),
    });
    const peak = await ok(api.post('/v1/meters', { key: 'peak_gpus', name: 'Peak GPUs', unit: 'gpu', aggregation: 'max' }));
    expect(peak.aggregation).toBe('max');

    const first = await api.get('/v1/meters?limit=2');
    expect(first.body.data.map((m: { key: string }) => m.key)).toEqual(['peak_gpus', 'audio_seconds']);
    expect(first.body.has_more).toBe(true);
    const rest = await api.get(`/v1/meters?limit=100&cursor=${first.body.next_cursor}`);
    expect(rest.body.data.map((m: { key: string }) => m.key)).toEqual([
      'requests', 'video_seconds', 'characters', 'images', 'gpu_seconds', 'output_tokens', 'input_tokens', 'megapixels',
    ]);
    expect(rest.body).toMatchObject({ has_more: false, next_cursor: null });
  });

  it('refuses a duplicate key (409) and invalid meters (400)', async () => {
    const { api } = server;
    expectProblem(await api.post('/v1/meters', { key: 'megapixels', name: 'Again', unit: 'mp' }), 409, 'conflict');
    for (const body of [
      { key: 'Megapixels', name: 'x', unit: 'x' },
      { key: '1st', name: 'x', unit: 'x' },
      { key: 'with-dash', name: 'x', unit: 'x' },
      { key: 'ok_key', name: '', unit: 'x' },
      { key: 'ok_key', name: 'x' },
      { key: 'ok_key', name: 'x', unit: 'x', aggregation: 'avg' },
      { key: 'ok_key', name: 'x', unit: 'x', extra: true },
    ]) {
      expectProblem(await api.post('/v1/meters', body), 400, 'invalid_request');
    }
    expect((await api.get('/v1/meters?limit=100')).body.data.some((m: { key: string }) => m.key === 'ok_key')).toBe(false);
  });
});

describe('products', () => {
  it('creates a product whose key has slashes and gets it by that key or by id', async () => {
    const { api } = server;
    const created = await api.post('/v1/products', { key: 'fal-ai/kling-video/v2.1/master', name: 'Kling 2.1 Master', description: 'text-to-video' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^prd_[0-9a-z]{26}$/),
      key: 'fal-ai/kling-video/v2.1/master',
      name: 'Kling 2.1 Master',
      description: 'text-to-video',
      created_at: clock.now().toISOString(),
    });
    const byKey = await api.get('/v1/products/fal-ai/kling-video/v2.1/master');
    expect(byKey.status).toBe(200);
    expect(byKey.body).toEqual(created.body);
    expect((await api.get(`/v1/products/${created.body.id}`)).body).toEqual(created.body);

    const flux = await api.get('/v1/products/fal-ai/flux/dev');
    expect(flux.status).toBe(200);
    expect(flux.body).toMatchObject({ key: 'fal-ai/flux/dev', name: 'FLUX dev', description: null });
    // A client that escapes the slashes reaches the same product.
    expect((await api.get('/v1/products/fal-ai%2Fflux%2Fdev')).body).toEqual(flux.body);
  });

  it('answers 404 for an unknown product, also for a prefix or an extension of a real key', async () => {
    const { api } = server;
    for (const path of ['/v1/products/fal-ai/flux', '/v1/products/fal-ai/flux/dev/extra', '/v1/products/nope', '/v1/products/prd_00000000000000000000000000']) {
      expectProblem(await api.get(path), 404, 'not_found');
    }
  });

  it('refuses a duplicate key (409) and keys that are not product keys (400)', async () => {
    const { api } = server;
    expectProblem(await api.post('/v1/products', { key: 'fal-ai/flux/dev', name: 'Dup' }), 409, 'conflict');
    for (const key of ['Fal-AI/flux', '/leading', 'has space', '', 'a'.repeat(129), 'emoji/🙂']) {
      expectProblem(await api.post('/v1/products', { key, name: 'x' }), 400, 'invalid_request');
    }
    expectProblem(await api.post('/v1/products', { key: 'fine/key' }), 400, 'invalid_request');
  });

  it('lists products newest first with a cursor', async () => {
    const { api } = server;
    const a = await ok(api.post('/v1/products', { key: 'list/a', name: 'A' }));
    const b = await ok(api.post('/v1/products', { key: 'list/b', name: 'B' }));
    const page = await api.get('/v1/products?limit=1');
    expect(page.body).toEqual({ data: [b], has_more: true, next_cursor: b.id });
    const next = await api.get(`/v1/products?limit=1&cursor=${b.id}`);
    expect(next.body.data).toEqual([a]);
  });
});

describe('prices and how authorize rates them', () => {
  it('creates a per_unit price and answers with the full price', async () => {
    const { api } = server;
    await ok(api.post('/v1/products', { key: 'acme/tts', name: 'TTS' }));
    const r = await api.post('/v1/prices', { product: 'acme/tts', meter: 'characters', currency: 'USD', scheme: 'per_unit', unit_amount: '0.000015' });
    expect(r.status).toBe(201);
    const productId = (await api.get('/v1/products/acme/tts')).body.id;
    const meter = (await api.get('/v1/meters?limit=100')).body.data.find((m: { key: string }) => m.key === 'characters');
    expect(r.body).toEqual({
      id: expect.stringMatching(/^pri_[0-9a-z]{26}$/),
      product_id: productId,
      product: 'acme/tts',
      meter_id: meter.id,
      meter: 'characters',
      currency: 'USD',
      customer_id: null,
      scheme: 'per_unit',
      unit_amount: '0.000015',
      tiers: null,
      package_size: null,
      effective_at: clock.now().toISOString(),
      created_at: clock.now().toISOString(),
    });
    expect((await api.get(`/v1/prices/${r.body.id}`)).body).toEqual(r.body);
    // Product and meter may be named by id as well as by key.
    const byIds = await api.post('/v1/prices', { product: productId, meter: meter.id, currency: 'EUR', scheme: 'per_unit', unit_amount: '0.000014' });
    expect(byIds.status).toBe(201);
    expect(byIds.body).toMatchObject({ product: 'acme/tts', meter: 'characters', currency: 'EUR' });

    // 1234 characters x 0.000015 = 0.01851
    expect(await held('acme/tts', { characters: 1234 })).toBe('0.01851');
    expect(await held('acme/tts', { characters: '1234.5' })).toBe('0.0185175');
    expect(await held('acme/tts', { characters: 0 })).toBe('0.00');
    expectProblem(await api.get('/v1/prices/pri_00000000000000000000000000'), 404, 'not_found');
  });

  it('per_unit: rounds the cost once, half-even, to 9 decimals', async () => {
    const { key } = await product([{ meter: 'requests', scheme: 'per_unit', unit_amount: '0.000000000003' }]);
    expect(await held(key, { requests: 1 })).toBe('0.00'); // 0.000000000003
    expect(await held(key, { requests: 500 })).toBe('0.000000002'); // 1.5 nano -> 2
    expect(await held(key, { requests: 833 })).toBe('0.000000002'); // 2.499 nano -> 2
    expect(await held(key, { requests: 834 })).toBe('0.000000003'); // 2.502 nano -> 3
    expect(await held(key, { requests: 1500 })).toBe('0.000000004'); // 4.5 nano -> 4
    expect(await held(key, { requests: 2500 })).toBe('0.000000008'); // 7.5 nano -> 8
  });

  it('rounds the sum of several meters once, not each meter', async () => {
    const { key } = await product([
      { meter: 'input_tokens', scheme: 'per_unit', unit_amount: '0.0000000025' },
      { meter: 'output_tokens', scheme: 'per_unit', unit_amount: '0.0000000025' },
    ]);
    // 2.5 nano + 2.5 nano = 5 nano (rounding each first would give 2 + 2 = 4)
    expect(await held(key, { input_tokens: 1, output_tokens: 1 })).toBe('0.000000005');
    // 1.2M input at 0.0000000025 = 0.003, 7 output = 0.0000000175: 3000017.5 nano -> 3000018
    expect(await held(key, { input_tokens: 1_200_000, output_tokens: 7 })).toBe('0.003000018');
  });

  it('graduated: each tier prices its part of the quantity plus its flat amount once entered', async () => {
    const { key, prices } = await product([{
      meter: 'video_seconds', scheme: 'graduated',
      tiers: [
        { up_to: '10', unit_amount: '0.5', flat_amount: '1' },
        { up_to: '100', unit_amount: '0.25' },
        { up_to: null, unit_amount: '0.1', flat_amount: '2' },
      ],
    }]);
    expect(prices[0]).toMatchObject({
      scheme: 'graduated', unit_amount: null, package_size: null,
      tiers: [
        { up_to: '10', unit_amount: '0.5', flat_amount: '1' },
        { up_to: '100', unit_amount: '0.25', flat_amount: '0' },
        { up_to: null, unit_amount: '0.1', flat_amount: '2' },
      ],
    });
    expect(await held(key, { video_seconds: 0 })).toBe('0.00');
    expect(await held(key, { video_seconds: 5 })).toBe('3.50'); // 5 x 0.5 + 1
    expect(await held(key, { video_seconds: 10 })).toBe('6.00'); // 10 x 0.5 + 1
    expect(await held(key, { video_seconds: '10.5' })).toBe('6.125'); // 6 + 0.5 x 0.25
    expect(await held(key, { video_seconds: 100 })).toBe('28.50'); // 6 + 90 x 0.25
    expect(await held(key, { video_seconds: 150 })).toBe('35.50'); // 28.5 + 50 x 0.1 + 2

    // Settle rates the usage with the same tiers: 150 s used on a 10 s estimate.
    const auth = await server.api.post('/v1/authorize', { api_key: payer.apiKey, product: key, estimate: { video_seconds: 10 } });
    const settle = await server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { video_seconds: 150 } });
    expect(settle.body).toMatchObject({ charged: '35.50', released: '0.00', uncollected: '0.00' });
  });

  it('volume: the tier holding the whole quantity prices all of it, plus its flat amount', async () => {
    const { key } = await product([{
      meter: 'images', scheme: 'volume',
      tiers: [
        { up_to: '100', unit_amount: '0.02' },
        { up_to: '1000', unit_amount: '0.015', flat_amount: '0.5' },
        { up_to: null, unit_amount: '0.01' },
      ],
    }]);
    expect(await held(key, { images: 0 })).toBe('0.00');
    expect(await held(key, { images: 1 })).toBe('0.02');
    expect(await held(key, { images: 100 })).toBe('2.00');
    expect(await held(key, { images: '100.5' })).toBe('2.0075'); // 100.5 x 0.015 + 0.5
    expect(await held(key, { images: 1000 })).toBe('15.50');
    expect(await held(key, { images: 1001 })).toBe('10.01');
    expect(await held(key, { images: 2000 })).toBe('20.00');
  });

  it('package: every started package is paid in full', async () => {
    const { key } = await product([{ meter: 'characters', scheme: 'package', package_size: '1000', unit_amount: '0.30' }]);
    expect(await held(key, { characters: 0 })).toBe('0.00');
    expect(await held(key, { characters: 1 })).toBe('0.30');
    expect(await held(key, { characters: 1000 })).toBe('0.30');
    expect(await held(key, { characters: 1001 })).toBe('0.60');
    expect(await held(key, { characters: 25000 })).toBe('7.50');

    const fractional = await product([{ meter: 'video_seconds', scheme: 'package', package_size: '2.5', unit_amount: '1.1' }]);
    expect(await held(fractional.key, { video_seconds: 5 })).toBe('2.20');
    expect(await held(fractional.key, { video_seconds: '5.000000000001' })).toBe('3.30');
    expect(fractional.prices[0]).toMatchObject({ scheme: 'package', package_size: '2.5', unit_amount: '1.1', tiers: null });
  });

  it('settle rates with the prices of the authorize, whatever price came later', async () => {
    const { api } = server;
    const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01' }]);
    const auth = await api.post('/v1/authorize', { api_key: payer.apiKey, product: key, estimate: { images: 10 } });
    expect(auth.body.reservation.amount).toBe('0.10');
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.05' }));
    expect(await held(key, { images: 10 })).toBe('0.50');
    const settle = await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { images: 8 } });
    expect(settle.body).toMatchObject({ charged: '0.08', released: '0.02' });
  });
});

describe('price versions by effective_at', () => {
  it('applies a version effective in the future only from its effective_at', async () => {
    const { api } = server;
    const { key, prices } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01' }]);
    const later = new Date(clock.now().getTime() + 3_600_000).toISOString();
    const v2 = await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.02', effective_at: later }));
    expect(v2.effective_at).toBe(later);
    expect(await held(key, { images: 10 })).toBe('0.10');
    const page = async () => (await api.get('/v1/pricing?currency=USD')).body.data.find((e: { product: { key: string } }) => e.product.key === key).prices[0].price.id;
    expect(await page()).toBe(prices[0].id);

    // A reservation made before the change keeps its price after it.
    const before = await api.post('/v1/authorize', { api_key: payer.apiKey, product: key, estimate: { images: 10 }, hold_seconds: 7200 });
    clock.advance(3_600_000 - 1);
    expect(await held(key, { images: 10 })).toBe('0.10');
    clock.advance(1);
    expect(await held(key, { images: 10 })).toBe('0.20');
    expect(await page()).toBe(v2.id);
    const settle = await api.post(`/v1/reservations/${before.body.reservation.id}/settle`, { usage: { images: 10 } });
    expect(settle.body).toMatchObject({ charged: '0.10', released: '0.00' });
  });

  it('applies a new version without effective_at at once, on the very next authorize', async () => {
    const { api } = server;
    const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01' }]);
    expect(await held(key, { images: 10 })).toBe('0.10');
    const v2 = await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.03' }));
    expect(v2.effective_at).toBe(clock.now().toISOString());
    expect(await held(key, { images: 10 })).toBe('0.30');
    // ... also when it changes the scheme.
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'package', package_size: '4', unit_amount: '0.1' }));
    expect(await held(key, { images: 10 })).toBe('0.30');
    expect(await held(key, { images: 12 })).toBe('0.30');
    expect(await held(key, { images: 13 })).toBe('0.40');
  });

  it('applies a new version at once even while the instance is busy authorizing', async () => {
    const { api } = server;
    const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01' }]);
    const busy = await createCustomer(api, { credit: '100000' });
    let stop = false;
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) await api.post('/v1/authorize', { api_key: busy.apiKey, product: key, estimate: { images: 1 }, hold_seconds: 1 });
    });
    try {
      // Each new price must be used by the very next authorize, however the reloads interleave.
      for (let i = 2; i <= 16; i++) {
        const unit = `0.${String(i).padStart(2, '0')}`;
        await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: unit }, { idempotencyKey: `busy-${key}-${i}` }));
        expect(await held(key, { images: 10 }), `after the price ${unit}`).toBe(`${Math.floor(i / 10)}.${i % 10}0`);
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
  });

  it('among versions the latest effective_at wins (a backdated version does not), ties go to the newest', async () => {
    const { api } = server;
    const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01', effective_at: '2030-01-01T00:00:00Z' }]);
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.09', effective_at: '2025-01-01T00:00:00Z' }));
    expect(await held(key, { images: 10 })).toBe('0.10');
    const at = new Date(clock.now().getTime() + 60_000).toISOString();
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.04', effective_at: at }));
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.05', effective_at: at }));
    expect(await held(key, { images: 10 })).toBe('0.10');
    clock.advance(60_000);
    expect(await held(key, { images: 10 })).toBe('0.50');
  });

  it('refuses authorize with 422 no_price while the only price is not yet in force', async () => {
    const { api } = server;
    const start = new Date(clock.now().getTime() + 10_000).toISOString();
    const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01', effective_at: start }]);
    expectProblem(await api.post('/v1/authorize', { api_key: payer.apiKey, product: key, estimate: { images: 1 } }), 422, 'no_price');
    expect((await api.get('/v1/pricing')).body.data.map((e: { product: { key: string } }) => e.product.key)).not.toContain(key);
    clock.advance(10_000);
    expect(await held(key, { images: 1 })).toBe('0.01');
    expect((await api.get('/v1/pricing')).body.data.map((e: { product: { key: string } }) => e.product.key)).toContain(key);
  });

  it('another instance sees a new price within the documented 5 seconds', async () => {
    const { api } = server;
    const other = await startServer({ database: server.database, clock });
    try {
      const { key } = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.01' }]);
      expect(await held(key, { images: 10 }, payer.apiKey, other.api)).toBe('0.10');
      const createdAt = Date.now();
      await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.02' }));
      let seen = '0.10';
      while (seen === '0.10' && Date.now() - createdAt < 7_000) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        seen = await held(key, { images: 10 }, payer.apiKey, other.api);
      }
      expect(seen).toBe('0.20');
      // 5 s of cache at most, plus the polling step and a slow machine's request time.
      expect(Date.now() - createdAt).toBeLessThan(6_000);
      // A product created on one instance is found on the other at once (a miss reloads).
      const fresh = await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.07' }]);
      expect(await held(fresh.key, { images: 1 }, payer.apiKey, other.api)).toBe('0.07');
    } finally {
      await other.close();
    }
  });
});

describe('customer price overrides', () => {
  let special: Fixture;
  let regular: Fixture;
  let key: string;
  beforeAll(async () => {
    special = await createCustomer(server.api, { credit: '1000' });
    regular = await createCustomer(server.api, { credit: '1000' });
    key = (await product([{ meter: 'images', scheme: 'per_unit', unit_amount: '0.04' }])).key;
  });

  it('charges the customer its own price and everybody else the base price', async () => {
    const { api } = server;
    const override = await api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.03', customer: special.customerId });
    expect(override.status).toBe(201);
    expect(override.body).toMatchObject({ customer_id: special.customerId, unit_amount: '0.03', product: key });
    expect(await held(key, { images: 10 }, special.apiKey)).toBe('0.30');
    expect(await held(key, { images: 10 }, regular.apiKey)).toBe('0.40');

    // A later base price does not replace the override.
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.05' }));
    expect(await held(key, { images: 10 }, special.apiKey)).toBe('0.30');
    expect(await held(key, { images: 10 }, regular.apiKey)).toBe('0.50');

    // A new override version, from its effective_at.
    const later = new Date(clock.now().getTime() + 60_000).toISOString();
    await ok(api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'volume', tiers: [{ up_to: '5', unit_amount: '0.03' }, { up_to: null, unit_amount: '0.02' }], customer: special.customerId, effective_at: later }));
    expect(await held(key, { images: 10 }, special.apiKey)).toBe('0.30');
    clock.advance(60_000);
    expect(await held(key, { images: 10 }, special.apiKey)).toBe('0.20');
    expect(await held(key, { images: 5 }, special.apiKey)).toBe('0.15');
    expect(await held(key, { images: 10 }, regular.apiKey)).toBe('0.50');
  });

  it('overrides one meter of a product and keeps the base price of the others', async () => {
    const { api } = server;
    // meta/llama-3-70b: 0.0000006 input, 0.0000008 output per token
    await ok(api.post('/v1/prices', { product: 'meta/llama-3-70b', meter: 'input_tokens', currency: 'USD', scheme: 'per_unit', unit_amount: '0.0000003', customer: special.customerId }));
    expect(await held('meta/llama-3-70b', { input_tokens: 1000, output_tokens: 1000 }, special.apiKey)).toBe('0.0011');
    expect(await held('meta/llama-3-70b', { input_tokens: 1000, output_tokens: 1000 }, regular.apiKey)).toBe('0.0014');
  });

  it('refuses an override for an unknown customer (404) or in another currency than the customer (400)', async () => {
    const { api } = server;
    const unknown = await api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.01', customer: 'cus_00000000000000000000000000' });
    expectProblem(unknown, 404, 'not_found');
    expect(unknown.body.errors).toEqual([expect.objectContaining({ path: 'customer' })]);
    const eur = await api.post('/v1/prices', { product: key, meter: 'images', currency: 'EUR', scheme: 'per_unit', unit_amount: '0.01', customer: special.customerId });
    expectProblem(eur, 400, 'invalid_request');
    expect(eur.body.errors).toEqual([expect.objectContaining({ path: 'currency' })]);
    expectProblem(await api.post('/v1/prices', { product: key, meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '0.01', customer: 'acme' }), 400, 'invalid_request');
  });

  it('shows each customer its own prices on /v1/pricing, and the operator any customer\'s', async () => {
    const { api } = server;
    const entry = (body: { data: Array<{ product: { key: string }; prices: Array<{ meter: string; price: { unit_amount: string | null; customer_id: string | null; scheme: string } }> }> }) =>
      body.data.find((e) => e.product.key === key)!.prices;
    const mine = await api.get('/v1/pricing', { token: special.apiKey });
    expect(mine.status).toBe(200);
    expect(entry(mine.body)).toEqual([expect.objectContaining({ meter: 'images', unit: 'image', price: expect.objectContaining({ scheme: 'volume', customer_id: special.customerId }) })]);
    const theirs = await api.get('/v1/pricing', { token: regular.apiKey });
    expect(entry(theirs.body)).toEqual([expect.objectContaining({ price: expect.objectContaining({ unit_amount: '0.05', customer_id: null }) })]);
    // A customer cannot look at another customer's prices by asking for them.
    const peek = await api.get(`/v1/pricing?customer=${special.customerId}`, { token: regular.apiKey });
    expect(entry(peek.body)).toEqual(entry(theirs.body));
    expect(entry((await api.get(`/v1/pricing?customer=${special.customerId}`)).body)).toEqual(entry(mine.body));
    expect(entry((await api.get('/v1/pricing')).body)).toEqual(entry(theirs.body));
  });

  it('filters /v1/prices by customer and by product', async () => {
    const { api } = server;
    const overrides = await api.get(`/v1/prices?customer=${special.customerId}`);
    expect(overrides.status).toBe(200);
    expect(overrides.body.data.map((p: { customer_id: string; product: string; meter: string }) => [p.customer_id, p.product, p.meter])).toEqual([
      [special.customerId, 'meta/llama-3-70b', 'input_tokens'],
      [special.customerId, key, 'images'],
      [special.customerId, key, 'images'],
    ]);
    expect((await api.get(`/v1/prices?customer=${regular.customerId}`)).body).toEqual({ data: [], has_more: false, next_cursor: null });

    const all = await api.get(`/v1/prices?product=${encodeURIComponent(key)}`);
    expect(all.body.data).toHaveLength(4);
    expect(all.body.data.every((p: { product: string }) => p.product === key)).toBe(true);
    expect(all.body.data.map((p: { unit_amount: string | null }) => p.unit_amount)).toEqual([null, '0.05', '0.03', '0.04']);
    const productId = (await api.get(`/v1/products/${key}`)).body.id;
    expect((await api.get(`/v1/prices?product=${productId}`)).body).toEqual(all.body);
    const both = await api.get(`/v1/prices?product=${encodeURIComponent(key)}&customer=${special.customerId}`);
    expect(both.body.data).toHaveLength(2);

    // Pages of 3 then 1.
    const first = await api.get(`/v1/prices?product=${encodeURIComponent(key)}&limit=3`);
    expect(first.body.data).toEqual(all.body.data.slice(0, 3));
    expect(first.body).toMatchObject({ has_more: true, next_cursor: all.body.data[2].id });
    const second = await api.get(`/v1/prices?product=${encodeURIComponent(key)}&limit=3&cursor=${first.body.next_cursor}`);
    expect(second.body).toEqual({ data: all.body.data.slice(3), has_more: false, next_cursor: null });

    expect((await api.get('/v1/prices?product=no/such/product')).body).toEqual({ data: [], has_more: false, next_cursor: null });
    expectProblem(await api.get('/v1/prices?customer=nope'), 400, 'invalid_request');
    expectProblem(await api.get('/v1/prices?limit=0'), 400, 'invalid_request');
  });
});

describe('refusals', () => {
  it('refuses invalid price terms with 400 invalid_request saying what is wrong', async () => {
    const { api } = server;
    const { key } = await product([]);
    const base = { product: key, meter: 'images', currency: 'USD' };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ scheme: 'per_unit' }, /unit_amount is required/],
      [{ scheme: 'per_unit', unit_amount: '1', package_size: '10' }, /package_size is not allowed/],
      [{ scheme: 'per_unit', unit_amount: '1', tiers: [{ up_to: null, unit_amount: '1' }] }, /tiers is not allowed/],
      [{ scheme: 'package', unit_amount: '1' }, /package_size is required/],
      [{ scheme: 'package', unit_amount: '1', package_size: '0' }, /package_size must be greater than 0/],
      [{ scheme: 'package', package_size: '10' }, /unit_amount is required/],
      [{ scheme: 'graduated' }, /tiers must have between 1 and 50 entries/],
      [{ scheme: 'volume', unit_amount: '1', tiers: [{ up_to: null, unit_amount: '1' }] }, /unit_amount is not allowed/],
      [{ scheme: 'graduated', tiers: [{ up_to: '10', unit_amount: '1' }] }, /up_to must be null on the last tier/],
      [{ scheme: 'graduated', tiers: [{ up_to: null, unit_amount: '1' }, { up_to: null, unit_amount: '1' }] }, /up_to may only be null on the last tier/],
      [{ scheme: 'volume', tiers: [{ up_to: '10', unit_amount: '1' }, { up_to: '10', unit_amount: '1' }, { up_to: null, unit_amount: '1' }] }, /up_to must be greater than the previous up_to/],
      [{ scheme: 'volume', tiers: [{ up_to: '0', unit_amount: '1' }, { up_to: null, unit_amount: '1' }] }, /up_to must be greater than 0/],
    ];
    for (const [terms, message] of cases) {
      const r = await api.post('/v1/prices', { ...base, ...terms });
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors.map((e: { message: string }) => e.message).join('; '), JSON.stringify(terms)).toMatch(message);
    }
    // Malformed amounts and shapes are refused by the schema.
    for (const terms of [
      { scheme: 'per_unit', unit_amount: '-0.01' },
      { scheme: 'per_unit', unit_amount: 0.01 },
      { scheme: 'per_unit', unit_amount: '1e-7' },
      { scheme: 'per_unit', unit_amount: '0.0000000000001' },
      { scheme: 'per_unit', unit_amount: '' },
      { scheme: 'flat', unit_amount: '1' },
      { scheme: 'graduated', tiers: [] },
      { scheme: 'graduated', tiers: [{ up_to: null, unit_amount: '1', discount: '1' }] },
      { scheme: 'graduated', tiers: Array.from({ length: 51 }, (_, i) => ({ up_to: i === 50 ? null : String(i + 1), unit_amount: '1' })) },
      { scheme: 'per_unit', unit_amount: '1', currency: 'XYZ' },
      { scheme: 'per_unit', unit_amount: '1', effective_at: 'next week' },
      { scheme: 'per_unit', unit_amount: '1', note: 'x' },
    ]) {
      expectProblem(await api.post('/v1/prices', { ...base, ...terms }), 400, 'invalid_request');
    }
    expect((await api.get(`/v1/prices?product=${encodeURIComponent(key)}`)).body.data).toEqual([]);
  });

  it('refuses a price for an unknown product or meter with 404 not_found', async () => {
    const { api } = server;
    const noProduct = await api.post('/v1/prices', { product: 'no/such/model', meter: 'images', currency: 'USD', scheme: 'per_unit', unit_amount: '1' });
    expectProblem(noProduct, 404, 'not_found');
    expect(noProduct.body.errors).toEqual([expect.objectContaining({ path: 'product' })]);
    const noMeter = await api.post('/v1/prices', { product: 'fal-ai/flux/dev', meter: 'no_such_meter', currency: 'USD', scheme: 'per_unit', unit_amount: '1' });
    expectProblem(noMeter, 404, 'not_found');
    expect(noMeter.body.errors).toEqual([expect.objectContaining({ path: 'meter' })]);
  });

  it('refuses authorize without a price in force (422 no_price) or for an unknown product (404)', async () => {
    const { api } = server;
    const bare = await ok(api.post('/v1/products', { key: 'acme/unpriced', name: 'Unpriced' }));
    expectProblem(await api.post('/v1/authorize', { api_key: payer.apiKey, product: bare.key, estimate: { images: 1 } }), 422, 'no_price');
    // A meter of the estimate the product has no price for.
    const other = await api.post('/v1/authorize', { api_key: payer.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 1, images: 1 } });
    expectProblem(other, 422, 'no_price');
    expect(other.body.meter).toBe('images');
    // A price only in another currency.
    const eur = await createCustomer(api, { credit: '10', currency: 'EUR' });
    expectProblem(await api.post('/v1/authorize', { api_key: eur.apiKey, product: 'gpu/h100', estimate: { gpu_seconds: 1 } }), 422, 'no_price');
    const unknown = await api.post('/v1/authorize', { api_key: payer.apiKey, product: 'no/such/model', estimate: { images: 1 } });
    expectProblem(unknown, 404, 'product_not_found');
    // Nothing was held by any of these.
    expect(await balanceOf(api, eur.customerId)).toMatchObject({ held: '0.00', available: '10.00' });

    // Settle with a meter the reservation has no price for.
    const auth = await api.post('/v1/authorize', { api_key: payer.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 1 } });
    expectProblem(await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { images: 1 } }), 422, 'no_price');
    expect((await api.get(`/v1/reservations/${auth.body.reservation.id}`)).body.status).toBe('pending');
  });
});

describe('/v1/pricing', () => {
  it('lists what each product costs now, per unit, as decimal strings, for the operator and for a customer', async () => {
    const { api } = server;
    const admin = await api.get('/v1/pricing');
    expect(admin.status).toBe(200);
    const keys = admin.body.data.map((e: { product: { key: string } }) => e.product.key);
    expect(keys).toEqual([...keys].sort());
    expect(keys).not.toContain('acme/unpriced');
    const flux = admin.body.data.find((e: { product: { key: string } }) => e.product.key === 'fal-ai/flux/dev');
    expect(flux).toEqual({
      product: expect.objectContaining({ key: 'fal-ai/flux/dev', name: 'FLUX dev' }),
      prices: [{ meter: 'megapixels', unit: 'megapixel', price: expect.objectContaining({ scheme: 'per_unit', unit_amount: '0.025', currency: 'USD', customer_id: null }) }],
    });
    const llama = admin.body.data.find((e: { product: { key: string } }) => e.product.key === 'meta/llama-3-70b');
    expect(Object.fromEntries(llama.prices.map((p: { meter: string; price: { unit_amount: string } }) => [p.meter, p.price.unit_amount]))).toEqual({
      input_tokens: '0.0000006',
      output_tokens: '0.0000008',
    });
    const gpu = admin.body.data.find((e: { product: { key: string } }) => e.product.key === 'gpu/h100');
    expect(gpu.prices[0].price).toMatchObject({ scheme: 'graduated', unit_amount: null, tiers: [{ up_to: '3600', unit_amount: '0.001', flat_amount: '0' }, { up_to: null, unit_amount: '0.0005', flat_amount: '0' }] });

    const customer = await createCustomer(api);
    const mine = await api.get('/v1/pricing', { token: customer.apiKey });
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual(admin.body);
    expectProblem(await api.get('/v1/pricing', { token: null }), 401, 'unauthorized');
  });

  it('filters by currency', async () => {
    const { api } = server;
    await ok(api.post('/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'EUR', scheme: 'per_unit', unit_amount: '0.023', effective_at: EPOCH }));
    const eur = await api.get('/v1/pricing?currency=EUR');
    expect(eur.body.data.every((e: { prices: Array<{ price: { currency: string } }> }) => e.prices.every((p) => p.price.currency === 'EUR'))).toBe(true);
    const flux = eur.body.data.find((e: { product: { key: string } }) => e.product.key === 'fal-ai/flux/dev');
    expect(flux.prices).toEqual([expect.objectContaining({ meter: 'megapixels', price: expect.objectContaining({ unit_amount: '0.023', currency: 'EUR' }) })]);
    expect(eur.body.data.map((e: { product: { key: string } }) => e.product.key)).not.toContain('gpu/h100');
    expectProblem(await api.get('/v1/pricing?currency=XYZ'), 400, 'invalid_request');
  });
});
