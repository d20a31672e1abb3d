import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { ADMIN_TOKEN, listEvery, startServer, type Api, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';

/**
 * "Every POST replayed with the same Idempotency-Key returns the same response; a different
 * request gets 409 idempotency_key_reused" (docs/api.md), route by route and under concurrency.
 */

let server: TestServer;
let clock: ManualClock;
let api: Api;

beforeAll(async () => {
  clock = new ManualClock();
  server = await startServer({ clock });
  api = server.api;
  await seedCatalog(api);
});
afterAll(() => server?.close());

let seq = 0;
const unique = (prefix: string) => `${prefix}_${process.pid}_${Date.now().toString(36)}_${++seq}`;
const idemKey = (label: string) => `idem-${label}-${unique('k')}`;

/** Every item of a list, following cursors. */
const listAll = (path: string, token?: string): Promise<any[]> => listEvery(api, path, token);
/** The stored reply that lets a key creation replay keeps the secret encrypted. */
async function expectSecretNotStoredInClear(secret: string) {
  const rows = await server.database.db.query<{ body: string }>('SELECT response_body::text AS body FROM idempotency_keys');
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.filter((r) => r.body.includes(secret))).toEqual([]);
}

const idsOf = (items: Array<{ id: string }>) => items.map((i) => i.id).sort();
/** Checkout Sessions the Stripe stand-in created for a customer. */
const checkoutsOf = (customerId: string) =>
  server.stripe!.requests.filter((r) => r.route === 'POST /v1/checkout/sessions' && r.params['metadata[tollgate_customer_id]'] === customerId).length;

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
}

/** A customer's ledger as the operator sees it. */
async function ledgerOf(customerId: string) {
  return {
    balance: await balanceOf(api, customerId),
    transactions: idsOf(await listAll(`/v1/customers/${customerId}/transactions`)),
    grants: idsOf(await listAll(`/v1/customers/${customerId}/credit_grants`)),
  };
}

