import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { eventually } from '../support/eventually.js';

// Fixed, so expiry times and the times the API reports are exact. The sweeper runs in the
// background (as in production), every 25 ms of real time, against this clock.
const T0 = new Date('2031-05-14T10:00:00.000Z');
const clock = new ManualClock(T0);
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ clock, backgroundJobs: true, sweepIntervalMs: 25 });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();
const UNKNOWN_CUSTOMER = 'cus_00000000000000000000000000';

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
  expect(typeof r.body.detail).toBe('string');
}

async function grant(customerId: string, body: Record<string, unknown>) {
  const r = await server.api.post(`/v1/customers/${customerId}/credit_grants`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; amount: string; remaining: string; category: string; priority: number; expires_at: string | null; expired_at: string | null };
}

/** Remaining amount of each grant, by id, as GET /v1/customers/{id}/credit_grants shows it. */
async function remainders(customerId: string): Promise<Record<string, string>> {
  const r = await server.api.get(`/v1/customers/${customerId}/credit_grants?limit=100`);
  expect(r.status).toBe(200);
  return Object.fromEntries(r.body.data.map((g: any) => [g.id, g.remaining]));
}

async function transactions(customerId: string) {
  const r = await server.api.get(`/v1/customers/${customerId}/transactions?limit=100`);
  expect(r.status).toBe(200);
  return r.body.data as Array<{ id: string; kind: string; amount: string; direction: string; pending: boolean; grant_id: string | null; reservation_id: string | null; reason: string | null; created_at: string }>;
}

/** Authorizes `megapixels` (0.025 each) and settles `used` of them; returns the settle body. */
async function spend(c: Fixture, megapixels: number, used = megapixels) {
  const auth = await authorize(server.api, c.apiKey, { megapixels });
  expect(auth.status, JSON.stringify(auth.body)).toBe(200);
  const settle = await server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: used } });
  expect(settle.status, JSON.stringify(settle.body)).toBe(200);
  return settle.body as { charged: string; released: string; uncollected: string; reservation: { id: string } };
}

