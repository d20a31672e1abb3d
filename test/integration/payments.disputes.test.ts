import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';
import { expectProblem, stripeEvents, type TopUp } from '../support/stripe-events.js';

// Disputes (chargebacks) from Stripe's webhook: charge.dispute.created takes the amount back like a
// refund, closed as won gives it back, lost keeps it; every event once, in any order.
const clock = new ManualClock(new Date('2031-06-02T09:00:00.000Z'));
let server: TestServer;
const { deliver, intentSucceeded, chargeRefunded, dispute, topUp, paymentOf, transactions } = stripeEvents(() => server, clock);

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

/** A customer with a paid 20.00 Checkout top-up. */
async function paidTopUp(amount = '20.00'): Promise<{ c: Fixture; t: TopUp; intent: string }> {
  const c = await createCustomer(server.api);
  const t = await topUp(c, amount);
  const intent = `pi_${t.id}`;
  expect((await deliver(intentSucceeded(t, intent))).body.outcome).toBe('credit granted');
  return { c, t, intent };
}

const outcomeOf = async (event: object) => {
  const r = await deliver(event);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.outcome as string;
};

describe('a dispute opened, then closed', () => {
  it('takes the disputed amount back once; lost keeps it taken for good', async () => {
    const { c, t, intent } = await paidTopUp();
    const created = dispute('created', intent, 2000, 'needs_response');
    expect(await outcomeOf(created)).toBe('dispute applied');
    expect((await deliver(created)).body).toEqual({ received: true, duplicate: true, outcome: 'duplicate' });
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'paid', dispute_status: 'needs_response', disputed: '20.00', dispute_taken: '20.00', dispute_uncollected: '0.00', dispute_reinstated: '0.00' });

    expect(await outcomeOf(dispute('updated', intent, 2000, 'under_review'))).toBe('dispute under_review recorded');
    expect(await outcomeOf(dispute('closed', intent, 2000, 'lost'))).toBe('dispute lost recorded');
    // Closed is final: a late update, even a "won" sent after, changes nothing.
    expect(await outcomeOf(dispute('updated', intent, 2000, 'under_review'))).toBe('dispute under_review: no change');
    expect(await outcomeOf(dispute('closed', intent, 2000, 'won'))).toBe('dispute won: no change');
    expect(await paymentOf(t.id)).toMatchObject({ dispute_status: 'lost', disputed: '20.00', dispute_taken: '20.00', dispute_reinstated: '0.00' });
    expect(await transactions(c.customerId)).toEqual([['adjustment', '20.00', 'debit', 'dispute'], ['grant', '20.00', 'credit', null]]);
    // Lost: a refund reported afterwards cannot take the same money a second time.
    expect(await outcomeOf(chargeRefunded(intent, 2000, 2000))).toBe('no refund');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
  });

  it('won gives back what the dispute took with a new purchased grant, never an edit', async () => {
    const { c, t, intent } = await paidTopUp();
    await outcomeOf(dispute('created', intent, 1500, 'needs_response'));
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '5.00' });
    expect(await outcomeOf(dispute('closed', intent, 1500, 'won'))).toBe('dispute won: credit given back');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00', posted: '20.00' });
    expect(await paymentOf(t.id)).toMatchObject({ dispute_status: 'won', disputed: '0.00', dispute_taken: '15.00', dispute_reinstated: '15.00' });
    expect(await transactions(c.customerId)).toEqual([['grant', '15.00', 'credit', null], ['adjustment', '15.00', 'debit', 'dispute'], ['grant', '20.00', 'credit', null]]);
    const grants = (await server.api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data;
    expect(grants[0]).toMatchObject({ category: 'purchased', amount: '15.00', description: `Dispute won on ${t.id}` });
    await expectDoubleEntry(server.database.db);
  });

  it('of credit already spent: takes what is available, reports the rest uncollected, gives back only what it took', async () => {
    const { c, t, intent } = await paidTopUp('10.00');
    const spent = await authorize(server.api, c.apiKey, { megapixels: 240 }); // 6.00
    expect((await server.api.post(`/v1/reservations/${spent.body.reservation.id}/settle`, { usage: { megapixels: 240 } })).status).toBe(200);
    expect(await outcomeOf(dispute('created', intent, 1000, 'warning_needs_response'))).toBe('dispute applied, part already spent');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    expect(await paymentOf(t.id)).toMatchObject({ disputed: '10.00', dispute_taken: '4.00', dispute_uncollected: '6.00' });
    // An inquiry closed without a chargeback leaves the money with the operator, like a win.
    expect(await outcomeOf(dispute('closed', intent, 1000, 'warning_closed'))).toBe('dispute warning_closed: credit given back');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '4.00' });
    expect(await paymentOf(t.id)).toMatchObject({ disputed: '0.00', dispute_uncollected: '0.00', dispute_reinstated: '4.00' });
  });
});