async function authorized(fixture: Fixture, megapixels: number) {
  const r = await authorize(api, fixture.apiKey, { megapixels });
  if (r.status !== 200) throw new Error(`authorize: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.reservation.id as string;
}

/** A usage event of `c` (docs/metering.md), from the case's own source. */
function usageEvent(c: Fixture & { source: string }, id: string, meters: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { specversion: '1.0', id, source: c.source, type: 'usage', subject: c.customerId, data: { product: 'fal-ai/flux/dev', ...meters }, ...extra };
}

/** What usage events change: the customer's ledger and its recorded events (by event id). */
async function eventStateOf(customerId: string) {
  const events = (await listAll(`/v1/events?customer=${customerId}`)).sort((a, b) => a.event_id.localeCompare(b.event_id));
  return { ...(await ledgerOf(customerId)), events };
}

interface PostCase<C> {
  /** The path as the OpenAPI document names it. */
  path: string;
  status: number;
  setup: () => Promise<C>;
  /** Bearer token of the caller; the admin token when absent. */
  token?: (c: C) => string;
  url: (c: C) => string;
  body: (c: C) => unknown;
  /** Another request sent with the same Idempotency-Key. */
  other: (c: C) => { url: string; body: unknown };
  /** What the POST changes, as seen through the API; a replay must leave it as the first call did. */
  state: (c: C) => Promise<unknown>;
  /** The exact effect of the first call (before/after are `state` snapshots). */
  verify: (c: C, reply: ApiResponse, before: any, after: any) => Promise<void>;
}

const postCase = <C>(c: PostCase<C>) => c as PostCase<unknown>;

/** POSTs that take an Idempotency-Key but do not replay, and why (their own tests below). */
const NOT_REPLAYED: Record<string, string> = {
  '/v1/dashboard/sessions': 'a sign-in starts a new browser session each time: its cookie secret is set once and never stored (docs/dashboard.md)',
};

const CASES: Array<PostCase<unknown>> = [
  postCase({
    path: '/v1/customers/{id}/portal_sessions',
    status: 201,
    setup: () => createCustomer(api),
    url: (c) => `/v1/customers/${c.customerId}/portal_sessions`,
    body: () => ({ expires_in_minutes: 10 }),
    other: (c) => ({ url: `/v1/customers/${c.customerId}/portal_sessions`, body: { expires_in_minutes: 20 } }),
    state: async (c) => (await server.database.db.query<{ id: string }>('SELECT id FROM portal_sessions WHERE customer_id = $1 ORDER BY id', [c.customerId])).map((r) => r.id),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ object: 'portal_session', customer_id: c.customerId, expires_at: new Date(clock.now().getTime() + 10 * 60_000).toISOString() });
      expect(after).toEqual([...before, reply.body.id]);
      // The replayed link is the same one-time link: its token is stored sealed, never in the clear.
      await expectSecretNotStoredInClear(reply.body.url.split('#')[1]);
    },
  }),
  postCase({
    path: '/v1/customers',
    status: 201,
    setup: async () => ({ externalId: unique('ext') }),
    url: () => '/v1/customers',
    body: (c) => ({ name: 'Idem Co', external_id: c.externalId, currency: 'USD' }),
    other: (c) => ({ url: '/v1/customers', body: { name: 'Idem Co (renamed)', external_id: c.externalId, currency: 'USD' } }),
    state: async () => idsOf(await listAll('/v1/customers')),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ name: 'Idem Co', external_id: c.externalId, currency: 'USD', credit_limit: '0.00' });
      expect(after).toEqual([...before, reply.body.id].sort());
      expect((await api.get(`/v1/customers/by_external_id/${c.externalId}`)).body.id).toBe(reply.body.id);
    },
  }),
  postCase({
    path: '/v1/customers/{id}/api_keys',
    status: 201,
    setup: () => createCustomer(api),
    url: (c) => `/v1/customers/${c.customerId}/api_keys`,
    body: () => ({ name: 'gateway', max_concurrency: 3 }),
    other: (c) => ({ url: `/v1/customers/${c.customerId}/api_keys`, body: { name: 'gateway', max_concurrency: 4 } }),
    state: (c) => listAll(`/v1/customers/${c.customerId}/api_keys`),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, name: 'gateway', status: 'active', max_concurrency: 3 });
      expect(idsOf(after)).toEqual([...idsOf(before), reply.body.id].sort());
      // The secret is shown on creation only, and the replay of that creation is the same reply:
      // the same key and the same secret (docs/api.md: "replays the first successful reply").
      expect(reply.body.secret).toMatch(/^tg_/);
      const me = await api.get('/v1/me', { token: reply.body.secret });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(c.customerId);
      // Lists never show secrets.
      expect(after.every((k: Record<string, unknown>) => !('secret' in k))).toBe(true);
      await expectSecretNotStoredInClear(reply.body.secret);
    },
  }),
  postCase({
    path: '/v1/me/api_keys',
    status: 201,
    setup: () => createCustomer(api),
    token: (c) => c.apiKey,
    url: () => '/v1/me/api_keys',
    body: () => ({ name: 'my second key' }),
    other: () => ({ url: '/v1/me/api_keys', body: { name: 'my third key' } }),
    state: (c) => listAll(`/v1/customers/${c.customerId}/api_keys`),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, name: 'my second key', status: 'active' });
      expect(idsOf(after)).toEqual([...idsOf(before), reply.body.id].sort());
      expect((await api.get('/v1/me', { token: reply.body.secret })).body.id).toBe(c.customerId);
      await expectSecretNotStoredInClear(reply.body.secret);
    },
  }),
  postCase({
    path: '/v1/meters',
    status: 201,
    setup: async () => ({ key: unique('meter').toLowerCase() }),
    url: () => '/v1/meters',
    body: (c) => ({ key: c.key, name: 'Video seconds', unit: 'second' }),
    other: (c) => ({ url: '/v1/meters', body: { key: c.key, name: 'Video seconds', unit: 'frame' } }),
    state: async () => idsOf(await listAll('/v1/meters')),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ key: c.key, name: 'Video seconds', unit: 'second' });
      expect(after).toEqual([...before, reply.body.id].sort());
    },
  }),
  postCase({
    path: '/v1/products',
    status: 201,
    setup: async () => ({ key: `idem/${unique('model').toLowerCase()}` }),
    url: () => '/v1/products',
    body: (c) => ({ key: c.key, name: 'Video model' }),
    other: (c) => ({ url: '/v1/products', body: { key: c.key, name: 'Video model', description: 'another request' } }),
    state: async () => idsOf(await listAll('/v1/products')),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ key: c.key, name: 'Video model' });
      expect(after).toEqual([...before, reply.body.id].sort());
    },
  }),
  postCase({
    path: '/v1/prices',
    status: 201,
    // A product of its own, so that the new price changes nothing for the other tests.
    setup: async () => {
      const key = `idem/${unique('priced').toLowerCase()}`;
      expect((await api.post('/v1/products', { key, name: 'Priced model' })).status).toBe(201);
      return { key };
    },
    url: () => '/v1/prices',
    body: (c) => ({ product: c.key, meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0.03', effective_at: '2020-01-01T00:00:00Z' }),
    other: (c) => ({ url: '/v1/prices', body: { product: c.key, meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0.04', effective_at: '2020-01-01T00:00:00Z' } }),
    state: async (c) => idsOf(await listAll(`/v1/prices?product=${encodeURIComponent(c.key)}`)),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ product: c.key, currency: 'USD', scheme: 'per_unit' });
      expect(before).toEqual([]);
      expect(after).toEqual([reply.body.id]);
    },
  }),
  postCase({
    path: '/v1/customers/{id}/credit_grants',
    status: 201,
    setup: () => createCustomer(api, { credit: '5.00' }),
    url: (c) => `/v1/customers/${c.customerId}/credit_grants`,
    body: () => ({ amount: '2.50', category: 'purchased' }),
    other: (c) => ({ url: `/v1/customers/${c.customerId}/credit_grants`, body: { amount: '2.51', category: 'purchased' } }),
    state: (c) => ledgerOf(c.customerId),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, amount: '2.50', remaining: '2.50', category: 'purchased' });
      expect(before.balance).toMatchObject({ available: '5.00', posted: '5.00' });
      expect(after.balance).toMatchObject({ available: '7.50', held: '0.00', posted: '7.50' });
      expect(after.grants).toEqual([...before.grants, reply.body.id].sort());
      expect(after.transactions).toHaveLength(before.transactions.length + 1);
    },
  }),
  postCase({
    path: '/v1/authorize',
    status: 200,
    setup: () => createCustomer(api, { credit: '10.00' }),
    url: () => '/v1/authorize',
    body: (c) => ({ api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } }),
    other: (c) => ({ url: '/v1/authorize', body: { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 2 } } }),
    state: (c) => ledgerOf(c.customerId),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ authorized: true, customer: c.customerId, api_key_id: c.apiKeyId, available_after: '9.90' });
      expect(reply.body.reservation).toMatchObject({ amount: '0.10', currency: 'USD' });
      expect(after.balance).toMatchObject({ available: '9.90', held: '0.10', posted: '10.00' });
      // One hold, so one reservation.
      expect(after.transactions).toHaveLength(before.transactions.length + 1);
      const holds = (await listAll(`/v1/customers/${c.customerId}/transactions`)).filter((t) => t.kind === 'hold');
      expect(holds.map((t) => t.reservation_id)).toEqual([reply.body.reservation.id]);
    },
  }),
  postCase({
    path: '/v1/reservations/{id}/settle',
    status: 200,
    setup: async () => {
      const fixture = await createCustomer(api, { credit: '10.00' });
      return { ...fixture, reservationId: await authorized(fixture, 4) };
    },
    url: (c) => `/v1/reservations/${c.reservationId}/settle`,
    body: () => ({ usage: { megapixels: '1.048576' } }),
    other: (c) => ({ url: `/v1/reservations/${c.reservationId}/settle`, body: { usage: { megapixels: '2' } } }),
    state: async (c) => ({ ...(await ledgerOf(c.customerId)), reservation: (await api.get(`/v1/reservations/${c.reservationId}`)).body }),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ charged: '0.0262144', released: '0.0737856', uncollected: '0.00' });
      expect(before.reservation.status).toBe('pending');
      expect(after.reservation).toMatchObject({ status: 'settled', charged: '0.0262144' });
      expect(after.balance).toMatchObject({ available: '9.9737856', held: '0.00', posted: '9.9737856' });
    },
  }),
  postCase({
    path: '/v1/reservations/{id}/release',
    status: 200,
    setup: async () => {
      const fixture = await createCustomer(api, { credit: '10.00' });
      return { ...fixture, reservationId: await authorized(fixture, 4), otherReservationId: await authorized(fixture, 2) };
    },
    url: (c) => `/v1/reservations/${c.reservationId}/release`,
    body: () => undefined,
    // Release takes no body: the other request is the release of another reservation.
    other: (c) => ({ url: `/v1/reservations/${c.otherReservationId}/release`, body: undefined }),
    state: async (c) => ({
      ...(await ledgerOf(c.customerId)),
      reservation: (await api.get(`/v1/reservations/${c.reservationId}`)).body,
      other: (await api.get(`/v1/reservations/${c.otherReservationId}`)).body,
    }),
    verify: async (c, reply, before, after) => {
      expect(reply.body.reservation).toMatchObject({ id: c.reservationId, status: 'released', charged: '0.00', released: '0.10' });
      expect(before.balance).toMatchObject({ available: '9.85', held: '0.15' });
      expect(after.balance).toMatchObject({ available: '9.95', held: '0.05', posted: '10.00' });
      expect(after.other.status).toBe('pending');
    },
  }),
  postCase({
    path: '/v1/events',
    status: 200,
    // The events' own (source, id) already make a resend harmless (a 'duplicate'); the key adds
    // the very first reply (docs/metering.md, replayOrRun in src/platform/idempotency.ts).
    setup: async () => ({ ...(await createCustomer(api, { credit: '10.00' })), source: `idem/${unique('gw')}` }),
    url: () => '/v1/events',
    body: (c) => [usageEvent(c, 'job-1', { megapixels: '4' }), usageEvent(c, 'job-2', { megapixels: 2 })],
    // The same events with another quantity: a different request, even though their ids are the same.
    other: (c) => ({ url: '/v1/events', body: [usageEvent(c, 'job-1', { megapixels: '1' }), usageEvent(c, 'job-2', { megapixels: 2 })] }),
    state: (c) => eventStateOf(c.customerId),
    verify: async (c, reply, before, after) => {
      expect(reply.body.data).toEqual([
        { id: 'job-1', source: c.source, status: 'accepted', event: expect.stringMatching(/^evt_/) },
        { id: 'job-2', source: c.source, status: 'accepted', event: expect.stringMatching(/^evt_/) },
      ]);
      expect(before.events).toEqual([]);
      expect(after.events.map((e: any) => e.id).sort()).toEqual(reply.body.data.map((r: any) => r.event).sort());
      expect(after.events.map((e: any) => [e.event_id, e.status, e.amount, e.charged])).toEqual([['job-1', 'charged', '0.10', '0.10'], ['job-2', 'charged', '0.05', '0.05']]);
      expect(after.balance).toMatchObject({ available: '9.85', held: '0.00', posted: '9.85' });
      // One charge per customer and batch.
      expect(after.transactions).toHaveLength(before.transactions.length + 1);
    },
  }),
  postCase({
    path: '/v1/customers/{id}/top_ups',
    status: 201,
    // The top-up calls Stripe (the stand-in): a replay must not open a second Checkout Session.
    setup: () => createCustomer(api),
    url: (c) => `/v1/customers/${c.customerId}/top_ups`,
    body: () => ({ amount: '25.00' }),
    other: (c) => ({ url: `/v1/customers/${c.customerId}/top_ups`, body: { amount: '30.00' } }),
    state: async (c) => ({ payments: await listAll(`/v1/payments?customer=${c.customerId}`), checkouts: checkoutsOf(c.customerId) }),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, status: 'pending', amount: '25.00', url: expect.stringMatching(/^https:/) });
      expect(after.payments).toEqual([reply.body]);
      expect(after.checkouts).toBe(before.checkouts + 1);
    },
  }),
  postCase({
    path: '/v1/customers/{id}/payments',
    status: 201,
    setup: () => createCustomer(api),
    url: (c) => `/v1/customers/${c.customerId}/payments`,
    body: () => ({ amount: '120.00', reference: 'wire 1' }),
    other: (c) => ({ url: `/v1/customers/${c.customerId}/payments`, body: { amount: '120.00', reference: 'wire 2' } }),
    state: async (c) => ({ ...(await ledgerOf(c.customerId)), payments: await listAll(`/v1/payments?customer=${c.customerId}`) }),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, provider: 'manual', status: 'paid', amount: '120.00', reference: 'wire 1' });
      expect(after.payments).toEqual([reply.body]);
      expect(after.balance).toMatchObject({ available: '120.00', posted: '120.00' });
      expect(after.grants).toEqual([reply.body.grant_id]);
      expect(before.grants).toEqual([]);
    },
  }),
  // A card setup calls Stripe too: a replay must not open a second setup session.
  ...(['/v1/customers/{id}/card_setups', '/v1/me/card_setups'] as const).map((path) =>
    postCase({
      path,
      status: 201,
      setup: () => createCustomer(api),
      ...(path.startsWith('/v1/me') ? { token: (c: Fixture) => c.apiKey } : {}),
      url: (c) => path.replace('{id}', c.customerId),
      body: () => ({}),
      other: (c) => ({ url: path.startsWith('/v1/me') ? '/v1/me/top_ups' : `/v1/customers/${c.customerId}/top_ups`, body: { amount: '30.00' } }),
      state: async (c) => ({ checkouts: checkoutsOf(c.customerId) }),
      verify: async (c, reply, before, after) => {
        expect(reply.body).toMatchObject({ id: expect.stringMatching(/^pms_/), customer_id: c.customerId, url: expect.stringMatching(/^https:/) });
        expect(after.checkouts).toBe(before.checkouts + 1);
      },
    }),
  ),
  postCase({
    path: '/v1/me/top_ups',
    status: 201,
    setup: () => createCustomer(api),
    token: (c) => c.apiKey,
    url: () => '/v1/me/top_ups',
    body: () => ({ amount: '10.00' }),
    other: () => ({ url: '/v1/me/top_ups', body: { amount: '10.01' } }),
    state: async (c) => ({ payments: await listAll('/v1/me/payments', c.apiKey), checkouts: checkoutsOf(c.customerId) }),
    verify: async (c, reply, before, after) => {
      expect(reply.body).toMatchObject({ customer_id: c.customerId, status: 'pending', amount: '10.00' });
      expect(after.payments).toEqual([reply.body]);
      expect(after.checkouts).toBe(before.checkouts + 1);
    },
  }),
];

/**
 * Invoice actions: a replay must not move the invoice twice (nor take a second invoice number).
 * Invoices are drafted as a billing run does, for empty periods long past.
 */
/** An invoice that owes 1.00, a draft or finalized (an empty one would be paid at finalization). */
const draftInvoice = async (finalize: boolean): Promise<string> => (await owedInvoice(server, clock.now(), { finalize })).invoiceId;
for (const [action, to, body] of [
  ['finalize', 'finalized', {}],
  ['void', 'void', {}],
  ['mark_uncollectible', 'uncollectible', {}],
  ['mark_paid', 'paid', { reference: 'wire 42' }],
] as const) {
  CASES.push(
    postCase({
      path: `/v1/invoices/{id}/${action}`,
      status: 200,
      setup: async () => ({ invoiceId: await draftInvoice(action !== 'finalize'), otherId: await draftInvoice(action !== 'finalize') }),
      url: (c) => `/v1/invoices/${c.invoiceId}/${action}`,
      body: () => body,
      other: (c) => ({ url: `/v1/invoices/${c.otherId}/${action}`, body }),
      state: async (c) => ({
        invoice: (await api.get(`/v1/invoices/${c.invoiceId}`)).body,
        other: (await api.get(`/v1/invoices/${c.otherId}`)).body,
        numbers: (await listAll('/v1/invoices')).map((i) => i.number).filter((n) => n !== null).sort((a, b) => a - b),
      }),
      verify: async (_c, reply, before, after) => {
        expect(reply.body).toMatchObject({ status: to });
        expect(after.invoice).toEqual(reply.body);
        expect(after.other).toEqual(before.other);
        if (action === 'finalize') expect(after.numbers).toEqual([...before.numbers, reply.body.number]);
        else expect(after.numbers).toEqual(before.numbers);
      },
    }),
  );
}

CASES.push(
  postCase({
    path: '/v1/invoices/{id}/credit_notes',
    status: 201,
    setup: async () => {
      const { invoiceId, customer } = await owedInvoice(server, clock.now());
      return { invoiceId, customerId: customer.customerId };
    },
    url: (c) => `/v1/invoices/${c.invoiceId}/credit_notes`,
    body: () => ({ amount: '0.40', reason: 'duplicate' }),
    other: (c) => ({ url: `/v1/invoices/${c.invoiceId}/credit_notes`, body: { amount: '0.30', reason: 'duplicate' } }),
    state: async (c) => ({ invoice: (await api.get(`/v1/invoices/${c.invoiceId}`)).body, ledger: await ledgerOf(c.customerId) }),
    verify: async (_c, reply, before, after) => {
      expect(reply.body).toMatchObject({ amount: '0.40', reason: 'duplicate' });
      expect(after.invoice).toMatchObject({ amount_credited: '0.40', amount_remaining: '0.60', credit_notes: [reply.body] });
      // The customer owed 1.00 (posted -1.00): the credit note paid 0.40 of it.
      expect(before.ledger.balance.posted).toBe('-1.00');
      expect(after.ledger.balance.posted).toBe('-0.60');
    },
  }),
);
/**
 * Webhook endpoints, for the operator and through /v1/me: a replayed creation or rotation returns
 * the same secret (kept encrypted for the replay) and creates or rotates nothing more.
 */
const REFUSED_URL = 'http://127.0.0.1:9/hooks';
type HookCase = Fixture & { base: string; token: string | undefined; endpointId: string; deliveryId: string };
async function hookSetup(me: boolean): Promise<HookCase> {
  const fixture = await createCustomer(api);
  const token = me ? fixture.apiKey : undefined;
  const base = me ? '/v1/me' : '/v1';
  const created = await api.post(`${base}/webhook_endpoints`, { url: REFUSED_URL, ...(me ? {} : { customer: fixture.customerId }) }, { token });
  expect(created.status).toBe(201);
  expect((await api.post(`/v1/customers/${fixture.customerId}/api_keys`, { name: 'an event' })).status).toBe(201);
  await server.app.services.webhookDispatcher.runOnce();
  const deliveries = await listAll(`/v1/webhook_endpoints/${created.body.id}/deliveries`);
  return { ...fixture, base, token, endpointId: created.body.id, deliveryId: deliveries[0].id };
}
const hookState = async (c: HookCase) => ({
  endpoints: await listAll(`/v1/webhook_endpoints?customer=${c.customerId}`),
  deliveries: await listAll(`/v1/webhook_endpoints/${c.endpointId}/deliveries`),
});
for (const me of [false, true]) {
  const base = me ? '/v1/me' : '/v1';
  CASES.push(
    postCase<HookCase>({
      path: `${base}/webhook_endpoints`,
      status: 201,
      setup: () => hookSetup(me),
      token: (c) => c.token!,
      url: (c) => `${c.base}/webhook_endpoints`,
      body: (c) => ({ url: `${REFUSED_URL}/new`, event_types: ['balance.low'], ...(me ? {} : { customer: c.customerId }) }),
      other: (c) => ({ url: `${c.base}/webhook_endpoints`, body: { url: `${REFUSED_URL}/other`, ...(me ? {} : { customer: c.customerId }) } }),
      state: hookState,
      verify: async (c, reply, before, after) => {
        expect(reply.body).toMatchObject({ customer_id: c.customerId, url: `${REFUSED_URL}/new`, event_types: ['balance.low'], enabled: true });
        expect(reply.body.secret).toMatch(/^whsec_/);
        expect(idsOf(after.endpoints)).toEqual([...idsOf(before.endpoints), reply.body.id].sort());
        await expectSecretNotStoredInClear(reply.body.secret);
      },
    }),
    postCase<HookCase>({
      path: `${base}/webhook_endpoints/{id}/rotate_secret`,
      status: 200,
      setup: () => hookSetup(me),
      token: (c) => c.token!,
      url: (c) => `${c.base}/webhook_endpoints/${c.endpointId}/rotate_secret`,
      body: () => ({}),
      other: (c) => ({ url: `${c.base}/webhook_deliveries/${c.deliveryId}/replay`, body: {} }),
      state: hookState,
      verify: async (c, reply, before, after) => {
        expect(reply.body).toMatchObject({ id: c.endpointId });
        expect(Date.parse(reply.body.previous_secret_expires_at)).toBe(clock.now().getTime() + 24 * 3_600_000);
        expect(after.endpoints.find((e: any) => e.id === c.endpointId)).toEqual({ ...before.endpoints.find((e: any) => e.id === c.endpointId), previous_secret_expires_at: reply.body.previous_secret_expires_at, updated_at: reply.body.updated_at });
        await expectSecretNotStoredInClear(reply.body.secret);
      },
    }),
    postCase<HookCase>({
      path: `${base}/webhook_endpoints/{id}/replay`,
      status: 200,
      setup: () => hookSetup(me),
      token: (c) => c.token!,
      url: (c) => `${c.base}/webhook_endpoints/${c.endpointId}/replay`,
      body: () => ({ from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' }),
      other: (c) => ({ url: `${c.base}/webhook_endpoints/${c.endpointId}/replay`, body: { from: '2001-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' } }),
      state: hookState,
      verify: async (_c, reply, before, after) => {
        // Every event of the customer in the range, also from before the endpoint existed:
        // customer.created, the fixture's api_key.created and the one after the endpoint.
        expect(reply.body).toEqual({ replayed: 3, next_from: null });
        expect(before.deliveries).toHaveLength(1);
        expect(after.deliveries.map((d: any) => [d.status, d.next_attempt_at])).toEqual(Array(3).fill(['pending', clock.now().toISOString()]));
      },
    }),
    postCase<HookCase>({
      path: `${base}/webhook_deliveries/{id}/replay`,
      status: 200,
      setup: () => hookSetup(me),
      token: (c) => c.token!,
      url: (c) => `${c.base}/webhook_deliveries/${c.deliveryId}/replay`,
      body: () => ({}),
      other: (c) => ({ url: `${c.base}/webhook_endpoints/${c.endpointId}/rotate_secret`, body: {} }),
      state: hookState,
      verify: async (c, reply, _before, after) => {
        expect(reply.body).toMatchObject({ id: c.deliveryId, status: 'pending', next_attempt_at: clock.now().toISOString() });
        expect(after.deliveries.map((d: any) => d.id)).toEqual([c.deliveryId]);
      },
    }),
  );
}

describe('every POST replays with the same Idempotency-Key', () => {
  it('has a case for every POST route of the OpenAPI document', async () => {
    const doc = await api.get('/openapi.json', { token: null });
    expect(doc.status).toBe(200);
    const posts = Object.entries<Record<string, unknown>>(doc.body.paths).filter(([, ops]) => 'post' in ops).map(([path]) => path);
    expect(posts.length).toBeGreaterThan(0);
    expect([...CASES.map((c) => c.path), ...Object.keys(NOT_REPLAYED)].sort()).toEqual(posts.sort());
  });

  it(`POST /v1/dashboard/sessions: ${NOT_REPLAYED['/v1/dashboard/sessions']}`, async () => {
    const key = idemKey('sign-in');
    const first = await api.post('/v1/dashboard/sessions', { admin_token: ADMIN_TOKEN }, { token: null, idempotencyKey: key });
    const second = await api.post('/v1/dashboard/sessions', { admin_token: ADMIN_TOKEN }, { token: null, idempotencyKey: key });
    for (const r of [first, second]) {
      expect(r.status).toBe(201);
      expect(r.headers.get('idempotent-replayed')).toBeNull();
    }
    expect(second.headers.get('set-cookie')).not.toBe(first.headers.get('set-cookie'));
    expect(second.body.csrf_token).not.toBe(first.body.csrf_token);
  });

  for (const c of CASES) {
    it(`POST ${c.path}: same key and request replays without a second effect; another request is 409`, async () => {
      const ctx = await c.setup();
      const token = c.token?.(ctx);
      const key = idemKey('route');
      const before = await c.state(ctx);

      const first = await api.post(c.url(ctx), c.body(ctx), { token, idempotencyKey: key });
      expect(first.status, JSON.stringify(first.body)).toBe(c.status);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      const after = await c.state(ctx);
      expect(after).not.toEqual(before);
      await c.verify(ctx, first, before, after);

      for (let i = 0; i < 2; i++) {
        const replay = await api.post(c.url(ctx), c.body(ctx), { token, idempotencyKey: key });
        expect(replay.status).toBe(first.status);
        expect(replay.body).toEqual(first.body);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(await c.state(ctx)).toEqual(after);
      }

      const other = c.other(ctx);
      const reused = await api.post(other.url, other.body, { token, idempotencyKey: key });
      expectProblem(reused, 409, 'idempotency_key_reused');
      expect(reused.headers.get('idempotent-replayed')).toBeNull();
      expect(await c.state(ctx)).toEqual(after);

      // The key stays bound to the first request.
      const again = await api.post(c.url(ctx), c.body(ctx), { token, idempotencyKey: key });
      expect(again.body).toEqual(first.body);
    });
  }
});

describe('what counts as the same request', () => {
  it('the same fields in another order, and a release with no body or {}, are the same request', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const key = idemKey('order');
    const first = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } }, { idempotencyKey: key });
    const reordered = await api.post('/v1/authorize', { estimate: { megapixels: 4 }, product: 'fal-ai/flux/dev', api_key: c.apiKey }, { idempotencyKey: key });
    expect(first.status).toBe(200);
    expect(reordered.status).toBe(200);
    expect(reordered.headers.get('idempotent-replayed')).toBe('true');
    expect(reordered.body).toEqual(first.body);

    const releaseKey = idemKey('release');
    const released = await api.post(`/v1/reservations/${first.body.reservation.id}/release`, undefined, { idempotencyKey: releaseKey });
    const again = await api.post(`/v1/reservations/${first.body.reservation.id}/release`, {}, { idempotencyKey: releaseKey });
    expect(released.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(released.body);
  });
});

describe('keys are scoped to the caller', () => {
  it('the admin and a customer key using the same Idempotency-Key are independent', async () => {
    const c = await createCustomer(api);
    const key = idemKey('shared');
    const byAdmin = await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'same' }, { idempotencyKey: key });
    const byCustomer = await api.post('/v1/me/api_keys', { name: 'same' }, { token: c.apiKey, idempotencyKey: key });
    expect(byAdmin.status).toBe(201);
    expect(byCustomer.status).toBe(201);
    expect(byCustomer.headers.get('idempotent-replayed')).toBeNull();
    expect(byCustomer.body.id).not.toBe(byAdmin.body.id);
    expect(byCustomer.body.secret).not.toBe(byAdmin.body.secret);
    expect(idsOf(await listAll(`/v1/customers/${c.customerId}/api_keys`))).toEqual([c.apiKeyId, byAdmin.body.id, byCustomer.body.id].sort());

    // Each caller replays its own reply.
    expect((await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'same' }, { idempotencyKey: key })).body).toEqual(byAdmin.body);
    expect((await api.post('/v1/me/api_keys', { name: 'same' }, { token: c.apiKey, idempotencyKey: key })).body).toEqual(byCustomer.body);
    // A key the admin used on another route is no "reused" key for the customer, and the other way round.
    const adminOnCustomers = await api.post('/v1/customers', { name: 'Scoped', currency: 'USD' }, { idempotencyKey: idemKey('x') });
    expect(adminOnCustomers.status).toBe(201);
  });

  it('two customers, and two keys of one customer, using the same Idempotency-Key are independent', async () => {
    const a = await createCustomer(api);
    const b = await createCustomer(api);
    const a2 = (await api.post(`/v1/customers/${a.customerId}/api_keys`, { name: 'a2' })).body;
    const key = idemKey('shared');
    const body = { name: 'from the dashboard' };
    const byA = await api.post('/v1/me/api_keys', body, { token: a.apiKey, idempotencyKey: key });
    const byB = await api.post('/v1/me/api_keys', body, { token: b.apiKey, idempotencyKey: key });
    const byA2 = await api.post('/v1/me/api_keys', body, { token: a2.secret, idempotencyKey: key });
    for (const r of [byA, byB, byA2]) {
      expect(r.status).toBe(201);
      expect(r.headers.get('idempotent-replayed')).toBeNull();
    }
    expect(byA.body.customer_id).toBe(a.customerId);
    expect(byA2.body.customer_id).toBe(a.customerId);
    expect(byB.body.customer_id).toBe(b.customerId);
    expect(new Set([byA.body.id, byB.body.id, byA2.body.id]).size).toBe(3);
    expect(idsOf(await listAll(`/v1/customers/${b.customerId}/api_keys`))).toEqual([b.apiKeyId, byB.body.id].sort());
    expect(idsOf(await listAll(`/v1/customers/${a.customerId}/api_keys`))).toEqual([a.apiKeyId, a2.id, byA.body.id, byA2.body.id].sort());

    const replayB = await api.post('/v1/me/api_keys', body, { token: b.apiKey, idempotencyKey: key });
    expect(replayB.headers.get('idempotent-replayed')).toBe('true');
    expect(replayB.body).toEqual(byB.body);
    // B using the key with another request is B's own conflict; A's reply is untouched.
    expectProblem(await api.post('/v1/me/api_keys', { name: 'other' }, { token: b.apiKey, idempotencyKey: key }), 409, 'idempotency_key_reused');
    expect((await api.post('/v1/me/api_keys', body, { token: a.apiKey, idempotencyKey: key })).body).toEqual(byA.body);
  });
});

describe('refusals are not stored', () => {
  it('authorize refused for insufficient funds succeeds with the same key once credit is granted', async () => {
    const c = await createCustomer(api, { credit: '0.05' });
    const key = idemKey('refused');
    const body = { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } };
    const refused = await api.post('/v1/authorize', body, { idempotencyKey: key });
    expectProblem(refused, 402, 'insufficient_funds');
    expect(refused.body.available).toBe('0.05');
    // The refusal is not replayed either.
    expectProblem(await api.post('/v1/authorize', body, { idempotencyKey: key }), 402, 'insufficient_funds');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.05', held: '0.00' });

    expect((await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00' })).status).toBe(201);
    const retried = await api.post('/v1/authorize', body, { idempotencyKey: key });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(retried.body).toMatchObject({ authorized: true, available_after: '0.95' });
    const replay = await api.post('/v1/authorize', body, { idempotencyKey: key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(retried.body);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '0.95', held: '0.10', posted: '1.05' });
  });

  it('a refused create (conflict) leaves the key free for a corrected request', async () => {
    const taken = unique('ext');
    expect((await api.post('/v1/customers', { name: 'First', external_id: taken, currency: 'USD' })).status).toBe(201);
    const key = idemKey('conflict');
    expectProblem(await api.post('/v1/customers', { name: 'Second', external_id: taken, currency: 'USD' }, { idempotencyKey: key }), 409, 'conflict');
    const fixed = await api.post('/v1/customers', { name: 'Second', external_id: unique('ext'), currency: 'USD' }, { idempotencyKey: key });
    expect(fixed.status).toBe(201);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
  });

  it('a request refused by validation leaves the key free for the corrected request', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const rid = await authorized(c, 4);
    const key = idemKey('settle');
    expectProblem(await api.post(`/v1/reservations/${rid}/settle`, { usage: { megapixels: -1 } }, { idempotencyKey: key }), 400, 'invalid_request');
    const settled = await api.post(`/v1/reservations/${rid}/settle`, { usage: { megapixels: 4 } }, { idempotencyKey: key });
    expect(settled.status).toBe(200);
    expect(settled.headers.get('idempotent-replayed')).toBeNull();
    expect(settled.body).toMatchObject({ charged: '0.10', released: '0.00' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.90', held: '0.00', posted: '9.90' });
  });
});

describe('POST /v1/events: an envelope refusal is not stored, a 200 with rejected events is', () => {
  it('a 400 for the body as a whole leaves the key free for the corrected batch', async () => {
    const c = { ...(await createCustomer(api, { credit: '10.00' })), source: `idem/${unique('gw')}` };
    const key = idemKey('events-refused');
    const before = await eventStateOf(c.customerId);
    expectProblem(await api.post('/v1/events', [], { idempotencyKey: key }), 400, 'invalid_request');
    expectProblem(await api.post('/v1/events', [], { idempotencyKey: key }), 400, 'invalid_request');
    expect(await eventStateOf(c.customerId)).toEqual(before);
    const fixed = await api.post('/v1/events', [usageEvent(c, 'job-1', { megapixels: 4 })], { idempotencyKey: key });
    expect(fixed.status, JSON.stringify(fixed.body)).toBe(200);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
    expect(fixed.body.data).toEqual([expect.objectContaining({ id: 'job-1', status: 'accepted' })]);
    expect((await eventStateOf(c.customerId)).balance).toMatchObject({ posted: '9.90' });
  });

  it('per-event rejections are part of a 200, which replays as sent even after the cause is fixed', async () => {
    // The subject is an external_id nobody has yet: customer_not_found, in a 200.
    const externalId = unique('ext');
    const src = { customerId: externalId, source: `idem/${unique('gw')}` } as Fixture & { source: string };
    const batch = [usageEvent(src, 'job-1', { megapixels: 4 })];
    const key = idemKey('events-rejected');
    const first = await api.post('/v1/events', batch, { idempotencyKey: key });
    expect(first.status).toBe(200);
    expect(first.body.data).toEqual([expect.objectContaining({ id: 'job-1', status: 'rejected', code: 'customer_not_found' })]);

    const created = await api.post('/v1/customers', { name: 'Late', external_id: externalId, currency: 'USD' });
    expect(created.status).toBe(201);
    expect((await api.post(`/v1/customers/${created.body.id}/credit_grants`, { amount: '1.00' })).status).toBe(201);
    const replay = await api.post('/v1/events', batch, { idempotencyKey: key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect(await listAll(`/v1/events?customer=${created.body.id}`)).toEqual([]);
    // The same events under a new key (or none) are a new request: now accepted, once.
    const resent = await api.post('/v1/events', batch, { idempotencyKey: idemKey('events-resent') });
    expect(resent.body.data).toEqual([expect.objectContaining({ id: 'job-1', status: 'accepted' })]);
    expect((await api.post('/v1/events', batch)).body.data).toEqual([expect.objectContaining({ id: 'job-1', status: 'duplicate', event: resent.body.data[0].event })]);
    expect(await balanceOf(api, created.body.id)).toMatchObject({ posted: '0.90' });
  });
});

describe('a replay answers the first reply even when things changed since', () => {
  it('authorize replays after the key was revoked, without a second hold', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const key = idemKey('revoked');
    const body = { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } };
    const first = await api.post('/v1/authorize', body, { idempotencyKey: key });
    expect(first.status).toBe(200);
    expect((await api.delete(`/v1/api_keys/${c.apiKeyId}`)).body.status).toBe('revoked');

    // The gateway lost the first reply and retries: it must learn the reservation it holds.
    const replay = await api.post('/v1/authorize', body, { idempotencyKey: key });
    expect(replay.status, JSON.stringify(replay.body)).toBe(200);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.90', held: '0.10' });
    // A new request with the revoked key is still refused.
    expectProblem(await api.post('/v1/authorize', body, { idempotencyKey: idemKey('new') }), 401, 'invalid_api_key');
    expectProblem(await api.post('/v1/authorize', { ...body, estimate: { megapixels: 1 } }, { idempotencyKey: key }), 409, 'idempotency_key_reused');
  });

  it('a credit grant replays after its expires_at has passed', async () => {
    const c = await createCustomer(api);
    const key = idemKey('expiring');
    const body = { amount: '3.00', expires_at: new Date(clock.now().getTime() + 3_600_000).toISOString() };
    const first = await api.post(`/v1/customers/${c.customerId}/credit_grants`, body, { idempotencyKey: key });
    expect(first.status).toBe(201);
    clock.advance(2 * 3_600_000);
    try {
      const replay = await api.post(`/v1/customers/${c.customerId}/credit_grants`, body, { idempotencyKey: key });
      expect(replay.status, JSON.stringify(replay.body)).toBe(201);
      expect(replay.body).toEqual(first.body);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(idsOf(await listAll(`/v1/customers/${c.customerId}/credit_grants`))).toEqual([first.body.id]);
    } finally {
      clock.set(new Date());
    }
  });
});

describe('concurrent duplicates', () => {
  const parallel = 20;
  const expectOneEffect = (replies: ApiResponse[], status: number) => {
    // The implementation waits for the first request with the key to commit and replays it to the
    // others (it never answers idempotency_key_in_use): one fresh reply, the rest replays of it.
    for (const r of replies) {
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body).toEqual(replies[0].body);
    }
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(parallel - 1);
  };

  it(`${parallel} identical authorizes with one key hold once; other requests in the same batches are unaffected`, async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const bystander = await createCustomer(api, { credit: '10.00' });
    const key = idemKey('race');
    const body = { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } };
    const [dupes, others] = await Promise.all([
      Promise.all(Array.from({ length: parallel }, () => api.post('/v1/authorize', body, { idempotencyKey: key }))),
      Promise.all(Array.from({ length: 5 }, (_, i) => api.post('/v1/authorize', { ...body, api_key: bystander.apiKey }, { idempotencyKey: idemKey(`bystander${i}`) }))),
    ]);
    expectOneEffect(dupes, 200);
    expect(dupes[0].body).toMatchObject({ authorized: true, customer: c.customerId, available_after: '9.90' });
    const ledger = await ledgerOf(c.customerId);
    expect(ledger.balance).toMatchObject({ available: '9.90', held: '0.10', posted: '10.00' });
    expect(ledger.transactions).toHaveLength(2); // the grant and one hold
    for (const r of others) expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(new Set(others.map((r) => r.body.reservation.id)).size).toBe(5);
    expect(await balanceOf(api, bystander.customerId)).toMatchObject({ available: '9.50', held: '0.50' });
  });

  it(`${parallel} identical credit grants with one key grant once`, async () => {
    const c = await createCustomer(api, { credit: '1.00' });
    const key = idemKey('race');
    const replies = await Promise.all(
      Array.from({ length: parallel }, () => api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '0.75', category: 'purchased' }, { idempotencyKey: key })),
    );
    expectOneEffect(replies, 201);
    const ledger = await ledgerOf(c.customerId);
    expect(ledger.balance).toMatchObject({ available: '1.75', held: '0.00', posted: '1.75' });
    expect(ledger.grants).toHaveLength(2);
    expect(ledger.grants).toContain(replies[0].body.id);
  });

  it(`${parallel} identical settles and customer creations with one key apply once`, async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const rid = await authorized(c, 4);
    const settleKey = idemKey('race');
    const settles = await Promise.all(
      Array.from({ length: parallel }, () => api.post(`/v1/reservations/${rid}/settle`, { usage: { megapixels: 2 } }, { idempotencyKey: settleKey })),
    );
    expectOneEffect(settles, 200);
    expect(settles[0].body).toMatchObject({ charged: '0.05', released: '0.05' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.95', held: '0.00', posted: '9.95' });

    const before = idsOf(await listAll('/v1/customers'));
    const externalId = unique('ext');
    const createKey = idemKey('race');
    const creations = await Promise.all(
      Array.from({ length: parallel }, () => api.post('/v1/customers', { name: 'Raced', external_id: externalId, currency: 'USD' }, { idempotencyKey: createKey })),
    );
    expectOneEffect(creations, 201);
    expect(idsOf(await listAll('/v1/customers'))).toEqual([...before, creations[0].body.id].sort());
  });
});

describe('concurrent duplicates of POST /v1/events', () => {
  const parallel = 20;
  it(`${parallel} identical batches with one key record and charge once, and all get the same reply`, async () => {
    const c = { ...(await createCustomer(api, { credit: '10.00' })), source: `idem/${unique('gw')}` };
    const key = idemKey('events-race');
    const batch = [usageEvent(c, 'job-1', { megapixels: 4 }), usageEvent(c, 'job-2', { megapixels: 2 })];
    const replies = await Promise.all(Array.from({ length: parallel }, () => api.post('/v1/events', batch, { idempotencyKey: key })));
    for (const r of replies) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toEqual(replies[0].body);
    }
    // The key is reserved before the events are written: the others wait for the first and replay it.
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(parallel - 1);
    const state = await eventStateOf(c.customerId);
    expect(state.events.map((e: any) => e.event_id)).toEqual(['job-1', 'job-2']);
    expect(replies[0].body.data.map((r: any) => r.event).sort()).toEqual(state.events.map((e: any) => e.id).sort());
    expect(state.balance).toMatchObject({ available: '9.85', posted: '9.85' });
    expect(state.transactions).toHaveLength(2); // the grant and one charge
    const replay = await api.post('/v1/events', batch, { idempotencyKey: key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(replies[0].body);
  });

  it(`${parallel} batches with one key, half of them another request: one runs, the same request replays it, the other is 409`, async () => {
    const c = { ...(await createCustomer(api, { credit: '10.00' })), source: `idem/${unique('gw')}` };
    const key = idemKey('events-race-mixed');
    const bodies = [[usageEvent(c, 'job-1', { megapixels: 4 })], [usageEvent(c, 'job-2', { megapixels: 2 })]];
    const replies = await Promise.all(Array.from({ length: parallel }, (_, i) => api.post('/v1/events', bodies[i % 2], { idempotencyKey: key })));
    const fresh = replies.filter((r) => r.status === 200 && r.headers.get('idempotent-replayed') !== 'true');
    expect(fresh).toHaveLength(1);
    const ran = replies.indexOf(fresh[0]!) % 2;
    replies.forEach((r, i) => {
      if (i % 2 === ran) expect(r.body).toEqual(fresh[0]!.body);
      else expectProblem(r, 409, 'idempotency_key_reused');
    });
    const state = await eventStateOf(c.customerId);
    expect(state.events.map((e: any) => e.event_id)).toEqual([ran === 0 ? 'job-1' : 'job-2']);
    expect(state.transactions).toHaveLength(2); // the grant and one charge
  });

  it('a key left in flight by a crashed process is taken over after a minute; a fresh one is 409 in use; no key is left claimed', async () => {
    const c = { ...(await createCustomer(api, { credit: '10.00' })), source: `idem/${unique('gw')}` };
    const [stale, fresh] = [idemKey('events-stale'), idemKey('events-fresh')];
    // What replayOrRun (NATS mode, or a process before this version) leaves when it dies mid-request.
    await server.database.db.query(
      `INSERT INTO idempotency_keys (principal, key, request_hash, status_code, response_body, created_at)
       VALUES ('admin', $1, 'crashed', 0, 'null', now() - interval '2 minutes'), ('admin', $2, 'running', 0, 'null', now())`,
      [stale, fresh],
    );
    const batch = [usageEvent(c, 'job-1', { megapixels: 4 })];
    expectProblem(await api.post('/v1/events', batch, { idempotencyKey: fresh }), 409, 'idempotency_key_in_use');
    const taken = await api.post('/v1/events', batch, { idempotencyKey: stale });
    expect(taken.status, JSON.stringify(taken.body)).toBe(200);
    expect(taken.headers.get('idempotent-replayed')).toBeNull();
    expect(taken.body.data).toEqual([expect.objectContaining({ id: 'job-1', status: 'accepted' })]);
    const replay = await api.post('/v1/events', batch, { idempotencyKey: stale });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(taken.body);
    expect((await eventStateOf(c.customerId)).events.map((e: any) => e.event_id)).toEqual(['job-1']);
    // A claim lives only inside its transaction: what is committed is always a reply (or replayOrRun's reservation).
    expect(await server.database.db.query('SELECT key FROM idempotency_keys WHERE status_code < 0')).toEqual([]);
  });
});

describe('the Idempotency-Key header', () => {
  it('is refused when empty or longer than 255 characters, before any effect', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const before = await ledgerOf(c.customerId);
    const customersBefore = idsOf(await listAll('/v1/customers'));
    for (const value of ['', 'k'.repeat(256)]) {
      const headers = { 'idempotency-key': value };
      expectProblem(await api.post('/v1/customers', { name: 'Bad key', currency: 'USD' }, { headers }), 400, 'invalid_request');
      expectProblem(await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } }, { headers }), 400, 'invalid_request');
      expectProblem(await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00' }, { headers }), 400, 'invalid_request');
      expectProblem(await api.post('/v1/me/api_keys', { name: 'x' }, { token: c.apiKey, headers }), 400, 'invalid_request');
    }
    expect(await ledgerOf(c.customerId)).toEqual(before);
    expect(idsOf(await listAll('/v1/customers'))).toEqual(customersBefore);
    expect(idsOf(await listAll(`/v1/customers/${c.customerId}/api_keys`))).toEqual([c.apiKeyId]);
  });

  it('accepts 255 characters', async () => {
    const key = 'k'.repeat(250) + unique('').slice(-5);
    expect(key).toHaveLength(255);
    const first = await api.post('/v1/customers', { name: 'Long key', currency: 'USD' }, { idempotencyKey: key });
    expect(first.status).toBe(201);
    const replay = await api.post('/v1/customers', { name: 'Long key', currency: 'USD' }, { idempotencyKey: key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
  });
});
