import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

describe('authorize -> settle -> balance', () => {
  it('holds the estimate, charges the actual usage and returns the rest', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    const auth = await authorize(api, c.apiKey, { megapixels: 4 });
    expect(auth.status).toBe(200);
    expect(auth.body).toMatchObject({ authorized: true, customer: c.customerId, api_key_id: c.apiKeyId, available_after: '9.90' });
    expect(auth.body.reservation).toMatchObject({ amount: '0.10', currency: 'USD' });
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.90', held: '0.10', posted: '10.00' });

    const settle = await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: '1.048576' } });
    expect(settle.status).toBe(200);
    expect(settle.body).toMatchObject({ charged: '0.0262144', released: '0.0737856', uncollected: '0.00' });
    expect(settle.body.reservation.status).toBe('settled');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ available: '9.9737856', held: '0.00', posted: '9.9737856' });
  });

  it('rates several meters and rounds only once, half-even, at 9 decimals', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const auth = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'meta/llama-3-70b', estimate: { input_tokens: 1000, output_tokens: 1000 } });
    expect(auth.status).toBe(200);
    expect(auth.body.reservation.amount).toBe('0.0014');
    const settle = await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { input_tokens: 1, output_tokens: 3 } });
    expect(settle.body).toMatchObject({ charged: '0.000003', released: '0.001397' });
  });
});
