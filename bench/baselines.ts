// The database's own limits, measured on the same engine in the same run as Tollgate:
// - a naive ledger: one transaction per transfer (two UPDATEs in account order, one INSERT);
// - set-based SQL: 100 transfers per statement (the ceiling for transfers on this database);
// - COPY (PostgreSQL): the same event rows as the ingest scenario into a copy of usage_events,
//   with the same unique key and indexes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Db } from '../src/platform/db.js';
import { round } from './stats.js';

const ACCOUNTS = 10_000;
const SET_BATCH = 100;

async function prepare(db: Db) {
  await db.exec(`
    DROP TABLE IF EXISTS bench_transfers; DROP TABLE IF EXISTS bench_accounts;
    CREATE TABLE bench_accounts (id integer PRIMARY KEY, balance bigint NOT NULL);
    CREATE TABLE bench_transfers (id text PRIMARY KEY, debit_account integer NOT NULL, credit_account integer NOT NULL, amount bigint NOT NULL);
    INSERT INTO bench_accounts SELECT g, 0 FROM generate_series(1, ${ACCOUNTS}) g;`);
}

const account = () => 1 + Math.floor(Math.random() * ACCOUNTS);
const pair = () => {
  const a = account();
  let b = account();
  while (b === a) b = account();
  return [a, b] as const;
};
const transferId = () => `trf_${randomBytes(13).toString('hex')}`;

/** Runs `work` on `inFlight` loops for `durationMs`; returns transfers per second. */
async function timed(inFlight: number, durationMs: number, work: () => Promise<number>): Promise<number> {
  const end = performance.now() + durationMs;
  let done = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) done += await work();
  }));
  return round(done / (durationMs / 1000), 1);
}

export async function naiveLedger(db: Db, inFlight: number, durationMs: number): Promise<number> {
  await prepare(db);
  return timed(inFlight, durationMs, () =>
    db.transaction(async (tx) => {
      const [debit, credit] = pair();
      // Account order, so two transfers between the same accounts cannot deadlock.
      for (const id of [debit, credit].sort((x, y) => x - y)) {
        await tx.query('UPDATE bench_accounts SET balance = balance + $2 WHERE id = $1', [id, id === debit ? -1 : 1]);
      }
      await tx.query('INSERT INTO bench_transfers (id, debit_account, credit_account, amount) VALUES ($1, $2, $3, 1)', [transferId(), debit, credit]);
      return 1;
    }),
  );
}

export async function setBasedLedger(db: Db, inFlight: number, durationMs: number): Promise<number> {
  await prepare(db);
  return timed(inFlight, durationMs, async () => {
    const pairs = Array.from({ length: SET_BATCH }, pair);
    const params = [pairs.map(() => transferId()), pairs.map((p) => p[0]), pairs.map((p) => p[1])];
    try {
      await db.query(
        `WITH t AS (SELECT * FROM unnest($1::text[], $2::int[], $3::int[]) AS t(id, debit_account, credit_account)),
         ins AS (INSERT INTO bench_transfers SELECT id, debit_account, credit_account, 1 FROM t),
         deltas AS (SELECT account, sum(delta) AS delta FROM (SELECT debit_account AS account, -1 AS delta FROM t UNION ALL SELECT credit_account, 1 FROM t) d GROUP BY account)
         UPDATE bench_accounts a SET balance = a.balance + deltas.delta FROM deltas WHERE a.id = deltas.account`,
        params,
      );
      return SET_BATCH;
    } catch (err) {
      if ((err as { code?: string }).code === '40P01') return 0; // two statements locked in opposite orders: retried by the loop
      throw err;
    }
  });
}

/** The ingest scenario's rows as CSV for COPY into bench_events (LIKE usage_events INCLUDING ALL). */
function eventRowsCsv(count: number, customers: Array<{ id: string; keyId: string }>, productId: string): string {
  const now = new Date().toISOString();
  const tag = randomBytes(4).toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const customer = customers[i % customers.length]!;
    lines.push(`evt_${tag}${i.toString(16).padStart(18, '0')},bench,${tag}-${i},usage,${now},${now},${customer.id},${productId},${customer.keyId},USD,"{""megapixels"": ""1.5""}",{},charged,[],37500000,37500000,0`);
  }
  return lines.join('\n') + '\n';
}

/** events/s of one COPY of `count` rows through psql (committed when psql exits 0). */
export async function copyEvents(db: Db, databaseUrl: string, count: number, customers: Array<{ id: string; keyId: string }>, productId: string): Promise<number> {
  await db.exec('DROP TABLE IF EXISTS bench_events; CREATE TABLE bench_events (LIKE usage_events INCLUDING ALL);');
  const csv = eventRowsCsv(count, customers, productId);
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const psql = spawn('psql', [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', 'COPY bench_events FROM STDIN (FORMAT csv)'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    psql.stderr.on('data', (d) => (err += d));
    psql.on('error', reject);
    psql.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql COPY exited ${code}: ${err}`))));
    psql.stdin.end(csv);
  });
  return round(count / ((performance.now() - started) / 1000), 1);
}