describe('granting credit', () => {
  it('records a grant, credits the balance and lists it', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    expect(await balanceOf(api, c.customerId)).toEqual({ customer_id: c.customerId, currency: 'USD', available: '0.00', held: '0.00', posted: '0.00', credit_limit: '0.00', grants: [] });

    const expiresAt = at(30 * DAY);
    const g = await grant(c.customerId, { amount: '5', category: 'purchased', priority: 7, expires_at: expiresAt, description: 'Top-up #1' });
    expect(g).toEqual({
      id: expect.stringMatching(/^grt_[0-9a-z]{26}$/),
      customer_id: c.customerId,
      currency: 'USD',
      category: 'purchased',
      priority: 7,
      amount: '5.00',
      remaining: '5.00',
      expires_at: expiresAt,
      expired_at: null,
      description: 'Top-up #1',
      created_at: clock.now().toISOString(),
    });
    const promo = await grant(c.customerId, { amount: '0.000000001', category: 'promotional' });
    expect(promo).toMatchObject({ category: 'promotional', priority: 100, amount: '0.000000001', remaining: '0.000000001', expires_at: null, description: null });

    expect(await balanceOf(api, c.customerId)).toEqual({
      customer_id: c.customerId,
      currency: 'USD',
      available: '5.000000001',
      held: '0.00',
      posted: '5.000000001',
      credit_limit: '0.00',
      grants: [
        { id: g.id, category: 'purchased', remaining: '5.00', expires_at: expiresAt },
        { id: promo.id, category: 'promotional', remaining: '0.000000001', expires_at: null },
      ],
    });
    const list = await api.get(`/v1/customers/${c.customerId}/credit_grants`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [promo, g], has_more: false, next_cursor: null });
    const txs = await transactions(c.customerId);
    expect(txs.map((t) => [t.kind, t.amount, t.direction, t.pending, t.grant_id, t.reason])).toEqual([
      ['grant', '0.000000001', 'credit', false, promo.id, null],
      ['grant', '5.00', 'credit', false, g.id, null],
    ]);

    // The customer sees the same through its own key.
    expect((await api.get('/v1/me/credit_grants', { token: c.apiKey })).body).toEqual(list.body);
    expect((await api.get('/v1/me/balance', { token: c.apiKey })).body).toEqual(await balanceOf(api, c.customerId));
    // And cannot grant itself credit.
    expectProblem(await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00' }, { token: c.apiKey }), 403, 'forbidden');
  });

  it('shows amounts with the currency minor digits, and whole yen without decimals', async () => {
    const { api } = server;
    const jpy = await createCustomer(api, { currency: 'JPY' });
    expect(await grant(jpy.customerId, { amount: '120', category: 'purchased' })).toMatchObject({ currency: 'JPY', amount: '120', remaining: '120' });
    expect(await grant(jpy.customerId, { amount: '0.5', category: 'purchased' })).toMatchObject({ amount: '0.5', remaining: '0.5' });
    expect(await balanceOf(api, jpy.customerId)).toMatchObject({ currency: 'JPY', available: '120.5', held: '0', posted: '120.5', credit_limit: '0' });

    const usd = await createCustomer(api);
    expect(await grant(usd.customerId, { amount: '1.5', category: 'purchased' })).toMatchObject({ amount: '1.50' });
    expect(await grant(usd.customerId, { amount: '0012.3400', category: 'purchased' })).toMatchObject({ amount: '12.34' });
    // The largest single grant.
    expect(await grant(usd.customerId, { amount: '1000000000', category: 'purchased' })).toMatchObject({ amount: '1000000000.00' });
    expect(await balanceOf(api, usd.customerId)).toMatchObject({ posted: '1000000013.84', available: '1000000013.84' });
  });

  it('replays a grant sent again with the same Idempotency-Key and refuses the key with another body', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const path = `/v1/customers/${c.customerId}/credit_grants`;
    const first = await api.post(path, { amount: '2.00', category: 'purchased' }, { idempotencyKey: 'topup-1' });
    expect(first.status).toBe(201);
    const again = await api.post(path, { amount: '2.00', category: 'purchased' }, { idempotencyKey: 'topup-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expectProblem(await api.post(path, { amount: '3.00', category: 'purchased' }, { idempotencyKey: 'topup-1' }), 409, 'idempotency_key_reused');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '2.00', posted: '2.00' });
    expect((await transactions(c.customerId)).length).toBe(1);
  });

  it('refuses invalid grants with 400 and changes nothing', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const before = [await balanceOf(api, c.customerId), await transactions(c.customerId)];
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ amount: '0' }, 'amount'],
      [{ amount: '0.00' }, 'amount'],
      [{ amount: '0.0000000000' }, 'amount'],
      [{ amount: '-1.00' }, 'amount'],
      [{ amount: '1.0000000001' }, 'amount'], // 10 fractional digits
      [{ amount: '1e3' }, 'amount'],
      [{ amount: '1,00' }, 'amount'],
      [{ amount: '' }, 'amount'],
      [{ amount: ' 1.00' }, 'amount'],
      [{ amount: '1000000000000000' }, 'amount'], // 16 integer digits
      [{ amount: '999999999999999.999999999' }, 'amount'], // beyond what the ledger's 64-bit columns hold at 9 decimals
      [{ amount: '9999999999' }, 'amount'],
      [{ amount: '1000000000.000000001' }, 'amount'],
      [{ amount: 5 }, 'amount'],
      [{}, 'amount'],
      [{ amount: '1.00', category: 'bonus' }, 'category'],
      [{ amount: '1.00', priority: -1 }, 'priority'],
      [{ amount: '1.00', priority: 1001 }, 'priority'],
      [{ amount: '1.00', priority: 1.5 }, 'priority'],
      [{ amount: '1.00', priority: '5' }, 'priority'],
      [{ amount: '1.00', expires_at: 'next week' }, 'expires_at'],
      [{ amount: '1.00', expires_at: at(-1) }, 'expires_at'],
      [{ amount: '1.00', expires_at: at(0) }, 'expires_at'],
      [{ amount: '1.00', description: 'x'.repeat(501) }, 'description'],
      [{ amount: '1.00', currency: 'USD' }, 'currency'],
    ];
    for (const [body, path] of refused) {
      const r = await api.post(`/v1/customers/${c.customerId}/credit_grants`, body);
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors, JSON.stringify(body)).toContainEqual(expect.objectContaining({ path }));
    }
    expectProblem(await api.post(`/v1/customers/${c.customerId}/credit_grants`, undefined, { rawBody: '{"amount": "1.00"' }), 400, 'invalid_json');
    expect([await balanceOf(api, c.customerId), await transactions(c.customerId)]).toEqual(before);
  });

  it('answers 404 for a grant to, or a read of, an unknown customer', async () => {
    const { api } = server;
    const r = await api.post(`/v1/customers/${UNKNOWN_CUSTOMER}/credit_grants`, { amount: '1.00', category: 'purchased' });
    expectProblem(r, 404, 'not_found');
    expect(r.body.detail).toContain(UNKNOWN_CUSTOMER);
    expectProblem(await api.get(`/v1/customers/${UNKNOWN_CUSTOMER}/credit_grants`), 404, 'not_found');
    expectProblem(await api.get(`/v1/customers/${UNKNOWN_CUSTOMER}/balance`), 404, 'not_found');
    expectProblem(await api.get(`/v1/customers/${UNKNOWN_CUSTOMER}/transactions`), 404, 'not_found');
    expectProblem(await api.post('/v1/customers/cus_nope/credit_grants', { amount: '1.00' }), 400, 'invalid_request');
  });
});

