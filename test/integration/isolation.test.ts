import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSecret } from '../support/log-capture.js';
import { listEvery, startServer, ADMIN_TOKEN, type Api, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

/**
 * "A customer key cannot read or change anything of another customer, route by route": customer
 * keys reach /v1/me/... (their own customer only) and /v1/pricing; every operator route is 403.
 */

let server: TestServer;
let api: Api;

/** What each customer owns, and what an attacker would aim at. */
interface Party extends Fixture {
  externalId: string;
  reservationId: string;
  grantId: string;
  /** A price of the catalog: B's own override, the public price for A. */
  priceId: string;
  /** A draft invoice of the customer (an empty period long past). */
  invoiceId: string;
  /** The customer's own webhook endpoint (made with its key) and a delivery to it. */
  webhookEndpointId: string;
  deliveryId: string;
}
let A: Party;
let B: Party;

let seq = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
const EPOCH = '2020-01-01T00:00:00Z';

/** A usage event of `t` (docs/metering.md), timed now: inside the accepted window. */
function usageEvent(t: { customerId: string }, id: string, meters: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { specversion: '1.0', id, source: 'isolation/gateway', type: 'usage', subject: t.customerId, data: { product: 'fal-ai/flux/dev', ...meters }, ...extra };
}
/** A /v1/usage range covering today (UTC whole days: yesterday to tomorrow). */
function usageRange(): string {
  const day = 86_400_000;
  const today = Math.floor(Date.now() / day) * day;
  return `from=${new Date(today - day).toISOString()}&to=${new Date(today + 2 * day).toISOString()}`;
}

/** A webhook endpoint of the customer, made with its own key, and one delivery to it (of a key created after it). */
async function webhookOf(fixture: Fixture) {
  const endpoint = await api.post('/v1/me/webhook_endpoints', { url: 'http://127.0.0.1:9/hooks', description: 'isolation' }, { token: fixture.apiKey });
  expect(endpoint.status).toBe(201);
  expect((await api.post(`/v1/customers/${fixture.customerId}/api_keys`, { name: 'after the endpoint' })).status).toBe(201);
  await server.app.services.webhookDispatcher.runOnce();
  const deliveries = await api.get(`/v1/webhook_endpoints/${endpoint.body.id}/deliveries`);
  expect(deliveries.body.data).toHaveLength(1);
  return { webhookEndpointId: endpoint.body.id as string, deliveryId: deliveries.body.data[0].id as string };
}

async function party(credit: string, extraGrant: string): Promise<Omit<Party, 'priceId' | 'reservationId' | 'invoiceId' | 'webhookEndpointId' | 'deliveryId'>> {
  const fixture = await createCustomer(api, { credit });
  const grant = await api.post(`/v1/customers/${fixture.customerId}/credit_grants`, { amount: extraGrant, category: 'promotional' });
  expect(grant.status).toBe(201);
  const customer = await api.get(`/v1/customers/${fixture.customerId}`);
  return { ...fixture, externalId: customer.body.external_id, grantId: grant.body.id };
}

async function reserve(fixture: Fixture, megapixels: number): Promise<string> {
  const r = await authorize(api, fixture.apiKey, { megapixels });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.reservation.id;
}

beforeAll(async () => {
  server = await startServer();
  api = server.api;
  await seedCatalog(api);
  const a = await party('10.00', '1.00');
  const b = await party('20.00', '2.00');
  const override = await api.post('/v1/prices', {
    product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0.02', customer: b.customerId, effective_at: EPOCH,
  });
  expect(override.status).toBe(201);
  const prices = await api.get('/v1/prices?product=fal-ai/flux/dev');
  const publicPrice = prices.body.data.find((p: { customer_id: string | null }) => p.customer_id === null);
  const draftInvoice = async (customerId: string) => (await server.app.services.invoices.draft(customerId, '2020-01')).invoice.id;
  A = { ...a, priceId: publicPrice.id, reservationId: await reserve(a, 4), invoiceId: await draftInvoice(a.customerId), ...(await webhookOf(a)) };
  B = { ...b, priceId: override.body.id, reservationId: await reserve(b, 4), invoiceId: await draftInvoice(b.customerId), ...(await webhookOf(b)) };
});
afterAll(() => server?.close());

/** Every item of a list, following cursors. */
const listAll = (path: string, token?: string): Promise<any[]> => listEvery(api, path, token);
const idsOf = (items: Array<{ id: string }>) => items.map((i) => i.id).sort();

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
}

