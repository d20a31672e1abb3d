import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, createCustomer, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { stripeEvents } from '../support/stripe-events.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

/*
 * The billing and payment events as a customer's webhook receiver gets them (docs/webhooks.md):
 * payment.succeeded, payment.refunded, top_up.failed, auto_top_up.disabled, invoice.finalized,
 * invoice.payment_failed and invoice.paid, each written in the transaction of its change and
 * delivered signed.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const clock = new ManualClock(new Date('2031-05-10T08:00:00.000Z'));
let server: TestServer;
const receivers: Receiver[] = [];
const { deliver, intentSucceeded, chargeRefunded, topUp } = stripeEvents(() => server, clock);
const TYPES = ['payment.succeeded', 'payment.refunded', 'top_up.failed', 'auto_top_up.disabled', 'invoice.finalized', 'invoice.payment_failed', 'invoice.paid'];

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await server?.close();
});
afterEach(() => server.stripe!.declineNext(0));

/** A receiver subscribed to the billing and payment events of one customer. */
async function subscribe(c: Fixture): Promise<Receiver> {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const r = await server.api.post('/v1/webhook_endpoints', { url: receiver.url, customer: c.customerId, event_types: TYPES });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  receiver.secrets.push(r.body.secret);
  return receiver;
}

async function received(receiver: Receiver) {
  await server.app.services.autoTopUp.settle();
  await server.app.services.invoiceCollector.settle();
  for (let i = 0; i < 100 && (await server.app.services.webhookDispatcher.runOnce()) > 0; i++);
  expect(receiver.received.every((x) => x.verified)).toBe(true);
  return receiver.received.map((x) => x.body);
}
const types = (events: Array<{ type: string }>) => events.map((e) => e.type);

describe('payment events', () => {
  it('a paid top-up, its refund, then auto top-up declined three times: succeeded, refunded, three top_up.failed and auto_top_up.disabled', async () => {
    const c = await createCustomer(server.api);
    const receiver = await subscribe(c);
    const t = await topUp(c, '10.00');
    await deliver(intentSucceeded(t, `pi_${t.id}`, `pm_${c.customerId}`));
    await deliver(chargeRefunded(`pi_${t.id}`, 250, 1000));
    let events = await received(receiver);
    expect(types(events)).toEqual(['payment.succeeded', 'payment.refunded']);
    expect(events[0]).toMatchObject({ customer_id: c.customerId, data: { id: t.id, status: 'paid', amount: '10.00' } });
    expect(events[1]).toMatchObject({ data: { id: t.id, status: 'partially_refunded', refunded: '2.50' } });

    server.stripe!.declineNext(3);
    expect((await server.api.request('PUT', `/v1/customers/${c.customerId}/auto_top_up`, { enabled: true, threshold: '9.00', amount: '20.00' })).status).toBe(200);
    for (const wait of [HOUR, 6 * HOUR]) {
      await server.app.services.autoTopUp.settle();
      clock.advance(wait);
      await server.app.services.autoTopUp.sweep();
    }
    events = await received(receiver);
    const failures = events.filter((e) => e.type === 'top_up.failed');
    expect(failures).toHaveLength(3);
    expect(failures[0]).toMatchObject({ customer_id: c.customerId, data: { customer_id: c.customerId, currency: 'USD', amount: '20.00', reason: expect.stringContaining('insufficient_funds') } });
    expect(events.filter((e) => e.type === 'auto_top_up.disabled')).toEqual([expect.objectContaining({ data: { customer_id: c.customerId, reason: expect.stringContaining('3 declined payments in a row') } })]);
  });
});

describe('invoice events', () => {
  it('finalized, its card payment declined, then paid on the retry', async () => {
    const { invoiceId, customer } = await owedInvoice(server, clock.now(), { finalize: false, megapixels: '2000' });
    const receiver = await subscribe(customer);
    const t = await topUp(customer, '10.00');
    await deliver(intentSucceeded(t, `pi_${t.id}`, `pm_${customer.customerId}`));
    server.stripe!.declineNext(1);
    expect((await server.api.post(`/v1/invoices/${invoiceId}/finalize`)).status).toBe(200);
    await server.app.services.invoiceCollector.settle();
    clock.advance(DAY);
    await server.app.services.invoiceCollector.sweep();
    const events = (await received(receiver)).filter((e) => e.type.startsWith('invoice.'));
    expect(types(events)).toEqual(['invoice.finalized', 'invoice.payment_failed', 'invoice.paid']);
    expect(events[0]).toMatchObject({ customer_id: customer.customerId, data: { id: invoiceId, status: 'finalized', amount_due: '40.00' } });
    expect(events[1]).toMatchObject({ data: { invoice: { id: invoiceId, status: 'finalized' }, reason: expect.stringContaining('insufficient_funds') } });
    expect(events[2]).toMatchObject({ data: { id: invoiceId, status: 'paid', amount_paid: '40.00', payment_provider: 'stripe' } });
  });

  it('an invoice covered by credits is finalized and paid at once', async () => {
    const { invoiceId, customer } = await owedInvoice(server, clock.now(), { finalize: false, megapixels: '40' });
    const receiver = await subscribe(customer);
    expect((await server.api.post(`/v1/customers/${customer.customerId}/credit_grants`, { amount: '5.00', category: 'promotional' })).status).toBe(201);
    expect((await server.api.post(`/v1/invoices/${invoiceId}/finalize`)).body).toMatchObject({ status: 'paid', amount_due: '0.00' });
    expect(types(await received(receiver))).toEqual(['invoice.finalized', 'invoice.paid']);
    // Spending afterwards is not a billing event: nothing more arrives.
    await authorize(server.api, customer.apiKey, { megapixels: 1 });
    expect(types(await received(receiver))).toEqual(['invoice.finalized', 'invoice.paid']);
  });
});
