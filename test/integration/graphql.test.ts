import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startServer, type Api, type ApiResponse, type TestDatabase, type TestServer } from '../support/harness.js';
import { countingDb, type CountingDb } from '../support/counting-db.js';
import { authorize, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { QUERY_COST_MAX, QUERY_DEPTH_MAX } from '../../src/graphql/query-limits.js';

/** POST /graphql (docs/graphql.md): scope, batching, limits and error codes, on the same services as REST. */

let database: TestDatabase;
let db: CountingDb;
let server: TestServer;
let api: Api;
type Party = Fixture & { invoiceId: string; reservationId: string; webhookEndpointId: string };
let A: Party;
let B: Party;

const DAY_MS = 86_400_000;
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
const FROM = new Date(today - DAY_MS).toISOString();
const TO = new Date(today + 2 * DAY_MS).toISOString();

function gql(query: string, options: { token?: string | null; variables?: Record<string, unknown>; operationName?: string } = {}): Promise<ApiResponse> {
  return api.post('/graphql', { query, ...(options.variables ? { variables: options.variables } : {}), ...(options.operationName ? { operationName: options.operationName } : {}) }, { token: options.token });
}

/** A refusal before anything ran: 400, GraphQL errors with the code, no data. */
function expectRefused(r: ApiResponse, code: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.data).toBeUndefined();
  expect(r.body.errors.length).toBeGreaterThan(0);
  for (const error of r.body.errors) expect(error.extensions.code, JSON.stringify(error)).toBe(code);
}

/** A field that failed while the request ran: 200, its error with the REST code and its path. */
function expectFieldError(r: ApiResponse, code: string, path: Array<string | number>) {
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.errors, JSON.stringify(r.body)).toHaveLength(1);
  expect(r.body.errors[0]).toMatchObject({ path, extensions: { code } });
  return r.body.errors[0];
}

/** A customer with a hold, settled usage, a draft invoice, a manual payment, and a webhook endpoint with one delivery. */
async function party(): Promise<Party> {
  const fixture = await createCustomer(api, { credit: '10.00' });
  expect((await api.post(`/v1/customers/${fixture.customerId}/payments`, { amount: '5.00', reference: 'wire-1' })).status).toBe(201);
  const endpoint = await api.post('/v1/me/webhook_endpoints', { url: 'http://127.0.0.1:9/hooks' }, { token: fixture.apiKey });
  expect(endpoint.status).toBe(201);
  expect((await api.post(`/v1/customers/${fixture.customerId}/api_keys`, { name: 'after the endpoint' })).status).toBe(201);
  await server.app.services.webhookDispatcher.runOnce();
  const held = await authorize(api, fixture.apiKey, { megapixels: 4 });
  expect(held.status, JSON.stringify(held.body)).toBe(200);
  const settled = await authorize(api, fixture.apiKey, { megapixels: 2 });
  expect((await api.post(`/v1/reservations/${settled.body.reservation.id}/settle`, { usage: { megapixels: '1.5' } })).status).toBe(200);
  const invoiceId = (await server.app.services.invoices.draft(fixture.customerId, '2020-01')).invoice.id;
  return { ...fixture, invoiceId, reservationId: held.body.reservation.id, webhookEndpointId: endpoint.body.id };
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = countingDb(database.db);
  server = await startServer({ database: { ...database, db } });
  api = server.api;
  await seedCatalog(api);
  A = await party();
  B = await party();
});
afterAll(async () => {
  await server?.close();
  await database?.drop();
});

