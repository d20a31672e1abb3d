import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { expectProblem, stripeEvents } from '../support/stripe-events.js';

// Webhook signatures are checked against this clock (300 s tolerance), so staleness is exact.
const T0 = new Date('2031-05-14T10:00:00.000Z');
const clock = new ManualClock(T0);
let server: TestServer;
const { deliver, eventId, nowSeconds, sessionCompleted, intentSucceeded, chargeRefunded, topUp, paymentOf, transactions } = stripeEvents(() => server, clock);

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const NO_FAILURE_OR_DISPUTE = {
  failure_code: null, failure_message: null, failed_at: null, invoice_id: null,
  dispute_status: null, disputed: '0.00', dispute_taken: '0.00', dispute_uncollected: '0.00', dispute_reinstated: '0.00',
};

describe('creating a top-up', () => {
  it('creates and links a Stripe customer once, a Checkout Session for the amount, and a pending payment', async () => {
    const c = await createCustomer(server.api);
    const before = server.stripe!.requests.length;
    const first = await topUp(c, '25.00');
    expect(first.body).toEqual({
      id: expect.stringMatching(/^pay_[0-9a-z]{26}$/), customer_id: c.customerId, kind: 'top_up', provider: 'stripe', status: 'pending', currency: 'USD', amount: '25.00',
      url: expect.stringMatching(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_test_/), reference: null, grant_id: null, payment_intent_id: null, refunded: '0.00', refund_taken: '0.00', refund_uncollected: '0.00',
      ...NO_FAILURE_OR_DISPUTE, created_at: T0.toISOString(), paid_at: null,
    });
    const second = await server.api.post('/v1/me/top_ups', { amount: '5.5' }, { token: c.apiKey });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body).toMatchObject({ customer_id: c.customerId, amount: '5.50', status: 'pending' });

    const calls = server.stripe!.requests.slice(before);
    expect(calls.map((q) => q.route)).toEqual(['POST /v1/customers', 'POST /v1/checkout/sessions', 'POST /v1/checkout/sessions']);
    expect(calls[0]!.params).toMatchObject({ 'metadata[tollgate_customer_id]': c.customerId });
    expect(calls[0]!.idempotencyKey).toBe(`tollgate-customer-${c.customerId}`);
    const stripeCustomer = calls[1]!.params.customer;
    expect(stripeCustomer).toMatch(/^cus_/);
    expect(calls[2]!.params.customer).toBe(stripeCustomer);
    expect(calls[1]!.params).toMatchObject({
      mode: 'payment', 'line_items[0][price_data][currency]': 'usd', 'line_items[0][price_data][unit_amount]': '2500',
      'payment_intent_data[setup_future_usage]': 'off_session', 'metadata[tollgate_payment_id]': first.id, 'payment_intent_data[metadata][tollgate_payment_id]': first.id,
    });
    expect(calls[1]!.idempotencyKey).toBe(first.id);
    expect(calls[2]!.params['line_items[0][price_data][unit_amount]']).toBe('550');
    // Nothing is credited before Stripe reports the payment.
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    const mine = await server.api.get('/v1/me/payments', { token: c.apiKey });
    expect(mine.body.data.map((p: any) => p.id)).toEqual([second.body.id, first.id]);
  });

  it('replays a retried top-up with the same Idempotency-Key without a second checkout', async () => {
    const c = await createCustomer(server.api);
    const replies = await Promise.all(Array.from({ length: 5 }, () => server.api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '10.00' }, { idempotencyKey: `top-${c.customerId}` })));
    for (const r of replies) expect(r.body).toEqual(replies[0]!.body);
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    const list = await server.api.get(`/v1/payments?customer=${c.customerId}`);
    expect(list.body.data.map((p: any) => p.id)).toEqual([replies[0]!.body.id]);
  });

  it('refuses amounts outside 1.00-10000.00 or finer than cents, unknown customers, and answers 503 while Stripe fails', async () => {
    const c = await createCustomer(server.api);
    for (const amount of ['0.99', '10000.01', '1.001', '0']) {
      const r = await server.api.post(`/v1/customers/${c.customerId}/top_ups`, { amount });
      expectProblem(r, 400, 'invalid_request');
      expect(r.body.errors).toEqual([expect.objectContaining({ path: 'amount' })]);
    }
    expect((await server.api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '10000.00' })).status).toBe(201);
    expectProblem(await server.api.post('/v1/customers/cus_00000000000000000000000000/top_ups', { amount: '5.00' }), 404, 'not_found');
    server.stripe!.failNext(10);
    const down = await server.api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '5.00' });
    server.stripe!.failNext(0);
    expectProblem(down, 503, 'service_unavailable');
    expect(down.headers.get('retry-after')).toBe('5');
    expect((await server.api.get(`/v1/payments?customer=${c.customerId}`)).body.data).toHaveLength(1);
  });

  it('answers 503 payments_not_configured without STRIPE_SECRET_KEY', async () => {
    const bare = await startServer({ stripe: false });
    try {
      const c = await createCustomer(bare.api);
      expectProblem(await bare.api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '5.00' }), 503, 'payments_not_configured');
      expectProblem(await bare.api.post('/v1/stripe/webhook', undefined, { token: null, rawBody: '{}' }), 503, 'payments_not_configured');
    } finally {
      await bare.close();
    }
  });
});