/** Everything of one customer, as the operator sees it. */
async function everythingOf(p: Party) {
  return {
    customer: (await api.get(`/v1/customers/${p.customerId}`)).body,
    balance: await balanceOf(api, p.customerId),
    keys: await listAll(`/v1/customers/${p.customerId}/api_keys`),
    grants: await listAll(`/v1/customers/${p.customerId}/credit_grants`),
    transactions: await listAll(`/v1/customers/${p.customerId}/transactions`),
    reservation: (await api.get(`/v1/reservations/${p.reservationId}`)).body,
    events: await listAll(`/v1/events?customer=${p.customerId}`),
    invoices: await listAll(`/v1/invoices?customer=${p.customerId}`),
    billingSettings: (await api.get(`/v1/customers/${p.customerId}/billing_settings`)).body,
    payments: await listAll(`/v1/payments?customer=${p.customerId}`),
    autoTopUp: (await api.get(`/v1/customers/${p.customerId}/auto_top_up`)).body,
    webhookEndpoints: await listAll(`/v1/webhook_endpoints?customer=${p.customerId}`),
    deliveries: await listAll(`/v1/webhook_endpoints/${p.webhookEndpointId}/deliveries`),
    alertSettings: (await api.get(`/v1/customers/${p.customerId}/alert_settings`)).body,
  };
}
async function everything() {
  return {
    A: await everythingOf(A),
    B: await everythingOf(B),
    customers: idsOf(await listAll('/v1/customers')),
    meters: idsOf(await listAll('/v1/meters')),
    products: idsOf(await listAll('/v1/products')),
    prices: idsOf(await listAll('/v1/prices')),
  };
}

/** An OpenAPI path with its parameters pointing at `target`'s things. */
function fill(path: string, target: Party): string {
  return path
    .replace(/^\/v1\/customers\/\{id\}/, `/v1/customers/${target.customerId}`)
    .replace(/^\/v1\/api_keys\/\{id\}/, `/v1/api_keys/${target.apiKeyId}`)
    .replace(/^\/v1\/me\/api_keys\/\{id\}/, `/v1/me/api_keys/${target.apiKeyId}`)
    .replace(/^\/v1\/prices\/\{id\}/, `/v1/prices/${target.priceId}`)
    .replace(/^\/v1\/reservations\/\{id\}/, `/v1/reservations/${target.reservationId}`)
    .replace(/^\/v1\/(me\/)?invoices\/\{id\}/, `/v1/$1invoices/${target.invoiceId}`)
    .replace(/^\/v1\/(me\/)?webhook_endpoints\/\{id\}/, `/v1/$1webhook_endpoints/${target.webhookEndpointId}`)
    .replace(/^\/v1\/(me\/)?webhook_deliveries\/\{id\}/, `/v1/$1webhook_deliveries/${target.deliveryId}`)
    .replace('{external_id}', target.externalId)
    .replace('{*}', 'fal-ai/flux/dev');
}

/** Auto top-up settings that need no saved card (off), so only authorization decides. */
const AUTO_TOP_UP_OFF = { enabled: false, threshold: '3.00', amount: '30.00' };

interface OperatorCall {
  query?: (t: Party) => string;
  /** A valid body: the call would succeed with the admin token, so only the 403 stops it. */
  body?: (t: Party) => unknown;
}

