import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { createCustomer, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { expectProblem, stripeEvents } from '../support/stripe-events.js';

/*
 * Saving a card without paying (docs/payments.md, "Saving a card"): a Checkout Session in setup
 * mode; when Stripe reports it completed, the card its SetupIntent holds becomes the customer's
 * card for off-session charges, exactly once; a postpaid customer's invoice is then charged to it.
 */

const clock = new ManualClock(new Date('2031-09-14T08:00:00.000Z'));
let server: TestServer;
const { deliver, eventId, nowSeconds, intentSucceeded, topUp } = stripeEvents(() => server, clock);

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());
afterEach(() => server.stripe!.failNext(0));

const SESSION = 'POST /v1/checkout/sessions';
const savedCard = async (c: Fixture) => (await server.api.get(`/v1/customers/${c.customerId}/auto_top_up`)).body.payment_method;

/** Starts a setup for `c` and returns its session as the stand-in made it. */
async function startSetup(c: Fixture, token?: string) {
  const r = await server.api.post(token ? '/v1/me/card_setups' : `/v1/customers/${c.customerId}/card_setups`, undefined, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const request = server.stripe!.requests.filter((q) => q.route === SESSION && q.idempotencyKey === r.body.id).at(-1)!;
  const setupIntent = [...server.stripe!.setupIntents.values()].find((i) => i.metadata.tollgate_setup_id === r.body.id)!;
  return { reply: r.body, request, setupIntent };
}

/** checkout.session.completed for a setup session, as Stripe sends it (the card is on the SetupIntent). */
function setupCompleted(c: Fixture, setupId: string, setupIntentId: string) {
  return {
    id: eventId(), object: 'event', type: 'checkout.session.completed', created: nowSeconds(),
    data: { object: { id: `cs_test_${setupId}`, object: 'checkout.session', mode: 'setup', status: 'complete', payment_status: 'no_payment_required', setup_intent: setupIntentId, metadata: { tollgate_setup_id: setupId, tollgate_customer_id: c.customerId } } },
  };
}

describe('saving a card', () => {
  it('opens a setup-mode Checkout page; once completed, its card is saved exactly once and a postpaid invoice is charged to it', async () => {
    const { invoiceId, customer } = await owedInvoice(server, clock.now(), { finalize: false, megapixels: '2000' });
    const { reply, request, setupIntent } = await startSetup(customer);
    expect(reply).toEqual({ id: expect.stringMatching(/^pms_/), customer_id: customer.customerId, url: expect.stringMatching(/^https:\/\/checkout\.stripe\.test\/c\/setup\//), created_at: clock.now().toISOString() });
    expect(request.params).toMatchObject({ mode: 'setup', 'payment_method_types[0]': 'card', 'metadata[tollgate_customer_id]': customer.customerId, 'setup_intent_data[metadata][tollgate_setup_id]': reply.id });
    expect(request.params.customer).toMatch(/^cus_/);
    expect(await savedCard(customer)).toBeNull();

    // The customer completes the page: Stripe puts the card on the SetupIntent, then sends the event.
    Object.assign(setupIntent, { status: 'succeeded', payment_method: 'pm_saved_by_setup' });
    const completed = setupCompleted(customer, reply.id, setupIntent.id);
    expect((await deliver(completed)).body).toMatchObject({ duplicate: false, outcome: 'card saved' });
    expect((await deliver(completed)).body).toMatchObject({ duplicate: true });
    expect(await savedCard(customer)).toBe('pm_saved_by_setup');

    expect((await server.api.post(`/v1/invoices/${invoiceId}/finalize`)).status).toBe(200);
    await server.app.services.invoiceCollector.settle();
    const charge = server.stripe!.requests.filter((q) => q.route === 'POST /v1/payment_intents' && q.params['metadata[tollgate_invoice_id]'] === invoiceId);
    expect(charge.map((q) => [q.params.payment_method, q.params.amount])).toEqual([['pm_saved_by_setup', '5000']]);
    expect((await server.api.get(`/v1/invoices/${invoiceId}`)).body).toMatchObject({ status: 'paid', amount_paid: '50.00' });
  });

  it('a customer saves its own card through /v1/me/card_setups; setup_intent.succeeded names the card directly', async () => {
    const c = await createCustomer(server.api);
    const { reply } = await startSetup(c, c.apiKey);
    expect(reply.customer_id).toBe(c.customerId);
    const succeeded = {
      id: eventId(), object: 'event', type: 'setup_intent.succeeded', created: nowSeconds(),
      data: { object: { id: 'seti_direct', object: 'setup_intent', status: 'succeeded', payment_method: 'pm_direct', metadata: { tollgate_setup_id: reply.id, tollgate_customer_id: c.customerId } } },
    };
    expect((await deliver(succeeded)).body.outcome).toBe('card saved');
    expect((await server.api.get('/v1/me/auto_top_up', { token: c.apiKey })).body.payment_method).toBe('pm_direct');
  });

  it('the latest card wins: a setup newer than a paid top-up replaces its card; the older event arriving late changes nothing', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '10.00');
    clock.advance(1_000);
    const { reply, setupIntent } = await startSetup(c);
    Object.assign(setupIntent, { status: 'succeeded', payment_method: 'pm_newer' });
    expect((await deliver(setupCompleted(c, reply.id, setupIntent.id))).body.outcome).toBe('card saved');
    // The top-up's payment (older) is reported after: its card does not replace the newer one.
    expect((await deliver(intentSucceeded(t, `pi_${t.id}`, 'pm_older'))).body.outcome).toBe('credit granted');
    expect(await savedCard(c)).toBe('pm_newer');
  });

  it('Stripe unreachable while the card is looked up: 503, nothing recorded, and the redelivery saves it', async () => {
    const c = await createCustomer(server.api);
    const { reply, setupIntent } = await startSetup(c);
    Object.assign(setupIntent, { status: 'succeeded', payment_method: 'pm_after_outage' });
    const completed = setupCompleted(c, reply.id, setupIntent.id);
    server.stripe!.failNext(10);
    expectProblem(await deliver(completed), 503, 'service_unavailable');
    server.stripe!.failNext(0);
    expect(await savedCard(c)).toBeNull();
    expect((await deliver(completed)).body).toMatchObject({ duplicate: false, outcome: 'card saved' });
    expect(await savedCard(c)).toBe('pm_after_outage');
  });

  it('without Stripe configured: 503 payments_not_configured', async () => {
    const bare = await startServer({ stripe: false });
    try {
      const c = await createCustomer(bare.api);
      expectProblem(await bare.api.post(`/v1/customers/${c.customerId}/card_setups`), 503, 'payments_not_configured');
    } finally {
      await bare.close();
    }
  });
});
