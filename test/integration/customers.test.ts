import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';

let server: TestServer;
let clock: ManualClock;
let seq = 0;
const ext = (label: string) => `${label}-${process.pid}-${++seq}`;

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-05-14T09:30:00.000Z'));
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const ID = /^cus_[0-9a-z]{26}$/;

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
  expect(typeof r.body.title).toBe('string');
  expect(typeof r.body.detail).toBe('string');
}

describe('creating customers', () => {
  it('creates a customer with every field and answers 201 with the full customer', async () => {
    const { api } = server;
    const externalId = ext('acme');
    const r = await api.post('/v1/customers', {
      name: 'Acme Studios',
      external_id: externalId,
      email: 'billing@acme.example',
      currency: 'EUR',
      billing_mode: 'postpaid',
      credit_limit: '250.5',
      metadata: { plan: 'enterprise', seats: 12, tags: ['video', 'image'] },
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      id: expect.stringMatching(ID),
      name: 'Acme Studios',
      external_id: externalId,
      email: 'billing@acme.example',
      currency: 'EUR',
      billing_mode: 'postpaid',
      credit_limit: '250.50',
      metadata: { plan: 'enterprise', seats: 12, tags: ['video', 'image'] },
      created_at: '2031-05-14T09:30:00.000Z',
      updated_at: '2031-05-14T09:30:00.000Z',
    });
    // What was stored is what was answered.
    const got = await api.get(`/v1/customers/${r.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(r.body);
    // The credit limit is the ledger's: the balance shows it as available.
    expect(await balanceOf(api, r.body.id)).toMatchObject({ available: '250.50', held: '0.00', posted: '0.00', credit_limit: '250.50' });
  });

  it('fills defaults: prepaid, no credit limit, no external_id or email, empty metadata', async () => {
    const r = await server.api.post('/v1/customers', { name: 'Minimal', currency: 'USD' });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      id: expect.stringMatching(ID),
      name: 'Minimal',
      external_id: null,
      email: null,
      currency: 'USD',
      billing_mode: 'prepaid',
      credit_limit: '0.00',
      metadata: {},
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    // Many customers may have no external_id at all.
    const again = await server.api.post('/v1/customers', { name: 'Minimal 2', currency: 'USD' });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(r.body.id);
  });

  it('refuses a duplicate external_id with 409 conflict and creates nothing', async () => {
    const { api } = server;
    const externalId = ext('dup');
    const first = await api.post('/v1/customers', { name: 'First', external_id: externalId, currency: 'USD' });
    expect(first.status).toBe(201);
    const second = await api.post('/v1/customers', { name: 'Second', external_id: externalId, currency: 'GBP' });
    expectProblem(second, 409, 'conflict');
    expect(second.body.detail).toContain(externalId);
    const found = await api.get(`/v1/customers/by_external_id/${encodeURIComponent(externalId)}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ id: first.body.id, name: 'First', currency: 'USD' });
  });

  it('replays a create retried with the same Idempotency-Key and refuses the key with another body', async () => {
    const { api } = server;
    const body = { name: 'Retried', external_id: ext('idem'), currency: 'USD' };
    const first = await api.post('/v1/customers', body, { idempotencyKey: `idem-${seq}` });
    expect(first.status).toBe(201);
    const replay = await api.post('/v1/customers', body, { idempotencyKey: `idem-${seq}` });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    const other = await api.post('/v1/customers', { ...body, name: 'Other' }, { idempotencyKey: `idem-${seq}` });
    expectProblem(other, 409, 'idempotency_key_reused');
  });

  it('refuses invalid input with 400 invalid_request naming the field', async () => {
    const { api } = server;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ currency: 'USD' }, 'name'],
      [{ name: 'No currency' }, 'currency'],
      [{ name: 'Bad currency', currency: 'XYZ' }, 'currency'],
      [{ name: 'Lower currency', currency: 'usd' }, 'currency'],
      [{ name: '', currency: 'USD' }, 'name'],
      [{ name: 'Bad email', currency: 'USD', email: 'not-an-email' }, 'email'],
      [{ name: 'Bad mode', currency: 'USD', billing_mode: 'invoice' }, 'billing_mode'],
      [{ name: 'Numeric limit', currency: 'USD', billing_mode: 'postpaid', credit_limit: 10 }, 'credit_limit'],
      [{ name: 'Negative limit', currency: 'USD', billing_mode: 'postpaid', credit_limit: '-5' }, 'credit_limit'],
      [{ name: 'Too precise', currency: 'USD', billing_mode: 'postpaid', credit_limit: '1.0000000001' }, 'credit_limit'],
      [{ name: 'Unknown field', currency: 'USD', plan: 'gold' }, 'plan'],
      [{ name: 'Given id', currency: 'USD', id: 'cus_01jd5x9k2m3n4p5q6r7s8t9v0w' }, 'id'],
    ];
    for (const [body, field] of cases) {
      const r = await api.post('/v1/customers', body);
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors.map((e: { path: string }) => e.path), JSON.stringify(body)).toContain(field);
    }
  });

  it('refuses a credit limit on a prepaid customer', async () => {
    const r = await server.api.post('/v1/customers', { name: 'Prepaid', currency: 'USD', credit_limit: '10' });
    expectProblem(r, 400, 'invalid_request');
    expect(r.body.errors).toEqual([expect.objectContaining({ path: 'credit_limit' })]);
    // An explicit zero is no credit limit at all.
    const zero = await server.api.post('/v1/customers', { name: 'Prepaid', currency: 'USD', credit_limit: '0.00' });
    expect(zero.status).toBe(201);
    expect(zero.body.credit_limit).toBe('0.00');
  });

  it('refuses a body that is not JSON, and callers that are not the operator', async () => {
    const { api } = server;
    expectProblem(await api.post('/v1/customers', undefined, { rawBody: '{"name": ' }), 400, 'invalid_json');
    expectProblem(await api.post('/v1/customers', { name: 'x', currency: 'USD' }, { token: null }), 401, 'unauthorized');
    expectProblem(await api.post('/v1/customers', { name: 'x', currency: 'USD' }, { token: 'tg_not_a_real_key' }), 401, 'unauthorized');
    const c = await createCustomer(api);
    expectProblem(await api.post('/v1/customers', { name: 'x', currency: 'USD' }, { token: c.apiKey }), 403, 'forbidden');
    expectProblem(await api.get(`/v1/customers/${c.customerId}`, { token: c.apiKey }), 403, 'forbidden');
  });
});