/** Every operator operation (admin token only): a customer key gets 403 on each. */
const OPERATOR: Record<string, OperatorCall> = {
  'POST /v1/customers': { body: () => ({ name: 'Intruder', currency: 'USD', external_id: unique('intruder') }) },
  'GET /v1/customers': { query: (t) => `?external_id=${t.externalId}` },
  'GET /v1/customers/by_external_id/{external_id}': {},
  'GET /v1/customers/{id}': {},
  'PATCH /v1/customers/{id}': { body: () => ({ name: 'Renamed by a customer key' }) },
  'POST /v1/customers/{id}/api_keys': { body: () => ({ name: 'stolen' }) },
  'POST /v1/customers/{id}/portal_sessions': { body: () => ({}) },
  'GET /v1/customers/{id}/api_keys': {},
  'GET /v1/api_keys/{id}': {},
  'PATCH /v1/api_keys/{id}': { body: () => ({ name: 'renamed', max_concurrency: 1 }) },
  'DELETE /v1/api_keys/{id}': {},
  'POST /v1/meters': { body: () => ({ key: 'intruder_meter', name: 'Intruder', unit: 'unit' }) },
  'GET /v1/meters': {},
  'POST /v1/products': { body: () => ({ key: 'intruder/model', name: 'Intruder' }) },
  'GET /v1/products': {},
  'GET /v1/products/{*}': {},
  'POST /v1/prices': {
    body: (t) => ({ product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0', customer: t.customerId, effective_at: EPOCH }),
  },
  'GET /v1/prices': { query: (t) => `?customer=${t.customerId}` },
  'GET /v1/prices/{id}': {},
  'POST /v1/customers/{id}/credit_grants': { body: () => ({ amount: '1000.00', category: 'purchased' }) },
  'GET /v1/customers/{id}/credit_grants': {},
  'GET /v1/customers/{id}/balance': {},
  'GET /v1/balances': { query: (t) => `?customers=${t.customerId}` },
  'GET /v1/customers/{id}/transactions': {},
  'POST /v1/authorize': { body: (t) => ({ api_key: t.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 1 } }) },
  'POST /v1/reservations/{id}/settle': { body: () => ({ usage: { megapixels: 0 } }) },
  'POST /v1/reservations/{id}/release': {},
  'GET /v1/reservations/{id}': {},
  'GET /v1/customers/{id}/reservations': {},
  'POST /v1/events': { body: (t) => [usageEvent(t, unique('intruder-event'), { megapixels: 1 })] },
  'GET /v1/events': { query: (t) => `?customer=${t.customerId}` },
  'GET /v1/usage': { query: (t) => `?customer=${t.customerId}&${usageRange()}` },
  'GET /v1/invoices': { query: (t) => `?customer=${t.customerId}` },
  'GET /v1/invoices/{id}': {},
  'GET /v1/invoices/{id}/pdf': {},
  'POST /v1/invoices/{id}/finalize': {},
  'POST /v1/invoices/{id}/void': {},
  'POST /v1/invoices/{id}/mark_uncollectible': {},
  'POST /v1/invoices/{id}/mark_paid': { body: () => ({ reference: 'forged' }) },
  'POST /v1/invoices/{id}/credit_notes': { body: () => ({ amount: '1.00', reason: 'other', memo: 'forged' }) },
  'GET /v1/invoices/{id}/credit_notes': {},
  'GET /v1/customers/{id}/billing_settings': {},
  'PUT /v1/customers/{id}/billing_settings': { body: () => ({ tax_rate: '0', anchor_day: 28 }) },
  'POST /v1/customers/{id}/top_ups': { body: () => ({ amount: '25.00' }) },
  'POST /v1/customers/{id}/card_setups': { body: () => ({}) },
  'POST /v1/customers/{id}/payments': { body: () => ({ amount: '1000.00', reference: 'intruder' }) },
  'GET /v1/payments': { query: (t) => `?customer=${t.customerId}` },
  'GET /v1/customers/{id}/auto_top_up': {},
  'PUT /v1/customers/{id}/auto_top_up': { body: () => AUTO_TOP_UP_OFF },
  'POST /v1/webhook_endpoints': { body: (t) => ({ url: 'http://127.0.0.1:9/stolen', customer: t.customerId }) },
  'GET /v1/webhook_endpoints': { query: (t) => `?customer=${t.customerId}` },
  'GET /v1/webhook_endpoints/{id}': {},
  'PATCH /v1/webhook_endpoints/{id}': { body: () => ({ url: 'http://127.0.0.1:9/hijacked' }) },
  'DELETE /v1/webhook_endpoints/{id}': {},
  'POST /v1/webhook_endpoints/{id}/rotate_secret': {},
  'GET /v1/webhook_endpoints/{id}/deliveries': {},
  'POST /v1/webhook_endpoints/{id}/replay': { body: () => ({ from: EPOCH, to: '2099-01-01T00:00:00Z' }) },
  'POST /v1/webhook_deliveries/{id}/replay': {},
  'GET /v1/customers/{id}/alert_settings': {},
  'PUT /v1/customers/{id}/alert_settings': { body: () => ({ balance_low: '1000' }) },
};

/** The customer's own routes, each exercised below. */
const ME = [
  'GET /v1/me',
  'GET /v1/me/balance',
  'GET /v1/me/transactions',
  'GET /v1/me/credit_grants',
  'GET /v1/me/api_keys',
  'POST /v1/me/api_keys',
  'GET /v1/me/api_keys/{id}',
  'PATCH /v1/me/api_keys/{id}',
  'DELETE /v1/me/api_keys/{id}',
  'GET /v1/me/usage',
  'GET /v1/me/invoices',
  'GET /v1/me/invoices/{id}',
  'GET /v1/me/invoices/{id}/pdf',
  'POST /v1/me/top_ups',
  'POST /v1/me/card_setups',
  'GET /v1/me/payments',
  'GET /v1/me/auto_top_up',
  'PUT /v1/me/auto_top_up',
  'POST /v1/me/webhook_endpoints',
  'GET /v1/me/webhook_endpoints',
  'GET /v1/me/webhook_endpoints/{id}',
  'PATCH /v1/me/webhook_endpoints/{id}',
  'DELETE /v1/me/webhook_endpoints/{id}',
  'POST /v1/me/webhook_endpoints/{id}/rotate_secret',
  'GET /v1/me/webhook_endpoints/{id}/deliveries',
  'POST /v1/me/webhook_endpoints/{id}/replay',
  'POST /v1/me/webhook_deliveries/{id}/replay',
  'GET /v1/me/alert_settings',
  'PUT /v1/me/alert_settings',
];
/** Open to any valid bearer token: a customer key sees its own prices; the event types are public. */
const ANY_TOKEN = ['GET /v1/pricing', 'GET /v1/events/types'];
/** Browser sign-in: no bearer token at all (a session cookie, or nothing); dashboard-sessions.test.ts covers them. */
const SIGN_IN = ['POST /v1/dashboard/sessions', 'GET /v1/dashboard/session', 'DELETE /v1/dashboard/session'];

let operations: Array<{ method: string; path: string; op: string }> = [];

beforeAll(async () => {
  const doc = await api.get('/openapi.json', { token: null });
  expect(doc.status).toBe(200);
  operations = Object.entries<Record<string, unknown>>(doc.body.paths).flatMap(([path, ops]) =>
    Object.keys(ops)
      .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
      .map((m) => ({ method: m.toUpperCase(), path, op: `${m.toUpperCase()} ${path}` })),
  );
});

const meBody = (op: string) =>
  op === 'POST /v1/me/top_ups' ? { amount: '5.00' } : op === 'POST /v1/me/card_setups' ? {} : op === 'PUT /v1/me/auto_top_up' ? AUTO_TOP_UP_OFF : op === 'PUT /v1/me/alert_settings' ? { balance_low: '3.00' } : op.startsWith('POST') || op.startsWith('PATCH') ? { name: 'probe' } : undefined;

describe('route by route, from the OpenAPI document', () => {
  it('every operation of the document is classified: operator, /v1/me or any token', () => {
    expect(operations.length).toBeGreaterThan(30);
    const classified = [...Object.keys(OPERATOR), ...ME, ...ANY_TOKEN, ...SIGN_IN].sort();
    expect(new Set(classified).size).toBe(classified.length);
    expect(operations.map((o) => o.op).sort()).toEqual(classified);
    for (const op of Object.keys(OPERATOR)) expect(op).toMatch(/^[A-Z]+ \/v1\/(?!me(\/|$)|pricing$)/);
    for (const op of ME) expect(op).toMatch(/^[A-Z]+ \/v1\/me(\/|$)/);
  });

  it("A's key gets 403 forbidden on every operator operation, on A's own ids and on B's, and changes nothing", async () => {
    const before = await everything();
    let calls = 0;
    for (const { method, path, op } of operations) {
      const call = OPERATOR[op];
      if (!call) continue;
      for (const target of [A, B]) {
        const r = await api.request(method, fill(path, target) + (call.query?.(target) ?? ''), call.body?.(target), { token: A.apiKey });
        expect(r.status, `${op} on ${target === A ? 'A' : 'B'}: ${JSON.stringify(r.body)}`).toBe(403);
        expectProblem(r, 403, 'forbidden');
        calls++;
      }
    }
    expect(calls).toBe(2 * Object.keys(OPERATOR).length);
    expect(await everything()).toEqual(before);
    // A's key is still A's working key.
    expect((await api.get('/v1/me', { token: A.apiKey })).body.id).toBe(A.customerId);
  });

  it('no token, a made-up tg_ token or a malformed header is 401 on every /v1 operation', async () => {
    const madeUp = `tg_${'x'.repeat(40)}`;
    for (const { method, path, op } of operations.filter((o) => !SIGN_IN.includes(o.op))) {
      const url = fill(path, A);
      const body = OPERATOR[op]?.body?.(A) ?? meBody(op);
      expectProblem(await api.request(method, url, body, { token: null }), 401, 'unauthorized');
      expectProblem(await api.request(method, url, body, { token: madeUp }), 401, 'unauthorized');
      expectProblem(await api.request(method, url, body, { token: null, headers: { authorization: `Basic ${A.apiKey}` } }), 401, 'unauthorized');
    }
  });

  it("A's portal session (its cookie) gets 403 forbidden on every operator operation too, and changes nothing", async () => {
    const link = await api.post(`/v1/customers/${A.customerId}/portal_sessions`, {});
    const signIn = await api.post('/v1/dashboard/sessions', { portal_token: link.body.url.split('#')[1] }, { token: null });
    expect(signIn.status).toBe(201);
    const headers = { cookie: signIn.headers.get('set-cookie')!.split(';')[0]!, 'x-csrf-token': signIn.body.csrf_token };
    recordSecret(headers.cookie.split('=')[1]);
    const before = await everything();
    for (const { method, path, op } of operations) {
      const call = OPERATOR[op];
      if (!call) continue;
      for (const target of [A, B]) {
        expectProblem(await api.request(method, fill(path, target) + (call.query?.(target) ?? ''), call.body?.(target), { token: null, headers }), 403, 'forbidden');
      }
    }
    expect(await everything()).toEqual(before);
    expect((await api.get('/v1/me/balance', { token: null, headers })).body).toEqual(await balanceOf(api, A.customerId));
    expectProblem(await api.get(`/v1/me/invoices/${B.invoiceId}`, { token: null, headers }), 404, 'not_found');
  });

  it('the admin token gets 403 forbidden on every /v1/me operation', async () => {
    for (const { method, path, op } of operations) {
      if (!ME.includes(op)) continue;
      expectProblem(await api.request(method, fill(path, A), meBody(op), { token: ADMIN_TOKEN }), 403, 'forbidden');
    }
    expect(idsOf(await listAll(`/v1/customers/${A.customerId}/api_keys`))).not.toHaveLength(0);
  });
});

describe("/v1/me with A's key sees only A", () => {
  it('/v1/me and /v1/me/balance are A, exactly as the operator sees A', async () => {
    const me = await api.get('/v1/me', { token: A.apiKey });
    expect(me.status).toBe(200);
    expect(me.body).toEqual((await api.get(`/v1/customers/${A.customerId}`)).body);
    const balance = await api.get('/v1/me/balance', { token: A.apiKey });
    expect(balance.body).toEqual(await balanceOf(api, A.customerId));
    expect(balance.body).toMatchObject({ customer_id: A.customerId, available: '10.90', held: '0.10', posted: '11.00' });
    expect((await api.get('/v1/me/balance', { token: B.apiKey })).body).toMatchObject({ customer_id: B.customerId, posted: '22.00' });
  });

  it('/v1/me/transactions, /v1/me/credit_grants and /v1/me/api_keys list only A’s things', async () => {
    const lists = [
      { me: '/v1/me/transactions', admin: (p: Party) => `/v1/customers/${p.customerId}/transactions` },
      { me: '/v1/me/credit_grants', admin: (p: Party) => `/v1/customers/${p.customerId}/credit_grants` },
      { me: '/v1/me/api_keys', admin: (p: Party) => `/v1/customers/${p.customerId}/api_keys` },
    ];
    for (const list of lists) {
      const mine = await listAll(list.me, A.apiKey);
      const ofA = idsOf(await listAll(list.admin(A)));
      const ofB = idsOf(await listAll(list.admin(B)));
      expect(ofA.length).toBeGreaterThan(0);
      expect(ofB.length).toBeGreaterThan(0);
      expect(idsOf(mine), list.me).toEqual(ofA);
      expect(mine.some((item) => ofB.includes(item.id))).toBe(false);
      // A cursor taken from B's list pages through A's items only.
      for (const cursor of ofB) {
        const page = await api.get(`${list.me}?limit=100&cursor=${cursor}`, { token: A.apiKey });
        expect(page.status).toBe(200);
        for (const item of page.body.data) expect(ofA).toContain(item.id);
      }
    }
    const transactions = await listAll('/v1/me/transactions', A.apiKey);
    expect(transactions.filter((t) => t.reservation_id).map((t) => t.reservation_id)).toEqual([A.reservationId]);
    expect(idsOf(await listAll('/v1/me/credit_grants', A.apiKey))).toContain(A.grantId);
    expect((await listAll('/v1/me/credit_grants', A.apiKey)).every((g) => g.customer_id === A.customerId)).toBe(true);
    expect((await listAll('/v1/me/api_keys', A.apiKey)).every((k) => k.customer_id === A.customerId && !('secret' in k))).toBe(true);
  });

  it("GET/PATCH/DELETE /v1/me/api_keys/{id} work on A's key and are 404 on B's, which stays unchanged and working", async () => {
    const own = await api.get(`/v1/me/api_keys/${A.apiKeyId}`, { token: A.apiKey });
    expect(own.status).toBe(200);
    expect(own.body).toEqual((await api.get(`/v1/api_keys/${A.apiKeyId}`)).body);

    const bKeyBefore = (await api.get(`/v1/api_keys/${B.apiKeyId}`)).body;
    expectProblem(await api.get(`/v1/me/api_keys/${B.apiKeyId}`, { token: A.apiKey }), 404, 'not_found');
    expectProblem(await api.patch(`/v1/me/api_keys/${B.apiKeyId}`, { name: 'hijacked', max_concurrency: 1 }, { token: A.apiKey }), 404, 'not_found');
    expectProblem(await api.patch(`/v1/me/api_keys/${B.apiKeyId}`, { spend_limit: { amount: '0.01', period: 'day' } }, { token: A.apiKey }), 404, 'not_found');
    expectProblem(await api.delete(`/v1/me/api_keys/${B.apiKeyId}`, { token: A.apiKey }), 404, 'not_found');
    // The 404 does not tell an existing key of B from a key that does not exist.
    const missing = await api.get('/v1/me/api_keys/key_00000000000000000000000000', { token: A.apiKey });
    expectProblem(missing, 404, 'not_found');

    const bKeyAfter = (await api.get(`/v1/api_keys/${B.apiKeyId}`)).body;
    expect(bKeyAfter).toEqual(bKeyBefore);
    expect(bKeyAfter).toMatchObject({ status: 'active', name: 'test', max_concurrency: null, spend_limit: null });
    expect((await api.get('/v1/me', { token: B.apiKey })).body.id).toBe(B.customerId);
    const stillAuthorizes = await authorize(api, B.apiKey, { megapixels: 1 });
    expect(stillAuthorizes.status).toBe(200);
    expect(stillAuthorizes.body.customer).toBe(B.customerId);
    expect((await api.post(`/v1/reservations/${stillAuthorizes.body.reservation.id}/release`)).status).toBe(200);
  });

  it('/v1/pricing with A’s key shows A’s prices, never B’s override, whatever ?customer= says', async () => {
    const plain = await api.get('/v1/pricing', { token: A.apiKey });
    expect(plain.status).toBe(200);
    const askingForB = await api.get(`/v1/pricing?customer=${B.customerId}`, { token: A.apiKey });
    expect(askingForB.status).toBe(200);
    expect(askingForB.body).toEqual(plain.body);
    const priceCustomers = (body: any) => body.data.flatMap((e: any) => e.prices.map((p: any) => p.price.customer_id));
    expect(priceCustomers(plain.body)).not.toContain(B.customerId);
    const flux = (body: any) => body.data.find((e: any) => e.product.key === 'fal-ai/flux/dev').prices[0].price;
    expect(flux(plain.body).id).toBe(A.priceId);
    // B does see its override (so the check above is not vacuous).
    const ofB = await api.get('/v1/pricing', { token: B.apiKey });
    expect(flux(ofB.body)).toMatchObject({ id: B.priceId, customer_id: B.customerId });
  });
});

describe("/v1/me/webhook_endpoints with A's key reaches only A's endpoints", () => {
  it("lists and reads A's own endpoint and deliveries; every operation on B's endpoint or delivery is 404 and changes nothing", async () => {
    const before = await everythingOf(B);
    expect((await listAll('/v1/me/webhook_endpoints', A.apiKey)).map((e) => e.id)).toEqual([A.webhookEndpointId]);
    expect((await api.get(`/v1/me/webhook_endpoints/${A.webhookEndpointId}/deliveries`, { token: A.apiKey })).body.data.map((d: any) => d.id)).toEqual([A.deliveryId]);
    const token = A.apiKey;
    for (const r of [
      await api.get(`/v1/me/webhook_endpoints/${B.webhookEndpointId}`, { token }),
      await api.patch(`/v1/me/webhook_endpoints/${B.webhookEndpointId}`, { url: 'http://127.0.0.1:9/hijacked' }, { token }),
      await api.delete(`/v1/me/webhook_endpoints/${B.webhookEndpointId}`, { token }),
      await api.post(`/v1/me/webhook_endpoints/${B.webhookEndpointId}/rotate_secret`, {}, { token }),
      await api.get(`/v1/me/webhook_endpoints/${B.webhookEndpointId}/deliveries`, { token }),
      await api.post(`/v1/me/webhook_endpoints/${B.webhookEndpointId}/replay`, { from: EPOCH, to: '2099-01-01T00:00:00Z' }, { token }),
      await api.post(`/v1/me/webhook_deliveries/${B.deliveryId}/replay`, {}, { token }),
    ]) expectProblem(r, 404, 'not_found');
    expect(await everythingOf(B)).toEqual(before);
    // A's endpoint made through /v1/me belongs to A, whatever it receives.
    expect((await api.get(`/v1/webhook_endpoints/${A.webhookEndpointId}`)).body.customer_id).toBe(A.customerId);
  });
});

describe("/v1/me/invoices with A's key shows only A's invoices", () => {
  it("lists A's invoices only; B's invoice is 404 and unchanged; no query names B", async () => {
    const mine = await listAll('/v1/me/invoices', A.apiKey);
    expect(idsOf(mine)).toEqual(idsOf(await listAll(`/v1/invoices?customer=${A.customerId}`)));
    expect(idsOf(mine)).toContain(A.invoiceId);
    expect(mine.every((i) => i.customer_id === A.customerId)).toBe(true);
    expect((await api.get(`/v1/me/invoices/${A.invoiceId}`, { token: A.apiKey })).body).toEqual((await api.get(`/v1/invoices/${A.invoiceId}`)).body);
    const before = (await api.get(`/v1/invoices/${B.invoiceId}`)).body;
    expectProblem(await api.get(`/v1/me/invoices/${B.invoiceId}`, { token: A.apiKey }), 404, 'not_found');
    expectProblem(await api.get(`/v1/me/invoices/${B.invoiceId}/pdf`, { token: A.apiKey }), 404, 'not_found');
    expect((await api.get(`/v1/me/invoices/${A.invoiceId}/pdf`, { token: A.apiKey })).headers.get('content-type')).toMatch(/^application\/pdf/);
    expectProblem(await api.get(`/v1/me/invoices?customer=${B.customerId}`, { token: A.apiKey }), 400, 'invalid_request');
    expect((await api.get(`/v1/invoices/${B.invoiceId}`)).body).toEqual(before);
  });
});

describe("/v1/me/usage with A's key shows only A's usage", () => {
  it("is A's usage exactly as the operator sees it, never B's, whatever the query names", async () => {
    const range = usageRange();
    const byKey = `${range}&group_by=api_key,meter&window=hour`;
    // Usage of both, sent by the operator: A 2 megapixels with A's key, B 4 with B's key and 8 without.
    const sent = await api.post('/v1/events', [
      usageEvent(A, unique('a'), { megapixels: 2, api_key_id: A.apiKeyId }),
      usageEvent(B, unique('b'), { megapixels: 4, api_key_id: B.apiKeyId }),
      usageEvent(B, unique('b'), { megapixels: '8' }),
    ]);
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body.data.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted', 'accepted']);

    const sumOf = (body: any) => body.data.reduce((sum: number, row: any) => sum + Number(row.sum ?? 0), 0);
    const mine = await api.get(`/v1/me/usage?${byKey}`, { token: A.apiKey });
    expect(mine.status, JSON.stringify(mine.body)).toBe(200);
    const ofA = await api.get(`/v1/usage?customer=${A.customerId}&${byKey}`);
    const ofB = await api.get(`/v1/usage?customer=${B.customerId}&${byKey}`);
    expect(ofA.status).toBe(200);
    expect(mine.body).toEqual(ofA.body);
    expect(sumOf(mine.body)).toBe(2);
    // B's usage is there (so the comparisons are not vacuous) and nowhere in A's view.
    expect(sumOf(ofB.body)).toBe(12);
    expect(mine.body.data.map((r: any) => r.api_key_id)).not.toContain(B.apiKeyId);
    expect(mine.body.data.every((r: any) => r.api_key_id === A.apiKeyId)).toBe(true);
    // B's view through B's own key is B's, as the operator sees it.
    expect((await api.get(`/v1/me/usage?${byKey}`, { token: B.apiKey })).body).toEqual(ofB.body);

    // Naming B in the query: /v1/me/usage has no customer parameter and refuses it (400), never answering for B.
    const askingForB = await api.get(`/v1/me/usage?${byKey}&customer=${B.customerId}`, { token: A.apiKey });
    expectProblem(askingForB, 400, 'invalid_request');
    expect(askingForB.body.errors).toEqual([expect.objectContaining({ path: 'customer' })]);
    // Filtering by B's key within A's usage finds nothing of B's.
    const bKey = await api.get(`/v1/me/usage?${byKey}&api_key=${B.apiKeyId}`, { token: A.apiKey });
    expect(bKey.status, JSON.stringify(bKey.body)).toBe(200);
    expect(bKey.body.data).toEqual([]);
    // The operator's unfiltered view has both (the operator route is not scoped to anyone).
    expect(sumOf((await api.get(`/v1/usage?${byKey}`)).body)).toBe(14);
  });
});

describe('keys, revocation and authorize', () => {
  it('a revoked key of A is 401 everywhere; A’s other key keeps working', async () => {
    const created = await api.post('/v1/me/api_keys', { name: 'to revoke' }, { token: A.apiKey });
    expect(created.status).toBe(201);
    expect((await api.get('/v1/me', { token: created.body.secret })).body.id).toBe(A.customerId);
    const revoked = await api.delete(`/v1/me/api_keys/${created.body.id}`, { token: A.apiKey });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.body.id, status: 'revoked' });

    for (const path of ['/v1/me', '/v1/me/balance', '/v1/me/api_keys', '/v1/pricing']) {
      expectProblem(await api.get(path, { token: created.body.secret }), 401, 'unauthorized');
    }
    expectProblem(await api.post('/v1/me/api_keys', { name: 'revived' }, { token: created.body.secret }), 401, 'unauthorized');
    expectProblem(await authorize(api, created.body.secret, { megapixels: 1 }), 401, 'invalid_api_key');
    expect((await api.get('/v1/me', { token: A.apiKey })).body.id).toBe(A.customerId);
  });

  it("authorize with A's key holds on A only; B's balance does not move", async () => {
    const bBefore = await everythingOf(B);
    const aBefore = await balanceOf(api, A.customerId);
    const auth = await authorize(api, A.apiKey, { megapixels: 2 });
    expect(auth.status).toBe(200);
    expect(auth.body).toMatchObject({ customer: A.customerId, api_key_id: A.apiKeyId });
    const reservation = await api.get(`/v1/reservations/${auth.body.reservation.id}`);
    expect(reservation.body).toMatchObject({ customer_id: A.customerId, api_key_id: A.apiKeyId, amount: '0.05', status: 'pending' });
    expect(await balanceOf(api, A.customerId)).toMatchObject({ held: '0.15', posted: aBefore.posted });
    // There is no way to name another customer in an authorize.
    expectProblem(await api.post('/v1/authorize', { api_key: A.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 2 }, customer: B.customerId }), 400, 'invalid_request');
    expect(await everythingOf(B)).toEqual(bBefore);
    expect((await api.post(`/v1/reservations/${auth.body.reservation.id}/release`)).status).toBe(200);
  });

  it('a key A creates through /v1/me never appears for B', async () => {
    const created = await api.post('/v1/me/api_keys', { name: 'A only' }, { token: A.apiKey });
    expect(created.status).toBe(201);
    expect(created.body.customer_id).toBe(A.customerId);
    expect(idsOf(await listAll('/v1/me/api_keys', A.apiKey))).toContain(created.body.id);
    expect(idsOf(await listAll(`/v1/customers/${A.customerId}/api_keys`))).toContain(created.body.id);

    expect(idsOf(await listAll('/v1/me/api_keys', B.apiKey))).not.toContain(created.body.id);
    expect(idsOf(await listAll(`/v1/customers/${B.customerId}/api_keys`))).not.toContain(created.body.id);
    expectProblem(await api.get(`/v1/me/api_keys/${created.body.id}`, { token: B.apiKey }), 404, 'not_found');
    expectProblem(await api.patch(`/v1/me/api_keys/${created.body.id}`, { name: 'B was here' }, { token: B.apiKey }), 404, 'not_found');
    expectProblem(await api.delete(`/v1/me/api_keys/${created.body.id}`, { token: B.apiKey }), 404, 'not_found');
    expect((await api.get(`/v1/api_keys/${created.body.id}`)).body).toMatchObject({ name: 'A only', status: 'active', customer_id: A.customerId });
    // The new key is A's: it sees A, and its authorize charges A.
    expect((await api.get('/v1/me', { token: created.body.secret })).body.id).toBe(A.customerId);
    const auth = await authorize(api, created.body.secret, { megapixels: 1 });
    expect(auth.body.customer).toBe(A.customerId);
    expect((await api.post(`/v1/reservations/${auth.body.reservation.id}/release`)).status).toBe(200);
    // B's own ledger has none of A's activity.
    const bTransactions = await listAll('/v1/me/transactions', B.apiKey);
    expect(bTransactions.every((t) => t.reservation_id === null || t.reservation_id !== auth.body.reservation.id)).toBe(true);
    expect(idsOf(bTransactions)).toEqual(idsOf(await listAll(`/v1/customers/${B.customerId}/transactions`)));
  });
});

