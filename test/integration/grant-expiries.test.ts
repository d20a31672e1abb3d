import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { eventually } from '../support/eventually.js';

/**
 * Migration 016 moves the expiry sweep's list of grants out of a partial index of credit_grants
 * (whose condition named `remaining`, so no grant update could stay on its page) into a table of
 * its own. Grants written before it must still expire, and the list must not keep what is spent.
 */
const HOUR = 3_600_000;
const clock = new ManualClock(new Date('2031-07-01T10:00:00.000Z'));
const at = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();
let database: TestDatabase;
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  await database?.drop();
});

async function grant(server: TestServer, customerId: string, body: Record<string, unknown>): Promise<string> {
  const r = await server.api.post(`/v1/customers/${customerId}/credit_grants`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

async function spend(server: TestServer, c: Fixture, megapixels: number) {
  const auth = await authorize(server.api, c.apiKey, { megapixels });
  expect(auth.status, JSON.stringify(auth.body)).toBe(200);
  expect((await server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels } })).status).toBe(200);
}

const listed = async () => (await database.db.query<{ grant_id: string }>('SELECT grant_id FROM credit_grant_expiries ORDER BY grant_id')).map((r) => r.grant_id);

describe('migration 016 (the expiry sweep keeps its own list of grants)', () => {
  it('carries over the grants with an expiry and something left; they expire, and spent ones leave the list', async () => {
    database = await createTestDatabase();
    const before = await startServer({ clock, database });
    servers.push(before);
    await seedCatalog(before.api);
    const c = await createCustomer(before.api);
    const expiring = await grant(before, c.customerId, { amount: '2.00', category: 'purchased', expires_at: at(HOUR) });
    const spentFirst = await grant(before, c.customerId, { amount: '0.50', category: 'promotional', expires_at: at(HOUR) });
    const lasting = await grant(before, c.customerId, { amount: '1.00', category: 'purchased' });
    await spend(before, c, 20); // 0.50: the promotional grant first
    await before.close();
    servers.pop();

    // As the code before 016 left it: the partial index, no list, and 016 not applied.
    const { db } = database;
    await db.query('DROP TABLE credit_grant_expiries');
    await db.query('CREATE INDEX credit_grants_expiring ON credit_grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL');
    await db.query(`DELETE FROM schema_migrations WHERE name = '016_grant_expiries.sql'`);

    const after = await startServer({ clock, database, backgroundJobs: true, sweepIntervalMs: 25 });
    servers.push(after);
    expect(await listed()).toEqual([expiring]);

    // A grant written after the upgrade, spent before its expiry, is on the list until then.
    const later = await grant(after, c.customerId, { amount: '0.25', category: 'promotional', expires_at: at(HOUR) });
    await spend(after, c, 10); // 0.25
    expect(await listed()).toEqual([expiring, later].sort());

    clock.advance(HOUR);
    const balance = await eventually(() => balanceOf(after.api, c.customerId), (b) => b.posted !== '3.00');
    expect(balance).toMatchObject({ available: '1.00', posted: '1.00', grants: [{ id: lasting, remaining: '1.00' }] });
    const txs = (await after.api.get(`/v1/customers/${c.customerId}/transactions?limit=100`)).body.data;
    expect(txs.filter((t: any) => t.kind === 'expiry').map((t: any) => [t.amount, t.grant_id])).toEqual([['2.00', expiring]]);
    // Spent or expired, each leaves the list at the sweep after; the spent ones were never expired.
    await eventually(listed, (ids) => ids.length === 0);
    const grants = (await after.api.get(`/v1/customers/${c.customerId}/credit_grants`)).body.data;
    expect(Object.fromEntries(grants.map((g: any) => [g.id, g.expired_at === null]))).toEqual({ [expiring]: false, [spentFirst]: true, [later]: true, [lasting]: true });
  });

  it('leaves no index of credit_grants naming remaining, so a charge updates a grant in place (HOT)', async () => {
    const indexes = await database.db.query<{ definition: string }>(
      `SELECT pg_get_indexdef(indexrelid) AS definition FROM pg_index WHERE indrelid = 'credit_grants'::regclass`,
    );
    expect(indexes.length).toBeGreaterThan(0);
    expect(indexes.filter((i) => /\bremaining\b/.test(i.definition))).toEqual([]);
  });
});
