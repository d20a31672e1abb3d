import type { Queryable } from '../platform/db.js';
import type { BatchEffects, BatchState, LedgerOp } from './batch-rules.js';
import { periodStart, type KeyState, type SpendPeriod } from './model.js';
import { columns } from '../platform/columns.js';
import { accountFromRow, grantFromRow, reservationFromRow } from './rows.js';

/** Current limits of API keys, read inside the batch transaction so revocation applies at once. */
export interface KeyLimits {
  active: boolean;
  maxConcurrency: number | null;
  spendLimit: { amount: bigint; period: SpendPeriod } | null;
}
export type KeyLimitsLoader = (tx: Queryable, apiKeyIds: string[], now: Date) => Promise<Map<string, KeyLimits>>;

/**
 * Loads what a batch of operations reads. Customer accounts are locked (in id order) before
 * anything else is read, so concurrent batches, in this process or another, serialize per customer
 * and every balance check sees the latest committed state. The lock is FOR NO KEY UPDATE: the
 * foreign keys of transfers take KEY SHARE locks on accounts, which FOR UPDATE would wait on
 * (two batches each holding KEY SHARE on the revenue account and waiting for the other deadlock).
 */
export async function loadBatchState(tx: Queryable, ops: LedgerOp[], now: Date, keyLimits: KeyLimitsLoader): Promise<BatchState> {
  const reservationIds = ops.flatMap((op) => ('reservationId' in op && op.type !== 'authorize' ? [op.reservationId] : []));
  const customerIds = new Set(ops.flatMap((op) => ('customerId' in op ? [op.customerId] : [])));
  if (reservationIds.length > 0) {
    const owners = await tx.query<{ customer_id: string }>('SELECT DISTINCT customer_id FROM reservations WHERE id = ANY($1)', [reservationIds]);
    for (const o of owners) customerIds.add(o.customer_id);
  }
  const customers = [...customerIds];
  const accountRows = await tx.query('SELECT * FROM ledger_accounts WHERE customer_id = ANY($1) ORDER BY id FOR NO KEY UPDATE', [customers]);
  const currencies = [...new Set(accountRows.map((r) => r.currency as string))];
  // One connection runs one statement at a time, so these go one after the other.
  const operatorRows = await tx.query('SELECT * FROM ledger_accounts WHERE customer_id IS NULL AND currency = ANY($1)', [currencies]);
  const reservationRows = await tx.query(
    `SELECT * FROM reservations WHERE id = ANY($1)
     OR (customer_id = ANY($2) AND status = 'pending' AND expires_at <= $3)`,
    [reservationIds, customers, now],
  );
  const grantRows = await tx.query('SELECT * FROM credit_grants WHERE customer_id = ANY($1) AND remaining > 0 ORDER BY id', [customers]);
  const reservations = new Map(reservationRows.map((r) => [r.id as string, reservationFromRow(r)]));
  const grants = new Map<string, ReturnType<typeof grantFromRow>[]>();
  for (const row of grantRows) {
    const grant = grantFromRow(row);
    const own = grants.get(grant.customerId);
    if (own) own.push(grant);
    else grants.set(grant.customerId, [grant]);
  }
  const keyIds = new Set<string>();
  for (const op of ops) if (op.type === 'authorize') keyIds.add(op.apiKeyId);
  for (const r of reservations.values()) keyIds.add(r.apiKeyId);
  return {
    customerAccounts: new Map(accountRows.map((r) => [r.customer_id as string, accountFromRow(r)])),
    operatorAccounts: new Map(operatorRows.map((r) => [`${r.code}:${r.currency}`, accountFromRow(r)])),
    grants,
    reservations,
    keys: await loadKeyStates(tx, [...keyIds], now, keyLimits),
  };
}