describe('the Stripe webhook', () => {
  it('grants purchased credit once, whichever of checkout.session.completed and payment_intent.succeeded comes first, however often', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '12.34');
    const intent = `pi_${t.id}`;
    const succeeded = intentSucceeded(t, intent);
    const first = await deliver(succeeded);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({ received: true, duplicate: false, outcome: 'credit granted' });
    expect((await deliver(succeeded)).body).toEqual({ received: true, duplicate: true, outcome: 'duplicate' });
    const completed = sessionCompleted(t, intent);
    expect((await deliver(completed)).body).toMatchObject({ duplicate: false, outcome: 'already paid' });
    expect((await deliver(completed)).body).toMatchObject({ duplicate: true });
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '12.34', posted: '12.34' });
    const payment = await paymentOf(t.id);
    expect(payment).toMatchObject({ status: 'paid', grant_id: expect.stringMatching(/^grt_/), paid_at: T0.toISOString() });
    const grants = await server.api.get(`/v1/customers/${c.customerId}/credit_grants`);
    expect(grants.body.data).toEqual([expect.objectContaining({ id: payment.grant_id, category: 'purchased', amount: '12.34', description: `Top-up ${t.id}` })]);
  });

  it('concurrent deliveries of both events, many times each, grant once', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '7.00');
    const intent = `pi_${t.id}`;
    const events = [sessionCompleted(t, intent), intentSucceeded(t, intent)];
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => deliver(events[i % 2]!)));
    for (const r of replies) expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(replies.filter((r) => !r.body.duplicate)).toHaveLength(2);
    expect(replies.filter((r) => r.body.outcome === 'credit granted')).toHaveLength(1);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '7.00', posted: '7.00' });
    expect(await transactions(c.customerId)).toEqual([['grant', '7.00', 'credit', null]]);
  });

  it('a session completed but not paid yet grants nothing', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '3.00');
    expect((await deliver(sessionCompleted(t, `pi_${t.id}`, 'unpaid'))).body.outcome).toMatch(/^ignored/);
    expect((await paymentOf(t.id)).status).toBe('pending');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '0.00' });
  });

  it('refuses a forged, missing or stale signature with 400 and changes nothing', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '9.00');
    const event = intentSucceeded(t, `pi_${t.id}`);
    expectProblem(await deliver(event, { secret: 'whsec_not_the_secret' }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { signature: null }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { signature: 't=1,v1=deadbeef' }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { tamper: (p) => p.replace('"amount_received":900', '"amount_received":90000') }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { timestamp: nowSeconds() - 301 }), 400, 'invalid_signature');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '0.00' });
    // Within the tolerance it is accepted; the event id was not used up by the refusals.
    expect((await deliver(event, { timestamp: nowSeconds() - 299 })).body).toMatchObject({ outcome: 'credit granted' });
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '9.00' });
  });

  it('answers 200 to event types it does not handle, once', async () => {
    const event = { id: eventId(), object: 'event', type: 'customer.created', created: nowSeconds(), data: { object: { id: 'cus_x', object: 'customer' } } };
    expect((await deliver(event)).body).toEqual({ received: true, duplicate: false, outcome: 'ignored: type not handled' });
    expect((await deliver(event)).body).toMatchObject({ duplicate: true });
  });

  it('a payment whose amount does not match the top-up grants nothing', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '4.00');
    expect((await deliver(intentSucceeded({ ...t, minor: 1 }, `pi_${t.id}`))).body.outcome).toBe('mismatch: amount or currency');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '0.00' });
  });
});

