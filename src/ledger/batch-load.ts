import { arrayLiteral } from '../platform/columns.js';
import { queryEach, type Queryable } from '../platform/db.js';
import { idempotencyLocksSql, idempotencyRecordsSql, recordKey, type IdempotencyRequest, type StoredRecord } from '../platform/idempotency.js';
import type { BatchState, LedgerOp } from './batch-rules.js';
import { periodStart, type KeyState, type Reservation, type SpendPeriod } from './model.js';
import { accountFromRow, grantFromRow, reservationFromRow } from './rows.js';

/**
 * The current limits of the API keys whose ids `idsSql` (a text[] expression) holds, as of `nowSql`:
 * the accounts module owns the table and provides the query, so the ledger reads them in its own
 * batch statement (revocation applies at once). Columns: id, active, max_concurrency,
 * spend_limit_amount (text), spend_limit_period.
 */
export type KeyLimitsSql = (idsSql: string, nowSql: string) => string;

type Row = Record<string, any>;

/** Names of the read statement's parameters a BatchReadSql may use. */
export interface BatchReadParams {
  /** text[]: the customers whose accounts the batch locked. */
  customerIds: string;
  now: string;
  /** The current UTC day's and month's starts. */
  dayStart: string;
  monthStart: string;
}

/**
 * Another module's part of the batch's read statement (alerts: thresholds and spend of the
 * batch's customers): a SQL expression yielding one JSON value, read under the batch's locks in
 * the same round trip as the ledger's own reads.
 */
export type BatchReadSql = (p: BatchReadParams) => string;

export interface LoadedBatch {
  state: BatchState;
  /** Stored replies of the batch's idempotency keys, by recordKey. */
  stored: Map<string, StoredRecord>;
  /** What each extra read (BatchReadSql) returned, by its name. */
  reads: Record<string, unknown>;
}

/**
 * Locks and loads what a batch of operations reads: two statements whatever its size, sent in one
 * round trip where `tx` can (Tx.queryEach).
 *
 * 1. Locks: the idempotency keys (advisory, in one order), then the customer accounts (in id
 *    order). Concurrent batches, in this process or another, serialize per customer, and a
 *    duplicate request waits for the first to commit and then replays it. The account lock is
 *    FOR NO KEY UPDATE, the weakest that two batches cannot both hold (the account's key never
 *    changes). The customers it locked are left in a transaction-local setting.
 *    The accounts themselves come back from this statement: a row locked after a wait is the
 *    version the previous holder committed (READ COMMITTED re-reads it), and no one can change it
 *    while the batch holds it, so reading the accounts again would only repeat the lookups.
 * 2. Reads, after the locks, as one statement: it takes its snapshot after the locks are held, so
 *    every balance check sees what the previous holder committed. (The reads cannot share the
 *    locking statement: its snapshot is taken before it waits on a lock.) It reads the customers the
 *    setting names, never more: a reservation committed between the two statements does not bring
 *    in a customer the batch has not locked.
 */
export async function loadBatch(
  tx: Queryable,
  ops: LedgerOp[],
  now: Date,
  sources: { keyLimitsSql: KeyLimitsSql; reads: Record<string, BatchReadSql> },
  idempotency: IdempotencyRequest[] = [],
): Promise<LoadedBatch> {
  const reservationIds = ops.flatMap((op) => ('reservationId' in op && op.type !== 'authorize' ? [op.reservationId] : []));
  const customerIds = [...new Set(ops.flatMap((op) => ('customerId' in op ? [op.customerId] : [])))];
  const principals = idempotency.map((r) => r.principal);
  const keys = idempotency.map((r) => r.key);
  // The keys of authorizes and usage charges (a settle's is its reservation's, read with it).
  const requestKeyIds = [...new Set(ops.flatMap((op) => (op.type === 'authorize' || (op.type === 'usage_charge' && op.apiKeyId) ? [op.apiKeyId!] : [])))];
  // Sent as array literals: the driver would quote and escape each of a batch's hundreds of ids.
  const [customersSent, reservationsSent, principalsSent, keysSent] = [customerIds, reservationIds, principals, keys].map(arrayLiteral);
  const [[locked], [read]] = await queryEach(tx, [
    { sql: LOCK_SQL, params: [customersSent, reservationsSent, principalsSent, keysSent] },
    {
      sql: readSql(sources.keyLimitsSql, sources.reads),
      params: [reservationsSent, now, arrayLiteral(requestKeyIds), periodStart('day', now), periodStart('month', now), principalsSent, keysSent],
    },
  ]);
  const row = read as Row;
  const reservations = new Map<string, Reservation>((row.reservations ?? []).map((r: Row) => [r.id as string, reservationFromRow(r)]));
  const grants = new Map<string, ReturnType<typeof grantFromRow>[]>();
  for (const g of row.grants ?? []) {
    const grant = grantFromRow(g);
    const own = grants.get(grant.customerId);
    if (own) own.push(grant);
    else grants.set(grant.customerId, [grant]);
  }
  const state: BatchState = {
    customerAccounts: new Map(((locked as Row).accounts ?? []).map((r: Row) => [r.customer_id as string, accountFromRow(r)])),
    operatorAccounts: new Map((row.operators ?? []).map((r: Row) => [`${r.code}:${r.currency}`, accountFromRow(r)])),
    grants,
    reservations,
    keys: keyStates(row),
  };
  const stored = new Map<string, StoredRecord>((row.idempotency ?? []).map((r: StoredRecord & Row) => [recordKey(r.principal, r.key), r]));
  const reads = Object.fromEntries(Object.keys(sources.reads).map((name) => [name, row[`read_${name}`]]));
  return { state, stored, reads };
}

