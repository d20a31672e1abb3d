import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingDb, type CountingDb } from '../support/counting-db.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

/**
 * Round trips per ledger batch on the hot path: a structural property (how many statements one
 * batch transaction sends, BEGIN and COMMIT included), not a timing. docs/performance.md explains
 * why it sets throughput: a batch holds its customers' row locks for its whole chain of round trips.
 */
let database: TestDatabase;
let db: CountingDb;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  db = countingDb(database.db);
  server = await startServer({ database: { ...database, db } });
  await seedCatalog(server.api);
});
afterAll(async () => {
  await server?.close();
  await database?.drop();
});

/** The round trips of each transaction `act` ran. */
async function transactionsOf(act: () => Promise<void>): Promise<number[]> {
  const before = db.transactions.length;
  await act();
  return db.transactions.slice(before);
}

let seq = 0;
async function authorizeAndSettle(c: Fixture) {
  let reservationId = '';
  const authorized = await transactionsOf(async () => {
    const r = await server.api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } }, { idempotencyKey: `authorize-${++seq}` });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    reservationId = r.body.reservation.id;
  });
  const settled = await transactionsOf(async () => {
    const r = await server.api.post(`/v1/reservations/${reservationId}/settle`, { usage: { megapixels: '2' } }, { idempotencyKey: `settle-${++seq}` });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
  return { authorized, settled };
}

// What a batch costs at most: BEGIN with the locks and the reads, then the writes with COMMIT (docs/performance.md).
const AUTHORIZE_ROUND_TRIPS_MAX = 2;
const SETTLE_ROUND_TRIPS_MAX = 2;

describe('round trips per hot-path batch', () => {
  it('an authorize batch and a settle batch each run in one transaction of a bounded number of statements', async () => {
    const c = await createCustomer(server.api, { credit: '10.00' });
    await authorize(server.api, c.apiKey, { megapixels: 1 }); // the key's first authorize reads it outside the batch
    const { authorized, settled } = await authorizeAndSettle(c);
    console.log(`round trips per batch, no alert settings: authorize ${authorized.join('+')}, settle ${settled.join('+')}`);
    expect(authorized).toHaveLength(1);
    expect(settled).toHaveLength(1);
    expect(authorized[0]).toBeLessThanOrEqual(AUTHORIZE_ROUND_TRIPS_MAX);
    expect(settled[0]).toBeLessThanOrEqual(SETTLE_ROUND_TRIPS_MAX);
  });

  it('a customer with alert thresholds costs no more round trips per batch', async () => {
    const c = await createCustomer(server.api, { credit: '10.00' });
    const put = await server.api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '9.99', spend_day: '0.01' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    await authorize(server.api, c.apiKey, { megapixels: 1 });
    const { authorized, settled } = await authorizeAndSettle(c);
    console.log(`round trips per batch, alert settings: authorize ${authorized.join('+')}, settle ${settled.join('+')}`);
    expect(authorized).toHaveLength(1);
    expect(settled).toHaveLength(1);
    expect(authorized[0]).toBeLessThanOrEqual(AUTHORIZE_ROUND_TRIPS_MAX);
    expect(settled[0]).toBeLessThanOrEqual(SETTLE_ROUND_TRIPS_MAX);
  });

  it('a batch of many customers\' authorizes and settles costs the same round trips as a batch of one', async () => {
    const customers = await Promise.all(Array.from({ length: 12 }, () => createCustomer(server.api, { credit: '10.00' })));
    await Promise.all(customers.map((c) => authorize(server.api, c.apiKey, { megapixels: 1 })));
    const ids: string[] = [];
    const authorized = await transactionsOf(async () => {
      const replies = await Promise.all(customers.map((c) => authorize(server.api, c.apiKey, { megapixels: 4 })));
      for (const r of replies) expect(r.status, JSON.stringify(r.body)).toBe(200);
      ids.push(...replies.map((r) => r.body.reservation.id));
    });
    const settled = await transactionsOf(async () => {
      const replies = await Promise.all(ids.map((id, i) => server.api.post(`/v1/reservations/${id}/settle`, { usage: { megapixels: '2' } }, { idempotencyKey: `many-${i}-${++seq}` })));
      for (const r of replies) expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
    console.log(`round trips per batch, 12 customers at once: authorize ${authorized.join('+')}, settle ${settled.join('+')}`);
    for (const n of authorized) expect(n).toBeLessThanOrEqual(AUTHORIZE_ROUND_TRIPS_MAX);
    for (const n of settled) expect(n).toBeLessThanOrEqual(SETTLE_ROUND_TRIPS_MAX);
  });
});

describe('round trips outside the batch', () => {
  it("a key's first authorize reads it (and its rate limits) outside the batch; once the key cache is warmed up, none does", async () => {
    const roundTripsOutside = async (apiKey: string) => {
      const before = { all: db.roundTrips, inTransactions: db.transactions.reduce((sum, n) => sum + n, 0) };
      expect((await authorize(server.api, apiKey, { megapixels: 1 })).status).toBe(200);
      return db.roundTrips - before.all - (db.transactions.reduce((sum, n) => sum + n, 0) - before.inTransactions);
    };
    const cold = await createCustomer(server.api, { credit: '10.00' });
    expect(await roundTripsOutside(cold.apiKey)).toBeGreaterThan(0);
    const warmed = await Promise.all(Array.from({ length: 3 }, () => createCustomer(server.api, { credit: '10.00' })));
    expect(await server.app.services.accounts.warmKeyCache()).toBeGreaterThanOrEqual(warmed.length);
    for (const c of warmed) expect(await roundTripsOutside(c.apiKey)).toBe(0);
  });
});
