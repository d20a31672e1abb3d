import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/platform/db.js';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import type { ExplainRow, PlanNode } from '../support/plans.js';
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
let planClock = 0;
let server: TestServer;

beforeAll(async () => {
  if (testEngine !== 'postgres') return;
  database = await createTestDatabase();
  // One connection, so every statement the server prepares is on the connection this test reads,
  // and its plans on a clock of the test's: planned for their values first, then kept (db.ts).
  oneConnection = await openDb({ databaseUrl: database.url, poolSize: 1, replanAfterMs: [1_000, 3_600_000], nowMs: () => planClock });
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

/** An index's columns in order, and whether it is unique (a key: every column names one row). */
type IndexShapes = Map<string, { columns: string[]; unique: boolean }>;

/**
 * Scans that read more than the rows they are after: a whole table, or an index scanned without a
 * condition on its first column (the whole index), or a unique index without one on every column
 * (all the rows sharing the condition's prefix: every idempotency key of a principal, every day of
 * a key's spend).
 */
function wholeReads(node: PlanNode, indexes: IndexShapes, found: string[] = []): string[] {
  const relation = node['Relation Name'];
  const indexName = node['Index Name'] ?? '';
  if (relation && !READ_WHOLE_ALLOWED.has(relation) && !READ_WHOLE_ALLOWED.has(indexName)) {
    const type = node['Node Type'];
    const shape = indexes.get(indexName);
    const cond = node['Index Cond'] ?? '';
    const constrains = (column: string) => new RegExp(`\\b${column}\\b`).test(cond);
    const partial = shape && (!constrains(shape.columns[0]!) || (shape.unique && !shape.columns.every(constrains)));
    if (type === 'Seq Scan' || (type.includes('Index') && (!cond || partial))) {
      found.push(`${type} on ${relation}${indexName ? ` (${indexName}${cond ? `, ${cond}` : ''})` : ''}`);
    }
  }
  for (const child of node.Plans ?? []) wholeReads(child, indexes, found);
  return found;
}

/** Authorize, settle, release, alert thresholds, usage events and their idempotency keys: every hot statement. */
async function everyHotStatement() {
  const { api } = server;
  const c = await createCustomer(api, { credit: '50.00', key: { spend_limit: { amount: '40.00', period: 'day' }, max_concurrency: 5 } });
  const alerts = await api.request('PUT', `/v1/customers/${c.customerId}/alert_settings`, { balance_low: '49.99', spend_day: '0.01', spend_month: '0.02' });
  expect(alerts.status, JSON.stringify(alerts.body)).toBe(200);
  let n = 0;
  for (const end of ['settle', 'release', 'settle'] as const) {
    const held = await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 2 } }, { idempotencyKey: `plan-a-${++n}-${planClock}` });
    expect(held.status, JSON.stringify(held.body)).toBe(200);
    const path = `/v1/reservations/${held.body.reservation.id}/${end}`;
    const done = await api.post(path, end === 'settle' ? { usage: { megapixels: '1' } } : undefined, { idempotencyKey: `plan-s-${n}-${planClock}` });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
  }
  const events = await api.post(
    '/v1/events',
    [{ specversion: '1.0', id: `plan-${planClock}`, source: 'plans', type: 'usage', subject: c.customerId, data: { product: 'fal-ai/flux/dev', megapixels: '1' } }],
    { idempotencyKey: `plan-events-${planClock}` },
  );
  expect(events.status, JSON.stringify(events.body)).toBe(200);
  expect((await authorize(api, c.apiKey, { megapixels: 1 })).status).toBe(200);
}

describe.skipIf(testEngine !== 'postgres')('plans of the hot statements', () => {
  it('find every row by key, in every statement authorize, settle, release, alerts and usage events keep, from the first plans made after the tables were empty', async () => {
    // First on the empty tables (each statement planned for its values), then once more after the
    // first generation: these plans are the ones kept.
    await everyHotStatement();
    planClock += 1_000;
    await everyHotStatement();


    const plans = await oneConnection.transaction(async (tx) => {
      const [prepared] = (await tx.queryEach([
        { sql: "SELECT name, statement, cardinality(parameter_types)::int AS params FROM pg_prepared_statements WHERE name LIKE 'tollgate\\_%' ORDER BY name" },
      ])) as Array<Array<{ name: string; statement: string; params: number }>>;
      const explained = await tx.queryEach(
        prepared!.map((p) => ({ sql: `EXPLAIN (FORMAT JSON) EXECUTE ${p.name}${p.params > 0 ? `(${Array.from({ length: p.params }, () => 'NULL').join(', ')})` : ''}` })),
      );
      await tx.commitWith([]);
      return prepared!.map((p, i) => ({ statement: p.statement, plan: (explained[i]![0] as ExplainRow)['QUERY PLAN'][0]!.Plan }));
    });
    const statements = plans.map((p) => p.statement.replace(/\s+/g, ' ').slice(0, 60));
    // The ledger's lock and read, its writes, the idempotency replies, the events' insert: all prepared here.
    for (const part of ['SELECT set_config', 'WITH res AS', 'INSERT INTO ledger_transfers', 'UPDATE reservations', 'UPDATE credit_grants', 'UPDATE ledger_accounts', 'INSERT INTO idempotency_keys', 'INSERT INTO customer_spend']) {
      expect(statements.some((s) => s.startsWith(part)), `${part} among ${statements.join(' | ')}`).toBe(true);
    }
    const shapes = await oneConnection.query<{ name: string; columns: string[]; unique: boolean }>(
      `SELECT i.relname AS name, x.indisunique AS unique,
         array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace ns ON ns.oid = i.relnamespace WHERE ns.nspname = current_schema()`,
    );
    const indexes: IndexShapes = new Map(shapes.map((r) => [r.name, { columns: r.columns, unique: r.unique }]));
    const offenders = plans.flatMap((p) => wholeReads(p.plan, indexes).map((scan) => `${scan} in: ${p.statement.replace(/\s+/g, ' ').slice(0, 120)}`));
    expect(offenders).toEqual([]);
  });
});