describe('top-ups and payments', () => {
  it("a top-up A starts through /v1/me is A's; /v1/me/payments lists only A's, whatever the query names", async () => {
    const byA = await api.post('/v1/me/top_ups', { amount: '5.00' }, { token: A.apiKey });
    expect(byA.status, JSON.stringify(byA.body)).toBe(201);
    expect(byA.body.customer_id).toBe(A.customerId);
    const byB = await api.post('/v1/me/top_ups', { amount: '6.00' }, { token: B.apiKey });
    expect(byB.body.customer_id).toBe(B.customerId);
    // There is no way to name another customer in a top-up or in the payments list.
    expectProblem(await api.post('/v1/me/top_ups', { amount: '5.00', customer: B.customerId }, { token: A.apiKey }), 400, 'invalid_request');
    expectProblem(await api.get(`/v1/me/payments?customer=${B.customerId}`, { token: A.apiKey }), 400, 'invalid_request');

    const mine = await listAll('/v1/me/payments', A.apiKey);
    expect(mine).toEqual(await listAll(`/v1/payments?customer=${A.customerId}`));
    expect(idsOf(mine)).toContain(byA.body.id);
    expect(mine.every((p) => p.customer_id === A.customerId)).toBe(true);
    // A cursor taken from B's list pages through A's payments only.
    const page = await api.get(`/v1/me/payments?limit=100&cursor=${byB.body.id}`, { token: A.apiKey });
    expect(page.status).toBe(200);
    expect(page.body.data.every((p: { customer_id: string }) => p.customer_id === A.customerId)).toBe(true);
    expect(idsOf(await listAll('/v1/me/payments', B.apiKey))).toEqual([byB.body.id]);
  });

  it("A's key reads and changes only A's auto top-up settings; B's stay as they were", async () => {
    const bBefore = await everythingOf(B);
    const mine = await api.request('PUT', '/v1/me/auto_top_up', { enabled: false, threshold: '4.00', amount: '40.00' }, { token: A.apiKey });
    expect(mine.status, JSON.stringify(mine.body)).toBe(200);
    expect(mine.body).toMatchObject({ customer_id: A.customerId, threshold: '4.00', amount: '40.00' });
    expect((await api.get('/v1/me/auto_top_up', { token: A.apiKey })).body).toEqual((await api.get(`/v1/customers/${A.customerId}/auto_top_up`)).body);
    expect((await api.get('/v1/me/auto_top_up', { token: B.apiKey })).body.customer_id).toBe(B.customerId);
    // There is no way to name another customer.
    expectProblem(await api.request('PUT', '/v1/me/auto_top_up', { ...AUTO_TOP_UP_OFF, customer: B.customerId }, { token: A.apiKey }), 400, 'invalid_request');
    expect(await everythingOf(B)).toEqual(bBefore);
  });
});