describe('reading customers', () => {
  it('gets a customer by id, and by external_id', async () => {
    const { api } = server;
    const externalId = `crm/${ext('lookup')}@eu`;
    const created = await api.post('/v1/customers', { name: 'Lookup', external_id: externalId, email: 'ops@lookup.example', currency: 'CHF' });
    expect(created.status).toBe(201);
    const byId = await api.get(`/v1/customers/${created.body.id}`);
    expect(byId.status).toBe(200);
    expect(byId.body).toEqual(created.body);
    const byExternal = await api.get(`/v1/customers/by_external_id/${encodeURIComponent(externalId)}`);
    expect(byExternal.status).toBe(200);
    expect(byExternal.body).toEqual(created.body);
    // The list filter by external_id finds the same one customer.
    const filtered = await api.get(`/v1/customers?external_id=${encodeURIComponent(externalId)}`);
    expect(filtered.body).toEqual({ data: [created.body], has_more: false, next_cursor: null });
  });

  it('answers 404 not_found for an unknown id or external_id, 400 for a malformed id', async () => {
    const { api } = server;
    expectProblem(await api.get('/v1/customers/cus_00000000000000000000000000'), 404, 'not_found');
    expectProblem(await api.get('/v1/customers/by_external_id/nobody-has-this'), 404, 'not_found');
    expectProblem(await api.get('/v1/customers/key_00000000000000000000000000'), 400, 'invalid_request');
    expectProblem(await api.get('/v1/customers/cus_123'), 400, 'invalid_request');
    expect((await api.get('/v1/customers?external_id=nobody-has-this')).body).toEqual({ data: [], has_more: false, next_cursor: null });
  });

  it('shows a customer key its own customer on /v1/me, and the operator is sent to /v1/customers', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '3.00' });
    const me = await api.get('/v1/me', { token: c.apiKey });
    expect(me.status).toBe(200);
    expect(me.body).toEqual((await api.get(`/v1/customers/${c.customerId}`)).body);
    expectProblem(await api.get('/v1/me'), 403, 'forbidden');
  });
});

