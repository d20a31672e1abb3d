import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSecret } from '../support/log-capture.js';
import { ADMIN_TOKEN, startServer, type ApiResponse, type RequestOptions, type TestServer } from '../support/harness.js';
import { balanceOf as balanceOfVia, createCustomer, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';
import { AMOUNT_MAX, LEDGER_SCALE } from '../../src/platform/money.js';
import { CloudEvent, EVENTS_PER_REQUEST_MAX } from '../../src/metering/schemas.js';

/**
 * Bad input on every route -> 4xx problem+json, never a 5xx. The route list comes from the
 * OpenAPI document, so a new route is covered (or, for a route with a body, refused until it has
 * a valid body below) without anyone remembering to add it here.
 */

let server: TestServer;
let doc: any;
let operations: Operation[];
/** The customer whose key calls /v1/me; it has credit and a second key. */
let me: Fixture;
let meExternalId: string;
let meSecondKeyId: string;
/** Another customer, whose key ids must be unknown to `me`. */
let other: Fixture;
/** A customer with credit whose key the authorize and settle cases spend. */
let payer: Fixture;
/** A USD customer the price cases attach overrides to (so they never change anyone else's prices). */
let priceCustomerId: string;
let priceId: string;
let reservationId: string;
/** A draft invoice of `me`, and one of `other`. */
let invoiceId: string;
let otherInvoiceId: string;
/** A webhook endpoint of `me` (made with its key) with one delivery, and the same for `other`. */
let hook: { endpointId: string; deliveryId: string };
let otherHook: { endpointId: string; deliveryId: string };

interface Operation {
  method: string;
  /** The OpenAPI path, e.g. /v1/customers/{id}. */
  path: string;
  op: any;
  token: string | null;
  /** The dashboard routes: an operator's session cookie and its CSRF token instead of a bearer token. */
  headers?: Record<string, string>;
}

beforeAll(async () => {
  server = await startServer();
  await seedCatalog(server.api);
  me = await createCustomer(server.api, { credit: '100.00' });
  other = await createCustomer(server.api, { credit: '1.00' });
  payer = await createCustomer(server.api, { credit: '100000.00' });
  meExternalId = (await ok(server.api.get(`/v1/customers/${me.customerId}`))).external_id;
  meSecondKeyId = await newKey(me.customerId);
  priceCustomerId = await newCustomer({});
  priceId = (await ok(server.api.get('/v1/prices?limit=1'))).data[0].id;
  reservationId = await newReservation();
  invoiceId = await newInvoice();
  otherInvoiceId = (await server.app.services.invoices.draft(other.customerId, '2020-01')).invoice.id;
  hook = await newHook(me);
  otherHook = await newHook(other);
  const openapi = await server.api.get('/openapi.json', { token: null });
  expect(openapi.status).toBe(200);
  doc = openapi.body;
  const signedIn = await server.api.post('/v1/dashboard/sessions', { admin_token: ADMIN_TOKEN }, { token: null });
  expect(signedIn.status).toBe(201);
  const cookie = { cookie: signedIn.headers.get('set-cookie')!.split(';')[0]!, 'x-csrf-token': signedIn.body.csrf_token as string };
  recordSecret(cookie.cookie.split('=')[1]);
  operations = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
    Object.entries<any>(item)
      .filter(([method]) => ['get', 'post', 'patch', 'put', 'delete'].includes(method))
      .map(([method, op]) => (isCookieRoute(op) ? { method: method.toUpperCase(), path, op, token: null, headers: isSignIn(op) ? {} : cookie } : { method: method.toUpperCase(), path, op, token: isMe(path) ? me.apiKey : ADMIN_TOKEN })),
  );
});
afterAll(() => server?.close());

// ---------------------------------------------------------------------------------------------
// Fixtures

let seq = 0;
const unique = (prefix: string) => `${prefix}_${process.pid}_${Date.now().toString(36)}_${++seq}`;
const FUTURE = '2099-01-01T00:00:00Z';

const balanceOf = (customerId: string) => balanceOfVia(server.api, customerId);