describe('scope: the same bearer auth as REST', () => {
  it('refuses a request without a token or with a bad one as REST does (401 problem+json), before any GraphQL runs', async () => {
    for (const token of [null, 'not-a-token']) {
      const r = await gql('{ me { id } }', { token });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body.code).toBe('unauthorized');
    }
  });

  it('lets the admin token read every customer, and gives it no `me`', async () => {
    const r = await gql('{ me { id } customers(limit: 100) { data { id } } a: customer(id: "' + A.customerId + '") { id } b: customer(id: "' + B.customerId + '") { id } }');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.me).toBeNull();
    expect(r.body.data.customers.data.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining([A.customerId, B.customerId]));
    expect([r.body.data.a.id, r.body.data.b.id]).toEqual([A.customerId, B.customerId]);
  });

  it("lets a customer key read its own customer, through `me` or its id", async () => {
    const r = await gql(`{ me { id balance { customer_id } } customer(id: "${A.customerId}") { id api_keys { data { id customer { id } } } } }`, { token: A.apiKey });
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.me).toEqual({ id: A.customerId, balance: { customer_id: A.customerId } });
    expect(r.body.data.customer.api_keys.data).toContainEqual({ id: A.apiKeyId, customer: { id: A.customerId } });
    expect(r.body.data.customer.api_keys.data.every((k: any) => k.customer.id === A.customerId)).toBe(true);
  });

  it("answers another customer's id with not_found, as REST's /v1/me routes do, and shows nothing of it", async () => {
    const cases: Array<[string, string, string]> = [
      ['customer', B.customerId, `customer(id: "${B.customerId}") { id name balance { available } }`],
      ['invoice', B.invoiceId, `invoice(id: "${B.invoiceId}") { id total }`],
      ['reservation', B.reservationId, `reservation(id: "${B.reservationId}") { id amount }`],
      ['webhook_endpoint', B.webhookEndpointId, `webhook_endpoint(id: "${B.webhookEndpointId}") { id url deliveries { data { id } } }`],
    ];
    for (const [field, id, selection] of cases) {
      const r = await gql(`{ ${selection} }`, { token: A.apiKey });
      const error = expectFieldError(r, 'not_found', [field]);
      expect(error.message).toContain(id);
      expect(r.body.data).toBeNull();
      expect(JSON.stringify(r.body)).not.toContain(B.customerId === id ? '"name"' : B.customerId);
    }
    // The REST answer to the same question, for comparison: the same code.
    expect((await api.get(`/v1/me/invoices/${B.invoiceId}`, { token: A.apiKey })).body.code).toBe('not_found');
  });

  it("lets a customer key read its own invoice, hold and webhook endpoint by id", async () => {
    const r = await gql(`{ invoice(id: "${A.invoiceId}") { id customer { id } } reservation(id: "${A.reservationId}") { id status customer { id } }
      webhook_endpoint(id: "${A.webhookEndpointId}") { id deliveries { data { event_type } } } }`, { token: A.apiKey });
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.webhook_endpoint).toEqual({ id: A.webhookEndpointId, deliveries: { data: [{ event_type: 'api_key.created' }] } });
    expect(r.body.data.invoice).toEqual({ id: A.invoiceId, customer: { id: A.customerId } });
    expect(r.body.data.reservation).toEqual({ id: A.reservationId, status: 'pending', customer: { id: A.customerId } });
  });

  it('refuses the operator-wide lists to a customer key with forbidden', async () => {
    for (const field of ['customers', 'products', 'meters', 'prices']) {
      const r = await gql(`{ ${field} { data { id } } }`, { token: A.apiKey });
      expectFieldError(r, 'forbidden', [field]);
    }
  });
});

describe('the same answers as REST', () => {
  it("gives a customer's balance, keys, invoices, grants, transactions, payments and usage as the REST routes do", async () => {
    const r = await gql(`query($id: ID!, $from: String!, $to: String!) { customer(id: $id) {
      id name currency billing_mode credit_limit metadata
      balance { customer_id currency available held posted credit_limit grants { id category remaining expires_at } }
      api_keys { data { id name prefix status } has_more next_cursor }
      invoices { data { id status period total lines { type amount } } has_more next_cursor }
      credit_grants { data { id amount remaining } }
      transactions(limit: 100) { data { id kind amount direction pending } }
      payments { data { id } }
      usage(from: $from, to: $to, window: day, group_by: [product, meter]) { window_start product meter sum count charged }
    } }`, { variables: { id: A.customerId, from: FROM, to: TO } });
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    const c = r.body.data.customer;
    const rest = async (path: string) => (await api.get(path)).body;
    expect(c).toMatchObject({ id: A.customerId, currency: 'USD', billing_mode: 'prepaid', metadata: {} });
    expect(c.balance).toEqual(await rest(`/v1/customers/${A.customerId}/balance`));
    expect(c.balance.held).not.toBe('0.00');
    const keys = await rest(`/v1/customers/${A.customerId}/api_keys`);
    expect(c.api_keys).toEqual({ ...keys, data: keys.data.map((k: any) => ({ id: k.id, name: k.name, prefix: k.prefix, status: k.status })) });
    const invoices = await rest(`/v1/invoices?customer=${A.customerId}`);
    expect(c.invoices.data.map((i: any) => i.id)).toEqual(invoices.data.map((i: any) => i.id));
    expect(c.invoices.data[0].total).toBe(invoices.data[0].total);
    expect(c.credit_grants.data.map((g: any) => g.id)).toEqual((await rest(`/v1/customers/${A.customerId}/credit_grants`)).data.map((g: any) => g.id));
    expect(c.transactions.data.map((t: any) => t.id)).toEqual((await rest(`/v1/customers/${A.customerId}/transactions?limit=100`)).data.map((t: any) => t.id));
    const usage = await rest(`/v1/usage?customer=${A.customerId}&from=${FROM}&to=${TO}&window=day&group_by=product,meter`);
    expect(usage.data.length).toBeGreaterThan(0);
    expect(c.usage).toEqual(usage.data.map((u: any) => ({ window_start: u.window_start, product: u.product, meter: u.meter, sum: u.sum, count: u.count, charged: u.charged })));
  });

  it('pages with the REST cursors: next_cursor of one page starts the next, and the pages add up to the REST list', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: ApiResponse = await gql('query($cursor: String) { customers(limit: 1, cursor: $cursor) { data { id } has_more next_cursor } }', { variables: { cursor } });
      expect(r.body.errors).toBeUndefined();
      seen.push(...r.body.data.customers.data.map((c: { id: string }) => c.id));
      cursor = r.body.data.customers.next_cursor;
      expect(r.body.data.customers.has_more).toBe(cursor !== null);
    } while (cursor);
    expect(seen).toEqual((await api.get('/v1/customers?limit=100')).body.data.map((c: { id: string }) => c.id));
  });
});