describe('consumption order', () => {
  it('uses promotional before purchased, then lower priority, then earlier expiry, then the oldest', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    // Created in this order; consumed in the order of the letters' ranks below.
    const purchasedOld = await grant(c.customerId, { amount: '1.00', category: 'purchased' }); // 6
    const purchasedPrio0 = await grant(c.customerId, { amount: '1.00', category: 'purchased', priority: 0 }); // 5
    const promoPrio200 = await grant(c.customerId, { amount: '1.00', category: 'promotional', priority: 200 }); // 4
    const promo30d = await grant(c.customerId, { amount: '1.00', category: 'promotional', expires_at: at(30 * DAY) }); // 2
    const promo10d = await grant(c.customerId, { amount: '1.00', category: 'promotional', expires_at: at(10 * DAY) }); // 1
    const promoNoExpiry = await grant(c.customerId, { amount: '1.00', category: 'promotional' }); // 3
    const purchasedNew = await grant(c.customerId, { amount: '1.00', category: 'purchased' }); // 7
    const ids = [promo10d, promo30d, promoNoExpiry, promoPrio200, purchasedPrio0, purchasedOld, purchasedNew].map((g) => g.id);
    const expectRemaining = async (values: string[]) =>
      expect(await remainders(c.customerId)).toEqual(Object.fromEntries(ids.map((id, i) => [id, values[i]])));
    await expectRemaining(['1.00', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00']);

    // A hold consumes nothing; only what settles does.
    const open = await authorize(api, c.apiKey, { megapixels: 200 });
    expect(open.status).toBe(200);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '2.00', held: '5.00', posted: '7.00' });
    await expectRemaining(['1.00', '1.00', '1.00', '1.00', '1.00', '1.00', '1.00']);
    expect((await api.post(`/v1/reservations/${open.body.reservation.id}/release`)).status).toBe(200);

    expect(await spend(c, 60)).toMatchObject({ charged: '1.50', uncollected: '0.00' });
    await expectRemaining(['0.00', '0.50', '1.00', '1.00', '1.00', '1.00', '1.00']);
    expect(await spend(c, 60)).toMatchObject({ charged: '1.50' });
    await expectRemaining(['0.00', '0.00', '0.00', '1.00', '1.00', '1.00', '1.00']);
    expect(await spend(c, 60)).toMatchObject({ charged: '1.50' });
    await expectRemaining(['0.00', '0.00', '0.00', '0.00', '0.50', '1.00', '1.00']);
    expect(await spend(c, 0.04)).toMatchObject({ charged: '0.001' });
    await expectRemaining(['0.00', '0.00', '0.00', '0.00', '0.499', '1.00', '1.00']);
    expect(await spend(c, 59.96)).toMatchObject({ charged: '1.499' });
    await expectRemaining(['0.00', '0.00', '0.00', '0.00', '0.00', '0.00', '1.00']);
    expect(await balanceOf(api, c.customerId)).toMatchObject({
      available: '1.00',
      held: '0.00',
      posted: '1.00',
      grants: [{ id: purchasedNew.id, category: 'purchased', remaining: '1.00', expires_at: null }],
    });

    // The last one pays as far as it goes; the rest of the usage is uncollected.
    expect(await spend(c, 4, 80)).toMatchObject({ charged: '1.00', released: '0.00', uncollected: '1.00' });
    await expectRemaining(['0.00', '0.00', '0.00', '0.00', '0.00', '0.00', '0.00']);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.00', posted: '0.00', grants: [] });
    // Used up is not expired.
    const list = await api.get(`/v1/customers/${c.customerId}/credit_grants?limit=100`);
    expect(list.body.data.map((g: any) => g.expired_at)).toEqual([null, null, null, null, null, null, null]);

    const kinds = (await transactions(c.customerId)).map((t) => t.kind);
    expect(kinds.filter((k) => k === 'grant').length).toBe(7);
    expect(kinds.slice(0, 4)).toEqual(['charge', 'capture', 'hold', 'capture']);
  });
});

