import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

// A fixed time of day, well away from a UTC midnight, so spend-limit days never roll over mid-test.
const clock = new ManualClock(new Date('2031-05-14T10:00:00.000Z'));
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const UNKNOWN_RES = 'res_00000000000000000000000000';

/** An RFC 9457 problem with the stable code and its status. */
function expectProblem(r: ApiResponse, status: number, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
  expect(typeof r.body.title).toBe('string');
  expect(typeof r.body.detail).toBe('string');
  expect(r.body.detail.length).toBeGreaterThan(0);
}

/** What a refused request must leave untouched: the balance and every ledger entry. */
async function ledgerView(customerId: string) {
  const { api } = server;
  const transactions = await api.get(`/v1/customers/${customerId}/transactions?limit=100`);
  expect(transactions.status).toBe(200);
  return { balance: await balanceOf(api, customerId), transactions: transactions.body.data as any[] };
}

async function authorized(c: Fixture, megapixels: number | string, extra: Record<string, unknown> = {}) {
  const r = await authorize(server.api, c.apiKey, { megapixels }, extra);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { reservation: { id: string; amount: string; expires_at: string }; available_after: string };
}

const settle = (id: string, usage: Record<string, unknown>, idempotencyKey?: string) =>
  server.api.post(`/v1/reservations/${id}/settle`, { usage }, { idempotencyKey });
const release = (id: string, idempotencyKey?: string) => server.api.post(`/v1/reservations/${id}/release`, undefined, { idempotencyKey });