describe('updating customers', () => {
  it('changes each mutable field on its own and keeps the others', async () => {
    const { api } = server;
    const externalId = ext('patch');
    const created = await api.post('/v1/customers', {
      name: 'Before',
      external_id: externalId,
      email: 'before@example.com',
      currency: 'USD',
      metadata: { tier: 'a' },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    let expected = { ...created.body };

    const steps: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ name: 'After' }, { name: 'After' }],
      [{ email: 'after@example.com' }, { email: 'after@example.com' }],
      [{ email: null }, { email: null }],
      [{ external_id: `${externalId}-new` }, { external_id: `${externalId}-new` }],
      [{ metadata: { tier: 'b', region: 'eu' } }, { metadata: { tier: 'b', region: 'eu' } }],
      [{ billing_mode: 'postpaid' }, { billing_mode: 'postpaid', credit_limit: '0.00' }],
      [{ credit_limit: '75' }, { credit_limit: '75.00' }],
      [{ billing_mode: 'prepaid' }, { billing_mode: 'prepaid', credit_limit: '0.00' }],
      [{ external_id: null }, { external_id: null }],
    ];
    for (const [patch, change] of steps) {
      clock.advance(1_000);
      const r = await api.patch(`/v1/customers/${id}`, patch);
      expect(r.status, JSON.stringify(patch)).toBe(200);
      expected = { ...expected, ...change, updated_at: clock.now().toISOString() };
      expect(r.body).toEqual(expected);
      expect((await api.get(`/v1/customers/${id}`)).body).toEqual(expected);
    }
    expect(expected.created_at).toBe(created.body.created_at);
    expect(expected.updated_at > expected.created_at).toBe(true);
    // The old external_id no longer finds anyone; the customer is still reachable by id.
    expectProblem(await api.get(`/v1/customers/by_external_id/${externalId}`), 404, 'not_found');
  });

  it('sets several fields in one request', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const r = await api.patch(`/v1/customers/${c.customerId}`, { name: 'Both', billing_mode: 'postpaid', credit_limit: '12.345' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'Both', billing_mode: 'postpaid', credit_limit: '12.345' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ credit_limit: '12.345', available: '12.345' });
  });

  it('refuses to change immutable fields (id, currency, created_at) or unknown ones', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const before = (await api.get(`/v1/customers/${c.customerId}`)).body;
    for (const patch of [
      { currency: 'EUR' },
      { id: 'cus_01jd5x9k2m3n4p5q6r7s8t9v0w' },
      { created_at: '2020-01-01T00:00:00Z' },
      { updated_at: '2020-01-01T00:00:00Z' },
      { name: 'Sneaky', currency: 'JPY' },
    ]) {
      const r = await api.patch(`/v1/customers/${c.customerId}`, patch);
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors.length).toBeGreaterThan(0);
    }
    expect((await api.get(`/v1/customers/${c.customerId}`)).body).toEqual(before);
  });

  it('refuses an empty patch, invalid values, and an unknown customer', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, {}), 400, 'invalid_request');
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { name: '' }), 400, 'invalid_request');
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { email: 'nope' }), 400, 'invalid_request');
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { billing_mode: 'free' }), 400, 'invalid_request');
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '5' }), 400, 'invalid_request');
    expectProblem(await api.patch('/v1/customers/cus_00000000000000000000000000', { name: 'Ghost' }), 404, 'not_found');
  });

  it('refuses an external_id another customer already has with 409 conflict', async () => {
    const { api } = server;
    const taken = ext('taken');
    const a = await api.post('/v1/customers', { name: 'A', external_id: taken, currency: 'USD' });
    const b = await api.post('/v1/customers', { name: 'B', external_id: ext('free'), currency: 'USD' });
    const r = await api.patch(`/v1/customers/${b.body.id}`, { external_id: taken, name: 'B renamed' });
    expectProblem(r, 409, 'conflict');
    // Nothing of the refused patch was applied.
    expect((await api.get(`/v1/customers/${b.body.id}`)).body).toEqual(b.body);
    expect((await api.get(`/v1/customers/by_external_id/${taken}`)).body.id).toBe(a.body.id);
    // Setting a customer's own external_id again is fine.
    const same = await api.patch(`/v1/customers/${a.body.id}`, { external_id: taken });
    expect(same.status).toBe(200);
  });
});

