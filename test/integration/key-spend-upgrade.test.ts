import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';

/**
 * Migration 014 stops keeping the spend of keys without a spend limit and has transfers name their
 * key. A database written before it holds transfers that name no key and spend rows for every key:
 * a limit set after the upgrade must still count what the key spent before it.
 */
let database: TestDatabase;
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  await database?.drop();
});

describe('migration 014 (transfers name their key)', () => {
  it('a limit set after the upgrade counts the spend made before it, in the same day and month', async () => {
    const clock = new ManualClock(new Date('2031-06-10T10:00:00.000Z'));
    database = await createTestDatabase();
    const before = await startServer({ clock, database });
    servers.push(before);
    await seedCatalog(before.api);
    const c = await createCustomer(before.api, { credit: '100.00' });
    const spend = async (api: TestServer['api'], megapixels: number) => {
      const a = await authorize(api, c.apiKey, { megapixels });
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect((await api.post(`/v1/reservations/${a.body.reservation.id}/settle`, { usage: { megapixels } })).status).toBe(200);
    };
    await spend(before.api, 8); // 0.20 yesterday
    clock.set(new Date('2031-06-11T10:00:00.000Z'));
    await spend(before.api, 4); // 0.10 today
    await before.close();
    servers.pop();

    // As the code before 014 left it: no key on transfers, a spend row per key and period, and 014 not applied.
    const { db } = database;
    await db.query(`INSERT INTO ledger_key_spend (api_key_id, period, period_start, amount) VALUES
      ($1, 'day', '2031-06-10T00:00:00Z', 200000000), ($1, 'day', '2031-06-11T00:00:00Z', 100000000), ($1, 'month', '2031-06-01T00:00:00Z', 300000000)`, [c.apiKeyId]);
    await db.query('DROP TABLE ledger_key_spend_carried');
    await db.query('ALTER TABLE ledger_transfers DROP COLUMN api_key_id');
    await db.query(`DELETE FROM schema_migrations WHERE name = '014_transfer_api_key.sql'`);

    const after = await startServer({ clock, database });
    servers.push(after);
    await spend(after.api, 2); // 0.05 today, after the upgrade
    const [{ amount }] = await db.query<{ amount: string }>(`SELECT amount::text FROM ledger_key_spend WHERE api_key_id = $1 AND period = 'day' AND period_start = '2031-06-11T00:00:00Z'`, [c.apiKeyId]);
    expect(amount).toBe('100000000'); // no longer kept for a key without a limit

    // This month 0.35, today 0.15.
    expect((await after.api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '1.00', period: 'month' } })).status).toBe(200);
    expect((await authorize(after.api, c.apiKey, { megapixels: '26.0000004' })).body.code).toBe('spend_limit_exceeded');
    const rest = await authorize(after.api, c.apiKey, { megapixels: 26 }); // 0.65
    expect(rest.status).toBe(200);
    await after.api.post(`/v1/reservations/${rest.body.reservation.id}/release`);
    expect((await after.api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '0.50', period: 'day' } })).status).toBe(200);
    expect((await authorize(after.api, c.apiKey, { megapixels: '14.0000004' })).body.code).toBe('spend_limit_exceeded');
    expect((await authorize(after.api, c.apiKey, { megapixels: 14 })).status).toBe(200); // 0.35
  });
});