describe('credit to a customer in debt', () => {
  it('pays the debt first; only the rest is spendable grant', async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '5.00' });
    expect(await spend(c, 80, 120)).toMatchObject({ charged: '3.00', released: '0.00', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toEqual({ customer_id: c.customerId, currency: 'USD', available: '2.00', held: '0.00', posted: '-3.00', credit_limit: '5.00', grants: [] });

    const small = await grant(c.customerId, { amount: '1.00', category: 'promotional' });
    expect(small).toMatchObject({ amount: '1.00', remaining: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '3.00', held: '0.00', posted: '-2.00', grants: [] });

    const big = await grant(c.customerId, { amount: '5.00', category: 'purchased' });
    expect(big).toMatchObject({ amount: '5.00', remaining: '3.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({
      available: '8.00',
      held: '0.00',
      posted: '3.00',
      credit_limit: '5.00',
      grants: [{ id: big.id, category: 'purchased', remaining: '3.00', expires_at: null }],
    });
    expect(await remainders(c.customerId)).toEqual({ [small.id]: '0.00', [big.id]: '3.00' });

    // The ledger shows the full amounts granted.
    const txs = await transactions(c.customerId);
    expect(txs.map((t) => [t.kind, t.amount, t.direction, t.grant_id])).toEqual([
      ['grant', '5.00', 'credit', big.id],
      ['grant', '1.00', 'credit', small.id],
      ['charge', '1.00', 'debit', null],
      ['capture', '2.00', 'debit', null],
      ['hold', '2.00', 'debit', null],
    ]);

    // Spending draws on the remainder, then on the credit line again.
    expect(await spend(c, 40)).toMatchObject({ charged: '1.00' });
    expect(await remainders(c.customerId)).toEqual({ [small.id]: '0.00', [big.id]: '2.00' });
    expect(await spend(c, 120)).toMatchObject({ charged: '3.00' });
    expect(await remainders(c.customerId)).toEqual({ [small.id]: '0.00', [big.id]: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '4.00', held: '0.00', posted: '-1.00', grants: [] });

    // A grant equal to the debt leaves nothing over and the balance at zero.
    expect(await grant(c.customerId, { amount: '1.00', category: 'purchased' })).toMatchObject({ remaining: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '5.00', posted: '0.00', grants: [] });
  });
});

