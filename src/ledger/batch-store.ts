import type { Queryable } from '../platform/db.js';
import type { BatchEffects } from './batch-rules.js';
import type { Account } from './model.js';
import { columns } from '../platform/columns.js';

/** A batch's rows (transfers, reservations, grants, the spend of keys with a spend limit); the account totals come last, see applyAccountDeltas. */
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
       pending_id, customer_id, reservation_id, grant_id, reason, created_at, invoice_id, api_key_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::bool[],
       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::text[])`,
    columns(transfers, [
      (t) => t.id, (t) => t.debitAccountId, (t) => t.creditAccountId, (t) => t.amount, (t) => t.currency, (t) => t.kind,
      (t) => t.pending, (t) => t.pendingId, (t) => t.customerId, (t) => t.reservationId, (t) => t.grantId, (t) => t.reason,
      (t) => t.createdAt, (t) => t.invoiceId, (t) => t.apiKeyId,
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
     WHERE r.id = v.id AND r.id = ANY($1::text[])`,
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
  // A grant with an expiry and something left goes on the expiry sweep's list (grant-expiries.ts).
  const expiring = rows.filter((g) => g.expiresAt !== null && g.remaining > 0n);
  if (expiring.length > 0) {
    await tx.query(
      'INSERT INTO credit_grant_expiries (grant_id, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])',
      columns(expiring, [(g) => g.id, (g) => g.expiresAt]),
    );
  }
}

async function updateGrants(tx: Queryable, rows: BatchEffects['changedGrants'] extends Map<string, infer G> ? G[] : never) {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE credit_grants g SET remaining = v.remaining, expired_at = v.expired_at
     FROM unnest($1::text[], $2::int8[], $3::timestamptz[]) AS v(id, remaining, expired_at) WHERE g.id = v.id AND g.id = ANY($1::text[])`,
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

/** Shard rows per operator account (migration 012): enough that the batches in flight rarely share one. */
export const OPERATOR_SHARDS = 16;

/**
 * Account totals move by deltas. Customer accounts are locked by the batch (loadBatch) and updated
 * in place. Operator accounts (revenue, ...) are touched by every batch: their deltas go to shard
 * `shard` of each (an upsert, in account id order, so two batches on one shard never wait on each
 * other in a cycle), and batches on different shards never wait on each other at all. Callers
 * send this with the batch's last statement, just before COMMIT (docs/performance.md).
 */
export async function applyAccountDeltas(tx: Queryable, { accountDeltas }: BatchEffects, operators: Map<string, Account>, shard: number) {
  const rows = [...accountDeltas.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, d]) => ({ id, ...d }));
  const customerRows = rows.filter((r) => !operators.has(r.id));
  const operatorRows = rows.filter((r) => operators.has(r.id));
  const totals = [(r: Row) => r.debitsPosted, (r: Row) => r.creditsPosted, (r: Row) => r.debitsPending, (r: Row) => r.creditsPending];
  if (customerRows.length > 0) {
    await tx.query(
      `UPDATE ledger_accounts a SET debits_posted = a.debits_posted + v.dp, credits_posted = a.credits_posted + v.cp,
         debits_pending = a.debits_pending + v.dpe, credits_pending = a.credits_pending + v.cpe
       FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS v(id, dp, cp, dpe, cpe)
       WHERE a.id = v.id AND a.id = ANY($1::text[])`,
      columns(customerRows, [(r) => r.id, ...totals]),
    );
  }
  if (operatorRows.length > 0) {
    await tx.query(
      `INSERT INTO ledger_account_shards AS s (account_id, shard, currency, debits_posted, credits_posted, debits_pending, credits_pending)
       SELECT v.id, $2, v.currency, v.dp, v.cp, v.dpe, v.cpe
       FROM unnest($1::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) WITH ORDINALITY AS v(id, currency, dp, cp, dpe, cpe, n)
       ORDER BY v.n
       ON CONFLICT (account_id, shard) DO UPDATE SET debits_posted = s.debits_posted + excluded.debits_posted,
         credits_posted = s.credits_posted + excluded.credits_posted, debits_pending = s.debits_pending + excluded.debits_pending,
         credits_pending = s.credits_pending + excluded.credits_pending`,
      [operatorRows.map((r) => r.id), shard, ...columns(operatorRows, [(r) => operators.get(r.id)!.currency, ...totals])],
    );
  }
}

type Row = { id: string; debitsPosted: bigint; creditsPosted: bigint; debitsPending: bigint; creditsPending: bigint };