async function loadKeyStates(tx: Queryable, keyIds: string[], now: Date, keyLimits: KeyLimitsLoader): Promise<Map<string, KeyState>> {
  if (keyIds.length === 0) return new Map();
  const limits = await keyLimits(tx, keyIds, now);
  const open = await tx.query<{ api_key_id: string; open_count: string; held: string }>(
      `SELECT api_key_id, count(*) AS open_count, coalesce(sum(amount), 0) AS held FROM reservations
       WHERE api_key_id = ANY($1) AND status = 'pending' GROUP BY api_key_id`,
      [keyIds],
  );
  const spend = await tx.query<{ api_key_id: string; period: SpendPeriod; amount: string }>(
      `SELECT api_key_id, period, amount FROM ledger_key_spend WHERE api_key_id = ANY($1)
       AND ((period = 'day' AND period_start = $2) OR (period = 'month' AND period_start = $3))`,
      [keyIds, periodStart('day', now), periodStart('month', now)],
  );
  const states = new Map<string, KeyState>();
  for (const id of keyIds) {
    const limit = limits.get(id);
    states.set(id, {
      apiKeyId: id,
      active: limit?.active ?? false,
      maxConcurrency: limit?.maxConcurrency ?? null,
      spendLimit: limit?.spendLimit ?? null,
      openCount: 0,
      heldAmount: 0n,
      spent: { day: 0n, month: 0n },
    });
  }
  for (const row of open) Object.assign(states.get(row.api_key_id)!, { openCount: Number(row.open_count), heldAmount: BigInt(row.held) });
  for (const row of spend) states.get(row.api_key_id)!.spent[row.period] = BigInt(row.amount);
  return states;
}

/** Writes a batch's effects with a fixed number of statements, whatever the batch size. */
/** A batch's rows (transfers, reservations, grants, key spend); the account totals come last, see applyAccountDeltas. */
export async function writeBatchRows(tx: Queryable, effects: BatchEffects): Promise<void> {
  await insertTransfers(tx, effects);
  await insertReservations(tx, [...effects.newReservations.values()]);
  await updateReservations(tx, [...effects.changedReservations.values()]);
  await insertGrants(tx, [...effects.newGrants.values()]);
  await updateGrants(tx, [...effects.changedGrants.values()]);
  await upsertKeySpend(tx, effects);
}

async function insertTransfers(tx: Queryable, { transfers }: BatchEffects) {
  if (transfers.length === 0) return;
  await tx.query(
    `INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, kind, pending,
       pending_id, customer_id, reservation_id, grant_id, reason, created_at, invoice_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::bool[],
       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[])`,
    columns(transfers, [
      (t) => t.id, (t) => t.debitAccountId, (t) => t.creditAccountId, (t) => t.amount, (t) => t.currency, (t) => t.kind,
      (t) => t.pending, (t) => t.pendingId, (t) => t.customerId, (t) => t.reservationId, (t) => t.grantId, (t) => t.reason,
      (t) => t.createdAt, (t) => t.invoiceId,
    ]),
  );
}

async function insertReservations(tx: Queryable, rows: BatchEffects['newReservations'] extends Map<string, infer R> ? R[] : never) {
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO reservations (id, customer_id, api_key_id, product_id, currency, amount, price_ids, estimate, metadata,
       status, hold_transfer_id, expires_at, created_at, resolved_at, usage, captured, charged, released, uncollected)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::jsonb[], $8::jsonb[],
       $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::jsonb[],
       $16::int8[], $17::int8[], $18::int8[], $19::int8[])`,
    columns(rows, [
      (r) => r.id, (r) => r.customerId, (r) => r.apiKeyId, (r) => r.productId, (r) => r.currency, (r) => r.amount,
      (r) => JSON.stringify(r.priceIds), (r) => JSON.stringify(r.estimate), (r) => JSON.stringify(r.metadata), (r) => r.status,
      (r) => r.holdTransferId, (r) => r.expiresAt, (r) => r.createdAt, (r) => r.resolvedAt,
      (r) => (r.usage ? JSON.stringify(r.usage) : null), (r) => r.captured, (r) => r.charged, (r) => r.released, (r) => r.uncollected,
    ]),
  );
}

async function updateReservations(tx: Queryable, rows: BatchEffects['changedReservations'] extends Map<string, infer R> ? R[] : never) {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE reservations r SET status = v.status, resolved_at = v.resolved_at, usage = v.usage, captured = v.captured,
       charged = v.charged, released = v.released, uncollected = v.uncollected
     FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::int8[], $6::int8[], $7::int8[], $8::int8[])
       AS v(id, status, resolved_at, usage, captured, charged, released, uncollected)
     WHERE r.id = v.id`,
    columns(rows, [
      (r) => r.id, (r) => r.status, (r) => r.resolvedAt, (r) => (r.usage ? JSON.stringify(r.usage) : null),
      (r) => r.captured, (r) => r.charged, (r) => r.released, (r) => r.uncollected,
    ]),
  );
}