describe('listing customers', () => {
  let listServer: TestServer;
  const created: string[] = [];
  const TOTAL = 23;

  beforeAll(async () => {
    listServer = await startServer();
    for (let i = 0; i < TOTAL; i++) {
      const r = await listServer.api.post('/v1/customers', {
        name: `Customer ${i}`,
        currency: 'USD',
        external_id: `list-${i}`,
        email: i % 5 === 0 ? 'shared@example.com' : `c${i}@example.com`,
      });
      expect(r.status).toBe(201);
      created.push(r.body.id);
    }
  });
  afterAll(() => listServer?.close());

  async function walk(limit: number, query = '') {
    const pages: Array<{ data: Array<{ id: string }>; has_more: boolean; next_cursor: string | null }> = [];
    let cursor: string | null = null;
    do {
      const r: ApiResponse = await listServer.api.get(`/v1/customers?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      pages.push(r.body);
      cursor = r.body.next_cursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor);
    return pages;
  }

  it('walks every page newest first, with no duplicates and no gaps', async () => {
    const pages = await walk(5);
    expect(pages.map((p) => p.data.length)).toEqual([5, 5, 5, 5, 3]);
    for (const page of pages.slice(0, -1)) {
      expect(page.has_more).toBe(true);
      expect(page.next_cursor).toBe(page.data[page.data.length - 1].id);
    }
    expect(pages[pages.length - 1]).toMatchObject({ has_more: false, next_cursor: null });
    const ids = pages.flatMap((p) => p.data.map((c) => c.id));
    expect(ids).toEqual([...created].reverse());
    expect(pages[0].data[0]).toMatchObject({ name: `Customer ${TOTAL - 1}`, external_id: `list-${TOTAL - 1}` });
  });

  it('ends cleanly when the last page is exactly full', async () => {
    // 23 = 23 x 1: one full page and nothing more.
    const one = await listServer.api.get(`/v1/customers?limit=${TOTAL}`);
    expect(one.body.data).toHaveLength(TOTAL);
    expect(one.body).toMatchObject({ has_more: false, next_cursor: null });
    // 22 then 1.
    const pages = await walk(TOTAL - 1);
    expect(pages.map((p) => p.data.length)).toEqual([TOTAL - 1, 1]);
    expect(pages[1]).toMatchObject({ has_more: false, next_cursor: null });
    expect(pages[1].data[0].id).toBe(created[0]);
  });

  it('defaults to 20 per page and caps limit at 100', async () => {
    const first = await listServer.api.get('/v1/customers');
    expect(first.body.data).toHaveLength(20);
    expect(first.body.has_more).toBe(true);
    expect(first.body.next_cursor).toBe(created[TOTAL - 20]);
    const rest = await listServer.api.get(`/v1/customers?cursor=${first.body.next_cursor}`);
    expect(rest.body.data.map((c: { id: string }) => c.id)).toEqual(created.slice(0, 3).reverse());
    expect(rest.body).toMatchObject({ has_more: false, next_cursor: null });
    const all = await listServer.api.get('/v1/customers?limit=100');
    expect(all.body.data).toHaveLength(TOTAL);
    for (const bad of ['limit=0', 'limit=101', 'limit=abc', 'cursor=nope', 'cursor=key_00000000000000000000000000']) {
      expectProblem(await listServer.api.get(`/v1/customers?${bad}`), 400, 'invalid_request');
    }
  });

  it('pages through a filtered list (email) the same way', async () => {
    const shared = created.filter((_, i) => i % 5 === 0).reverse(); // 0, 5, 10, 15, 20
    const pages = await walk(2, '&email=shared%40example.com');
    expect(pages.map((p) => p.data.length)).toEqual([2, 2, 1]);
    expect(pages.flatMap((p) => p.data.map((c) => c.id))).toEqual(shared);
    expect(pages[2]).toMatchObject({ has_more: false, next_cursor: null });
  });

  it('sees customers created while paging only on the first page (cursors are stable)', async () => {
    const first = await listServer.api.get('/v1/customers?limit=10');
    const late = await listServer.api.post('/v1/customers', { name: 'Late', currency: 'USD' });
    const second = await listServer.api.get(`/v1/customers?limit=10&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((c: { id: string }) => c.id)).toEqual([...created].reverse().slice(10, 20));
    const fresh = await listServer.api.get('/v1/customers?limit=1');
    expect(fresh.body.data[0].id).toBe(late.body.id);
  });
});

