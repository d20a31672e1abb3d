import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { listEvery, startServer, type TestServer } from '../support/harness.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';
import { expectProblem, stripeEvents } from '../support/stripe-events.js';

// Auto top-up: below the threshold, one off-session PaymentIntent for the saved card, granted once
// through the same path as a Checkout top-up; declines retried after 1 h and 6 h, then off.
const HOUR = 3_600_000;
const clock = new ManualClock(new Date('2031-07-01T08:00:00.000Z'));
let server: TestServer;
const { deliver, intentSucceeded, intentFailed, topUp, paymentOf } = stripeEvents(() => server, clock);
const CREATE_INTENT = 'POST /v1/payment_intents';

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());
afterEach(() => {
  server.stripe!.declineNext(0);
  server.stripe!.failNext(0);
  server.stripe!.confirmAs('succeeded');
  server.stripe!.beforeIntentReply = null;
});

const autoTopUp = () => server.app.services.autoTopUp;
const put = (c: Fixture, body: object) => server.api.request('PUT', `/v1/customers/${c.customerId}/auto_top_up`, body);
const settingsOf = async (c: Fixture) => (await server.api.get(`/v1/customers/${c.customerId}/auto_top_up`)).body;

/** A customer who paid a 10.00 Checkout top-up with card `pm_<customer>`, saved for later charges. */
async function withSavedCard(): Promise<Fixture & { card: string }> {
  const c = await createCustomer(server.api);
  const t = await topUp(c, '10.00');
  const card = `pm_${c.customerId}`;
  expect((await deliver(intentSucceeded(t, `pi_${t.id}`, card))).body.outcome).toBe('credit granted');
  return { ...c, card };
}

/** The customer's auto top-up payments, oldest first. */
async function autoTopUpsOf(c: Fixture) {
  return (await listEvery(server.api, `/v1/payments?customer=${c.customerId}`)).filter((p) => p.kind === 'auto_top_up').reverse();
}

const intentCallsFor = (c: Fixture) => server.stripe!.requests.filter((r) => r.route === CREATE_INTENT && r.params['metadata[tollgate_customer_id]'] === c.customerId);

describe('settings', () => {
  it('starts off; turning it on needs a saved card (409); amounts follow the top-up rules', async () => {
    const c = await createCustomer(server.api);
    expect(await settingsOf(c)).toEqual({
      customer_id: c.customerId, enabled: false, currency: 'USD', threshold: null, amount: null, payment_method: null,
      consecutive_failures: 0, next_attempt_at: null, disabled_reason: null, disabled_at: null, updated_at: null,
    });
    const refused = await put(c, { enabled: true, threshold: '5.00', amount: '20.00' });
    expectProblem(refused, 409, 'payment_method_required');
    expect(refused.body.errors).toEqual([expect.objectContaining({ path: 'enabled' })]);
    // Configured but off needs no card.
    const off = await put(c, { enabled: false, threshold: '5', amount: '20.5' });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, threshold: '5.00', amount: '20.50', updated_at: clock.now().toISOString() });
    for (const [field, value] of [['threshold', '0.99'], ['threshold', '1.001'], ['amount', '10000.01'], ['amount', '0'], ['amount', '-5']] as const) {
      const r = await put(c, { enabled: false, threshold: '5.00', amount: '20.00', [field]: value });
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors, `${field}=${value}`).toEqual([expect.objectContaining({ path: field })]);
    }
    expectProblem(await put(c, { enabled: true, threshold: '5.00' }), 400, 'invalid_request');
    expectProblem(await server.api.request('PUT', '/v1/customers/cus_00000000000000000000000000/auto_top_up', { enabled: false, threshold: '5.00', amount: '20.00' }), 404, 'not_found');
  });

  it('a customer manages its own through /v1/me/auto_top_up once a Checkout top-up saved its card', async () => {
    const c = await withSavedCard();
    expect((await server.api.get('/v1/me/auto_top_up', { token: c.apiKey })).body).toMatchObject({ customer_id: c.customerId, enabled: false, payment_method: c.card });
    const r = await server.api.request('PUT', '/v1/me/auto_top_up', { enabled: true, threshold: '2.00', amount: '25.00' }, { token: c.apiKey });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ enabled: true, threshold: '2.00', amount: '25.00', payment_method: c.card });
    await autoTopUp().settle();
    // 10.00 available is above the threshold: nothing charged.
    expect(intentCallsFor(c)).toHaveLength(0);
    expect((await server.api.get(`/v1/customers/${c.customerId}/auto_top_up`)).body).toEqual(r.body);
  });

  it('checkout.session.completed names no card: the PaymentIntent is looked up and its card saved', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '10.00');
    const intent = `pi_lookup_${t.id}`;
    server.stripe!.paymentIntents.set(intent, { id: intent, object: 'payment_intent', status: 'succeeded', amount: 1000, currency: 'usd', payment_method: 'pm_from_lookup', metadata: { tollgate_payment_id: t.id } });
    const completed = stripeEvents(() => server, clock).sessionCompleted(t, intent);
    expect((await deliver(completed)).body.outcome).toBe('credit granted');
    expect(server.stripe!.requests.filter((r) => r.route === 'GET /v1/payment_intents/{id}')).not.toHaveLength(0);
    expect((await settingsOf(c)).payment_method).toBe('pm_from_lookup');
  });
});

