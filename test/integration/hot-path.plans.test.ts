import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/platform/db.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { testEngine } from '../support/test-db.js';

/**
 * The hot paths' statements are prepared once per connection and run a generic plan made the
 * first time, often while their tables are nearly empty (a new deployment, this test), and kept
 * as the tables grow (src/platform/db.ts). So every such plan must find its rows by key: a scan
 * without an index condition reads the whole table, or the whole index, every batch, slower as
 * the table grows (a settle's UPDATE ... FROM unnest() planned on an empty reservations table
 * walked every reservation: 78 ms per batch at 100,000 rows). A structural property, not a
 * timing: the plans themselves are read back.
 */

// Read whole, as they hold a few rows per operator account and never more: the operator accounts
// (their partial index) and their shard rows (migration 012).
const READ_WHOLE_ALLOWED = new Set(['ledger_account_shards', 'ledger_accounts_operator']);

let database: TestDatabase;
let oneConnection: Db;
let server: TestServer;

beforeAll(async () => {
  if (testEngine !== 'postgres') return;
  database = await createTestDatabase();
  // One connection, so every statement the server prepares is on the connection this test reads,
  // and plans kept for the whole test: the ones made on the empty tables are the ones read.
  oneConnection = await openDb({ databaseUrl: database.url, poolSize: 1, replanAfterMs: [3_600_000] });
  server = await startServer({ database: { ...database, db: oneConnection } });
  await seedCatalog(server.api);
  // Statistics that say the ledger's tables are empty, as a new deployment's first analyze leaves them.
  await database.db.exec('ANALYZE');
});
afterAll(async () => {
  await server?.close();
  await oneConnection?.close();
  await database?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

/** Scans that read a relation without a condition on an index: the whole table or index. */
function wholeReads(node: PlanNode, found: string[] = []): string[] {
  const relation = node['Relation Name'];
  if (relation && !READ_WHOLE_ALLOWED.has(relation) && !READ_WHOLE_ALLOWED.has(node['Index Name'] ?? '')) {
    const type = node['Node Type'];
    if (type === 'Seq Scan' || ((type === 'Index Scan' || type === 'Index Only Scan' || type === 'Bitmap Index Scan') && !node['Index Cond'])) {
      found.push(`${type} on ${relation}${node['Index Name'] ? ` (${node['Index Name']})` : ''}`);
    }
  }
  for (const child of node.Plans ?? []) wholeReads(child, found);
  return found;
}

describe.skipIf(testEngine !== 'postgres')('plans of the hot statements', () => {
  it('find every row by key, in every statement authorize, settle, release, alerts and usage events prepared on empty tables', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '50.00', key: { spend_limit: { amount: '40.00', period: 'day' }, max_concurrency: 5 } });
    const alerts = await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '49.99', spend_day: '0.01', spend_month: '0.02' });
    expect(alerts.status, JSON.stringify(alerts.body)).toBe(200);
    let n = 0;
    for (const end of ['settle', 'release', 'settle'] as const) {
      const held = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 2 } }, { idempotencyKey: `plan-a-${++n}` });
      expect(held.status, JSON.stringify(held.body)).toBe(200);
      const path = `/v1/reservations/${held.body.reservation.id}/${end}`;
      const done = await api.post(path, end === 'settle' ? { usage: { megapixels: '1' } } : undefined, { idempotencyKey: `plan-s-${n}` });
      expect(done.status, JSON.stringify(done.body)).toBe(200);
    }
    const events = await api.post(
      '/v1/events',
      [{ specversion: '1.0', id: 'plan-1', source: 'plans', type: 'usage', subject: c.customerId, data: { product: 'fal-ai/flux/dev', megapixels: '1' } }],
      { idempotencyKey: 'plan-events-1' },
    );
    expect(events.status, JSON.stringify(events.body)).toBe(200);
    expect((await authorize(api, c.apiKey, { megapixels: 1 })).status).toBe(200);

    const plans = await oneConnection.transaction(async (tx) => {
      const [prepared] = (await tx.queryEach([
        { sql: "SELECT name, statement, cardinality(parameter_types)::int AS params FROM pg_prepared_statements WHERE name LIKE 'tollgate\\_%' ORDER BY name" },
      ])) as Array<Array<{ name: string; statement: string; params: number }>>;
      const explained = await tx.queryEach(
        prepared!.map((p) => ({ sql: `EXPLAIN (FORMAT JSON) EXECUTE ${p.name}${p.params > 0 ? `(${Array.from({ length: p.params }, () => 'NULL').join(', ')})` : ''}` })),
      );
      await tx.commitWith([]);
      return prepared!.map((p, i) => ({ statement: p.statement, plan: (explained[i]![0] as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0]!.Plan }));
    });
    const statements = plans.map((p) => p.statement.replace(/\s+/g, ' ').slice(0, 60));
    // The ledger's lock and read, its writes, the idempotency replies, the events' insert: all prepared here.
    for (const part of ['SELECT set_config', 'WITH locked AS', 'INSERT INTO ledger_transfers', 'UPDATE reservations', 'UPDATE credit_grants', 'UPDATE ledger_accounts', 'INSERT INTO idempotency_keys', 'INSERT INTO customer_spend']) {
      expect(statements.some((s) => s.startsWith(part)), `${part} among ${statements.join(' | ')}`).toBe(true);
    }
    const offenders = plans.flatMap((p) => wholeReads(p.plan).map((scan) => `${scan} in: ${p.statement.replace(/\s+/g, ' ').slice(0, 120)}`));
    expect(offenders).toEqual([]);
  });
});