/** Where the locking statement leaves the customers it locked and their currencies, for the read after it (JSON arrays). */
const LOCKED_CUSTOMERS = 'tollgate.batch_customers';
const LOCKED_CURRENCIES = 'tollgate.batch_currencies';
/**
 * Those customers as a text[] computed once per use (an InitPlan), so `customer_id = ANY(...)` is an
 * index scan: joined to the set-returning function instead, the planner guesses 100 rows and scans
 * whole tables (measured: the read took 5.5 ms instead of under 1 with 10,000 customers).
 */
const LOCKED_IDS = `ARRAY(SELECT json_array_elements_text(current_setting('${LOCKED_CUSTOMERS}')::json))`;
/** The keys the read covers (its key_ids), as an array for the same reason. */
const KEY_IDS = 'ARRAY(SELECT id FROM key_ids)';
const CURRENCIES = `ARRAY(SELECT json_array_elements_text(current_setting('${LOCKED_CURRENCIES}')::json))`;

// Amounts leave as text inside JSON: a JSON number would pass through a float.
const ACCOUNT_COLUMNS = `id, currency, code, customer_id, credit_limit::text AS credit_limit, debits_posted::text AS debits_posted,
  credits_posted::text AS credits_posted, debits_pending::text AS debits_pending, credits_pending::text AS credits_pending`;

// The advisory locks are a one-time filter (an InitPlan run before the scan), so they are taken
// before any account row; the owners of settled and released reservations are locked too. Rows are
// locked in customer id order, the order of the index the lookup uses (so no plan reads the table
// in another index's order instead), and the same in every batch: no two wait on each other in a cycle.
// $1 customers, $2 reservations, $3/$4 idempotency principals and keys.
const LOCK_SQL = `SELECT set_config('${LOCKED_CUSTOMERS}', coalesce(json_agg(customer_id)::text, '[]'), true) AS locked,
    set_config('${LOCKED_CURRENCIES}', coalesce(json_agg(DISTINCT currency)::text, '[]'), true) AS currencies, json_agg(a) AS accounts FROM (
    SELECT ${ACCOUNT_COLUMNS} FROM ledger_accounts
    WHERE customer_id = ANY(array_cat($1::text[], ARRAY(SELECT customer_id FROM reservations WHERE id = ANY($2))))
      AND (SELECT count(*) FROM (${idempotencyLocksSql('$3', '$4')}) locks) >= 0
    ORDER BY customer_id FOR NO KEY UPDATE
  ) a`;

// An operator account's totals are its row plus its shards (migration 012).
const OPERATOR_ACCOUNTS = `SELECT a.id, a.currency, a.code, a.customer_id, a.credit_limit::text AS credit_limit,
    (a.debits_posted + coalesce(s.dp, 0))::text AS debits_posted, (a.credits_posted + coalesce(s.cp, 0))::text AS credits_posted,
    (a.debits_pending + coalesce(s.dpe, 0))::text AS debits_pending, (a.credits_pending + coalesce(s.cpe, 0))::text AS credits_pending
  FROM ledger_accounts a LEFT JOIN (
    SELECT account_id, sum(debits_posted) AS dp, sum(credits_posted) AS cp, sum(debits_pending) AS dpe, sum(credits_pending) AS cpe
    FROM ledger_account_shards WHERE currency = ANY(${CURRENCIES}) GROUP BY account_id
  ) s ON s.account_id = a.id
  WHERE a.customer_id IS NULL AND a.currency = ANY(${CURRENCIES})`;
const RESERVATION_COLUMNS = `id, customer_id, api_key_id, product_id, currency, amount::text AS amount, price_ids, estimate, metadata, status,
  hold_transfer_id, expires_at, created_at, resolved_at, usage, captured::text AS captured, charged::text AS charged,
  released::text AS released, uncollected::text AS uncollected`;
const GRANT_COLUMNS = `id, customer_id, currency, category, priority, amount::text AS amount, remaining::text AS remaining, expires_at,
  expired_at, description, created_at`;