async function ok(request: Promise<ApiResponse>): Promise<any> {
  const r = await request;
  if (r.status >= 300) throw new Error(`fixture request failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function newCustomer(extra: Record<string, unknown>): Promise<string> {
  return (await ok(server.api.post('/v1/customers', { name: 'Bad input', external_id: unique('ext'), currency: 'USD', ...extra }))).id;
}

async function newKey(customerId: string): Promise<string> {
  return (await ok(server.api.post(`/v1/customers/${customerId}/api_keys`, { name: 'spare' }))).id;
}

let invoicePeriods = 0;
/** A fresh draft invoice of `me` for an empty period long past (drafted as a billing run does). */
async function newInvoice(): Promise<string> {
  const n = invoicePeriods++;
  const period = `${1900 + Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, '0')}`;
  return (await server.app.services.invoices.draft(me.customerId, period)).invoice.id;
}

/** A finalized invoice that owes 1.00 (an empty one would be paid at finalization). */
const newOwedInvoice = async () => (await owedInvoice(server, new Date())).invoiceId;
/** An endpoint of the customer (through /v1/me) and a delivery to it, of a key created after it. */
async function newHook(f: Fixture) {
  const endpoint = await ok(server.api.post('/v1/me/webhook_endpoints', { url: HOOK_URL }, { token: f.apiKey }));
  await newKey(f.customerId);
  await server.app.services.webhookDispatcher.runOnce();
  const deliveries = await ok(server.api.get(`/v1/webhook_endpoints/${endpoint.id}/deliveries`));
  return { endpointId: endpoint.id as string, deliveryId: deliveries.data[0].id as string };
}
const HOOK_URL = 'http://127.0.0.1:9/hooks';
const newEndpoint = async () => (await ok(server.api.post('/v1/me/webhook_endpoints', { url: HOOK_URL }, { token: me.apiKey }))).id as string;

async function newReservation(): Promise<string> {
  return (await ok(server.api.post('/v1/authorize', { api_key: payer.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: '1' } }))).reservation.id;
}

/** A real value for each path parameter of an operation (the resource exists and the caller may see it). */
function realParams(operation: Operation): Record<string, string> {
  const params: Record<string, string> = {};
  for (const p of pathParams(operation)) {
    if (p.name === 'external_id') params[p.name] = meExternalId;
    else if (p.name === '*') params[p.name] = 'fal-ai/flux/dev';
    else {
      const prefix = idPrefixOf(p);
      params[p.name] = { cus: me.customerId, key: isMe(operation.path) ? meSecondKeyId : me.apiKeyId, res: reservationId, pri: priceId, inv: invoiceId, whe: hook.endpointId, whd: hook.deliveryId }[prefix as string] ?? '';
      if (!params[p.name]) throw new Error(`no real id for ${operation.method} ${operation.path} ${p.name}`);
    }
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// A valid request per body route: each refusal below changes one thing in it.

interface BodySpec {
  /** Path parameters of a target the valid body succeeds on (fresh where success changes state). */
  target: () => Promise<Record<string, string>>;
  valid: () => Record<string, unknown> | unknown[] | undefined;
  okStatus: number;
  /** An empty body is a valid call (release). */
  emptyBodyOk?: boolean;
  /** The route's body limit, when not the default 1 MiB. */
  bodyLimit?: number;
  /**
   * Set (to the reason) when the body is an envelope of items each validated on its own: a bad
   * item is answered in a 2xx, item by item, not refused as a 400 naming a field. The
   * schema-derived field checks below then only apply to the envelope; the items get their own
   * checks (see 'usage events, one by one').
   */
  itemsCheckedOneByOne?: string;
  /** Requests that must still answer (200 for GET, < 500 otherwise) after an accepted extreme body. */
  readBack?: (reply: any, params: Record<string, string>) => Array<{ method: string; url: string; body?: unknown; token?: string }>;
}

const none = async () => ({});

const bodySpecs: Record<string, BodySpec> = {
  'POST /v1/customers': {
    target: none,
    valid: () => ({ name: 'Acme', external_id: unique('ext'), email: 'billing@example.com', currency: 'USD', billing_mode: 'postpaid', credit_limit: '10.00', metadata: { plan: 'pro' } }),
    okStatus: 201,
    readBack: (reply) => [{ method: 'GET', url: `/v1/customers/${reply.id}` }, { method: 'GET', url: `/v1/customers/${reply.id}/balance` }, { method: 'GET', url: '/v1/customers?limit=100' }],
  },
  'PATCH /v1/customers/{id}': {
    target: async () => ({ id: await newCustomer({ billing_mode: 'postpaid' }) }),
    valid: () => ({ name: 'Acme 2', external_id: unique('ext'), email: 'ops@example.com', billing_mode: 'postpaid', credit_limit: '20.00', metadata: { plan: 'max' } }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/customers/${p.id}` }, { method: 'GET', url: `/v1/customers/${p.id}/balance` }],
  },
  'POST /v1/customers/{id}/api_keys': {
    target: async () => ({ id: me.customerId }),
    valid: () => ({ name: 'ci', expires_at: FUTURE, spend_limit: { amount: '50.00', period: 'month' }, max_concurrency: 5, rate_limit: 50, rate_limit_max: 100 }),
    okStatus: 201,
    readBack: (reply) => [
      { method: 'GET', url: `/v1/api_keys/${reply.id}` },
      { method: 'POST', url: '/v1/authorize', body: { api_key: reply.secret, product: 'fal-ai/flux/dev', estimate: { megapixels: '1' } } },
    ],
  },
  'PATCH /v1/api_keys/{id}': {
    target: async () => ({ id: await newKey(me.customerId) }),
    valid: () => ({ name: 'renamed', spend_limit: { amount: '5', period: 'day' }, max_concurrency: 3, rate_limit: 10, rate_limit_max: 20 }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/api_keys/${p.id}` }, { method: 'GET', url: `/v1/customers/${me.customerId}/api_keys?limit=100` }],
  },
  'POST /v1/me/api_keys': {
    target: none,
    valid: () => ({ name: 'mine', expires_at: FUTURE, spend_limit: { amount: '1.50', period: 'day' }, max_concurrency: 2, rate_limit: 5 }),
    okStatus: 201,
    readBack: (reply) => [
      { method: 'GET', url: `/v1/me/api_keys/${reply.id}`, token: me.apiKey },
      { method: 'POST', url: '/v1/authorize', body: { api_key: reply.secret, product: 'fal-ai/flux/dev', estimate: { megapixels: '1' } } },
    ],
  },
  'PATCH /v1/me/api_keys/{id}': {
    target: async () => ({ id: await newKey(me.customerId) }),
    valid: () => ({ name: 'mine 2', spend_limit: { amount: '2', period: 'month' }, max_concurrency: 1, rate_limit: 3 }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/me/api_keys/${p.id}`, token: me.apiKey }, { method: 'GET', url: '/v1/me/api_keys?limit=100', token: me.apiKey }],
  },
  'POST /v1/customers/{id}/portal_sessions': {
    target: async () => ({ id: me.customerId }),
    valid: () => ({ expires_in_minutes: 30 }),
    okStatus: 201,
  },
  // Signs the operator in (a new session each time; sent without the shared session's cookie, which a sign-in would end).
  'POST /v1/dashboard/sessions': {
    target: none,
    valid: () => ({ admin_token: ADMIN_TOKEN }),
    okStatus: 201,
    readBack: () => [{ method: 'GET', url: '/v1/customers?limit=1' }],
  },
  'POST /v1/meters': {
    target: none,
    valid: () => ({ key: unique('m'), name: 'Seconds', unit: 'second', aggregation: 'sum' }),
    okStatus: 201,
  },
  'POST /v1/products': {
    target: none,
    valid: () => ({ key: unique('acme/model').toLowerCase(), name: 'Model', description: 'A model' }),
    okStatus: 201,
  },
  'POST /v1/prices': {
    target: none,
    valid: () => ({
      product: 'gpu/h100',
      meter: 'gpu_seconds',
      currency: 'USD',
      scheme: 'graduated',
      tiers: [{ up_to: '3600', unit_amount: '0.001', flat_amount: '0' }, { up_to: null, unit_amount: '0.0005' }],
      customer: priceCustomerId,
      effective_at: '2020-01-01T00:00:00Z',
    }),
    okStatus: 201,
    readBack: (reply) => [{ method: 'GET', url: `/v1/prices/${reply.id}` }, { method: 'GET', url: `/v1/pricing?customer=${priceCustomerId}` }, { method: 'GET', url: '/v1/prices?limit=100' }],
  },
  'POST /v1/customers/{id}/credit_grants': {
    target: async () => ({ id: await newCustomer({}) }),
    valid: () => ({ amount: '5.00', category: 'promotional', priority: 10, expires_at: FUTURE, description: 'welcome' }),
    okStatus: 201,
    readBack: (_r, p) => [
      { method: 'GET', url: `/v1/customers/${p.id}/balance` },
      { method: 'GET', url: `/v1/customers/${p.id}/credit_grants` },
      { method: 'GET', url: `/v1/customers/${p.id}/transactions` },
    ],
  },
  'POST /v1/authorize': {
    target: none,
    valid: () => ({ api_key: payer.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: '1' }, hold_seconds: 60, metadata: { job: unique('job') } }),
    okStatus: 200,
    readBack: (reply) => [{ method: 'GET', url: `/v1/reservations/${reply.reservation.id}` }, { method: 'GET', url: `/v1/customers/${payer.customerId}/balance` }],
  },
  'POST /v1/reservations/{id}/settle': {
    target: async () => ({ id: await newReservation() }),
    valid: () => ({ usage: { megapixels: '0.5' } }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/reservations/${p.id}` }, { method: 'GET', url: `/v1/customers/${payer.customerId}/transactions` }],
  },
  'POST /v1/invoices/{id}/finalize': {
    target: async () => ({ id: await newInvoice() }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/invoices/{id}/void': {
    target: async () => ({ id: await newOwedInvoice() }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/invoices/{id}/mark_uncollectible': {
    target: async () => ({ id: await newOwedInvoice() }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/invoices/{id}/mark_paid': {
    target: async () => ({ id: await newOwedInvoice() }),
    valid: () => ({ reference: 'wire 2026-12-03' }),
    okStatus: 200,
    emptyBodyOk: true,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/invoices/${p.id}` }, { method: 'GET', url: '/v1/me/invoices', token: me.apiKey }],
  },
  'POST /v1/invoices/{id}/credit_notes': {
    target: async () => ({ id: await newOwedInvoice() }),
    valid: () => ({ amount: '0.10', reason: 'duplicate', memo: 'counted twice' }),
    okStatus: 201,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/invoices/${p.id}/credit_notes` }, { method: 'GET', url: `/v1/invoices/${p.id}` }],
  },
  'PUT /v1/customers/{id}/billing_settings': {
    target: async () => ({ id: await newCustomer({ billing_mode: 'postpaid' }) }),
    valid: () => ({ tax_rate: '8.875', anchor_day: 15 }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/customers/${p.id}/billing_settings` }],
  },
  'POST /v1/reservations/{id}/release': {
    target: async () => ({ id: await newReservation() }),
    valid: () => ({}),
    okStatus: 200,
    // Release takes no parameters: sending no body at all is the usual call.
    emptyBodyOk: true,
  },
  'POST /v1/events': {
    target: none,
    // One event of the spending customer; a fresh id each time (the same (source, id) again is a
    // 'duplicate', still a 200).
    valid: () => [usageEvent(payer.customerId, { megapixels: '1' })],
    okStatus: 200,
    bodyLimit: 8 * 1024 * 1024,
    itemsCheckedOneByOne:
      'POST /v1/events takes one CloudEvent or an array of up to 1,000 of unknown items; each event is checked on its own and a bad one is a 200 with a per-event "rejected" result (docs/metering.md)',
    readBack: () => [{ method: 'GET', url: `/v1/events?customer=${payer.customerId}&limit=100` }],
  },
  'POST /v1/customers/{id}/top_ups': {
    target: async () => ({ id: me.customerId }),
    valid: () => ({ amount: '25.00' }),
    okStatus: 201,
    readBack: (reply) => [{ method: 'GET', url: `/v1/payments?customer=${reply.customer_id}&limit=100` }],
  },
  'POST /v1/customers/{id}/payments': {
    target: async () => ({ id: await newCustomer({}) }),
    valid: () => ({ amount: '250.00', reference: 'wire 2031-05-14' }),
    okStatus: 201,
    readBack: (_r, p) => [
      { method: 'GET', url: `/v1/payments?customer=${p.id}&limit=100` },
      { method: 'GET', url: `/v1/customers/${p.id}/balance` },
      { method: 'GET', url: `/v1/customers/${p.id}/transactions` },
    ],
  },
  'POST /v1/customers/{id}/card_setups': {
    target: async () => ({ id: me.customerId }),
    valid: () => ({}),
    okStatus: 201,
    emptyBodyOk: true,
  },
  'POST /v1/me/card_setups': {
    target: none,
    valid: () => ({}),
    okStatus: 201,
    emptyBodyOk: true,
  },
  'POST /v1/me/top_ups': {
    target: none,
    valid: () => ({ amount: '10.00' }),
    okStatus: 201,
    readBack: () => [{ method: 'GET', url: '/v1/me/payments?limit=100', token: me.apiKey }],
  },
  // Off: turning auto top-up on needs a saved card (409 payment_method_required, still a 4xx).
  'PUT /v1/customers/{id}/auto_top_up': {
    target: async () => ({ id: await newCustomer({}) }),
    valid: () => ({ enabled: false, threshold: '10.00', amount: '50.00' }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/customers/${p.id}/auto_top_up` }],
  },
  'PUT /v1/me/auto_top_up': {
    target: none,
    valid: () => ({ enabled: false, threshold: '10000.00', amount: '1.00' }),
    okStatus: 200,
    readBack: () => [{ method: 'GET', url: '/v1/me/auto_top_up', token: me.apiKey }],
  },
  'POST /v1/webhook_endpoints': {
    target: none,
    valid: () => ({ url: HOOK_URL, event_types: ['balance.low', 'customer.created'], description: 'ops', enabled: true, customer: me.customerId }),
    okStatus: 201,
    readBack: (reply) => [{ method: 'GET', url: `/v1/webhook_endpoints/${reply.id}` }, { method: 'GET', url: '/v1/webhook_endpoints?limit=100' }],
  },
  'PATCH /v1/webhook_endpoints/{id}': {
    target: async () => ({ id: await newEndpoint() }),
    valid: () => ({ url: `${HOOK_URL}/2`, event_types: [], description: 'renamed', enabled: false }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/webhook_endpoints/${p.id}` }],
  },
  'POST /v1/webhook_endpoints/{id}/rotate_secret': {
    target: async () => ({ id: await newEndpoint() }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/webhook_endpoints/{id}/replay': {
    target: async () => ({ id: hook.endpointId }),
    valid: () => ({ from: '2020-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/webhook_endpoints/${p.id}/deliveries?limit=100` }],
  },
  'POST /v1/webhook_deliveries/{id}/replay': {
    target: async () => ({ id: hook.deliveryId }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/me/webhook_endpoints': {
    target: none,
    valid: () => ({ url: HOOK_URL, event_types: ['balance.low', 'customer.created'], description: 'ops', enabled: true }),
    okStatus: 201,
    readBack: (reply) => [{ method: 'GET', url: `/v1/me/webhook_endpoints/${reply.id}`, token: me.apiKey }, { method: 'GET', url: '/v1/me/webhook_endpoints?limit=100', token: me.apiKey }],
  },
  'PATCH /v1/me/webhook_endpoints/{id}': {
    target: async () => ({ id: await newEndpoint() }),
    valid: () => ({ url: `${HOOK_URL}/2`, event_types: [], description: 'renamed', enabled: false }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/me/webhook_endpoints/${p.id}`, token: me.apiKey }],
  },
  'POST /v1/me/webhook_endpoints/{id}/rotate_secret': {
    target: async () => ({ id: await newEndpoint() }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'POST /v1/me/webhook_endpoints/{id}/replay': {
    target: async () => ({ id: hook.endpointId }),
    valid: () => ({ from: '2020-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/me/webhook_endpoints/${p.id}/deliveries?limit=100`, token: me.apiKey }],
  },
  'POST /v1/me/webhook_deliveries/{id}/replay': {
    target: async () => ({ id: hook.deliveryId }),
    valid: () => ({}),
    okStatus: 200,
    emptyBodyOk: true,
  },
  'PUT /v1/customers/{id}/alert_settings': {
    target: async () => ({ id: await newCustomer({}) }),
    valid: () => ({ balance_low: '5.00', spend_day: '10', spend_month: '100.5' }),
    okStatus: 200,
    readBack: (_r, p) => [{ method: 'GET', url: `/v1/customers/${p.id}/alert_settings` }],
  },
  'PUT /v1/me/alert_settings': {
    target: none,
    valid: () => ({ balance_low: '5.00', spend_day: '10', spend_month: '100.5' }),
    okStatus: 200,
    readBack: () => [{ method: 'GET', url: '/v1/me/alert_settings', token: me.apiKey }],
  },
};

/** A CloudEvent of usage (docs/metering.md) with a fresh id. */
function usageEvent(subject: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { specversion: '1.0', id: unique('evt'), source: 'bad-input/gateway', type: 'usage', subject, data: { product: 'fal-ai/flux/dev', ...data }, ...extra };
}

/** A valid query per GET route that needs one (its required parameters); the query checks change one parameter of it. */
const validQueries: Record<string, () => string> = {
  'GET /v1/usage': () => usageRange(),
  'GET /v1/me/usage': () => usageRange(),
  'GET /v1/balances': () => `customers=${me.customerId},${other.customerId}`,
};
function usageRange(): string {
  const day = 86_400_000;
  const today = Math.floor(Date.now() / day) * day;
  return `from=${new Date(today - day).toISOString()}&to=${new Date(today + 2 * day).toISOString()}`;
}
/** The valid query of a route with `name` set to `value` (raw, already encoded), or removed (value null). */
function queryWith(o: Operation, name: string, value: string | null): string {
  const parts = (validQueries[keyOf(o)]?.() ?? '').split('&').filter((part) => part !== '' && part.split('=')[0] !== name);
  return [...parts, ...(value === null ? [] : [`${name}=${value}`])].join('&');
}

// ---------------------------------------------------------------------------------------------
// Expectations, collected so one run reports every route that misbehaves.

/** code -> status, from the table in docs/api.md: the only codes a client is told about. */
const DOCUMENTED_CODES: Map<string, number> = (() => {
  const text = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  return new Map([...text.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]));
})();

/** The per-event rejection codes of docs/metering.md. */
const EVENT_REJECTION_CODES: Set<string> = (() => {
  const text = readFileSync(new URL('../../docs/metering.md', import.meta.url), 'utf8');
  const line = /^Rejection codes:([\s\S]*?)\n\n/m.exec(text)?.[1] ?? '';
  return new Set([...line.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]));
})();

