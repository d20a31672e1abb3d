import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingDb, type CountingDb } from '../support/counting-db.js';
import { balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';

// How many statements a batch of usage events costs: a fixed number, whatever its size and however
// many customers it charges (ingest throughput is set by round trips and rows, see docs/performance.md).

/**
 * Ceiling on round trips per POST /v1/events: the customer lookup, BEGIN, the event insert, the
 * ledger's locks and reads, then its writes with the rollups, the charge corrections and COMMIT.
 */
const ROUND_TRIPS_MAX = 5;
/** With an Idempotency-Key: the key's claim and its stored reply, in the same transaction (was 2 commits of their own). */
const ROUND_TRIPS_WITH_KEY_MAX = ROUND_TRIPS_MAX + 2;

let database: TestDatabase;
let db: CountingDb;
let server: TestServer;
const customers: string[] = [];
let run = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  db = countingDb(database.db);
  server = await startServer({ database: { ...database, db } });
  await seedCatalog(server.api);
  for (let i = 0; i < 50; i++) customers.push((await createCustomer(server.api, { credit: '100.00' })).customerId);
});
afterAll(async () => {
  await server?.close();
  await database?.drop();
});

function events(count: number, customerCount: number) {
  const time = new Date().toISOString();
  run++;
  return Array.from({ length: count }, (_, i) => ({
    specversion: '1.0', id: `rt-${run}-${i}`, source: 'round-trips', type: 'usage', time,
    subject: customers[i % customerCount], data: { product: 'fal-ai/flux/dev', megapixels: '1.5' },
  }));
}

/**
 * Round trips of one POST, including the post-commit auto top-up check it starts, and how many of
 * them ran outside its transactions (each one a commit of its own if it writes).
 */
async function roundTripsOf(body: unknown[], idempotencyKey?: string): Promise<{ roundTrips: number; statements: number; outside: number; transactions: number; statuses: string[] }> {
  const before = { roundTrips: db.roundTrips, statements: db.statements, transactions: db.transactions.length };
  const r = await server.api.post('/v1/events', body, { idempotencyKey });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  await server.app.services.autoTopUp.settle();
  const inTransactions = db.transactions.slice(before.transactions).reduce((sum, n) => sum + n, 0);
  const roundTrips = db.roundTrips - before.roundTrips;
  return { roundTrips, statements: db.statements - before.statements, outside: roundTrips - inTransactions, transactions: db.transactions.length - before.transactions, statuses: r.body.data.map((e: { status: string }) => e.status) };
}

describe('round trips per batch of usage events', () => {
  it('costs the same for 1,000 events over 50 customers as for 10 over 2, within the ceiling', async () => {
    await roundTripsOf(events(10, 2)); // warms the catalog cache
    const small = await roundTripsOf(events(10, 2));
    const large = await roundTripsOf(events(1_000, 50));
    expect(small.statuses.every((s) => s === 'accepted')).toBe(true);
    expect(large.statuses.every((s) => s === 'accepted')).toBe(true);
    console.log(`round trips per POST /v1/events: ${small.roundTrips} (10 events), ${large.roundTrips} (1,000 events)`);
    expect(large.roundTrips).toBe(small.roundTrips);
    expect(large.roundTrips).toBeLessThanOrEqual(ROUND_TRIPS_MAX);
  });

  it('with an Idempotency-Key, claims the key and stores the reply inside the batch transaction: no commits of their own', async () => {
    const plain = await roundTripsOf(events(10, 2));
    const keyed = await roundTripsOf(events(1_000, 50), `rt-key-${run}`);
    expect(keyed.statuses.every((s) => s === 'accepted')).toBe(true);
    console.log(`round trips per POST /v1/events with an Idempotency-Key: ${keyed.roundTrips} (${plain.roundTrips} without)`);
    // The claim and the reply are two statements in the one transaction; outside it only the customer lookup, as without a key.
    expect(keyed.transactions).toBe(1);
    expect(keyed.outside).toBe(plain.outside);
    expect(keyed.roundTrips).toBe(plain.roundTrips + 2);
    expect(keyed.roundTrips).toBeLessThanOrEqual(ROUND_TRIPS_WITH_KEY_MAX);
  });

  it('answers a batch resent whole as duplicates in fewer statements than the first, and charges nothing again', async () => {
    const batch = events(500, 50);
    const first = await roundTripsOf(batch);
    const balance = await balanceOf(server.api, customers[0]!);
    const again = await roundTripsOf(batch);
    expect(again.statuses.every((s) => s === 'duplicate')).toBe(true);
    expect(await balanceOf(server.api, customers[0]!)).toEqual(balance);
    // Nothing new: no ledger work, no rollups; the insert finds every event and one read names them.
    expect(again.statements).toBeLessThan(first.statements);
    expect(again.roundTrips).toBeLessThanOrEqual(first.roundTrips);
  });
});