describe('transactions list', () => {
  it('pages newest first with a cursor, with every kind a user sees', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '2.00' });
    const settled = await spend(c, 8, 4); // hold 0.20, capture 0.10, release 0.10
    const released = await authorize(api, c.apiKey, { megapixels: 4 });
    await api.post(`/v1/reservations/${released.body.reservation.id}/release`);
    await spend(c, 4, 70); // hold 0.10, capture 0.10, charge 1.65 of 1.65
    const all = await transactions(c.customerId);
    expect(all.map((t) => [t.kind, t.amount, t.direction, t.pending, t.reason])).toEqual([
      ['charge', '1.65', 'debit', false, null],
      ['capture', '0.10', 'debit', false, null],
      ['hold', '0.10', 'debit', true, null],
      ['release', '0.10', 'debit', false, 'released'],
      ['hold', '0.10', 'debit', true, null],
      ['release', '0.10', 'debit', false, 'settled'],
      ['capture', '0.10', 'debit', false, null],
      ['hold', '0.20', 'debit', true, null],
      ['grant', '2.00', 'credit', false, null],
    ]);
    expect(all[6].reservation_id).toBe(settled.reservation.id);
    expect(all[3].reservation_id).toBe(released.body.reservation.id);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.15', held: '0.00', posted: '0.15' });

    const pages: any[][] = [];
    let cursor: string | null = null;
    do {
      const r: ApiResponse = await api.get(`/v1/customers/${c.customerId}/transactions?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      pages.push(r.body.data);
      expect(r.body.has_more).toBe(pages.length < 3);
      expect(r.body.next_cursor).toBe(r.body.has_more ? r.body.data[r.body.data.length - 1].id : null);
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([4, 4, 1]);
    expect(pages.flat()).toEqual(all);
    expect((await api.get('/v1/me/transactions?limit=4', { token: c.apiKey })).body.data).toEqual(all.slice(0, 4));

    const exact = await api.get(`/v1/customers/${c.customerId}/transactions?limit=9`);
    expect(exact.body).toMatchObject({ has_more: false, next_cursor: null });
    expect(exact.body.data).toEqual(all);
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'cursor=nope']) {
      expectProblem(await api.get(`/v1/customers/${c.customerId}/transactions?${q}`), 400, 'invalid_request');
    }
  });

  it('pages credit grants newest first with a cursor', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const made = [];
    for (let i = 1; i <= 5; i++) made.push(await grant(c.customerId, { amount: `${i}.00`, category: 'purchased' }));
    const first = await api.get(`/v1/customers/${c.customerId}/credit_grants?limit=2`);
    expect(first.body.data.map((g: any) => g.amount)).toEqual(['5.00', '4.00']);
    expect(first.body).toMatchObject({ has_more: true, next_cursor: made[3].id });
    const second = await api.get(`/v1/customers/${c.customerId}/credit_grants?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((g: any) => g.amount)).toEqual(['3.00', '2.00']);
    const third = await api.get(`/v1/customers/${c.customerId}/credit_grants?limit=2&cursor=${second.body.next_cursor}`);
    expect(third.body).toEqual({ data: [made[0]], has_more: false, next_cursor: null });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '15.00', posted: '15.00' });
  });
});