describe('batched reads: no N+1', () => {
  const NESTED = `query($n: Int!, $from: String!, $to: String!) { customers(limit: $n) { data {
    id name
    balance { available held grants { id remaining } }
    api_keys(limit: 5) { data { id status spend_limit { amount } } }
    invoices(limit: 5) { data { id total lines { amount } } }
    usage(from: $from, to: $to, window: day, group_by: [product]) { product charged }
    credit_grants(limit: 5) { data { id remaining } }
    transactions(limit: 5) { data { id kind direction } }
    payments(limit: 5) { data { id status } }
    webhook_endpoints(limit: 5) { data { id deliveries(limit: 5) { data { id event_type } } } }
  } } }`;

  /** Round trips of one nested read of the newest n customers (the fewest of three runs: a catalog reload may fall in one). */
  async function roundTripsFor(n: number) {
    let fewest = Infinity;
    for (let run = 0; run < 3; run++) {
      const before = db.roundTrips;
      const r = await gql(NESTED, { variables: { n, from: FROM, to: TO } });
      const used = db.roundTrips - before;
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      expect(r.body.data.customers.data).toHaveLength(n);
      fewest = Math.min(fewest, used);
    }
    return fewest;
  }

  it('reads 2 customers and 12 customers with everything nested under them in the same number of round trips', async () => {
    for (let i = 0; i < 10; i++) await party();
    const two = await roundTripsFor(2);
    const twelve = await roundTripsFor(12);
    expect(twelve).toBe(two);
    // customers 2, balances 3, keys 1, invoices 3, usage 2, grants 1, transactions 3, payments 1, endpoints 1, deliveries 2.
    expect(two).toBeLessThanOrEqual(20);
    // And the data is there: every customer has a hold, a key, an invoice, usage, a payment and a delivery.
    const r = await gql(NESTED, { variables: { n: 12, from: FROM, to: TO } });
    for (const c of r.body.data.customers.data) {
      expect(c.balance.held).not.toBe('0.00');
      expect(c.api_keys.data.length).toBeGreaterThan(0);
      expect(c.invoices.data.length).toBeGreaterThan(0);
      expect(c.usage.length).toBeGreaterThan(0);
      expect(c.credit_grants.data.length).toBeGreaterThan(0);
      expect(c.transactions.data.length).toBeGreaterThan(0);
      expect(c.payments.data).toEqual([expect.objectContaining({ status: 'paid' })]);
      expect(c.webhook_endpoints.data[0].deliveries.data).toEqual([expect.objectContaining({ event_type: 'api_key.created' })]);
    }
  });
});