describe('refunds', () => {
  it('takes refunded credit back with a new transfer, partial then full, each total once', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '20.00');
    const intent = `pi_${t.id}`;
    await deliver(sessionCompleted(t, intent));
    const partial = chargeRefunded(intent, 500, 2000);
    expect((await deliver(partial)).body.outcome).toBe('refund applied');
    expect((await deliver(partial)).body.duplicate).toBe(true);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '15.00', posted: '15.00' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'partially_refunded', refunded: '5.00', refund_taken: '5.00', refund_uncollected: '0.00' });
    // An older total arriving late changes nothing; the full refund takes the rest.
    expect((await deliver(chargeRefunded(intent, 300, 2000))).body.outcome).toBe('no refund');
    await deliver(chargeRefunded(intent, 2000, 2000));
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'refunded', refunded: '20.00', refund_taken: '20.00' });
    expect(await transactions(c.customerId)).toEqual([
      ['adjustment', '15.00', 'debit', 'refund'],
      ['adjustment', '5.00', 'debit', 'refund'],
      ['grant', '20.00', 'credit', null],
    ]);
  });

  it('a refund of credit already spent takes what is available and reports the rest as uncollected', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '10.00');
    const intent = `pi_${t.id}`;
    await deliver(intentSucceeded(t, intent));
    // Spend 7.50 of it (300 megapixels at 0.025) and hold 0.50 more for a job still running.
    const spent = await authorize(server.api, c.apiKey, { megapixels: 300 });
    expect((await server.api.post(`/v1/reservations/${spent.body.reservation.id}/settle`, { usage: { megapixels: 300 } })).status).toBe(200);
    const running = await authorize(server.api, c.apiKey, { megapixels: 20 });
    expect(running.status).toBe(200);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '2.00', held: '0.50', posted: '2.50' });
    expect((await deliver(chargeRefunded(intent, 1000, 1000))).body.outcome).toBe('refund applied, part already spent');
    // The open hold stays covered: only the available 2.00 is taken back.
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.50', held: '0.50' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'refunded', refunded: '10.00', refund_taken: '2.00', refund_uncollected: '8.00' });
    // The job settles within its hold; nothing is left, nothing went below zero.
    expect((await server.api.post(`/v1/reservations/${running.body.reservation.id}/settle`, { usage: { megapixels: 20 } })).status).toBe(200);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00', held: '0.00' });
  });

  it('a refund seen before its payment is kept and applied when the payment arrives', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '6.00');
    const intent = `pi_${t.id}`;
    expect((await deliver(chargeRefunded(intent, 250, 600))).body.outcome).toBe('refund recorded, payment not yet paid');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '0.00' });
    expect((await deliver(intentSucceeded(t, intent))).body.outcome).toBe('credit granted; refund applied');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '3.50', posted: '3.50' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'partially_refunded', refunded: '2.50', refund_taken: '2.50' });
    expect((await deliver(sessionCompleted(t, intent))).body.outcome).toBe('already paid');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '3.50' });
  });
});

describe('manual payments (the operator records a bank transfer)', () => {
  it('records a paid payment with its purchased credit at once, listed with the card ones', async () => {
    const c = await createCustomer(server.api);
    const before = server.stripe!.requests.length;
    const r = await server.api.post(`/v1/customers/${c.customerId}/payments`, { amount: '150.00', reference: 'SEPA 2031-05-14 #889' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^pay_/), customer_id: c.customerId, kind: 'top_up', provider: 'manual', status: 'paid', currency: 'USD', amount: '150.00',
      url: null, reference: 'SEPA 2031-05-14 #889', grant_id: expect.stringMatching(/^grt_/), payment_intent_id: null, refunded: '0.00', refund_taken: '0.00', refund_uncollected: '0.00',
      ...NO_FAILURE_OR_DISPUTE, created_at: T0.toISOString(), paid_at: T0.toISOString(),
    });
    expect(server.stripe!.requests.length).toBe(before);
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '150.00', posted: '150.00' });
    expect((await server.api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data).toEqual([expect.objectContaining({ id: r.body.grant_id, category: 'purchased', amount: '150.00' })]);
    expect((await server.api.get('/v1/me/payments', { token: c.apiKey })).body.data).toEqual([r.body]);
    expectProblem(await server.api.post(`/v1/customers/${c.customerId}/payments`, { amount: '1.005', reference: 'x' }), 400, 'invalid_request');
    expectProblem(await server.api.post(`/v1/customers/${c.customerId}/payments`, { amount: '5.00', reference: 'x' }, { token: c.apiKey }), 403, 'forbidden');
  });

  it('works without Stripe configured', async () => {
    const bare = await startServer({ stripe: false });
    try {
      const c = await createCustomer(bare.api);
      const r = await bare.api.post(`/v1/customers/${c.customerId}/payments`, { amount: '12.00', reference: 'wire 42' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(await balanceOf(bare.api, c.customerId)).toMatchObject({ posted: '12.00' });
    } finally {
      await bare.close();
    }
  });
});
