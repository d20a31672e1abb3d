import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventData } from '../../src/outbox/event-types.js';
import { emit, event, markDone, pendingSql, processOutbox, type OutboxStage } from '../../src/outbox/outbox.js';
import { KEY_RATE_LIMITS_CHANGED_SQL, keyRateLimitsChanged } from '../../src/accounts/key-store.js';
import { migrate } from '../../src/platform/migrate.js';
import { ANY_DUE_SQL, claimDue, insertEndpoint, upsertDeliveries } from '../../src/webhooks/webhook-store.js';
import { createTestDatabase, type TestDatabase } from '../support/harness.js';
import type { ExplainRow, PlanNode } from '../support/plans.js';

/**
 * The outbox's dispatcher and bus, and the webhook sender, ask every pass whether anything waits.
 * Their plans must go through the partial index of waiting rows whatever the statistics say: taken
 * while every row waited (a burst, or before the first dispatch, as in a new deployment), they
 * once made PostgreSQL read the whole table for its first match instead, every pass, slower as the
 * table grows. So could each instance's ask for keys whose rate limits changed, after a script had
 * changed them all. A structural property, not a timing: the plans are read back.
 */

const ROWS = 3_000;
const ENDPOINT = 'whe_polls';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrate(database.db);
  const now = new Date();
  const { db } = database;
  // What the events say does not matter to the polls: a stand-in body.
  const body = (i: number) => ({ id: `cus_${i}` }) as unknown as EventData<'customer.created'>;
  await db.transaction((tx) => emit(tx, Array.from({ length: ROWS }, (_, i) => event('customer.created', `cus_${i}`, body(i))), now));
  const ids = (await db.query<{ id: string }>('SELECT id FROM outbox_events')).map((r) => r.id);
  await db.transaction(async (tx) => {
    await insertEndpoint(tx, {
      id: ENDPOINT, customer_id: null, url: 'https://example.test/hook', event_types: [], description: null, enabled: true, disabled_reason: null,
      secret_sealed: 'sealed', previous_secret_sealed: null, previous_secret_expires_at: null, failing_since: null, created_at: now, updated_at: now,
    });
    await upsertDeliveries(tx, ids.map((id) => ({ id: `whd_${id}`, endpoint_id: ENDPOINT, event_id: id })), now, false);
  });
  // Statistics that say every row waits; then every row handled, as the dispatcher and sender leave them.
  await db.exec('ANALYZE');
  for (const stage of ['dispatched_at', 'published_at'] as const) await db.transaction((tx) => markDone(tx, stage, ids, now));
  await db.exec("UPDATE webhook_deliveries SET status = 'succeeded', attempts = 1, next_attempt_at = NULL, last_attempt_at = now()");
  // Every key's rate limits changed at once (an operator's script), then statistics taken.
  await db.exec(`INSERT INTO customers (id, name, currency, billing_mode, created_at, updated_at) VALUES ('cus_polls', 'polls', 'USD', 'prepaid', now(), now());
    INSERT INTO api_keys (id, customer_id, name, secret_hash, secret_prefix, created_at)
      SELECT 'key_' || i, 'cus_polls', 'k', 'hash_' || i, 'tg_', now() FROM generate_series(1, ${ROWS}) i;
    UPDATE api_keys SET rate_limit = 10;`);
  await db.exec('ANALYZE');
});
afterAll(async () => {
  await database?.drop();
});

function scans(node: PlanNode): string[] {
  const own = node['Node Type'].includes('Scan') ? [`${node['Node Type']}${node['Index Name'] ? ` ${node['Index Name']}` : ''}`] : [];
  return [...own, ...(node.Plans ?? []).flatMap(scans)];
}

async function scansOf(sql: string, params: unknown[] = []): Promise<string[]> {
  const [row] = await database.db.query<ExplainRow>(`EXPLAIN (FORMAT JSON) ${sql}`, params);
  return scans(row!['QUERY PLAN'][0]!.Plan);
}

describe('the background polls, with statistics taken while every row waited', () => {
  it.each([
    ['dispatched_at', 'outbox_events_undispatched'],
    ['published_at', 'outbox_events_unpublished'],
  ] as Array<[OutboxStage, string]>)('the outbox poll for %s reads only the partial index of waiting events', async (stage, index) => {
    expect(await scansOf(pendingSql(stage))).toEqual([`Index Only Scan ${index}`]);
    expect(await processOutbox(database.db, stage, 10, new Date(), async () => {})).toBe(0);
  });

  it("each instance's ask for keys whose rate limits changed reads only the index of stamped keys", async () => {
    const since = new Date();
    expect(await scansOf(KEY_RATE_LIMITS_CHANGED_SQL, [since])).toEqual(['Index Scan api_keys_rate_limits_changed']);
    expect((await keyRateLimitsChanged(database.db, since)).changed.size).toBe(0);
    expect((await keyRateLimitsChanged(database.db, new Date(since.getTime() - 3_600_000))).changed.size).toBe(ROWS);
  });

  it('the webhook sender reads only the partial index of pending deliveries', async () => {
    const now = new Date();
    const found = await scansOf(ANY_DUE_SQL, [now]);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((scan) => scan.endsWith(' webhook_deliveries_due')), found.join(', ')).toBe(true);
    expect(await claimDue(database.db, now, new Date(now.getTime() + 60_000), 10)).toEqual([]);
  });
});
