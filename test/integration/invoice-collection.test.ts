import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { balanceOf, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';
import { listEvery, startServer, type TestServer } from '../support/harness.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';
import { stripeEvents } from '../support/stripe-events.js';

/*
 * Collection of finalized postpaid invoices with the saved card (docs/payments.md, "Invoice
 * collection"). Each customer: 2000 megapixels at 0.025 = 50.00 of usage in a past month, a 10.00
 * Checkout top-up that saved card pm_<customer> (it pays 10.00 of the debt), so finalization leaves
 * 40.00 due, charged off-session as 4000 cents.
 */

const DAY = 86_400_000;
const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
let server: TestServer;
const { deliver, intentSucceeded, topUp } = stripeEvents(() => server, clock);
const CREATE_INTENT = 'POST /v1/payment_intents';

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());
afterEach(() => {
  server.stripe!.declineNext(0);
  server.stripe!.confirmAs('succeeded');
  server.stripe!.beforeIntentReply = null;
});

const collector = () => server.app.services.invoiceCollector;
const invoice = async (id: string) => (await server.api.get(`/v1/invoices/${id}`)).body;
const chargesFor = (invoiceId: string) => server.stripe!.requests.filter((r) => r.route === CREATE_INTENT && r.params['metadata[tollgate_invoice_id]'] === invoiceId);
const invoicePayments = async (c: Fixture) => (await listEvery(server.api, `/v1/payments?customer=${c.customerId}`)).filter((p) => p.kind === 'invoice').reverse();

/** A drafted invoice of 50.00 for a postpaid customer whose 10.00 top-up saved a card. */
async function draftWithSavedCard(): Promise<{ invoiceId: string; customer: Fixture }> {
  const drafted = await owedInvoice(server, clock.now(), { finalize: false, megapixels: '2000' });
  const t = await topUp(drafted.customer, '10.00');
  expect((await deliver(intentSucceeded(t, `pi_${t.id}`, `pm_${drafted.customer.customerId}`))).body.outcome).toBe('credit granted');
  return drafted;
}

async function finalize(invoiceId: string) {
  const r = await server.api.post(`/v1/invoices/${invoiceId}/finalize`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body).toMatchObject({ status: 'finalized', total: '50.00', credits_applied: '10.00', amount_due: '40.00', amount_remaining: '40.00' });
  await collector().settle();
}

