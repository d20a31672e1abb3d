import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';

const clock = new ManualClock(new Date('2026-06-15T12:00:00Z'));
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

let seq = 0;
function usage(c: Fixture, data: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { specversion: '1.0', id: `evt-${++seq}`, source: 'test/gateway', type: 'usage', subject: c.customerId, data: { product: 'fal-ai/flux/dev', ...data }, ...extra };
}

describe('POST /v1/events', () => {
  it('accepts, rates at the event time and charges; a duplicate changes nothing', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    const event = usage(c, { megapixels: '4' });
    const first = await api.post('/v1/events', [event]);
    expect(first.status).toBe(200);
    expect(first.body.data).toEqual([{ id: event.id, source: 'test/gateway', status: 'accepted', event: expect.stringMatching(/^evt_/) }]);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.90', available: '9.90' });
    const again = await api.post('/v1/events', event, { contentType: 'application/cloudevents+json' });
    expect(again.body.data).toEqual([{ id: event.id, source: 'test/gateway', status: 'duplicate', event: first.body.data[0].event }]);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.90' });
    const listed = await api.get(`/v1/events?customer=${c.customerId}`);
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.data[0]).toMatchObject({ event_id: event.id, product: 'fal-ai/flux/dev', status: 'charged', amount: '0.10', charged: '0.10', uncollected: '0.00', quantities: { megapixels: '4' } });
  });

  it('gives one result per event: a bad event rejects only itself', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    const good = usage(c, { megapixels: 1 });
    const batch = [
      good,
      { ...usage(c, { megapixels: 1 }), specversion: '0.3' },
      usage(c, { megapixels: '-1' }),
      usage(c, { megapixels: 'lots' }),
      usage(c, { no_such_meter: 1 }),
      { ...usage(c, { megapixels: 1 }), subject: 'nobody' },
      usage(c, { product: 'no/such/product', megapixels: 1 }),
      usage(c, { megapixels: 1, api_key_id: 'key_01aaaaaaaaaaaaaaaaaaaaaaaa' }),
      usage(c, { megapixels: 1 }, { time: '2026-01-01T00:00:00Z' }),
      usage(c, { megapixels: 1 }, { time: '2026-06-15T12:10:00Z' }),
      usage(c, { megapixels: 1 }, { source: 'tollgate/reservations' }),
      'not an event',
      { ...usage(c, { megapixels: 1 }), id: { toString: [] }, source: ['x'] },
      usage(c, { megapixels: 2 }),
    ];
    const r = await api.post('/v1/events', batch, { contentType: 'application/cloudevents-batch+json' });
    expect(r.status).toBe(200);
    expect(r.body.data.map((x: { status: string; code?: string }) => x.code ?? x.status)).toEqual([
      'accepted', 'invalid_event', 'invalid_event', 'invalid_event', 'unknown_meter', 'customer_not_found', 'product_not_found',
      'api_key_not_found', 'too_old', 'too_new', 'reserved_source', 'invalid_event', 'invalid_event', 'accepted',
    ]);
    // An id or source that is not a string is not echoed (not stringified, which could throw).
    expect(r.body.data[12]).toMatchObject({ id: '', source: '' });
    for (const x of r.body.data.filter((x: { status: string }) => x.status === 'rejected')) expect(x.message).toEqual(expect.any(String));
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.925' });
  });

  it('finds the customer by external_id, accepts an API key of the customer, and records unpriced events', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const customer = (await api.get(`/v1/customers/${c.customerId}`)).body;
    const r = await api.post('/v1/events', [
      { ...usage(c, { megapixels: 2, api_key_id: c.apiKeyId }), subject: customer.external_id },
      usage(c, { product: 'gpu/h100', megapixels: 3 }),
    ]);
    expect(r.body.data.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);
    const unpriced = await api.get(`/v1/events?customer=${c.customerId}&status=unpriced`);
    expect(unpriced.body.data).toHaveLength(1);
    expect(unpriced.body.data[0]).toMatchObject({ product: 'gpu/h100', amount: null, charged: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '0.95' });
  });

  it('rates with the price in force at the event time, not now', async () => {
    const { api } = server;
    await api.post('/v1/products', { key: 'img/timed', name: 'Timed' });
    await api.post('/v1/prices', { product: 'img/timed', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '1', effective_at: '2026-06-01T00:00:00Z' });
    await api.post('/v1/prices', { product: 'img/timed', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '2', effective_at: '2026-06-15T00:00:00Z' });
    const c = await createCustomer(api, { credit: '100.00' });
    const r = await api.post('/v1/events', [
      usage(c, { product: 'img/timed', megapixels: 1 }, { time: '2026-06-14T23:59:59Z' }),
      usage(c, { product: 'img/timed', megapixels: 1 }, { time: '2026-06-15T00:00:00Z' }),
    ]);
    expect(r.body.data.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);
    const events = (await api.get(`/v1/events?customer=${c.customerId}`)).body.data;
    expect(events.map((e: { amount: string }) => e.amount).sort()).toEqual(['1.00', '2.00']);
  });

  it('charges a prepaid customer only what is available; the rest is uncollected, in event order', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.25' });
    const r = await api.post('/v1/events', [usage(c, { megapixels: 4 }), usage(c, { megapixels: 4 }), usage(c, { megapixels: 4 })]);
    expect(r.body.data.every((x: { status: string }) => x.status === 'accepted')).toBe(true);
    const events = (await api.get(`/v1/events?customer=${c.customerId}`)).body.data.reverse();
    expect(events.map((e: { charged: string; uncollected: string }) => [e.charged, e.uncollected])).toEqual([['0.10', '0.00'], ['0.10', '0.00'], ['0.05', '0.05']]);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '0.00', available: '0.00' });
  });

  it('records the usage of a settle through the same path, once', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    const auth = await authorize(api, c.apiKey, { megapixels: 4 });
    await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: 2 } });
    await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: 2 } });
    const events = (await api.get(`/v1/events?customer=${c.customerId}`)).body.data;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: 'tollgate/reservations', event_id: auth.body.reservation.id, status: 'settled', amount: '0.05', charged: '0.05', api_key_id: c.apiKeyId });
    const dup = await api.post('/v1/events', [usage(c, { megapixels: 2 }, { source: 'tollgate/reservations', id: auth.body.reservation.id })]);
    expect(dup.body.data[0]).toMatchObject({ status: 'rejected', code: 'reserved_source' });
  });

  it('takes many concurrent duplicate deliveries exactly once', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '100.00' });
    const events = Array.from({ length: 200 }, () => usage(c, { megapixels: '0.4' }));
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => api.post('/v1/events', i % 2 ? events : [...events].reverse())));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const accepted = replies.flatMap((r) => r.body.data).filter((x: { status: string }) => x.status === 'accepted');
    expect(accepted).toHaveLength(200);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '98.00' });
  });

  it('with an Idempotency-Key, a retried batch gets the first reply again', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    const batch = [usage(c, { megapixels: 1 }), usage(c, { megapixels: 2 })];
    const first = await api.post('/v1/events', batch, { idempotencyKey: `ingest-${c.customerId}` });
    const retry = await api.post('/v1/events', batch, { idempotencyKey: `ingest-${c.customerId}` });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(first.body.data.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);
    const other = await api.post('/v1/events', [usage(c, { megapixels: 1 })], { idempotencyKey: `ingest-${c.customerId}` });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_key_reused');
    const withoutKey = await api.post('/v1/events', batch);
    expect(withoutKey.body.data.map((x: { status: string }) => x.status)).toEqual(['duplicate', 'duplicate']);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.925' });
  });

  it('refuses a body that is not an event or a batch of at most 1,000', async () => {
    const { api } = server;
    expect((await api.post('/v1/events', [])).status).toBe(400);
    expect((await api.post('/v1/events', Array.from({ length: 1001 }, () => ({})))).status).toBe(400);
    expect((await api.post('/v1/events', 'x')).status).toBe(400);
  });
});