async function insertGrants(tx: Queryable, rows: BatchEffects['newGrants'] extends Map<string, infer G> ? G[] : never) {
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO credit_grants (id, customer_id, currency, category, priority, amount, remaining, expires_at, expired_at,
       description, created_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int8[], $7::int8[],
       $8::timestamptz[], $9::timestamptz[], $10::text[], $11::timestamptz[])`,
    columns(rows, [
      (g) => g.id, (g) => g.customerId, (g) => g.currency, (g) => g.category, (g) => g.priority, (g) => g.amount,
      (g) => g.remaining, (g) => g.expiresAt, (g) => g.expiredAt, (g) => g.description, (g) => g.createdAt,
    ]),
  );
}

async function updateGrants(tx: Queryable, rows: BatchEffects['changedGrants'] extends Map<string, infer G> ? G[] : never) {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE credit_grants g SET remaining = v.remaining, expired_at = v.expired_at
     FROM unnest($1::text[], $2::int8[], $3::timestamptz[]) AS v(id, remaining, expired_at) WHERE g.id = v.id`,
    columns(rows, [(g) => g.id, (g) => g.remaining, (g) => g.expiredAt]),
  );
}

async function upsertKeySpend(tx: Queryable, { keySpend }: BatchEffects) {
  const rows = [...keySpend.values()];
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO ledger_key_spend (api_key_id, period, period_start, amount)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int8[])
     ON CONFLICT (api_key_id, period, period_start) DO UPDATE SET amount = ledger_key_spend.amount + excluded.amount`,
    columns(rows, [(r) => r.apiKeyId, (r) => r.period, (r) => r.periodStart, (r) => r.amount]),
  );
}

/**
 * Account totals move by deltas. Operator accounts (revenue, ...) are not locked up front: they are
 * locked here, last and in id order, so batches never wait on each other in a cycle. Every batch
 * touches them, so concurrent batches queue on their row locks until the holder commits: callers
 * run this as the last statement before COMMIT, so the lock is held for one statement and the
 * commit (it used to be held through the 2 to 5 statements that followed; docs/performance.md).
 */
export async function applyAccountDeltas(tx: Queryable, { accountDeltas }: BatchEffects) {
  const rows = [...accountDeltas.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, d]) => ({ id, ...d }));
  if (rows.length === 0) return;
  await tx.query('SELECT id FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE', [rows.map((r) => r.id)]);
  await tx.query(
    `UPDATE ledger_accounts a SET debits_posted = a.debits_posted + v.dp, credits_posted = a.credits_posted + v.cp,
       debits_pending = a.debits_pending + v.dpe, credits_pending = a.credits_pending + v.cpe
     FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS v(id, dp, cp, dpe, cpe)
     WHERE a.id = v.id`,
    columns(rows, [(r) => r.id, (r) => r.debitsPosted, (r) => r.creditsPosted, (r) => r.debitsPending, (r) => r.creditsPending]),
  );
}