describe('invoice collection', () => {
  it('finalization charges the saved card what the invoice owes; the payment pays it and the balance returns to zero', async () => {
    const { invoiceId, customer } = await draftWithSavedCard();
    await finalize(invoiceId);
    const [charge] = chargesFor(invoiceId);
    expect(chargesFor(invoiceId)).toHaveLength(1);
    expect(charge!.params).toMatchObject({ amount: '4000', currency: 'usd', payment_method: `pm_${customer.customerId}`, confirm: 'true', off_session: 'true', 'metadata[tollgate_customer_id]': customer.customerId });
    expect(await invoice(invoiceId)).toMatchObject({ status: 'paid', amount_paid: '40.00', amount_remaining: '0.00', payment_provider: 'stripe' });
    const [payment] = await invoicePayments(customer);
    expect(payment).toMatchObject({ kind: 'invoice', status: 'paid', amount: '40.00', provider: 'stripe' });
    expect((await invoice(invoiceId)).payment_reference).toBe(payment.payment_intent_id);
    expect(payment.payment_intent_id).toMatch(/^pi_/);
    expect(await balanceOf(server.api, customer.customerId)).toMatchObject({ posted: '0.00', available: '1000.00' });

    // Stripe's webhook for the same PaymentIntent changes nothing; neither does another sweep.
    const again = await deliver(intentSucceeded({ id: payment.id, minor: 4000 }, payment.payment_intent_id));
    expect(again.body.outcome).toBe('already paid');
    await collector().sweep();
    expect(chargesFor(invoiceId)).toHaveLength(1);
    expect(await balanceOf(server.api, customer.customerId)).toMatchObject({ posted: '0.00' });
    await expectDoubleEntry(server.database.db);
  });

  it('a declined card is retried after 1, 3 and 5 days; after the fourth decline collection stops', async () => {
    const { invoiceId, customer } = await draftWithSavedCard();
    server.stripe!.declineNext(10);
    await finalize(invoiceId);
    expect(chargesFor(invoiceId)).toHaveLength(1);
    expect(await invoice(invoiceId)).toMatchObject({ status: 'finalized', amount_remaining: '40.00' });
    expect(await invoicePayments(customer)).toEqual([expect.objectContaining({ status: 'failed', failure_code: expect.any(String) })]);

    for (const [wait, attempts] of [[DAY - 60_000, 1], [60_000, 2], [3 * DAY, 3], [5 * DAY - 1, 3], [1, 4], [30 * DAY, 4]] as const) {
      clock.advance(wait);
      await collector().sweep();
      expect(chargesFor(invoiceId), `after ${wait} ms more`).toHaveLength(attempts);
    }
    expect((await invoicePayments(customer)).map((p) => p.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(await invoice(invoiceId)).toMatchObject({ status: 'finalized', amount_remaining: '40.00' });
    // Still owed: the operator settles it another way.
    expect((await server.api.post(`/v1/invoices/${invoiceId}/mark_paid`, { reference: 'wire 77' })).body).toMatchObject({ status: 'paid', amount_paid: '40.00' });
    expect(await balanceOf(server.api, customer.customerId)).toMatchObject({ posted: '0.00' });
  });

  it('a retry that succeeds after a decline pays the invoice once', async () => {
    const { invoiceId, customer } = await draftWithSavedCard();
    server.stripe!.declineNext(1);
    await finalize(invoiceId);
    clock.advance(DAY);
    await collector().sweep();
    expect(chargesFor(invoiceId)).toHaveLength(2);
    expect((await invoicePayments(customer)).map((p) => p.status)).toEqual(['failed', 'paid']);
    expect(await invoice(invoiceId)).toMatchObject({ status: 'paid', amount_paid: '40.00' });
    expect(await balanceOf(server.api, customer.customerId)).toMatchObject({ posted: '0.00' });
  });

  it('an invoice paid by other means while its charge is pending: the card money becomes purchased credit, not lost', async () => {
    const { invoiceId, customer } = await draftWithSavedCard();
    server.stripe!.confirmAs('processing');
    await finalize(invoiceId);
    const [payment] = await invoicePayments(customer);
    expect(payment).toMatchObject({ status: 'pending' });
    expect((await server.api.post(`/v1/invoices/${invoiceId}/mark_paid`, { reference: 'cheque' })).status).toBe(200);
    const r = await deliver(intentSucceeded({ id: payment.id, minor: 4000 }, payment.payment_intent_id));
    expect(r.body.outcome).toBe('invoice no longer payable: credited as purchased credit');
    expect(await invoice(invoiceId)).toMatchObject({ status: 'paid', payment_reference: 'cheque' });
    expect(await balanceOf(server.api, customer.customerId)).toMatchObject({ posted: '40.00' });
    await expectDoubleEntry(server.database.db);
  });

  it('finalization racing sweeps makes one charge', async () => {
    const { invoiceId } = await draftWithSavedCard();
    server.stripe!.confirmAs('processing');
    await Promise.all([finalize(invoiceId), collector().sweep(), collector().sweep(), collector().sweep()]);
    await collector().sweep();
    expect(chargesFor(invoiceId)).toHaveLength(1);
  });

  it('a customer without a saved card is not charged: the invoice waits for another payment', async () => {
    const { invoiceId } = await owedInvoice(server, clock.now(), { megapixels: '2000' });
    await collector().settle();
    await collector().sweep();
    expect(chargesFor(invoiceId)).toHaveLength(0);
    expect(await invoice(invoiceId)).toMatchObject({ status: 'finalized', amount_remaining: '50.00' });
  });
});