interface Expectation {
  status?: number | number[];
  code?: string | string[];
  /** An `errors` entry with this path (or, given as [field], one ending in that field). */
  path?: string;
  /** The reply must be 2xx or a 4xx problem (for inputs that are odd but may be accepted). */
  anyNon5xx?: boolean;
}

class Findings {
  readonly failures: string[] = [];
  checks = 0;

  check(label: string, r: ApiResponse, expected: Expectation): void {
    this.checks++;
    const issues = problemIssues(r);
    const statuses = expected.status === undefined ? null : ([] as number[]).concat(expected.status);
    if (statuses && !statuses.includes(r.status)) issues.push(`expected status ${statuses.join('|')}`);
    if (!expected.anyNon5xx && !statuses && (r.status < 400 || r.status >= 500)) issues.push('expected a 4xx');
    const codes = expected.code === undefined ? null : ([] as string[]).concat(expected.code);
    if (codes && !codes.includes(r.body?.code)) issues.push(`expected code ${codes.join('|')}`);
    if (expected.path !== undefined) {
      const field = expected.path.split('.').pop()!;
      const paths: string[] = Array.isArray(r.body?.errors) ? r.body.errors.map((e: any) => e?.path) : [];
      if (!paths.some((p) => p === expected.path || p?.startsWith(`${expected.path}.`) || p === field)) issues.push(`expected an errors entry for ${expected.path}`);
    }
    if (issues.length > 0) this.failures.push(`${label}: ${issues.join('; ')} -> ${r.status} ${r.headers.get('content-type')} ${JSON.stringify(r.body)?.slice(0, 400)}`);
  }

  /** Asserts at the end of a test: nothing failed and the test really checked something. */
  assert(minChecks: number): void {
    expect(this.failures).toEqual([]);
    expect(this.checks).toBeGreaterThanOrEqual(minChecks);
  }
}

const isText = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 256;

/** What is wrong with the 2xx reply to a batch of events: one result per event, in order, each well-formed. */
function itemResultIssues(sent: unknown, body: any): string[] {
  const events = Array.isArray(sent) ? sent : [sent];
  const results = body?.data;
  if (!Array.isArray(results) || results.length !== events.length) return [`${events.length} events sent, results ${JSON.stringify(results)?.slice(0, 200)}`];
  const issues: string[] = [];
  results.forEach((x: any, i: number) => {
    const e: any = events[i];
    if (typeof x?.id !== 'string' || typeof x?.source !== 'string') issues.push(`result ${i} has no id/source`);
    else if (isText(e?.id) && isText(e?.source) && (x.id !== e.id || x.source !== e.source)) issues.push(`result ${i} is not the event sent there`);
    if (x?.status === 'rejected') {
      if (!EVENT_REJECTION_CODES.has(x.code)) issues.push(`result ${i}: code ${JSON.stringify(x.code)} is not in docs/metering.md`);
      if (typeof x.message !== 'string' || x.message === '') issues.push(`result ${i}: no message`);
    } else if (x?.status === 'accepted' || x?.status === 'duplicate') {
      if (!/^evt_/.test(x.event ?? '')) issues.push(`result ${i}: ${x.status} without an event id`);
    } else issues.push(`result ${i}: status ${JSON.stringify(x?.status)}`);
  });
  return issues;
}

/** What is wrong with a reply as seen by a client: any 5xx; any non-2xx that is not a well-formed problem. */
function problemIssues(r: ApiResponse): string[] {
  const issues: string[] = [];
  if (r.status >= 500) issues.push(`server error ${r.status}`);
  if (r.status < 300) return issues;
  const contentType = r.headers.get('content-type') ?? '';
  if (!contentType.startsWith('application/problem+json')) issues.push(`content-type ${contentType}`);
  const b = r.body;
  if (b === null || typeof b !== 'object') return [...issues, 'body is not a problem object'];
  if (b.status !== r.status) issues.push(`body.status ${b.status} != ${r.status}`);
  if (typeof b.code !== 'string' || !DOCUMENTED_CODES.has(b.code)) issues.push(`code ${JSON.stringify(b.code)} is not in docs/api.md`);
  else if (DOCUMENTED_CODES.get(b.code) !== r.status) issues.push(`code ${b.code} is documented as ${DOCUMENTED_CODES.get(b.code)}`);
  if (b.type !== `urn:tollgate:error:${b.code}`) issues.push(`type ${JSON.stringify(b.type)}`);
  if (typeof b.title !== 'string' || b.title === '') issues.push('no title');
  if (typeof b.detail !== 'string') issues.push('no detail');
  if (b.errors !== undefined && !(Array.isArray(b.errors) && b.errors.every((e: any) => typeof e?.path === 'string' && typeof e?.message === 'string'))) {
    issues.push('errors is not [{path, message}]');
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Requests

function call(operation: Operation, params: Record<string, string>, body?: unknown, options: RequestOptions & { query?: string } = {}) {
  const url = fill(operation.path, params) + (options.query ? `?${options.query}` : '');
  return server.api.request(operation.method, url, body, { token: operation.token, ...options, headers: { ...operation.headers, ...options.headers } });
}

/** Puts raw (already encoded, possibly malformed) values into an OpenAPI path. */
function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (!(name in params)) throw new Error(`no value for {${name}} in ${path}`);
    return params[name];
  });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The dashboard's sign-in routes: no bearer token (a session cookie, or nothing); dashboard-sessions.test.ts checks their credentials. */