describe('authorize refusals', () => {
  it('refuses a garbage or unknown api_key with 401 invalid_api_key, before looking at the product', async () => {
    const { api } = server;
    for (const apiKey of ['not-a-key', 'tg_' + 'x'.repeat(40), 'tg_', 'sk_live_123']) {
      const r = await api.post('/v1/authorize', { api_key: apiKey, product: 'no/such-product', estimate: { megapixels: 1 } });
      expectProblem(r, 401, 'invalid_api_key');
      expect(r.body.detail).toBe('The API key is unknown, revoked or expired');
    }
    // A missing or empty api_key is a malformed request, not an unknown key.
    expectProblem(await api.post('/v1/authorize', { api_key: '', product: 'fal-ai/flux/dev', estimate: {} }), 400, 'invalid_request');
    const missing = await api.post('/v1/authorize', { product: 'fal-ai/flux/dev', estimate: {} });
    expectProblem(missing, 400, 'invalid_request');
    expect(missing.body.errors).toContainEqual(expect.objectContaining({ path: 'api_key' }));
  });

  it('refuses a revoked key at once, while its open reservation can still be settled', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const open = await authorized(c, 4); // the key's identity is now known to this process
    const before = await ledgerView(c.customerId);

    const revoked = await api.delete(`/v1/api_keys/${c.apiKeyId}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: c.apiKeyId, status: 'revoked', revoked_at: clock.now().toISOString() });

    const r = await authorize(api, c.apiKey, { megapixels: 4 });
    expectProblem(r, 401, 'invalid_api_key');
    expect(await ledgerView(c.customerId)).toEqual(before);
    // The key no longer authenticates /v1/me either.
    expectProblem(await api.get('/v1/me/balance', { token: c.apiKey }), 401, 'unauthorized');

    // The job authorized before the revocation ran; its result is still charged.
    const s = await settle(open.reservation.id, { megapixels: 2 });
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ charged: '0.05', released: '0.05', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.95', held: '0.00', posted: '0.95' });
  });

  it('refuses a key revoked through another instance, even though this one knows the key', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const open = await authorized(c, 4); // cached by this instance
    const other = await startServer({ clock, database: server.database });
    try {
      expect((await other.api.delete(`/v1/api_keys/${c.apiKeyId}`)).body.status).toBe('revoked');
    } finally {
      await other.close();
    }
    const before = await ledgerView(c.customerId);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 4 }), 401, 'invalid_api_key');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect(before.balance).toMatchObject({ available: '0.90', held: '0.10' });
    expect((await release(open.reservation.id)).status).toBe(200);
  });

  it('refuses a key past its expires_at', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00', key: { expires_at: new Date(clock.now().getTime() + 30_000).toISOString() } });
    await authorized(c, 4);
    clock.advance(30_000);
    const before = await ledgerView(c.customerId);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 4 }), 401, 'invalid_api_key');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect((await api.get(`/v1/api_keys/${c.apiKeyId}`)).body.status).toBe('expired');
  });

  it('refuses an unknown product with 404 product_not_found', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const before = await ledgerView(c.customerId);
    const r = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/pro', estimate: { megapixels: 1 } });
    expectProblem(r, 404, 'product_not_found');
    expect(r.body.detail).toContain('fal-ai/flux/pro');
    expect(await ledgerView(c.customerId)).toEqual(before);
  });

  it('refuses a meter with no price on the product, or a currency the product is not priced in, with 422 no_price', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const before = await ledgerView(c.customerId);
    const estimates: Array<Record<string, string | number>> = [{ gpu_seconds: 10 }, { megapixels: 1, gpu_seconds: '10' }, { unknown_meter: 1 }];
    for (const estimate of estimates) {
      const r = await authorize(api, c.apiKey, estimate);
      expectProblem(r, 422, 'no_price');
    }
    const r = await authorize(api, c.apiKey, { gpu_seconds: 10 });
    expect(r.body.meter).toBe('gpu_seconds');
    expect(await ledgerView(c.customerId)).toEqual(before);

    const euro = await createCustomer(api, { currency: 'EUR', credit: '1.00' });
    const eur = await authorize(api, euro.apiKey, { megapixels: 1 });
    expectProblem(eur, 422, 'no_price');
    expect(eur.body.detail).toContain('EUR');
    expect(await balanceOf(api, euro.customerId)).toMatchObject({ available: '1.00', held: '0.00', posted: '1.00' });
  });

  it('refuses malformed estimates and hold_seconds with 400 invalid_request', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const before = await ledgerView(c.customerId);
    const bodies: Array<Record<string, unknown>> = [
      { estimate: { megapixels: '-1' } },
      { estimate: { megapixels: -1 } },
      { estimate: { megapixels: '1.0000000000001' } }, // 13 fractional digits
      { estimate: { megapixels: '1e3' } },
      { estimate: { megapixels: 1e-7 } },
      { estimate: { Megapixels: 1 } },
      { estimate: { megapixels: 1 }, hold_seconds: 0 },
      { estimate: { megapixels: 1 }, hold_seconds: 86_401 },
      { estimate: { megapixels: 1 }, hold_seconds: 1.5 },
      { estimate: { megapixels: 1 }, colour: 'blue' },
    ];
    for (const body of bodies) {
      const r = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', ...body });
      expectProblem(r, 400, 'invalid_request');
    }
    expect(await ledgerView(c.customerId)).toEqual(before);
  });

  it('refuses more than the available credit with 402 insufficient_funds and says how much there is', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.15' });
    const first = await authorized(c, 4);
    expect(first.available_after).toBe('0.05');
    const before = await ledgerView(c.customerId);

    const r = await authorize(api, c.apiKey, { megapixels: 4 });
    expectProblem(r, 402, 'insufficient_funds');
    expect(r.body.available).toBe('0.05');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect(before.balance).toMatchObject({ available: '0.05', held: '0.10', posted: '0.15' });

    // Exactly what is available is allowed, down to the last nano-unit.
    const exact = await authorized(c, 2);
    expect(exact).toMatchObject({ reservation: { amount: '0.05' }, available_after: '0.00' });
    const broke = await authorize(api, c.apiKey, { megapixels: '0.00000004' }); // 0.000000001
    expectProblem(broke, 402, 'insufficient_funds');
    expect(broke.body.available).toBe('0.00');
    // An estimate that costs nothing needs no credit.
    expect((await authorized(c, 0)).reservation.amount).toBe('0.00');
  });

  it('refuses a customer with no credit at all, and a refusal is not remembered under its Idempotency-Key', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const r = await authorize(api, c.apiKey, { megapixels: 4 }, {});
    expectProblem(r, 402, 'insufficient_funds');
    expect(r.body.available).toBe('0.00');

    const body = { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } };
    expectProblem(await api.post('/v1/authorize', body, { idempotencyKey: 'job-42' }), 402, 'insufficient_funds');
    expect((await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00', category: 'purchased' })).status).toBe(201);
    const retried = await api.post('/v1/authorize', body, { idempotencyKey: 'job-42' });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(retried.body).toMatchObject({ reservation: { amount: '0.10' }, available_after: '0.90' });
    const replay = await api.post('/v1/authorize', body, { idempotencyKey: 'job-42' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(retried.body);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.90', held: '0.10', posted: '1.00' });
  });

  it("refuses what would exceed the key's daily spend limit with 402 spend_limit_exceeded", async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '1.00', period: 'day' } } });
    const a = await authorized(c, 24); // 0.60 held
    const before = await ledgerView(c.customerId);
    const refused = await authorize(api, c.apiKey, { megapixels: 20 }); // 0.60 + 0.50 > 1.00
    expectProblem(refused, 402, 'spend_limit_exceeded');
    expect(refused.body.detail).toContain('day');
    expect(await ledgerView(c.customerId)).toEqual(before);

    // Settling counts what was charged (0.40), not the hold.
    expect((await settle(a.reservation.id, { megapixels: 16 })).body).toMatchObject({ charged: '0.40', released: '0.20' });
    await authorized(c, 20); // 0.40 spent + 0.50 held = 0.90
    expectProblem(await authorize(api, c.apiKey, { megapixels: 8 }), 402, 'spend_limit_exceeded'); // + 0.20 = 1.10
    await authorized(c, 4); // + 0.10 = exactly 1.00
    expectProblem(await authorize(api, c.apiKey, { megapixels: '0.00000004' }), 402, 'spend_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.00', held: '0.60', posted: '9.60' });

    // The limit is checked before the funds: a key over its limit is told so even when credit is short too.
    const poor = await createCustomer(api, { credit: '0.05', key: { spend_limit: { amount: '0.05', period: 'month' } } });
    expectProblem(await authorize(api, poor.apiKey, { megapixels: 4 }), 402, 'spend_limit_exceeded');
  });

  it('refuses a key at max_concurrency open reservations with 429 concurrency_limit_exceeded', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.20', key: { max_concurrency: 2 } });
    const a = await authorized(c, 4);
    const b = await authorized(c, 4);
    const before = await ledgerView(c.customerId);
    // Checked before the funds: the customer has nothing left either, but the concurrency cap answers.
    const refused = await authorize(api, c.apiKey, { megapixels: 4 });
    expectProblem(refused, 429, 'concurrency_limit_exceeded');
    expect(refused.body.detail).toContain('max_concurrency 2');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect(before.balance).toMatchObject({ available: '0.00', held: '0.20' });

    // Another key of the same customer has its own cap (none), so only the funds refuse it.
    const otherKey = await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'other' });
    expectProblem(await authorize(api, otherKey.body.secret, { megapixels: 4 }), 402, 'insufficient_funds');

    expect((await release(a.reservation.id)).status).toBe(200);
    const c2 = await authorized(c, 4);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 0 }), 429, 'concurrency_limit_exceeded');
    expect((await settle(b.reservation.id, { megapixels: 4 })).status).toBe(200);
    expect((await settle(c2.reservation.id, { megapixels: 0 })).status).toBe(200);
    await authorized(c, 0);
    await authorized(c, 0);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 0 }), 429, 'concurrency_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.10', held: '0.00', posted: '0.10' });
  });
});

describe('refusals under concurrent requests', () => {
  const statuses = (rs: ApiResponse[]) => rs.map((r) => (r.status === 200 ? 'ok' : r.body.code)).sort();

  it('authorizes exactly what the credit covers when requests race for it', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.50' });
    const rs = await Promise.all(Array.from({ length: 10 }, () => authorize(api, c.apiKey, { megapixels: 4 })));
    expect(statuses(rs)).toEqual([...Array(5).fill('insufficient_funds'), ...Array(5).fill('ok')]);
    for (const r of rs.filter((r) => r.status === 402)) expect(r.body.available).toBe('0.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.50', posted: '0.50' });
  });

  it('lets exactly max_concurrency racing requests through', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { max_concurrency: 3 } });
    const rs = await Promise.all(Array.from({ length: 8 }, () => authorize(api, c.apiKey, { megapixels: 4 })));
    expect(statuses(rs)).toEqual([...Array(5).fill('concurrency_limit_exceeded'), ...Array(3).fill('ok')]);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.70', held: '0.30' });
  });

  it('lets racing requests spend exactly up to the spend limit', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '0.30', period: 'month' } } });
    const rs = await Promise.all(Array.from({ length: 8 }, () => authorize(api, c.apiKey, { megapixels: 4 })));
    expect(statuses(rs)).toEqual([...Array(3).fill('ok'), ...Array(5).fill('spend_limit_exceeded')]);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.70', held: '0.30' });
  });

  it('resolves a reservation once when settles and releases race', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4);
    const settles = await Promise.all([1, 2, 3].map(() => settle(a.reservation.id, { megapixels: 2 })));
    expect(settles.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(settles[1].body).toEqual(settles[0].body);
    expect(settles[2].body).toEqual(settles[0].body);

    const b = await authorized(c, 4);
    const [s, r] = await Promise.all([settle(b.reservation.id, { megapixels: 4 }), release(b.reservation.id)]);
    expect([s.status, r.status].sort()).toEqual([200, 409]);
    const winner = s.status === 200 ? 'settled' : 'released';
    expect((s.status === 409 ? s : r).body).toMatchObject({ code: 'reservation_not_pending', reservation_status: winner });
    expect((await api.get(`/v1/reservations/${b.reservation.id}`)).body.status).toBe(winner);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.00', posted: winner === 'settled' ? '0.85' : '0.95' });
  });
});

describe('settle and release lifecycle', () => {
  it('a repeated settle returns the first result and changes nothing', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4);
    const first = await settle(a.reservation.id, { megapixels: 1 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ charged: '0.025', released: '0.075', uncollected: '0.00' });
    expect(first.body.reservation).toMatchObject({ id: a.reservation.id, status: 'settled', charged: '0.025', usage: { megapixels: '1' } });
    const after = await ledgerView(c.customerId);
    expect(after.balance).toMatchObject({ available: '0.975', held: '0.00', posted: '0.975' });

    for (const usage of [{ megapixels: 1 }, { megapixels: 3 }, { megapixels: 400 }]) {
      const again = await settle(a.reservation.id, usage);
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
    }
    expect(await ledgerView(c.customerId)).toEqual(after);
  });

  it('replays a settle sent again with the same Idempotency-Key, and refuses the key with another usage', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4);
    const first = await settle(a.reservation.id, { megapixels: 2 }, 'settle-1');
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const after = await ledgerView(c.customerId);
    const replay = await settle(a.reservation.id, { megapixels: 2 }, 'settle-1');
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expectProblem(await settle(a.reservation.id, { megapixels: 3 }, 'settle-1'), 409, 'idempotency_key_reused');
    expect(await ledgerView(c.customerId)).toEqual(after);
    expect(after.balance).toMatchObject({ available: '0.95', held: '0.00', posted: '0.95' });

    // A refused settle is not remembered under its key: the corrected request goes through with it.
    const b = await authorized(c, 4);
    expectProblem(await settle(b.reservation.id, { gpu_seconds: 1 }, 'settle-2'), 422, 'no_price');
    const fixed = await settle(b.reservation.id, { megapixels: 1 }, 'settle-2');
    expect(fixed.status).toBe(200);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
    expect(fixed.body).toMatchObject({ charged: '0.025', released: '0.075' });
  });

  it('refuses a release after a settle, and a settle after a release, with 409 reservation_not_pending', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const settled = await authorized(c, 4);
    expect((await settle(settled.reservation.id, { megapixels: 4 })).status).toBe(200);
    const released = await authorized(c, 4);
    const r1 = await release(released.reservation.id);
    expect(r1.status).toBe(200);
    expect(r1.body.reservation).toMatchObject({ status: 'released', charged: '0.00', released: '0.10', uncollected: '0.00' });
    const before = await ledgerView(c.customerId);
    expect(before.balance).toMatchObject({ available: '0.90', held: '0.00', posted: '0.90' });

    const releaseSettled = await release(settled.reservation.id);
    expectProblem(releaseSettled, 409, 'reservation_not_pending');
    expect(releaseSettled.body.reservation_status).toBe('settled');
    const settleReleased = await settle(released.reservation.id, { megapixels: 1 });
    expectProblem(settleReleased, 409, 'reservation_not_pending');
    expect(settleReleased.body.reservation_status).toBe('released');
    // Releasing again answers with the same reservation.
    const r2 = await release(released.reservation.id);
    expect(r2.status).toBe(200);
    expect(r2.body).toEqual(r1.body);
    expect(await ledgerView(c.customerId)).toEqual(before);
  });

  it('answers 404 for an unknown reservation and 400 for a malformed id', async () => {
    const { api } = server;
    const s = await settle(UNKNOWN_RES, { megapixels: 1 });
    expectProblem(s, 404, 'not_found');
    expect(s.body.detail).toContain(UNKNOWN_RES);
    expectProblem(await release(UNKNOWN_RES), 404, 'not_found');
    expectProblem(await api.get(`/v1/reservations/${UNKNOWN_RES}`), 404, 'not_found');
    expectProblem(await settle('res_123', { megapixels: 1 }), 400, 'invalid_request');
    expectProblem(await release('cus_00000000000000000000000000'), 400, 'invalid_request');
  });

  it('charges usage above the hold only as far as available credit goes, and reports the rest as uncollected', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4); // 0.10 held
    const s = await settle(a.reservation.id, { megapixels: 100 }); // costs 2.50
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ charged: '1.00', released: '0.00', uncollected: '1.50' });
    expect(s.body.reservation).toMatchObject({ status: 'settled', amount: '0.10', charged: '1.00', released: '0.00', uncollected: '1.50', usage: { megapixels: '100' } });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.00', posted: '0.00', grants: [] });
    const { transactions } = await ledgerView(c.customerId);
    expect(transactions.map((t) => [t.kind, t.amount, t.direction, t.pending])).toEqual([
      ['charge', '0.90', 'debit', false],
      ['capture', '0.10', 'debit', false],
      ['hold', '0.10', 'debit', true],
      ['grant', '1.00', 'credit', false],
    ]);
    expect(transactions[0].reservation_id).toBe(a.reservation.id);
    expect(transactions[1].pending_id).toBe(transactions[2].id);
    expect((await api.get(`/v1/reservations/${a.reservation.id}`)).body).toEqual(s.body.reservation);
  });

  it('never takes the extra charge out of credit held for other reservations', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4); // 0.10
    const b = await authorized(c, 16); // 0.40
    const s = await settle(a.reservation.id, { megapixels: 40 }); // costs 1.00: 0.10 captured, 0.50 of 0.90 extra collected
    expect(s.body).toMatchObject({ charged: '0.60', released: '0.00', uncollected: '0.40' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.40', posted: '0.40' });
    const sb = await settle(b.reservation.id, { megapixels: 16 });
    expect(sb.body).toMatchObject({ charged: '0.40', released: '0.00', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.00', posted: '0.00' });
  });

  it('charges usage above the hold in full when the credit covers it', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4);
    const s = await settle(a.reservation.id, { megapixels: 8 });
    expect(s.body).toMatchObject({ charged: '0.20', released: '0.00', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.80', held: '0.00', posted: '0.80' });
  });

  it('lets a postpaid customer be charged above the hold down to minus its credit limit, not further', async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '1.00' });
    const a = await authorized(c, 4);
    expect(a.available_after).toBe('0.90');
    const s = await settle(a.reservation.id, { megapixels: 100 });
    expect(s.body).toMatchObject({ charged: '1.00', released: '0.00', uncollected: '1.50' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.00', posted: '-1.00', credit_limit: '1.00' });
    const refused = await authorize(api, c.apiKey, { megapixels: 1 });
    expectProblem(refused, 402, 'insufficient_funds');
    expect(refused.body.available).toBe('0.00');
  });

  it('settles a usage of zero as charged 0 and the whole hold released', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    for (const usage of [{ megapixels: 0 }, { megapixels: '0.000' }, {}]) {
      const a = await authorized(c, 4);
      const s = await settle(a.reservation.id, usage);
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({ charged: '0.00', released: '0.10', uncollected: '0.00' });
      expect(s.body.reservation).toMatchObject({ status: 'settled', charged: '0.00', released: '0.10', uncollected: '0.00' });
    }
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '1.00', held: '0.00', posted: '1.00' });
    const { transactions } = await ledgerView(c.customerId);
    expect(transactions.slice(0, 2).map((t) => [t.kind, t.amount, t.pending, t.reason])).toEqual([
      ['release', '0.10', false, 'settled'],
      ['hold', '0.10', true, null],
    ]);
    expect(transactions.filter((t) => t.kind === 'capture' || t.kind === 'charge')).toEqual([]);
  });

  it('refuses a usage meter with no price on the reservation with 422 no_price and keeps the hold open', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4);
    const before = await ledgerView(c.customerId);
    const r = await settle(a.reservation.id, { megapixels: 1, gpu_seconds: 10 });
    expectProblem(r, 422, 'no_price');
    expect(r.body.meter).toBe('gpu_seconds');
    expectProblem(await settle(a.reservation.id, { megapixels: '-1' }), 400, 'invalid_request');
    expectProblem(await settle(a.reservation.id, { megapixels: 1e-7 }), 400, 'invalid_request');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect((await api.get(`/v1/reservations/${a.reservation.id}`)).body.status).toBe('pending');
    expect((await settle(a.reservation.id, { megapixels: 1 })).body).toMatchObject({ charged: '0.025', released: '0.075' });
  });
});

describe('hold expiry', () => {
  it('a hold nobody settles expires at its expires_at and returns the funds', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const start = clock.now();
    const a = await authorized(c, 4, { hold_seconds: 60 });
    expect(a.reservation.expires_at).toBe(new Date(start.getTime() + 60_000).toISOString());
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.90', held: '0.10' });

    clock.advance(59_999);
    expect((await api.get(`/v1/reservations/${a.reservation.id}`)).body.status).toBe('pending');
    clock.advance(1_001);
    const expiredAt = clock.now().toISOString();
    const got = await api.get(`/v1/reservations/${a.reservation.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: a.reservation.id, status: 'expired', amount: '0.10', charged: '0.00', released: '0.10', uncollected: '0.00', usage: null, resolved_at: expiredAt });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '1.00', held: '0.00', posted: '1.00' });

    const before = await ledgerView(c.customerId);
    const s = await settle(a.reservation.id, { megapixels: 4 });
    expectProblem(s, 409, 'reservation_not_pending');
    expect(s.body.reservation_status).toBe('expired');
    const r = await release(a.reservation.id);
    expectProblem(r, 409, 'reservation_not_pending');
    expect(r.body.reservation_status).toBe('expired');
    expect(await ledgerView(c.customerId)).toEqual(before);
    expect(before.transactions[0]).toMatchObject({ kind: 'release', amount: '0.10', reason: 'expired', reservation_id: a.reservation.id, created_at: expiredAt });
  });

  it('the balance read applies an overdue expiry by itself', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4, { hold_seconds: 60 });
    clock.advance(60_000);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '1.00', held: '0.00', posted: '1.00' });
    expect((await api.get(`/v1/reservations/${a.reservation.id}`)).body.status).toBe('expired');
    expectProblem(await settle(a.reservation.id, { megapixels: 1 }), 409, 'reservation_not_pending');
  });

  it('settling just before expires_at still works', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const a = await authorized(c, 4, { hold_seconds: 60 });
    clock.advance(59_000);
    expect((await settle(a.reservation.id, { megapixels: 4 })).body).toMatchObject({ charged: '0.10', released: '0.00' });
    clock.advance(2_000);
    expect((await api.get(`/v1/reservations/${a.reservation.id}`)).body.status).toBe('settled');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.90', held: '0.00', posted: '0.90' });
  });

  it('an expired hold frees its credit and its concurrency slot for the next authorize', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.10', key: { max_concurrency: 1 } });
    await authorized(c, 4, { hold_seconds: 60 });
    expectProblem(await authorize(api, c.apiKey, { megapixels: 4 }), 429, 'concurrency_limit_exceeded');
    const other = await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'other' });
    const poor = await authorize(api, other.body.secret, { megapixels: 4 });
    expectProblem(poor, 402, 'insufficient_funds');
    expect(poor.body.available).toBe('0.00');

    clock.advance(61_000);
    const next = await authorized(c, 4);
    expect(next.available_after).toBe('0.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.10', posted: '0.10' });
  });
});