describe('postpaid credit limit', () => {
  it('lets authorize go below zero down to minus the credit limit, never further', async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '1.00' });
    // 4 megapixels at 0.025 = 0.10
    const first = await authorize(api, c.apiKey, { megapixels: 4 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ available_after: '0.90', reservation: { amount: '0.10' } });
    const settle = await api.post(`/v1/reservations/${first.body.reservation.id}/settle`, { usage: { megapixels: 4 } });
    expect(settle.body).toMatchObject({ charged: '0.10', released: '0.00', uncollected: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '-0.10', held: '0.00', available: '0.90', credit_limit: '1.00' });

    // Exactly the rest of the limit: 36 megapixels = 0.90.
    const rest = await authorize(api, c.apiKey, { megapixels: 36 });
    expect(rest.status).toBe(200);
    expect(rest.body.available_after).toBe('0.00');
    const over = await authorize(api, c.apiKey, { megapixels: '0.0000004' }); // 0.00000001
    expectProblem(over, 402, 'insufficient_funds');
    expect(over.body.available).toBe('0.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '-0.10', held: '0.90', available: '0.00' });
  });

  it('refuses to lower the credit limit below what is in use (409), accepts exactly what is in use', async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '10.00' });
    const spent = await authorize(api, c.apiKey, { megapixels: 100 }); // 2.50
    await api.post(`/v1/reservations/${spent.body.reservation.id}/settle`, { usage: { megapixels: 100 } });
    const held = await authorize(api, c.apiKey, { megapixels: 40 }); // 1.00 held
    expect(held.status).toBe(200);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '-2.50', held: '1.00', available: '6.50' });

    // In use: 2.50 posted debt + 1.00 held = 3.50.
    const tooLow = await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '3.499999999' });
    expectProblem(tooLow, 409, 'conflict');
    expect((await api.get(`/v1/customers/${c.customerId}`)).body.credit_limit).toBe('10.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ credit_limit: '10.00', available: '6.50' });

    const exact = await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '3.5' });
    expect(exact.status).toBe(200);
    expect(exact.body.credit_limit).toBe('3.50');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ credit_limit: '3.50', available: '0.00' });
    expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 402, 'insufficient_funds');

    // Releasing the hold frees 1.00: now the limit may go down to 2.50, and switching to prepaid
    // (limit 0) is refused while the customer is in debt.
    await api.post(`/v1/reservations/${held.body.reservation.id}/release`);
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '2.49' }), 409, 'conflict');
    expectProblem(await api.patch(`/v1/customers/${c.customerId}`, { billing_mode: 'prepaid' }), 409, 'conflict');
    expect((await api.get(`/v1/customers/${c.customerId}`)).body).toMatchObject({ billing_mode: 'postpaid', credit_limit: '3.50' });
    const lowered = await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '2.50' });
    expect(lowered.body.credit_limit).toBe('2.50');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '-2.50', held: '0.00', available: '0.00', credit_limit: '2.50' });
  });

  it('raising the limit makes more available at once; a grant pays the debt first', async () => {
    const { api } = server;
    const c = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '0.20' });
    const r = await authorize(api, c.apiKey, { megapixels: 8 }); // 0.20
    await api.post(`/v1/reservations/${r.body.reservation.id}/settle`, { usage: { megapixels: 8 } });
    expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 402, 'insufficient_funds');
    const raised = await api.patch(`/v1/customers/${c.customerId}`, { credit_limit: '5' });
    expect(raised.body.credit_limit).toBe('5.00');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '-0.20', available: '4.80' });
    expect((await authorize(api, c.apiKey, { megapixels: 1 })).body.available_after).toBe('4.775');

    const grant = await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00', category: 'purchased' });
    expect(grant.status).toBe(201);
    expect(grant.body).toMatchObject({ amount: '1.00', remaining: '0.80' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '0.80', held: '0.025', available: '5.775' });
  });

  it('a prepaid customer is refused at zero', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.05' });
    expect((await authorize(api, c.apiKey, { megapixels: 2 })).body.available_after).toBe('0.00');
    const r = await authorize(api, c.apiKey, { megapixels: '0.04' });
    expectProblem(r, 402, 'insufficient_funds');
    expect(r.body.available).toBe('0.00');
  });
});