describe('crossing the threshold', () => {
  it('50 concurrent authorizes that cross it make exactly one PaymentIntent and one grant', async () => {
    const c = await withSavedCard();
    expect((await put(c, { enabled: true, threshold: '5.00', amount: '50.00' })).status).toBe(200);
    const replies = await Promise.all(Array.from({ length: 50 }, () => authorize(server.api, c.apiKey, { megapixels: 5 })));
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    // Noticed after the ledger commits, not by the sweep; the sweep afterwards starts nothing more.
    await autoTopUp().settle();
    expect(intentCallsFor(c)).toHaveLength(1);
    await autoTopUp().sweep();
    const calls = intentCallsFor(c);
    expect(calls).toHaveLength(1);
    const payments = await autoTopUpsOf(c);
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ kind: 'auto_top_up', provider: 'stripe', status: 'paid', amount: '50.00', grant_id: expect.stringMatching(/^grt_/) });
    expect(calls[0]!.idempotencyKey).toBe(payments[0].id);
    expect(calls[0]!.params).toMatchObject({
      amount: '5000', currency: 'usd', customer: expect.stringMatching(/^cus_/), payment_method: c.card, confirm: 'true', off_session: 'true',
      'metadata[tollgate_payment_id]': payments[0].id, 'metadata[tollgate_customer_id]': c.customerId,
    });
    // 10.00 - 50 x 0.125 held + 50.00 bought.
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '53.75', held: '6.25', posted: '60.00' });
    const grants = (await server.api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data;
    expect(grants.filter((g: any) => g.description === `Auto top-up ${payments[0].id}`)).toEqual([expect.objectContaining({ category: 'purchased', amount: '50.00' })]);
    await expectDoubleEntry(server.database.db);
  });

  it('usage charged by POST /v1/events crosses it too', async () => {
    const c = await withSavedCard();
    expect((await put(c, { enabled: true, threshold: '5.00', amount: '20.00' })).status).toBe(200);
    const event = { specversion: '1.0', id: `auto-${c.customerId}`, source: 'auto-top-up/test', type: 'usage', subject: c.customerId, time: clock.now().toISOString(), data: { product: 'fal-ai/flux/dev', megapixels: 240 } };
    const r = await server.api.post('/v1/events', event);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await autoTopUp().settle();
    expect(intentCallsFor(c)).toHaveLength(1);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '24.00' });
  });

  it('the webhook and the synchronous answer racing grant once, whichever comes first', async () => {
    for (const webhookFirst of [true, false]) {
      const c = await withSavedCard();
      server.stripe!.beforeIntentReply = async (intent) => {
        const delivery = deliver(intentSucceeded({ id: intent.metadata.tollgate_payment_id!, minor: intent.amount }, intent.id, c.card));
        if (webhookFirst) expect((await delivery).body.outcome).toBe('credit granted');
        else void delivery;
      };
      expect((await put(c, { enabled: true, threshold: '20.00', amount: '30.00' })).status).toBe(200);
      await autoTopUp().settle();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(intentCallsFor(c)).toHaveLength(1);
      const [payment] = await autoTopUpsOf(c);
      expect(payment).toMatchObject({ status: 'paid' });
      expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '40.00', posted: '40.00' });
    }
  });

  it('a charge still processing waits for its webhook, and no second one starts meanwhile', async () => {
    const c = await withSavedCard();
    server.stripe!.confirmAs('processing');
    expect((await put(c, { enabled: true, threshold: '20.00', amount: '15.00' })).status).toBe(200);
    await autoTopUp().settle();
    clock.advance(2 * 60_000);
    await autoTopUp().sweep();
    expect(intentCallsFor(c)).toHaveLength(1);
    const [pending] = await autoTopUpsOf(c);
    expect(pending).toMatchObject({ status: 'pending', grant_id: null });
    const intent = [...server.stripe!.paymentIntents.values()].find((i) => i.metadata.tollgate_payment_id === pending.id)!;
    expect((await deliver(intentSucceeded({ id: pending.id, minor: 1500 }, intent.id, c.card))).body.outcome).toBe('credit granted');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '25.00' });
  });
});

