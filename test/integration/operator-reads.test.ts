import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type Api, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { expectProblem, stripeEvents } from '../support/stripe-events.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

/**
 * The reads the operator console is built on: customers found by any part of their name, email
 * or ids; the balances of a page of customers in one request; a customer's open holds; failed
 * payments; failing or disabled webhook endpoints across customers.
 */

let server: TestServer;
let api: Api;
let clock: ManualClock;
const receivers: Receiver[] = [];

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-06-01T10:00:00Z'));
  server = await startServer({ clock });
  api = server.api;
  await seedCatalog(api);
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await server?.close();
});

async function customer(body: Record<string, unknown>): Promise<string> {
  const r = await api.post('/v1/customers', { currency: 'USD', ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

const idsOf = (r: { body: { data: Array<{ id: string }> } }) => r.body.data.map((x) => x.id);

describe('searching customers', () => {
  let acme: string;
  let acmeLabs: string;
  let percent: string;
  beforeAll(async () => {
    acme = await customer({ name: 'Acme Rendering', email: 'billing@acme.example', external_id: 'crm-7781' });
    acmeLabs = await customer({ name: 'ACME labs', email: 'ops@labs.example' });
    percent = await customer({ name: '100% Pixels', email: 'hi@pixels.example' });
  });

  it('matches any part of the name, case-insensitively, newest first', async () => {
    const r = await api.get('/v1/customers?search=acme');
    expect(r.status).toBe(200);
    expect(idsOf(r)).toEqual([acmeLabs, acme]);
  });

  it('matches the email, the external_id and the id', async () => {
    expect(idsOf(await api.get('/v1/customers?search=labs.example'))).toEqual([acmeLabs]);
    expect(idsOf(await api.get('/v1/customers?search=CRM-77'))).toEqual([acme]);
    expect(idsOf(await api.get(`/v1/customers?search=${percent.slice(-12)}`))).toEqual([percent]);
  });

  it('takes %, _ and \\ literally, and pages like the full list', async () => {
    expect(idsOf(await api.get('/v1/customers?search=%25'))).toEqual([percent]);
    // As a wildcard, _ would match the space of "Acme Rendering".
    expect(idsOf(await api.get('/v1/customers?search=e_R'))).toEqual([]);
    expect(idsOf(await api.get('/v1/customers?search=%5C'))).toEqual([]);
    const first = await api.get('/v1/customers?search=acme&limit=1');
    expect(first.body).toMatchObject({ has_more: true, next_cursor: acmeLabs });
    const second = await api.get(`/v1/customers?search=acme&limit=1&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ data: [{ id: acme }], has_more: false, next_cursor: null });
  });

  it('refuses an empty or overlong search, and a customer key', async () => {
    expectProblem(await api.get('/v1/customers?search='), 400, 'invalid_request');
    expectProblem(await api.get(`/v1/customers?search=${'x'.repeat(201)}`), 400, 'invalid_request');
    const c = await createCustomer(api);
    expectProblem(await api.get('/v1/customers?search=acme', { token: c.apiKey }), 403, 'forbidden');
  });
});

describe('balances of several customers', () => {
  it('answers one balance per known customer, in the order asked, as GET /v1/customers/{id}/balance does', async () => {
    const rich = await createCustomer(api, { credit: '120.50' });
    const poor = await createCustomer(api);
    const unknown = 'cus_00000000000000000000000000';
    const r = await api.get(`/v1/balances?customers=${poor.customerId},${unknown},${rich.customerId},${poor.customerId}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const one = async (id: string) => (await api.get(`/v1/customers/${id}/balance`)).body;
    expect(r.body).toEqual({ data: [await one(poor.customerId), await one(rich.customerId)] });
    expect(r.body.data[1]).toMatchObject({ customer_id: rich.customerId, available: '120.50', held: '0.00' });
  });

  it('refuses a missing or malformed list, more than 100 ids, and a customer key', async () => {
    const c = await createCustomer(api);
    expectProblem(await api.get('/v1/balances'), 400, 'invalid_request');
    expectProblem(await api.get('/v1/balances?customers=key_00000000000000000000000000'), 400, 'invalid_request');
    expectProblem(await api.get(`/v1/balances?customers=${c.customerId},`), 400, 'invalid_request');
    const many = Array.from({ length: 101 }, () => c.customerId).join(',');
    expectProblem(await api.get(`/v1/balances?customers=${many}`), 400, 'invalid_request');
    expect((await api.get(`/v1/balances?customers=${Array.from({ length: 100 }, () => c.customerId).join(',')}`)).body.data).toHaveLength(1);
    expectProblem(await api.get(`/v1/balances?customers=${c.customerId}`, { token: c.apiKey }), 403, 'forbidden');
  });
});

describe("a customer's reservations", () => {
  it('lists them newest first; status=pending is the open holds, an overdue one expired on the way', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const hold = async (holdSeconds: number) => {
      const r = await authorize(api, c.apiKey, { megapixels: 4 }, { hold_seconds: holdSeconds });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.reservation.id as string;
    };
    const settled = await hold(600);
    expect((await api.post(`/v1/reservations/${settled}/settle`, { usage: { megapixels: 2 } })).status).toBe(200);
    const short = await hold(60);
    const open = await hold(3600);
    const all = await api.get(`/v1/customers/${c.customerId}/reservations`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ has_more: false, next_cursor: null });
    expect(all.body.data.map((r: { id: string; status: string }) => [r.id, r.status])).toEqual([[open, 'pending'], [short, 'pending'], [settled, 'settled']]);
    expect(all.body.data[0]).toEqual((await api.get(`/v1/reservations/${open}`)).body);
    expect(idsOf(await api.get(`/v1/customers/${c.customerId}/reservations?status=pending`))).toEqual([open, short]);

    clock.advance(120_000);
    expect(idsOf(await api.get(`/v1/customers/${c.customerId}/reservations?status=pending`))).toEqual([open]);
    expect(idsOf(await api.get(`/v1/customers/${c.customerId}/reservations?status=expired`))).toEqual([short]);
    expect((await api.get(`/v1/customers/${c.customerId}/balance`)).body).toMatchObject({ held: '0.10', available: '9.85' });

    const first = await api.get(`/v1/customers/${c.customerId}/reservations?limit=2`);
    expect(first.body).toMatchObject({ has_more: true, next_cursor: short });
    expect(idsOf(await api.get(`/v1/customers/${c.customerId}/reservations?limit=2&cursor=${short}`))).toEqual([settled]);
  });

  it('is 404 for an unknown customer, 400 for a bad status, 403 for a customer key', async () => {
    const c = await createCustomer(api);
    expectProblem(await api.get('/v1/customers/cus_00000000000000000000000000/reservations'), 404, 'not_found');
    expectProblem(await api.get(`/v1/customers/${c.customerId}/reservations?status=open`), 400, 'invalid_request');
    expectProblem(await api.get(`/v1/customers/${c.customerId}/reservations`, { token: c.apiKey }), 403, 'forbidden');
  });
});

describe('failed payments', () => {
  it('GET /v1/payments?status=failed lists only failed payments, across customers', async () => {
    const { topUp, deliver, intentFailed } = stripeEvents(() => server, clock);
    const a = await createCustomer(api);
    const b = await createCustomer(api);
    const declined = await topUp(a, '25.00');
    const pending = await topUp(b, '10.00');
    expect((await deliver(intentFailed(declined, 'pi_declined_1'))).status).toBe(200);
    const failed = await api.get('/v1/payments?status=failed');
    expect(failed.status).toBe(200);
    expect(failed.body.data).toEqual([expect.objectContaining({ id: declined.id, customer_id: a.customerId, status: 'failed', failure_code: expect.any(String) })]);
    expect(idsOf(await api.get('/v1/payments?status=pending'))).toContain(pending.id);
    expect(idsOf(await api.get('/v1/payments?status=pending'))).not.toContain(declined.id);
    expect(idsOf(await api.get(`/v1/payments?status=failed&customer=${b.customerId}`))).toEqual([]);
    expectProblem(await api.get('/v1/payments?status=lost'), 400, 'invalid_request');
  });
});

describe('failing webhook endpoints', () => {
  it('?failing=true lists endpoints whose deliveries fail and disabled ones, with failing_since; a success clears it', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.behave(() => ({ status: 500 }));
    const c = await createCustomer(api);
    const make = async (body: Record<string, unknown>) => {
      const r = await api.post('/v1/webhook_endpoints', { url: receiver.url, ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const failing = await make({ customer: c.customerId, event_types: ['credit_grant.created'] });
    const healthy = await make({ event_types: ['api_key.revoked'] });
    const disabled = await make({ event_types: ['api_key.revoked'], enabled: false });
    expect((await api.get(`/v1/webhook_endpoints/${failing}`)).body).toMatchObject({ failing_since: null });

    expect((await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00' })).status).toBe(201);
    for (let i = 0; i < 20 && (await server.app.services.webhookDispatcher.runOnce()) > 0; i++);
    expect((await api.get(`/v1/webhook_endpoints/${failing}`)).body).toMatchObject({ enabled: true, failing_since: clock.now().toISOString() });

    const listed = await api.get('/v1/webhook_endpoints?failing=true&limit=100');
    expect(listed.status).toBe(200);
    expect(idsOf(listed)).toEqual(expect.arrayContaining([failing, disabled]));
    expect(idsOf(listed)).not.toContain(healthy);
    expect(idsOf(await api.get(`/v1/webhook_endpoints?failing=true&customer=${c.customerId}`))).toEqual([failing]);
    expect(idsOf(await api.get('/v1/webhook_endpoints?failing=false&limit=100'))).toEqual(expect.arrayContaining([failing, healthy, disabled]));
    expectProblem(await api.get('/v1/webhook_endpoints?failing=maybe'), 400, 'invalid_request');
  });
});