describe('currencies', () => {
  beforeAll(async () => {
    const { api } = server;
    // FLUX in yen and in euros: 4 JPY and 0.023 EUR per megapixel.
    for (const price of [
      { currency: 'JPY', unit_amount: '4' },
      { currency: 'EUR', unit_amount: '0.023' },
    ]) {
      const r = await api.post('/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', scheme: 'per_unit', effective_at: '2020-01-01T00:00:00Z', ...price });
      expect(r.status).toBe(201);
    }
  });

  it('formats amounts of a zero-decimal currency (JPY) without minor digits', async () => {
    const { api } = server;
    const c = await api.post('/v1/customers', { name: 'Tokyo Labs', currency: 'JPY', billing_mode: 'postpaid', credit_limit: '1000' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ currency: 'JPY', credit_limit: '1000' });
    const grant = await api.post(`/v1/customers/${c.body.id}/credit_grants`, { amount: '500', category: 'purchased' });
    expect(grant.body).toMatchObject({ amount: '500', remaining: '500', currency: 'JPY' });
    const key = await api.post(`/v1/customers/${c.body.id}/api_keys`, { name: 'jp' });
    expect(await balanceOf(api, c.body.id)).toMatchObject({ available: '1500', held: '0', posted: '500', credit_limit: '1000' });

    const auth = await authorize(api, key.body.secret, { megapixels: 4 });
    expect(auth.status).toBe(200);
    expect(auth.body.reservation).toMatchObject({ amount: '16', currency: 'JPY' });
    expect(auth.body.available_after).toBe('1484');
    // Ledger amounts keep 9 decimals in every currency: a fraction of a yen is shown, trimmed.
    const settle = await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: '1.048576' } });
    expect(settle.body).toMatchObject({ charged: '4.194304', released: '11.805696', uncollected: '0' });
    expect(await balanceOf(api, c.body.id)).toMatchObject({ available: '1495.805696', held: '0', posted: '495.805696' });

    const patched = await api.patch(`/v1/customers/${c.body.id}`, { credit_limit: '2500.5' });
    expect(patched.body.credit_limit).toBe('2500.5');
  });

  it('rates each customer in its own currency with the price in that currency', async () => {
    const { api } = server;
    const eur = await createCustomer(api, { currency: 'EUR', credit: '10' });
    const usd = await createCustomer(api, { currency: 'USD', credit: '10' });
    const e = await authorize(api, eur.apiKey, { megapixels: 10 });
    const u = await authorize(api, usd.apiKey, { megapixels: 10 });
    expect(e.body.reservation).toMatchObject({ amount: '0.23', currency: 'EUR' });
    expect(e.body.available_after).toBe('9.77');
    expect(u.body.reservation).toMatchObject({ amount: '0.25', currency: 'USD' });
    expect(await balanceOf(api, eur.customerId)).toMatchObject({ currency: 'EUR', available: '9.77', held: '0.23' });
  });

  it('refuses authorize with 422 no_price when the product has no price in the customer currency', async () => {
    const { api } = server;
    const gbp = await createCustomer(api, { currency: 'GBP', credit: '10' });
    expect((await api.get(`/v1/customers/${gbp.customerId}`)).body.currency).toBe('GBP');
    const r = await authorize(api, gbp.apiKey, { megapixels: 1 });
    expectProblem(r, 422, 'no_price');
    expect(await balanceOf(api, gbp.customerId)).toMatchObject({ available: '10.00', held: '0.00' });
  });

  it('accepts every documented currency and formats two-decimal ones with two digits', async () => {
    const { api } = server;
    for (const [currency, zero] of [
      ['USD', '0.00'], ['EUR', '0.00'], ['GBP', '0.00'], ['CAD', '0.00'], ['AUD', '0.00'], ['CHF', '0.00'],
      ['SGD', '0.00'], ['INR', '0.00'], ['BRL', '0.00'], ['JPY', '0'], ['KRW', '0'],
    ]) {
      const r = await api.post('/v1/customers', { name: currency, currency });
      expect(r.status, currency).toBe(201);
      expect(r.body.credit_limit, currency).toBe(zero);
    }
  });
});