// These move the clock, so they come last.
describe('grant expiry', () => {
  it('moves the remainder of an expired grant out at expires_at', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const promo = await grant(c.customerId, { amount: '2.00', category: 'promotional', expires_at: at(HOUR) });
    const paid = await grant(c.customerId, { amount: '3.00', category: 'purchased', expires_at: at(2 * HOUR) });
    expect(await spend(c, 20)).toMatchObject({ charged: '0.50' });
    expect(await remainders(c.customerId)).toEqual({ [promo.id]: '1.50', [paid.id]: '3.00' });

    clock.advance(HOUR - 1);
    await new Promise((resolve) => setTimeout(resolve, 150)); // several sweeps: nothing is due yet
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '4.50', posted: '4.50' });
    clock.advance(1);
    const expiredAt = clock.now().toISOString();
    const balance = await eventually(() => balanceOf(api, c.customerId), (b) => b.posted !== '4.50');
    expect(balance).toEqual({
      customer_id: c.customerId,
      currency: 'USD',
      available: '3.00',
      held: '0.00',
      posted: '3.00',
      credit_limit: '0.00',
      grants: [{ id: paid.id, category: 'purchased', remaining: '3.00', expires_at: paid.expires_at }],
    });
    const listed = (await api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data;
    expect(listed).toEqual([paid, { ...promo, remaining: '0.00', expired_at: expiredAt }]);
    const txs = await transactions(c.customerId);
    expect(txs[0]).toMatchObject({ kind: 'expiry', amount: '1.50', direction: 'debit', pending: false, grant_id: promo.id, created_at: expiredAt });
    expect(txs.filter((t) => t.kind === 'expiry').length).toBe(1);

    // Nothing more happens to it on later sweeps; the second grant expires in its turn.
    clock.advance(HOUR);
    await eventually(() => balanceOf(api, c.customerId), (b) => b.posted === '0.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '0.00', posted: '0.00', grants: [] });
    expect((await transactions(c.customerId)).filter((t) => t.kind === 'expiry').map((t) => [t.amount, t.grant_id])).toEqual([
      ['3.00', paid.id],
      ['1.50', promo.id],
    ]);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 402, 'insufficient_funds');
  });

  it('keeps what open holds need until they resolve, and spends an expired remainder first', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    // Would be used last (purchased, priority 1000) were it not expired.
    const expiring = await grant(c.customerId, { amount: '5.00', category: 'purchased', priority: 1000, expires_at: at(HOUR) });
    const lasting = await grant(c.customerId, { amount: '1.00', category: 'promotional', priority: 0 });
    const big = await authorize(api, c.apiKey, { megapixels: 224 }, { hold_seconds: 86_400 }); // 5.60
    expect(big.status).toBe(200);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.40', held: '5.60', posted: '6.00' });

    clock.advance(HOUR);
    const afterExpiry = await eventually(() => balanceOf(api, c.customerId), (b) => b.posted !== '6.00');
    // Only 0.40 could go: the rest backs the open hold, and available never goes below zero.
    expect(afterExpiry).toMatchObject({ available: '0.00', held: '5.60', posted: '5.60' });
    expect(await remainders(c.customerId)).toEqual({ [expiring.id]: '4.60', [lasting.id]: '1.00' });
    const firstExpiry = (await transactions(c.customerId))[0];
    expect(firstExpiry).toMatchObject({ kind: 'expiry', amount: '0.40', grant_id: expiring.id });
    expect((await api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data.find((g: any) => g.id === expiring.id).expired_at).toBeNull();
    expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 402, 'insufficient_funds');

    // The settle charges the expired remainder first, then the rest of it leaves.
    const settle = await api.post(`/v1/reservations/${big.body.reservation.id}/settle`, { usage: { megapixels: 80 } });
    expect(settle.body).toMatchObject({ charged: '2.00', released: '3.60', uncollected: '0.00' });
    const settled = await eventually(() => balanceOf(api, c.customerId), (b) => b.posted === '1.00');
    expect(settled).toMatchObject({ available: '1.00', held: '0.00', posted: '1.00', grants: [{ id: lasting.id, remaining: '1.00' }] });
    expect(await remainders(c.customerId)).toEqual({ [expiring.id]: '0.00', [lasting.id]: '1.00' });
    const txs = await transactions(c.customerId);
    expect(txs.filter((t) => t.kind === 'expiry').map((t) => [t.amount, t.grant_id])).toEqual([
      ['2.60', expiring.id],
      ['0.40', expiring.id],
    ]);
    expect((await api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data.find((g: any) => g.id === expiring.id).expired_at).toBe(clock.now().toISOString());
  });

  it('lets a released hold return the expired remainder to expiry, not to available', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const expiring = await grant(c.customerId, { amount: '1.00', category: 'promotional', expires_at: at(HOUR) });
    const lasting = await grant(c.customerId, { amount: '0.50', category: 'purchased' });
    const hold = await authorize(api, c.apiKey, { megapixels: 50 }, { hold_seconds: 86_400 }); // 1.25
    expect(hold.status).toBe(200);
    clock.advance(HOUR);
    await eventually(() => balanceOf(api, c.customerId), (b) => b.posted === '1.25');
    expect(await remainders(c.customerId)).toEqual({ [expiring.id]: '0.75', [lasting.id]: '0.50' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.00', held: '1.25' });

    expect((await api.post(`/v1/reservations/${hold.body.reservation.id}/release`)).status).toBe(200);
    const after = await eventually(() => balanceOf(api, c.customerId), (b) => b.posted === '0.50');
    expect(after).toMatchObject({ available: '0.50', held: '0.00', posted: '0.50', grants: [{ id: lasting.id, remaining: '0.50' }] });
    expect((await transactions(c.customerId)).filter((t) => t.kind === 'expiry').map((t) => t.amount)).toEqual(['0.75', '0.25']);
  });

  it("expires a postpaid customer's whole remainder when its credit line covers the open holds", async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '5.00' });
    const expiring = await grant(c.customerId, { amount: '2.00', category: 'promotional', expires_at: at(HOUR) });
    const hold = await authorize(api, c.apiKey, { megapixels: 160 }, { hold_seconds: 86_400 }); // 4.00
    expect(hold.body.available_after).toBe('3.00');

    clock.advance(HOUR);
    // Expiring all of it leaves available at 1.00, not below zero: nothing needs to stay.
    const after = await eventually(() => balanceOf(api, c.customerId), (b) => b.posted === '0.00');
    expect(after).toMatchObject({ available: '1.00', held: '4.00', posted: '0.00', credit_limit: '5.00', grants: [] });
    expect(await remainders(c.customerId)).toEqual({ [expiring.id]: '0.00' });

    // The job then runs on the credit line, not on the expired promotion.
    const settle = await api.post(`/v1/reservations/${hold.body.reservation.id}/settle`, { usage: { megapixels: 160 } });
    expect(settle.body).toMatchObject({ charged: '4.00', released: '0.00', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '1.00', held: '0.00', posted: '-4.00' });
    expect((await transactions(c.customerId)).filter((t) => t.kind === 'expiry').map((t) => t.amount)).toEqual(['2.00']);
  });

  it('an expiring hold and an expiring grant together leave the balance consistent', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const expiring = await grant(c.customerId, { amount: '1.00', category: 'promotional', expires_at: at(HOUR) });
    const hold = await authorize(api, c.apiKey, { megapixels: 40 }, { hold_seconds: 600 }); // all 1.00, expires before the grant
    expect(hold.body.available_after).toBe('0.00');
    clock.advance(HOUR);
    const b = await eventually(() => balanceOf(api, c.customerId), (v) => v.posted === '0.00');
    expect(b).toMatchObject({ available: '0.00', held: '0.00', posted: '0.00', grants: [] });
    expect((await api.get(`/v1/reservations/${hold.body.reservation.id}`)).body.status).toBe('expired');
    expect(await remainders(c.customerId)).toEqual({ [expiring.id]: '0.00' });
    expect((await transactions(c.customerId)).filter((t) => t.kind === 'expiry').map((t) => t.amount)).toEqual(['1.00']);
  });
});

describe('running totals', () => {
  it('grow past what a bigint holds (10^19 ledger units) without error', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    for (let i = 0; i < 10; i++) {
      const grant = await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1000000000', category: 'purchased' });
      expect(grant.status).toBe(201);
    }
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '10000000000.00', available: '10000000000.00' });
    const auth = await authorize(api, c.apiKey, { megapixels: 4 });
    expect(auth.status).toBe(200);
    expect(auth.body.available_after).toBe('9999999999.90');
  });
});