describe('depth and cost limits', () => {
  it(`runs a query ${QUERY_DEPTH_MAX} fields deep and refuses one deeper with query_too_deep`, async () => {
    const ok = await gql(`{ customer(id: "${A.customerId}") { api_keys(limit: 1) { data { customer { api_keys(limit: 1) { data { customer { id } } } } } } } }`);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.errors).toBeUndefined();
    const deeper = await gql(`{ customer(id: "${A.customerId}") { api_keys(limit: 1) { data { customer { api_keys(limit: 1) { data { customer { api_keys { data { id } } } } } } } } } }`);
    expectRefused(deeper, 'query_too_deep');
    expect(deeper.body.errors[0].message).toContain(`at most ${QUERY_DEPTH_MAX}`);
    // Hiding the nesting in fragments changes nothing.
    const fragments = await gql(`{ customer(id: "${A.customerId}") { ...K } }
      fragment K on Customer { api_keys(limit: 1) { data { customer { ...L } } } }
      fragment L on Customer { api_keys(limit: 1) { data { customer { ... on Customer { api_keys { data { id } } } } } } }`);
    expectRefused(fragments, 'query_too_deep');
  });

  it('refuses a query whose lists could read too many objects with query_too_costly, counting limits given by variables', async () => {
    const query = 'query($n: Int!) { customers(limit: $n) { data { api_keys(limit: $n) { data { customer { id } } } } } }';
    // Every object counts 1 (lists and their `data`), a paged list times its limit. 10 * (2 + 10 * 3) = 320: runs.
    const small = await gql(query, { variables: { n: 10 } });
    expect(small.status, JSON.stringify(small.body)).toBe(200);
    // 100 * (2 + 100 * 3) = 30,200: refused before anything ran.
    const before = db.roundTrips;
    const big = await gql(query, { variables: { n: 100 } });
    expectRefused(big, 'query_too_costly');
    expect(big.body.errors[0].message).toContain(`at most ${QUERY_COST_MAX}`);
    expect(db.roundTrips).toBe(before);
    // Lists without a limit count at their default (20): 20 * (2 + 20 * (1 + 1 + 1 + 20 * 2)) = 17,240 is refused too.
    expectRefused(await gql('{ customers { data { api_keys { data { customer { invoices { data { id } } } } } } } }'), 'query_too_costly');
  });

  it('does not count introspection (GraphiQL loads the schema with a deep query)', async () => {
    const r = await gql('{ __schema { types { name fields { name type { kind ofType { kind ofType { kind ofType { kind ofType { kind name } } } } } } } } }');
    expect(r.status).toBe(200);
    expect(r.body.data.__schema.types.some((t: { name: string }) => t.name === 'Customer')).toBe(true);
  });
});

describe('error codes', () => {
  it('refuses a syntax error, an unknown field and mistyped variables with 400 invalid_request and where they are', async () => {
    const syntax = await gql('{ customers { data { id }');
    expectRefused(syntax, 'invalid_request');
    expect(syntax.body.errors[0].locations[0]).toMatchObject({ line: 1 });
    expectRefused(await gql('{ customers { data { id secret } } }'), 'invalid_request');
    expectRefused(await gql('query($n: Int!) { customers(limit: $n) { data { id } } }', { variables: { n: 'ten' } }), 'invalid_request');
    expectRefused(await gql('query One { me { id } } query Two { me { id } }', { operationName: 'Three' }), 'invalid_request');
  });

  it('answers bad arguments with the REST codes and field paths, next to the data of fields that worked', async () => {
    const r = await gql(`{ me { id } customers(limit: 0) { data { id } } }`, { token: undefined });
    const error = expectFieldError(r, 'invalid_request', ['customers']);
    expect(error.extensions.errors).toEqual([{ path: 'limit', message: 'must be from 1 to 100' }]);
    expect(r.body.data).toBeNull();
    expectFieldError(await gql('{ customer(id: "cus_nope") { id } }'), 'invalid_request', ['customer']);
    expectFieldError(await gql('{ customers(cursor: "x") { data { id } } }'), 'invalid_request', ['customers']);
    const usage = await gql(`{ customer(id: "${A.customerId}") { id usage(from: "2026-01-01T00:30:00Z", to: "2026-01-02T00:00:00Z") { charged } } }`);
    expect(usage.body.errors[0]).toMatchObject({ path: ['customer', 'usage'], extensions: { code: 'invalid_request', errors: [{ path: 'from' }] } });
    const dateOnly = await gql(`{ customer(id: "${A.customerId}") { usage(from: "2026-01-01", to: "2026-01-02T00:00:00Z") { charged } } }`);
    expect(dateOnly.body.errors[0]).toMatchObject({ path: ['customer', 'usage'], extensions: { code: 'invalid_request', errors: [{ path: 'from' }] } });
    const unknown = await gql('{ customer(id: "cus_00000000000000000000000000") { id } }');
    expectFieldError(unknown, 'not_found', ['customer']);
  });

  it('refuses a body that is not a GraphQL request as REST refuses bad input (400 problem+json)', async () => {
    for (const body of [{}, { query: 1 }, { query: '{ me { id } }', extra: true }]) {
      const r = await api.post('/graphql', body);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
    const notJson = await api.post('/graphql', undefined, { rawBody: '{ me { id } }', contentType: 'application/json' });
    expect(notJson.body.code).toBe('invalid_json');
  });

  it('is not in the REST OpenAPI document, and serves GraphiQL only in dev mode', async () => {
    const doc = (await api.get('/openapi.json')).body;
    expect(Object.keys(doc.paths)).not.toContain('/graphql');
    expect((await api.get('/graphql')).status).toBe(404);
    const dev = await startServer({ graphiql: true });
    try {
      const page = await dev.api.get('/graphql', { token: null });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.body).toContain('GraphiQL.createFetcher');
    } finally {
      await dev.close();
    }
  });
});