describe('out of order', () => {
  it('closed as won before created: nothing is ever taken', async () => {
    const { c, t, intent } = await paidTopUp();
    expect(await outcomeOf(dispute('closed', intent, 2000, 'won'))).toBe('dispute won recorded');
    expect(await outcomeOf(dispute('created', intent, 2000, 'needs_response'))).toBe('dispute needs_response: no change');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00' });
    expect(await paymentOf(t.id)).toMatchObject({ dispute_status: 'won', disputed: '0.00', dispute_taken: '0.00' });
    expect(await transactions(c.customerId)).toEqual([['grant', '20.00', 'credit', null]]);
  });

  it('closed as lost before created: taken once, by the first', async () => {
    const { c, t, intent } = await paidTopUp();
    expect(await outcomeOf(dispute('closed', intent, 800, 'lost'))).toBe('dispute applied');
    expect(await outcomeOf(dispute('created', intent, 800, 'needs_response'))).toBe('dispute needs_response: no change');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '12.00' });
    expect(await paymentOf(t.id)).toMatchObject({ dispute_status: 'lost', disputed: '8.00', dispute_taken: '8.00' });
  });

  it('a dispute before its payment is kept and applied with the payment', async () => {
    const c = await createCustomer(server.api);
    const t = await topUp(c, '20.00');
    const intent = `pi_${t.id}`;
    expect(await outcomeOf(dispute('created', intent, 2000, 'needs_response'))).toBe('dispute recorded, payment not yet paid');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ posted: '0.00' });
    expect(await outcomeOf(intentSucceeded(t, intent))).toBe('credit granted; dispute applied');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    expect(await paymentOf(t.id)).toMatchObject({ status: 'paid', disputed: '20.00', dispute_taken: '20.00' });
  });

  it('every order of created, closed and redeliveries, concurrently, ends the same', async () => {
    for (const final of ['lost', 'won'] as const) {
      const { c, t, intent } = await paidTopUp();
      const events = [dispute('created', intent, 1200, 'needs_response'), dispute('updated', intent, 1200, 'under_review'), dispute('closed', intent, 1200, final)];
      const replies = await Promise.all(Array.from({ length: 18 }, (_, i) => deliver(events[(i * 7) % 3]!)));
      for (const r of replies) expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(replies.filter((r) => !r.body.duplicate)).toHaveLength(3);
      expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: final === 'lost' ? '8.00' : '20.00' });
      expect(await paymentOf(t.id)).toMatchObject({ dispute_status: final, disputed: final === 'lost' ? '12.00' : '0.00' });
    }
    await expectDoubleEntry(server.database.db);
  });
});

describe('disputes and refunds together never take back more than the payment', () => {
  it('a dispute on a partially refunded payment takes only what the refund left', async () => {
    const { c, t, intent } = await paidTopUp();
    expect(await outcomeOf(chargeRefunded(intent, 500, 2000))).toBe('refund applied');
    // Stripe disputes the whole charge; only 15.00 of it is still Tollgate credit.
    expect(await outcomeOf(dispute('created', intent, 2000, 'needs_response'))).toBe('dispute applied');
    expect(await paymentOf(t.id)).toMatchObject({ refunded: '5.00', disputed: '15.00', dispute_taken: '15.00' });
    expect(await outcomeOf(chargeRefunded(intent, 2000, 2000))).toBe('no refund');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    // Won: the dispute's 15.00 comes back, and the refund reported meanwhile takes it.
    expect(await outcomeOf(dispute('closed', intent, 2000, 'won'))).toBe('dispute won: credit given back; refund applied');
    expect(await paymentOf(t.id)).toMatchObject({ status: 'refunded', refunded: '20.00', disputed: '0.00', dispute_reinstated: '15.00' });
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '0.00', posted: '0.00' });
    await expectDoubleEntry(server.database.db);
  });

  it('refuses a forged or stale signature on a dispute and changes nothing', async () => {
    const { c, intent } = await paidTopUp();
    const event = dispute('created', intent, 2000, 'needs_response');
    expectProblem(await deliver(event, { secret: 'whsec_forged' }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { tamper: (p) => p.replace('"amount":2000', '"amount":1') }), 400, 'invalid_signature');
    expectProblem(await deliver(event, { timestamp: Math.floor(clock.now().getTime() / 1000) - 400 }), 400, 'invalid_signature');
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '20.00' });
    expect(await outcomeOf(event)).toBe('dispute applied');
  });
});