/**
 * Only reservations of locked customers are read: one the locking statement did not see yet (a
 * settle racing its own authorize's commit) is not found, rather than changed without its
 * customer's lock. Open holds are found by customer (every key read is a locked customer's) in
 * reservations_open_by_customer (migration 013). Every part looks rows up by key, as the hot
 * path's plans must (db.ts): no OR across columns an index cannot take, and a row found by its
 * whole key, one lookup per key (LATERAL ... OFFSET 0), where a plan could otherwise take the
 * key's first column alone and read every row sharing it (a key's every day of spend).
 *
 * Spend is read for the keys with a spend limit, the only ones whose spend is kept.
 *
 * $1 reservation ids, $2 now, $3 keys of authorizes and usage charges, $4/$5 the day and month starts, $6/$7
 * idempotency principals and keys. One row, a JSON array per part.
 */
function readSql(keyLimitsSql: KeyLimitsSql, reads: Record<string, BatchReadSql>): string {
  const params: BatchReadParams = { customerIds: LOCKED_IDS, now: '$2', dayStart: '$4', monthStart: '$5' };
  const extra = Object.entries(reads).map(([name, sql]) => `,
      (${sql(params)}) AS "read_${name}"`).join('');
  return `WITH res AS (
      -- By id alone (OFFSET 0 keeps the customer test outside), lest a plan fetch them through the
      -- customer's index, which holds every reservation the customer ever had.
      SELECT * FROM (SELECT ${RESERVATION_COLUMNS} FROM reservations WHERE id = ANY($1) OFFSET 0) by_id WHERE customer_id = ANY(${LOCKED_IDS})
      UNION ALL
      SELECT ${RESERVATION_COLUMNS} FROM reservations
      WHERE customer_id = ANY(${LOCKED_IDS}) AND status = 'pending' AND expires_at <= $2 AND NOT id = ANY($1)
    ), key_ids AS (SELECT unnest($3::text[]) AS id UNION SELECT api_key_id FROM res),
    limits AS (${keyLimitsSql(KEY_IDS, '$2')})
    SELECT
      (SELECT json_agg(a) FROM (${OPERATOR_ACCOUNTS}) a) AS operators,
      (SELECT json_agg(r) FROM res r) AS reservations,
      (SELECT json_agg(g ORDER BY g.id) FROM (SELECT ${GRANT_COLUMNS} FROM credit_grants WHERE customer_id = ANY(${LOCKED_IDS}) AND remaining > 0) g) AS grants,
      (SELECT json_agg(k) FROM limits k) AS key_limits,
      (SELECT json_agg(o) FROM (
        SELECT api_key_id, count(*)::int AS open_count, coalesce(sum(amount), 0)::text AS held FROM reservations
        WHERE customer_id = ANY(${LOCKED_IDS}) AND status = 'pending' AND api_key_id = ANY(${KEY_IDS}) GROUP BY api_key_id) o) AS open_holds,
      (SELECT json_agg(s) FROM (
        SELECT s.api_key_id, s.period, s.amount::text AS amount
        FROM limits k CROSS JOIN (VALUES ('day', $4::timestamptz), ('month', $5::timestamptz)) AS p(period, start)
        CROSS JOIN LATERAL (SELECT * FROM ledger_key_spend s WHERE s.api_key_id = k.id AND s.period = p.period AND s.period_start = p.start OFFSET 0) s
        WHERE k.spend_limit_period IS NOT NULL) s) AS key_spend,
      (SELECT json_agg(i) FROM (${idempotencyRecordsSql('$6', '$7')}) i) AS idempotency,
      (SELECT json_agg(id) FROM key_ids) AS key_ids${extra}`;
}

function keyStates(read: Row): Map<string, KeyState> {
  const states = new Map<string, KeyState>();
  for (const limit of read.key_limits ?? []) {
    states.set(limit.id, {
      apiKeyId: limit.id,
      active: limit.active,
      maxConcurrency: limit.max_concurrency,
      spendLimit: limit.spend_limit_amount && limit.spend_limit_period ? { amount: BigInt(limit.spend_limit_amount), period: limit.spend_limit_period } : null,
      openCount: 0,
      heldAmount: 0n,
      spent: { day: 0n, month: 0n },
    });
  }
  // A key id with no row (deleted, never existed) is an inactive key, as the rules expect.
  for (const id of read.key_ids ?? []) {
    if (!states.has(id)) states.set(id, { apiKeyId: id, active: false, maxConcurrency: null, spendLimit: null, openCount: 0, heldAmount: 0n, spent: { day: 0n, month: 0n } });
  }
  for (const row of read.open_holds ?? []) Object.assign(states.get(row.api_key_id)!, { openCount: Number(row.open_count), heldAmount: BigInt(row.held) });
  for (const row of read.key_spend ?? []) states.get(row.api_key_id)!.spent[row.period as SpendPeriod] = BigInt(row.amount);
  return states;
}