describe('declines', () => {
  it('are retried after 1 h and 6 h; the third in a row turns auto top-up off; turning it on again starts afresh', async () => {
    const c = await withSavedCard();
    server.stripe!.declineNext(3);
    const start = clock.now().getTime();
    expect((await put(c, { enabled: true, threshold: '15.00', amount: '10.00' })).status).toBe(200);
    await autoTopUp().settle();
    expect(intentCallsFor(c)).toHaveLength(1);
    let [first] = await autoTopUpsOf(c);
    expect(first).toMatchObject({ status: 'failed', failure_code: 'insufficient_funds', failed_at: clock.now().toISOString(), grant_id: null });
    expect(await settingsOf(c)).toMatchObject({ enabled: true, consecutive_failures: 1, next_attempt_at: new Date(start + HOUR).toISOString() });
    // The webhook for the same decline does not count it twice.
    const intent = [...server.stripe!.paymentIntents.values()].find((i) => i.metadata.tollgate_payment_id === first.id)!;
    expect((await deliver(intentFailed({ id: first.id, minor: 1000 }, intent.id))).body.outcome).toBe('already failed');
    expect((await settingsOf(c)).consecutive_failures).toBe(1);

    clock.advance(HOUR - 60_000);
    await autoTopUp().sweep();
    expect(intentCallsFor(c)).toHaveLength(1);
    clock.advance(60_000);
    await autoTopUp().sweep();
    expect(intentCallsFor(c)).toHaveLength(2);
    expect(await settingsOf(c)).toMatchObject({ enabled: true, consecutive_failures: 2, next_attempt_at: new Date(start + 7 * HOUR).toISOString() });

    clock.advance(6 * HOUR);
    await autoTopUp().sweep();
    expect(intentCallsFor(c)).toHaveLength(3);
    expect(await settingsOf(c)).toMatchObject({ enabled: false, consecutive_failures: 3, disabled_reason: 'too_many_failures', disabled_at: clock.now().toISOString(), next_attempt_at: null });
    // Each attempt was a payment of its own (its own idempotency key at Stripe).
    const attempts = await autoTopUpsOf(c);
    expect(attempts.map((p) => p.status)).toEqual(['failed', 'failed', 'failed']);
    expect(new Set(intentCallsFor(c).map((r) => r.idempotencyKey))).toEqual(new Set(attempts.map((p) => p.id)));

    clock.advance(48 * HOUR);
    await autoTopUp().sweep();
    expect(intentCallsFor(c)).toHaveLength(3);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '10.00' });

    const again = await put(c, { enabled: true, threshold: '15.00', amount: '10.00' });
    expect(again.body).toMatchObject({ enabled: true, consecutive_failures: 0, disabled_reason: null, disabled_at: null });
    await autoTopUp().settle();
    expect(intentCallsFor(c)).toHaveLength(4);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00' });
    [first] = (await autoTopUpsOf(c)).slice(-1);
    expect(first).toMatchObject({ status: 'paid' });
  });

  it('a success resets the count of declines in a row', async () => {
    const c = await withSavedCard();
    server.stripe!.declineNext(1);
    expect((await put(c, { enabled: true, threshold: '15.00', amount: '10.00' })).status).toBe(200);
    await autoTopUp().settle();
    expect((await settingsOf(c)).consecutive_failures).toBe(1);
    clock.advance(HOUR);
    await autoTopUp().sweep();
    expect(await settingsOf(c)).toMatchObject({ enabled: true, consecutive_failures: 0, next_attempt_at: null });
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00' });
  });

  it('Stripe unreachable is not a decline: the same payment is sent again a minute later', async () => {
    const c = await withSavedCard();
    server.stripe!.failNext(100);
    expect((await put(c, { enabled: true, threshold: '15.00', amount: '10.00' })).status).toBe(200);
    await autoTopUp().settle();
    const [pending] = await autoTopUpsOf(c);
    expect(pending).toMatchObject({ status: 'pending' });
    expect(await settingsOf(c)).toMatchObject({ enabled: true, consecutive_failures: 0 });
    server.stripe!.failNext(0);
    await autoTopUp().sweep();
    expect((await paymentOf(pending.id)).status).toBe('pending');
    clock.advance(61_000);
    await autoTopUp().sweep();
    expect(await paymentOf(pending.id)).toMatchObject({ status: 'paid' });
    expect(new Set(intentCallsFor(c).map((r) => r.idempotencyKey))).toEqual(new Set([pending.id]));
    expect(await autoTopUpsOf(c)).toHaveLength(1);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00' });
  });
});