const isCookieRoute = (op: any) => Array.isArray(op.security) && op.security.every((scheme: object) => !('bearer' in scheme));
/** Sign-in takes no credential: a browser's cookie sent with it names a session the sign-in ends. */
const isSignIn = (op: any) => Array.isArray(op.security) && op.security.length === 0;
/** Routes for a customer's own key. */
const isMe = (path: string) => path === '/v1/me' || path.startsWith('/v1/me/');
const keyOf = (o: Operation) => `${o.method} ${o.path}`;
const pathParams = (o: Operation): any[] => (o.op.parameters ?? []).filter((p: any) => p.in === 'path');
const queryParams = (o: Operation): any[] => (o.op.parameters ?? []).filter((p: any) => p.in === 'query');
const bodyOperations = () => operations.filter((o) => o.method === 'POST' || o.method === 'PATCH' || o.method === 'PUT');

function idPrefixOf(param: any): string | null {
  return /^\^([a-z]{2,3})_/.exec(param.schema?.pattern ?? '')?.[1] ?? null;
}

function requestSchema(o: Operation): any | null {
  const schema = o.op.requestBody?.content?.['application/json']?.schema;
  return schema ? deref(schema) : null;
}

function deref(schema: any): any {
  if (schema && typeof schema.$ref === 'string') {
    const target = schema.$ref.replace(/^#\//, '').split('/').reduce((node: any, part: string) => node?.[part], doc);
    if (!target) throw new Error(`unresolved ${schema.$ref}`);
    return deref(target);
  }
  return schema;
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
/** A well-formed id nobody created: the time part is in 1970. */
function unknownId(prefix: string): string {
  let tail = '';
  for (let i = 0; i < 16; i++) tail += CROCKFORD[Math.floor(Math.random() * 32)];
  return `${prefix}_0000000000${tail}`;
}

// ---------------------------------------------------------------------------------------------
// Deriving cases from a JSON schema and a valid value

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | 'null';

function jsonTypeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

function branches(schema: any): any[] {
  const s = deref(schema);
  const alternatives = s?.anyOf ?? s?.oneOf;
  return alternatives ? alternatives.flatMap(branches) : [s];
}

/** The JSON types a schema accepts (null: any). */
function allowedTypes(schema: any): Set<JsonType> | null {
  const out = new Set<JsonType>();
  for (const b of branches(schema)) {
    if (b === undefined || b === true || (typeof b === 'object' && Object.keys(b).length === 0)) return null;
    const types: string[] = b.type ? [].concat(b.type) : b.enum ? b.enum.map(jsonTypeOf) : b.const !== undefined ? [jsonTypeOf(b.const)] : [];
    if (types.length === 0) return null;
    for (const t of types) {
      out.add(t as JsonType);
      if (t === 'number') out.add('integer');
    }
  }
  return out;
}

/** A place in a valid body, with the schema that governs it. */
interface Slot {
  path: string[];
  schema: any;
}

/** Every property slot (present in `value` or declared beside present ones) and every object in a valid value. */
function walk(schema: any, value: unknown, path: string[] = [], slots: Slot[] = [], objects: Slot[] = []) {
  const s = branches(schema).find((b) => {
    const types = allowedTypes(b);
    return types === null || types.has(jsonTypeOf(value));
  });
  if (!s) return { slots, objects };
  if (jsonTypeOf(value) === 'object') {
    const v = value as Record<string, unknown>;
    objects.push({ path, schema: s });
    const declared = s.properties ?? {};
    for (const [k, propSchema] of Object.entries<any>(declared)) {
      slots.push({ path: [...path, k], schema: propSchema });
      if (k in v) walk(propSchema, v[k], [...path, k], slots, objects);
    }
    const extra = typeof s.additionalProperties === 'object' ? s.additionalProperties : null;
    const patterned = s.patternProperties ? Object.values(s.patternProperties)[0] : null;
    for (const k of Object.keys(v)) {
      if (k in declared || !(extra ?? patterned)) continue;
      slots.push({ path: [...path, k], schema: extra ?? patterned });
      walk(extra ?? patterned, v[k], [...path, k], slots, objects);
    }
  } else if (Array.isArray(value) && s.items) {
    value.forEach((item, i) => {
      slots.push({ path: [...path, String(i)], schema: s.items });
      walk(s.items, item, [...path, String(i)], slots, objects);
    });
  }
  return { slots, objects };
}

function setAt(value: unknown, path: string[], replacement: unknown): any {
  const copy = structuredClone(value) as any;
  let node = copy;
  for (const part of path.slice(0, -1)) node = node[part];
  node[path[path.length - 1]] = replacement;
  return copy;
}

function deleteAt(value: unknown, path: string[]): any {
  const copy = structuredClone(value) as any;
  let node = copy;
  for (const part of path.slice(0, -1)) node = node[part];
  delete node[path[path.length - 1]];
  return copy;
}

/** For an amount field: the number of fractional digits its pattern allows, and whether a JSON number is allowed. */
function moneyShape(schema: any): { scale: number; numbers: boolean } | null {
  const all = branches(schema);
  const amount = all.find((b) => b?.type === 'string' && typeof b.pattern === 'string' && /^\^-?\\d/.test(b.pattern));
  if (!amount) return null;
  const scale = Number(/\\\.\\d\{1,(\d+)\}/.exec(amount.pattern)?.[1] ?? 0);
  return { scale, numbers: all.some((b) => b?.type === 'number' || b?.type === 'integer') };
}

const WRONG_TYPED: unknown[] = [12345, 1.5, true, 'text', [], [1], {}, { a: 1 }, null];

const BAD_AMOUNT_STRINGS = [
  '-1', '-0.01', '1e400', '1e3', '99999999999999999999999999999999', 'NaN', 'Infinity', '-Infinity', '1,5', ' 1', '1 ', '+1', '.5', '1.',
  '', '0x10', '1_000', '1.5.5', '１', '١', '1\u0000', '10 USD', '--1', '1e-7', 'null', 'true',
];

// ---------------------------------------------------------------------------------------------

describe('bad input on every route', () => {
  it('reads the route list from /openapi.json, and it is not tiny', () => {
    expect(operations.length).toBeGreaterThanOrEqual(25);
    expect(operations.filter((o) => isMe(o.path)).length).toBeGreaterThanOrEqual(5);
    expect(operations.filter((o) => requestSchema(o)).length).toBeGreaterThanOrEqual(10);
    // Every route that takes a body has a valid body here, so every refusal below is about one change.
    expect(bodyOperations().map(keyOf).sort()).toEqual(Object.keys(bodySpecs).sort());
  });

  it('every valid request used as a baseline succeeds (so each refusal is about the one thing changed)', async () => {
    const f = new Findings();
    for (const o of bodyOperations()) {
      const spec = bodySpecs[keyOf(o)];
      const params = { ...realParams(o), ...(await spec.target()) };
      const r = await call(o, params, spec.valid());
      f.check(`${keyOf(o)} valid body`, r, { status: spec.okStatus });
      if (!(r.headers.get('content-type') ?? '').startsWith('application/json')) f.failures.push(`${keyOf(o)}: success is not application/json`);
    }
    for (const o of operations.filter((x) => x.method === 'GET')) {
      f.check(`${keyOf(o)} with real ids`, await call(o, realParams(o), undefined, { query: validQueries[keyOf(o)]?.() }), { status: 200 });
    }
    f.assert(operations.length - bodyOperations().length);
  });

  it('refuses a missing, malformed or misplaced bearer token on every route (401/403)', async () => {
    const f = new Findings();
    for (const o of operations.filter((x) => !isCookieRoute(x.op))) {
      const params = realParams(o);
      for (const [label, token] of [['no token', null], ['garbage token', 'not-a-token'], ['unknown key', 'tg_' + 'x'.repeat(40)], ['huge token', 'tg_' + 'y'.repeat(5000)]] as const) {
        f.check(`${keyOf(o)} ${label}`, await call(o, params, undefined, { token }), { status: 401, code: 'unauthorized' });
      }
      // /v1/pricing and /v1/events/types take any valid token.
      const wrongRole = isMe(o.path) ? ADMIN_TOKEN : o.path === '/v1/pricing' || o.path === '/v1/events/types' ? null : me.apiKey;
      if (wrongRole) f.check(`${keyOf(o)} wrong role`, await call(o, params, undefined, { token: wrongRole }), { status: 403, code: 'forbidden' });
    }
    f.assert(operations.filter((x) => !isCookieRoute(x.op)).length * 4);
  });

  it('answers unknown ids in the path with 404 not_found and malformed ones with 400 or 404', async () => {
    const f = new Findings();
    let withParams = 0;
    for (const o of operations) {
      const params = pathParams(o);
      if (params.length === 0) continue;
      withParams++;
      const spec = bodySpecs[keyOf(o)];
      const body = spec?.valid();
      for (const p of params) {
        const base = realParams(o);
        const at = (value: string) => ({ ...base, [p.name]: value });
        const label = (what: string) => `${keyOf(o)} ${p.name}=${what}`;
        let unknown: string[];
        if (p.name === 'external_id') unknown = [unique('nobody'), encodeURIComponent('ünïcödé ☃'), encodeURIComponent("' OR 1=1 --")];
        else if (p.name === '*') unknown = ['no-such-product', 'no/such/product', unknownId('prd')];
        else unknown = [unknownId(idPrefixOf(p)!)];
        for (const value of unknown) f.check(label(value), await call(o, at(value), body), { status: 404, code: 'not_found' });

        const prefix = idPrefixOf(p);
        const malformed = [
          'abc', '0', '-1', '%00', 'a%00b', '%20', '%E2%98%83', encodeURIComponent("' OR 1=1 --"), '..%2F..%2Fetc%2Fpasswd', 'x'.repeat(3000), '%', '%zz', '%C0%AF',
          ...(prefix
            ? [`${prefix}_`, `${prefix}_${'0'.repeat(25)}`, `${prefix}_${'0'.repeat(27)}`, `${prefix.toUpperCase()}_${'0'.repeat(26)}`, `${prefix}_${'U'.repeat(26)}`, unknownId(prefix === 'cus' ? 'key' : 'cus')]
            : []),
          ...(p.name === '*' ? ['UPPER', 'a'.repeat(200), '-leading', '.hidden'] : []),
          ...(p.name === 'external_id' ? ['x'.repeat(201)] : []),
        ];
        for (const value of malformed) f.check(label(value.slice(0, 40)), await call(o, at(value), body), { status: [400, 404], code: ['invalid_request', 'not_found'] });
      }
      // The longest external_id a customer may have can be looked up (percent-encoded, it is long).
      if (params.some((p) => p.name === 'external_id')) {
        for (const externalId of ['x'.repeat(200), '☃'.repeat(200), '𝄞'.repeat(200), 'a/b?c#d%e f']) {
          const created = await server.api.post('/v1/customers', { name: 'Long external id', currency: 'USD', external_id: externalId });
          f.check(`create customer with external_id ${externalId.slice(0, 12)}…`, created, { status: [201, 409] });
          const found = await call(o, { external_id: encodeURIComponent(externalId) });
          f.check(`${keyOf(o)} longest external_id ${externalId.slice(0, 12)}…`, found, { status: 200 });
          if (found.status === 200 && found.body.external_id !== externalId) f.failures.push(`${keyOf(o)}: found ${found.body.external_id}`);
        }
      }
      // A key (or invoice) that exists but belongs to someone else is unknown to a customer key.
      if (isMe(o.path) && params.some((p) => p.name === 'id')) {
        const prefix = idPrefixOf(params.find((p) => p.name === 'id'))!;
        const theirs: Record<string, string> = { inv: otherInvoiceId, key: other.apiKeyId, whe: otherHook.endpointId, whd: otherHook.deliveryId };
        f.check(`${keyOf(o)} another customer's ${prefix}_`, await call(o, { id: theirs[prefix]! }, body), { status: 404, code: 'not_found' });
      }
    }
    expect(withParams).toBeGreaterThanOrEqual(15);
    f.assert(withParams * 10);
  });

  it('refuses bad query parameters on list routes with 400 invalid_request naming the parameter', async () => {
    const f = new Findings();
    const lists = operations.filter((o) => queryParams(o).some((p) => p.name === 'limit'));
    expect(lists.length).toBeGreaterThanOrEqual(10);
    for (const o of operations) {
      const params = realParams(o);
      for (const q of queryParams(o)) {
        const s = deref(q.schema);
        const bad: string[] = [];
        if (s.type === 'integer' || s.type === 'number') {
          bad.push('abc', '1.5', '1e400', 'NaN', '', '-1', '100000', '99999999999999999999999999', 'true');
          if (s.minimum !== undefined) bad.push(String(s.minimum - 1));
          if (s.maximum !== undefined) bad.push(String(s.maximum + 1));
        }
        if (s.pattern) bad.push('garbage', encodeURIComponent("' OR 1=1 --"), 'x'.repeat(300), 'cus_%00');
        if (s.type === 'string') bad.push('%00', 'a%00b');
        if (s.enum) bad.push('XXX', String(s.enum[0]).toLowerCase() === String(s.enum[0]) ? String(s.enum[0]).toUpperCase() : String(s.enum[0]).toLowerCase());
        if (s.maxLength !== undefined) bad.push('a'.repeat(s.maxLength + 1));
        if (s.minLength !== undefined && s.minLength > 0) bad.push('');
        for (const value of new Set(bad)) {
          // A value the pattern lets through ('garbage' is a well-formed product key) names nothing
          // that exists: 404 not_found naming the parameter is as right as a 400.
          const wellFormed = s.pattern !== undefined && new RegExp(s.pattern, 'u').test(safeDecode(value));
          const expected: Expectation = wellFormed ? { status: [400, 404], code: ['invalid_request', 'not_found'], path: q.name } : { status: 400, code: 'invalid_request', path: q.name };
          f.check(`${keyOf(o)} ?${q.name}=${value.slice(0, 30)}`, await call(o, params, undefined, { query: queryWith(o, q.name, value) }), expected);
        }
        if (q.name === 'limit') {
          f.check(`${keyOf(o)} ?limit twice`, await call(o, params, undefined, { query: `${queryWith(o, 'limit', '1')}&limit=2` }), { status: 400, code: 'invalid_request', path: 'limit' });
        }
        if (q.required) {
          f.check(`${keyOf(o)} without ?${q.name}`, await call(o, params, undefined, { query: queryWith(o, q.name, null) }), { status: 400, code: 'invalid_request', path: q.name });
        }
        // Well-formed values that match nothing are an empty page, not an error.
        if (q.name === 'cursor') {
          for (const value of [unknownId(/^\^([a-z]{2,3})_/.exec(deref(q.schema).pattern)?.[1] ?? 'zzz')]) {
            const r = await call(o, params, undefined, { query: queryWith(o, 'cursor', value) });
            f.check(`${keyOf(o)} ?cursor=${value}`, r, { status: 200 });
            if (r.status === 200 && !Array.isArray(r.body?.data)) f.failures.push(`${keyOf(o)} ?cursor=${value}: not a list`);
          }
        }
        if (q.name === 'customer') f.check(`${keyOf(o)} ?customer=unknown`, await call(o, params, undefined, { query: queryWith(o, 'customer', unknownId('cus')) }), { status: [200, 404] });
      }
    }
    f.assert(lists.length * 12);
  });

  it('refuses malformed JSON, non-object JSON, wrong content types and oversized bodies on every POST and PATCH', async () => {
    const f = new Findings();
    for (const o of bodyOperations()) {
      const spec = bodySpecs[keyOf(o)];
      const params = { ...realParams(o), ...(await spec.target()) };
      const takesBody = requestSchema(o) !== null;
      const raw = (label: string, rawBody: string, expected: Expectation, contentType?: string) =>
        call(o, params, undefined, { rawBody, contentType }).then((r) => f.check(`${keyOf(o)} ${label}`, r, expected));

      for (const text of ['{"a":', '{', '}', 'nul', '{"a":1}}', "{'a':1}", '{"a":1,}', '{a:1}', 'NaN', '[1,]', '"unterminated', '\u0000', '{"a":"\\x"}', '{"a":01}', '{"a":1e}']) {
        await raw(`malformed ${JSON.stringify(text)}`, text, { status: 400, code: 'invalid_json' });
      }
      for (const text of ['{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}']) {
        await raw(`prototype pollution ${text}`, text, { status: 400, code: ['invalid_json', 'invalid_request'] });
      }
      for (const [label, contentType] of [['text/plain', 'text/plain'], ['form', 'application/x-www-form-urlencoded'], ['xml', 'application/xml'], ['octet-stream', 'application/octet-stream'], ['multipart', 'multipart/form-data; boundary=x']]) {
        await raw(`content-type ${label}`, JSON.stringify(spec.valid() ?? {}), { status: 415, code: 'unsupported_media_type' }, contentType);
      }
      const limit = spec.bodyLimit ?? 1_048_576;
      const valid = spec.valid() ?? {};
      // Padding beside the valid content: a field of the object, or one more item of the array.
      const padded = (size: number) => JSON.stringify(Array.isArray(valid) ? [...valid, { padding: 'x'.repeat(size) }] : { ...valid, padding: 'x'.repeat(size) });
      await raw(`body over ${limit / 1_048_576} MiB`, padded(limit + 50_000), { status: 413, code: 'payload_too_large' });
      await raw(`${limit / 1_048_576 + 4} MiB of garbage`, '['.repeat(limit + 4 * 1_048_576), { status: 413, code: 'payload_too_large' });
      if (limit > 5 * 1_048_576) await raw('5 MiB of garbage, under the limit', '['.repeat(5 * 1_048_576), { status: 400, code: ['invalid_json', 'invalid_request'] });
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      await raw('deeply nested JSON under the limit', deep, takesBody ? { status: 400, code: ['invalid_request', 'invalid_json'] } : { anyNon5xx: true });
      if (takesBody) {
        for (const text of ['[]', '[{}]', '"a string"', 'null', '1', '-1', 'true', '""', '']) {
          if (text === '[{}]' && spec.itemsCheckedOneByOne) continue; // an array of one (bad) item: checked below
          const expected: Expectation = text === '' && spec.emptyBodyOk ? { status: spec.okStatus } : { status: 400, code: 'invalid_request' };
          if (text === '' && spec.emptyBodyOk) params.id = (await spec.target()).id ?? params.id;
          await raw(`non-object body ${JSON.stringify(text)}`, text, expected);
        }
        if (spec.itemsCheckedOneByOne) {
          // The envelope is fine, the items are not: a 200 with each bad item rejected, the good one taken.
          for (const [label, items] of [
            ['[{}]', [{}]],
            ['a large field under the limit', [...(valid as unknown[]), { padding: 'x'.repeat(900_000) }]],
            [`${EVENTS_PER_REQUEST_MAX} items`, [...(spec.valid() as unknown[]), ...Array.from({ length: EVENTS_PER_REQUEST_MAX - 1 }, (_, i) => i)]],
          ] as const) {
            const r = await call(o, params, items);
            f.check(`${keyOf(o)} ${label}`, r, { status: spec.okStatus });
            const results: any[] = r.body?.data ?? [];
            const statuses = results.map((x) => (x?.status === 'rejected' ? `rejected:${x.code}` : x?.status));
            const expected = items.map((item) => ((item as any)?.specversion ? 'accepted' : 'rejected:invalid_event'));
            if (JSON.stringify(statuses) !== JSON.stringify(expected)) f.failures.push(`${keyOf(o)} ${label}: results ${JSON.stringify(statuses).slice(0, 300)}`);
          }
          await raw(`${EVENTS_PER_REQUEST_MAX + 1} items`, JSON.stringify(Array.from({ length: EVENTS_PER_REQUEST_MAX + 1 }, () => ({}))), { status: 400, code: 'invalid_request' });
        } else {
          await raw('a large field under the limit', JSON.stringify({ ...spec.valid(), padding: 'x'.repeat(900_000) }), { status: 400, code: 'invalid_request', path: 'padding' });
        }
      } else {
        await raw('empty body', '', { status: spec.okStatus });
      }
      const idem = (label: string, key: string) =>
        call(o, params, spec.valid(), { headers: { 'idempotency-key': key } }).then((r) => f.check(`${keyOf(o)} ${label}`, r, { status: 400, code: 'invalid_request' }));
      if (o.method === 'POST') {
        await idem('Idempotency-Key of 256 characters', 'k'.repeat(256));
        await idem('empty Idempotency-Key', '');
      }
    }
    f.assert(bodyOperations().length * 25);
  });

  it('refuses wrong types, missing required fields and unknown fields, naming the field', async () => {
    const f = new Findings();
    let cases = 0;
    for (const o of bodyOperations()) {
      const schema = requestSchema(o);
      if (!schema) continue;
      const spec = bodySpecs[keyOf(o)];
      // Items checked one by one: their fields are checked in 'usage events, one by one' below.
      if (spec.itemsCheckedOneByOne) continue;
      const params = { ...realParams(o), ...(await spec.target()) };
      const valid = spec.valid()!;
      const { slots, objects } = walk(schema, valid);
      const send = async (label: string, body: unknown, expected: Expectation) => {
        cases++;
        f.check(`${keyOf(o)} ${label}`, await call(o, params, body), expected);
      };
      for (const slot of slots) {
        const allowed = allowedTypes(slot.schema);
        if (allowed === null) continue;
        for (const wrong of WRONG_TYPED) {
          if (allowed.has(jsonTypeOf(wrong))) continue;
          await send(`${slot.path.join('.')} = ${JSON.stringify(wrong)}`, setAt(valid, slot.path, wrong), { status: 400, code: 'invalid_request', path: slot.path.join('.') });
        }
      }
      for (const obj of objects) {
        for (const required of obj.schema.required ?? []) {
          const path = [...obj.path, required];
          await send(`without ${path.join('.')}`, deleteAt(valid, path), { status: 400, code: 'invalid_request', path: path.join('.') });
        }
        if (obj.schema.additionalProperties === false) {
          const path = [...obj.path, 'zz_unknown_field'];
          await send(`unknown ${path.join('.')}`, setAt(valid, path, 1), { status: 400, code: 'invalid_request', path: path.join('.') });
        }
        if ((obj.schema.minProperties ?? 0) > 0) {
          await send(`${obj.path.join('.') || 'body'} = {}`, obj.path.length === 0 ? {} : setAt(valid, obj.path, {}), { status: 400, code: 'invalid_request' });
        }
      }
    }
    f.assert(cases);
    expect(cases).toBeGreaterThanOrEqual(150);
  });

  it('refuses negative, malformed and over-precise amounts and quantities, and survives absurd valid-looking ones', async () => {
    const f = new Findings();
    let fields = 0;
    for (const o of bodyOperations()) {
      const schema = requestSchema(o);
      if (!schema) continue;
      const spec = bodySpecs[keyOf(o)];
      // Items checked one by one: their fields are checked in 'usage events, one by one' below.
      if (spec.itemsCheckedOneByOne) continue;
      const { slots } = walk(schema, spec.valid());
      const amounts = slots.map((slot) => ({ slot, shape: moneyShape(slot.schema) })).filter((x) => x.shape !== null);
      const sharedParams = { ...realParams(o), ...(await spec.target()) };
      for (const { slot, shape } of amounts) {
        fields++;
        const field = slot.path.join('.');
        const refused: unknown[] = [...BAD_AMOUNT_STRINGS, `0.${'0'.repeat(shape!.scale)}1`, `1${'0'.repeat(15)}`, `${'9'.repeat(15)}.${'9'.repeat(shape!.scale + 1)}`];
        refused.push(...(shape!.numbers ? [-1, -0.5, 1e16, 1e300, 1e-7, 0.1 + 0.2, 123456789.1234567] : [1, 0, 1.5, -1, 1e300]));
        for (const value of refused) {
          const r = await call(o, sharedParams, setAt(spec.valid(), slot.path, value));
          f.check(`${keyOf(o)} ${field} = ${JSON.stringify(value)}`, r, { status: 400, code: 'invalid_request', path: field });
        }
        // The largest values the pattern lets through, and zero: refused or accepted, never a crash,
        // and whatever was accepted can be read back (and, for keys, used).
        const extreme = [`${'9'.repeat(15)}.${'9'.repeat(shape!.scale)}`, '9'.repeat(15), '0', `0.${'0'.repeat(shape!.scale - 1)}1`, '000000000000001'];
        if (shape!.numbers) extreme.push(1e15 as never, 999999999999999.9 as never);
        for (const value of extreme) {
          const params = { ...realParams(o), ...(await spec.target()) };
          const r = await call(o, params, setAt(spec.valid(), slot.path, value));
          f.check(`${keyOf(o)} ${field} = ${JSON.stringify(value)}`, r, { anyNon5xx: true });
          if (r.status < 300) {
            for (const back of spec.readBack?.(r.body, params) ?? []) {
              const rb = await server.api.request(back.method, back.url, back.body, { token: back.token });
              f.check(`after ${keyOf(o)} ${field} = ${JSON.stringify(value)}: ${back.method} ${back.url}`, rb, back.method === 'GET' ? { status: 200 } : { anyNon5xx: true });
            }
          }
        }
      }
    }
    expect(fields).toBeGreaterThanOrEqual(10);
    f.assert(fields * 30);
  });

  it('survives hostile strings in every free-text field (NUL, lone surrogates, too long)', async () => {
    const f = new Findings();
    let cases = 0;
    for (const o of bodyOperations()) {
      const schema = requestSchema(o);
      if (!schema) continue;
      const spec = bodySpecs[keyOf(o)];
      // Items checked one by one: their fields are checked in 'usage events, one by one' below.
      if (spec.itemsCheckedOneByOne) continue;
      const { slots, objects } = walk(schema, spec.valid());
      const send = async (label: string, body: unknown, expected: Expectation) => {
        cases++;
        const params = { ...realParams(o), ...(await spec.target()) };
        f.check(`${keyOf(o)} ${label}`, await call(o, params, body), expected);
      };
      for (const slot of slots) {
        const text = branches(slot.schema).find((b) => b?.type === 'string');
        if (!text) continue;
        const field = slot.path.join('.');
        // PostgreSQL cannot store these: refused up front, naming the field.
        for (const value of ['a\u0000b', '\u0000', '\ud800', 'a\udc00b']) {
          await send(`${field} = ${JSON.stringify(value)}`, setAt(spec.valid(), slot.path, value), { status: 400, code: 'invalid_request', path: field });
        }
        for (const value of ['\u202eevil', '😀'.repeat(10), ' ', '\t\n', '\ufeff', "'; DROP TABLE customers; --"]) {
          await send(`${field} = ${JSON.stringify(value)}`, setAt(spec.valid(), slot.path, value), { anyNon5xx: true });
        }
        if (text.maxLength !== undefined) {
          await send(`${field} one character too long`, setAt(spec.valid(), slot.path, 'a'.repeat(text.maxLength + 1)), { status: 400, code: 'invalid_request', path: field });
        }
        if ((text.minLength ?? 0) > 0) await send(`${field} = ""`, setAt(spec.valid(), slot.path, ''), { status: 400, code: 'invalid_request', path: field });
      }
      // Free-form maps (metadata): hostile keys and values, too many keys.
      for (const obj of objects) {
        if (obj.schema.additionalProperties === false || obj.path.length === 0) continue;
        const field = obj.path.join('.');
        for (const value of [{ 'a\u0000': 1 }, { k: 'a\u0000b' }, { k: { nested: ['\u0000'] } }, { k: '\ud800' }, { '\udfff': 1 }]) {
          await send(`${field} = ${JSON.stringify(value).slice(0, 40)}`, setAt(spec.valid(), obj.path, value), { status: 400, code: 'invalid_request', path: field });
        }
        for (const value of [{ ['k'.repeat(10_000)]: 1 }, { '': 1 }, { k: 1e308 }, { k: -0 }, { k: [] }, { k: null }, { __proto__x: 1 }]) {
          await send(`${field} = ${JSON.stringify(value).slice(0, 40)}`, setAt(spec.valid(), obj.path, value), { anyNon5xx: true });
        }
        // Deeply nested values, sent as text (a structure this deep is awkward to build and clone).
        for (const depth of [10, 1_000, 100_000]) {
          cases++;
          const rawBody = JSON.stringify(setAt(spec.valid(), obj.path, { k: '__DEEP__' })).replace('"__DEEP__"', '['.repeat(depth) + ']'.repeat(depth));
          const params = { ...realParams(o), ...(await spec.target()) };
          const freeForm = allowedTypes(obj.schema.additionalProperties ?? {}) === null;
          const expected: Expectation = depth === 10 && freeForm ? { status: spec.okStatus } : { status: 400, code: 'invalid_request', path: field };
          f.check(`${keyOf(o)} ${field} nested ${depth} deep`, await call(o, params, undefined, { rawBody }), expected);
        }
        if (obj.schema.maxProperties !== undefined) {
          const tooMany = Object.fromEntries(Array.from({ length: obj.schema.maxProperties + 1 }, (_, i) => [`k${i}`, '1']));
          await send(`${field} with ${obj.schema.maxProperties + 1} keys`, setAt(spec.valid(), obj.path, tooMany), { status: 400, code: 'invalid_request', path: field });
        }
      }
    }
    f.assert(cases);
    expect(cases).toBeGreaterThanOrEqual(80);
  });

  it('never answers a random body with a 5xx or a reply that is not problem+json (property)', async () => {
    let routes = 0;
    const weirdStrings = fc.constantFrom(...BAD_AMOUNT_STRINGS, '1', '0', '999999999999999.999999999', 'fal-ai/flux/dev', 'megapixels', 'USD', 'postpaid', FUTURE);
    const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }), weirdStrings);
    for (const o of bodyOperations()) {
      routes++;
      const spec = bodySpecs[keyOf(o)];
      const params = { ...realParams(o), ...(await spec.target()) };
      const schema = requestSchema(o);
      const nearlyValidOf = (schema: any, valid: Record<string, unknown>) =>
        fc.record(
          Object.fromEntries(Object.keys(schema?.properties ?? {}).map((p) => [p, p in valid ? fc.oneof(fc.constant(valid[p]), anyJson) : anyJson])),
          { requiredKeys: [] },
        );
      const nearlyValid = nearlyValidOf(schema, (spec.valid() ?? {}) as Record<string, unknown>);
      const body = fc.oneof(
        fc.jsonValue().map((value) => ({ rawBody: JSON.stringify(value) ?? 'null' })),
        nearlyValid.map((value) => ({ rawBody: JSON.stringify(value) })),
        fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ rawBody: text })),
      );
      // Items checked one by one (events): the body schema says nothing of them, so the nearly
      // valid bodies are built from the item schema, as batches and as a single event.
      const items = spec.itemsCheckedOneByOne
        ? (() => {
            const event = () => (spec.valid() as Array<Record<string, unknown>>)[0];
            const nearlyValidData = nearlyValidOf(CloudEvent.properties.data, event().data as Record<string, unknown>);
            const nearlyValidEvent = fc.tuple(nearlyValidOf(CloudEvent, event()), fc.oneof(nearlyValidData, anyJson), fc.boolean()).map(([e, data, withData]) => ({ ...event(), ...e, ...(withData ? { data } : {}) }));
            return fc.oneof(
              fc.array(nearlyValidEvent, { minLength: 1, maxLength: 5 }).map((value) => ({ rawBody: JSON.stringify(value) })),
              nearlyValidEvent.map((value) => ({ rawBody: JSON.stringify(value) })),
            );
          })()
        : null;
      await fc.assert(
        fc.asyncProperty(items ? fc.oneof(body, items, items) : body, async ({ rawBody }) => {
          const r = await call(o, params, undefined, { rawBody });
          const issues = problemIssues(r);
          if (items && r.status < 300) issues.push(...itemResultIssues(JSON.parse(rawBody), r.body));
          if (issues.length > 0) throw new Error(`${keyOf(o)} ${rawBody.slice(0, 300)}: ${issues.join('; ')} -> ${r.status} ${JSON.stringify(r.body)?.slice(0, 300)}`);
        }),
        { numRuns: items ? 60 : 25 },
      );
    }
    expect(routes).toBeGreaterThanOrEqual(10);
  });

  it('usage events, one by one: each bad event is rejected with a code, the others in its batch are taken', async () => {
    // POST /v1/events has `itemsCheckedOneByOne`: the body schema is an array of unknown items, so
    // the schema-derived checks above cannot reach an event's fields. Here the same derivation runs
    // on the CloudEvent schema (src/metering/schemas.ts), and each bad event must come back
    // `rejected` with a documented code, in a 200, beside good events that are accepted.
    const events = operations.filter((o) => bodySpecs[keyOf(o)]?.itemsCheckedOneByOne);
    expect(events.map(keyOf)).toEqual(['POST /v1/events']);
    const o = events[0];
    const f = new Findings();
    const customer = await createCustomer(server.api, { credit: '1000.00' });
    const good = () => usageEvent(customer.customerId, { megapixels: '1', api_key_id: customer.apiKeyId, metadata: { job: 'j' } }, { time: new Date(Date.now() - 60_000).toISOString() });
    const sample = good();
    const { slots, objects } = walk(CloudEvent, sample);
    const bad: Array<{ label: string; event: unknown; codes: string[] }> = [];
    const isOptional = (path: string[]) => {
      const parent = objects.find((obj) => obj.path.join('.') === path.slice(0, -1).join('.'));
      return !(parent?.schema.required ?? []).includes(path[path.length - 1]);
    };
    for (const slot of slots) {
      const allowed = allowedTypes(slot.schema);
      if (allowed === null) continue;
      for (const wrong of WRONG_TYPED) {
        if (allowed.has(jsonTypeOf(wrong))) continue;
        // null for an optional data field (api_key_id, metadata) is taken as absent by the
        // implementation (event-rules.ts), which is harmless: accepted or rejected, both are fine here.
        const nullAsAbsent = wrong === null && slot.path[0] === 'data' && isOptional(slot.path);
        bad.push({ label: `${slot.path.join('.')} = ${JSON.stringify(wrong)}`, event: setAt(good(), slot.path, wrong), codes: nullAsAbsent ? ['invalid_event', 'accepted'] : ['invalid_event'] });
      }
    }
    for (const obj of objects) {
      for (const required of obj.schema.required ?? []) {
        const path = [...obj.path, required];
        bad.push({ label: `without ${path.join('.')}`, event: deleteAt(good(), path), codes: ['invalid_event'] });
      }
    }
    bad.push({ label: 'unknown attribute', event: { ...good(), zz_unknown: 1 }, codes: ['invalid_event'] });
    bad.push({ label: 'unknown data key', event: setAt(good(), ['data', 'zz_unknown'], 1), codes: ['unknown_meter'] });
    bad.push({ label: 'data key that is no meter key', event: setAt(good(), ['data', 'Not A Key'], 1), codes: ['invalid_event'] });
    bad.push({ label: 'no quantity', event: setAt(good(), ['data'], { product: 'fal-ai/flux/dev' }), codes: ['invalid_event'] });
    for (const field of ['id', 'source', 'subject']) {
      bad.push({ label: `${field} one character too long`, event: setAt(good(), [field], 'a'.repeat(257)), codes: ['invalid_event'] });
      bad.push({ label: `${field} = ""`, event: setAt(good(), [field], ''), codes: ['invalid_event'] });
    }
    for (const time of ['yesterday', '2026-13-01T00:00:00Z', '2026-01-01', '2026-01-01T00:00:00']) bad.push({ label: `time = ${time}`, event: setAt(good(), ['time'], time), codes: ['invalid_event'] });
    bad.push({ label: 'metadata with 51 keys', event: setAt(good(), ['data', 'metadata'], Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 1]))), codes: ['invalid_event'] });
    bad.push({ label: "another customer's key", event: setAt(good(), ['data', 'api_key_id'], other.apiKeyId), codes: ['api_key_not_found'] });
    // Quantities: the amounts refused elsewhere, negative and over-precise ones.
    // (A NUL refuses the whole request: see the next test.)
    for (const value of [...BAD_AMOUNT_STRINGS.filter((v) => !v.includes('\u0000')), `0.${'0'.repeat(12)}1`, -1, -0.5, 1e-13]) {
      bad.push({ label: `data.megapixels = ${JSON.stringify(value)}`, event: setAt(good(), ['data', 'megapixels'], value), codes: ['invalid_event'] });
    }
    expect(bad.length).toBeGreaterThanOrEqual(60);

    const before = await balanceOf(customer.customerId);
    const batch = [good(), ...bad.map((b) => b.event), good()];
    const r = await call(o, {}, batch);
    f.check(`${keyOf(o)} ${batch.length} events, ${bad.length} bad`, r, { status: 200 });
    f.failures.push(...itemResultIssues(batch, r.body));
    const results: any[] = r.body?.data ?? [];
    const codeOf = (x: any) => (x?.status === 'rejected' ? x.code : x?.status);
    if (codeOf(results[0]) !== 'accepted' || codeOf(results[batch.length - 1]) !== 'accepted') f.failures.push(`the good events: ${JSON.stringify([results[0], results[batch.length - 1]])}`);
    bad.forEach((b, i) => {
      f.checks++;
      if (!b.codes.includes(codeOf(results[i + 1]))) f.failures.push(`${keyOf(o)} event ${b.label}: expected rejected ${b.codes.join('|')}, got ${JSON.stringify(results[i + 1])}`);
    });
    f.assert(bad.length);
    // Only the good events were charged (1 megapixel each, 0.025), with the bad ones taken as absent-null ones.
    const taken = results.filter((x) => x?.status === 'accepted').length;
    expect((await balanceOf(customer.customerId)).posted).toBe((Number(before.posted) - 0.025 * taken).toFixed(3).replace(/0$/, ''));
  });

  it('usage events, one by one: NUL and lone surrogates refuse the request naming the event field; odd strings and absurd quantities never crash', async () => {
    const o = operations.find((x) => keyOf(x) === 'POST /v1/events')!;
    const f = new Findings();
    const customer = await createCustomer(server.api, { credit: '1.00' });
    const good = () => usageEvent(customer.customerId, { megapixels: '1', api_key_id: customer.apiKeyId, metadata: { job: 'j' } });
    const { slots } = walk(CloudEvent, good());
    const text = slots.filter((slot) => branches(slot.schema).some((b) => b?.type === 'string'));
    expect(text.map((slot) => slot.path.join('.'))).toEqual(expect.arrayContaining(['id', 'source', 'subject', 'data.product', 'data.api_key_id', 'time']));
    for (const slot of text) {
      const field = slot.path.join('.');
      // Stored text cannot hold these: the whole request is refused up front, naming the event and field.
      for (const value of ['a\u0000b', '\u0000', '\ud800', 'a\udc00b']) {
        f.check(`${field} = ${JSON.stringify(value)}`, await call(o, {}, [good(), setAt(good(), slot.path, value)]), { status: 400, code: 'invalid_request', path: `1.${field}` });
      }
      for (const value of ['\u202eevil', '😀'.repeat(10), ' ', '\t\n', '\ufeff', "'; DROP TABLE customers; --"]) {
        const batch = [good(), setAt(good(), slot.path, value)];
        const r = await call(o, {}, batch);
        f.check(`${field} = ${JSON.stringify(value)}`, r, { status: 200 });
        if (r.status === 200) f.failures.push(...itemResultIssues(batch, r.body).map((issue) => `${field} = ${JSON.stringify(value)}: ${issue}`));
      }
    }
    for (const value of [{ 'a\u0000': 1 }, { k: 'a\u0000b' }, { k: { nested: ['\u0000'] } }, { k: '\ud800' }, { '\udfff': 1 }]) {
      f.check(`data.metadata = ${JSON.stringify(value)}`, await call(o, {}, [setAt(good(), ['data', 'metadata'], value)]), { status: 400, code: 'invalid_request', path: '0.data.metadata' });
    }
    for (const depth of [10, 1_000, 100_000]) {
      const rawBody = JSON.stringify([setAt(good(), ['data', 'metadata'], { k: '__DEEP__' })]).replace('"__DEEP__"', '['.repeat(depth) + ']'.repeat(depth));
      const r = await call(o, {}, undefined, { rawBody });
      f.check(`data.metadata nested ${depth} deep`, r, depth === 10 ? { status: 200 } : { status: 400, code: 'invalid_request', path: '0.data.metadata' });
      if (depth === 10 && r.status === 200 && r.body.data[0]?.status !== 'accepted') f.failures.push(`metadata nested 10 deep: ${JSON.stringify(r.body)}`);
    }
    // The largest quantities the rules let through, and zero: accepted or rejected, never a crash, and readable afterwards.
    for (const value of [`${'9'.repeat(15)}.${'9'.repeat(12)}`, '9'.repeat(15), '9'.repeat(40), '0', `0.${'0'.repeat(11)}1`, 1e15, 999999999999999.9, 1e300, Number.MAX_SAFE_INTEGER]) {
      const batch = [setAt(good(), ['data', 'megapixels'], value)];
      const r = await call(o, {}, batch);
      f.check(`data.megapixels = ${JSON.stringify(value)}`, r, { status: 200 });
      if (r.status === 200) f.failures.push(...itemResultIssues(batch, r.body).map((issue) => `data.megapixels = ${JSON.stringify(value)}: ${issue}`));
    }
    for (const url of [`/v1/events?customer=${customer.customerId}&limit=100`, `/v1/customers/${customer.customerId}/balance`, `/v1/customers/${customer.customerId}/transactions`, `/v1/usage?customer=${customer.customerId}&${usageRange()}&group_by=meter`]) {
      f.check(`GET ${url} after`, await server.api.get(url), { status: 200 });
    }
    f.check('GET /v1/me/usage after', await server.api.get(`/v1/me/usage?${usageRange()}`, { token: customer.apiKey }), { status: 200 });
    f.assert(60);
  });

  it('survives the largest grants again and again, for one customer and for a whole currency', async () => {
    const f = new Findings();
    const largest = (AMOUNT_MAX / 10n ** BigInt(LEDGER_SCALE)).toString();
    // One customer granted the largest amount again and again (CHF: no other case uses it); 12 of
    // them add up to more than a bigint holds at the ledger's scale.
    const one = await newCustomer({ currency: 'CHF' });
    let accepted = 0n;
    for (let i = 0; i < 12; i++) {
      const r = await server.api.post(`/v1/customers/${one}/credit_grants`, { amount: largest, category: 'purchased' });
      if (r.status === 201) accepted++;
      f.check(`grant #${i + 1} of ${largest} CHF to one customer`, r, { status: [201, 400] });
    }
    for (const url of [`/v1/customers/${one}/balance`, `/v1/customers/${one}/transactions`, `/v1/customers/${one}/credit_grants`]) {
      f.check(`GET ${url} after`, await server.api.get(url), { status: 200 });
    }
    // Whatever was accepted is exactly on the balance.
    const balance = await server.api.get(`/v1/customers/${one}/balance`);
    expect(balance.body.posted).toBe(`${accepted * BigInt(largest)}.00`);
    // Many customers each granted the largest amount: the currency's operator account fills up.
    for (let i = 0; i < 12; i++) {
      const r = await server.api.post(`/v1/customers/${await newCustomer({ currency: 'SGD' })}/credit_grants`, { amount: largest, category: 'promotional' });
      f.check(`grant #${i + 1} of ${largest} SGD to a new customer`, r, { status: [201, 400] });
    }
    const small = await server.api.post(`/v1/customers/${await newCustomer({ currency: 'SGD' })}/credit_grants`, { amount: '1.00', category: 'promotional' });
    f.check('a small SGD grant afterwards', small, { status: [201, 400] });
    f.assert(28);
  });

  it('answers unknown routes and methods with 404 problem+json', async () => {
    const f = new Findings();
    for (const [method, url] of [['GET', '/v1/nope'], ['POST', '/v1/nope'], ['PUT', '/v1/customers'], ['DELETE', '/v1/customers'], ['PATCH', '/v1/meters'], ['GET', '/v2/customers'], ['GET', `/v1/reservations/${reservationId}/settle`]]) {
      f.check(`${method} ${url}`, await server.api.request(method, url), { status: 404, code: 'not_found' });
    }
    f.check('GET /v1/customers/by_external_id/ (empty)', await server.api.get('/v1/customers/by_external_id/'), { status: [400, 404] });
    f.assert(8);
  });
});
