import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type Api, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

/**
 * balance.low, balance.depleted and spend_limit.reached fire exactly once per crossing, also when
 * hundreds of settles run at once, and fire again only after the customer is back on the safe side.
 */

let server: TestServer;
let api: Api;
let clock: ManualClock;
let receiver: Receiver;

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-05-10T08:00:00Z'));
  server = await startServer({ clock });
  api = server.api;
  await seedCatalog(api);
  receiver = await startReceiver();
  const ep = await api.post('/v1/webhook_endpoints', { url: receiver.url, event_types: ['balance.low', 'balance.depleted', 'spend_limit.reached'] });
  receiver.secrets.push(ep.body.secret);
});
afterAll(async () => {
  await receiver?.close();
  await server?.close();
});

async function dispatch() {
  for (let i = 0; i < 100 && (await server.app.services.webhookDispatcher.runOnce()) > 0; i++);
}
const alertsOf = (customerId: string) => receiver.received.filter((x) => x.body.customer_id === customerId).map((x) => ({ type: x.body.type, ...x.body.data }));

/** `n` authorize + settle pairs of `megapixels` each (0.025 USD per megapixel), all at once. */
async function spendInParallel(apiKey: string, n: number, megapixels: number) {
  await Promise.all(
    Array.from({ length: n }, async () => {
      const r = await authorize(api, apiKey, { megapixels });
      if (r.status !== 200) return;
      const s = await api.post(`/v1/reservations/${r.body.reservation.id}/settle`, { usage: { megapixels } });
      expect(s.status).toBe(200);
    }),
  );
}

describe('alerts', () => {
  it('settings: GET and PUT, validated', async () => {
    const c = await createCustomer(api);
    expect((await api.get(`/v1/customers/${c.customerId}/alert_settings`)).body).toEqual({ customer_id: c.customerId, currency: 'USD', balance_low: null, spend_day: null, spend_month: null });
    const put = await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '5', spend_day: '1.5' });
    expect(put.body).toEqual({ customer_id: c.customerId, currency: 'USD', balance_low: '5.00', spend_day: '1.50', spend_month: null });
    expect((await api.get(`/v1/customers/${c.customerId}/alert_settings`)).body).toEqual(put.body);
    expect((await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '0' })).status).toBe(400);
    expect((await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '-1' })).status).toBe(400);
  });

  it('a spend alert counts what the customer spent before it was set, also while settles run', async () => {
    const before = await createCustomer(api, { credit: '10.00' });
    await spendInParallel(before.apiKey, 8, 10); // 8 x 0.25 = 2.00, no alert set
    expect((await api.request('PUT', `/v1/customers/${before.customerId}/alert_settings`, { spend_day: '3.00', spend_month: '100.00' })).status).toBe(200);
    await spendInParallel(before.apiKey, 5, 10); // 1.25 more: 3.25 today
    await dispatch();
    expect(alertsOf(before.customerId)).toEqual([expect.objectContaining({ type: 'spend_limit.reached', period: 'day', spent: '3.25', threshold: '3.00' })]);

    // Set while 200 settles of 0.025 run (at a different moment for each of 6 customers): none of
    // their 5.00 is lost or counted twice, so one more settle of exactly 1.00 reaches 6.00, the
    // threshold, and the alert says 6.00.
    const during = await Promise.all([0, 5, 10, 20, 40, 80].map(async (delayMs) => {
      const c = await createCustomer(api, { credit: '20.00' });
      const spending = spendInParallel(c.apiKey, 200, 1);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      expect((await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { spend_day: '6.00' })).status).toBe(200);
      await spending;
      return c;
    }));
    await dispatch();
    for (const c of during) expect(alertsOf(c.customerId)).toEqual([]);
    await Promise.all(during.map((c) => spendInParallel(c.apiKey, 1, 40)));
    await dispatch();
    for (const c of during) {
      expect(alertsOf(c.customerId)).toEqual([expect.objectContaining({ type: 'spend_limit.reached', period: 'day', spent: '6.00', threshold: '6.00' })]);
    }
  });

  it('exactly once per crossing under 300 concurrent settles, re-armed when back on the safe side', async () => {
    const c = await createCustomer(api, { credit: '6.00' });
    expect((await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '2.00', spend_day: '3.00', spend_month: '5.00' })).status).toBe(200);
    // 300 x 0.025 = 7.50 wanted, 6.00 available: low at 2.00, depleted at 0, day at 3.00, month at 5.00.
    await spendInParallel(c.apiKey, 300, 1);
    expect((await balanceOf(api, c.customerId)).available).toBe('0.00');
    await dispatch();
    let alerts = alertsOf(c.customerId);
    expect(alerts.map((a) => (a.type === 'spend_limit.reached' ? `${a.type}:${a.period}` : a.type)).sort()).toEqual(
      ['balance.depleted', 'balance.low', 'spend_limit.reached:day', 'spend_limit.reached:month'],
    );
    expect(alerts.find((a) => a.type === 'balance.low')).toMatchObject({ threshold: '2.00', currency: 'USD' });
    expect(Number(alerts.find((a) => a.type === 'balance.low')!.available)).toBeLessThan(2);
    expect(alerts.find((a) => a.period === 'day')).toMatchObject({ threshold: '3.00', period_start: '2031-05-10T00:00:00.000Z' });
    expect(Number(alerts.find((a) => a.period === 'day')!.spent)).toBeGreaterThanOrEqual(3);
    expect(receiver.received.every((x) => x.verified)).toBe(true);

    // More spending attempts while depleted and low: nothing new.
    await spendInParallel(c.apiKey, 20, 1);
    await dispatch();
    expect(alertsOf(c.customerId)).toHaveLength(4);

    // Back above the low threshold (re-arms low and depleted), then down again at once: each fires once more.
    await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '4.00', category: 'promotional' });
    await spendInParallel(c.apiKey, 300, 1);
    await dispatch();
    alerts = alertsOf(c.customerId);
    const count = (t: string) => alerts.filter((a) => a.type === t).length;
    expect([count('balance.low'), count('balance.depleted'), count('spend_limit.reached')]).toEqual([2, 2, 2]);

    // The next UTC day is a new period: the day alert fires again once, the month one does not.
    clock.advance(86_400_000);
    await api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '10.00', category: 'promotional' });
    await spendInParallel(c.apiKey, 200, 1);
    await dispatch();
    alerts = alertsOf(c.customerId);
    expect(alerts.filter((a) => a.period === 'day').map((a) => a.period_start)).toEqual(['2031-05-10T00:00:00.000Z', '2031-05-11T00:00:00.000Z']);
    expect(alerts.filter((a) => a.period === 'month')).toHaveLength(1);
    // Still above 2.00 after spending 5.00 of 10.00: no new low alert.
    expect(alerts.filter((a) => a.type === 'balance.low')).toHaveLength(2);
  });
});
