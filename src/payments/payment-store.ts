import type { Queryable } from '../platform/db.js';
import { pagesPerParentSql } from '../platform/lists.js';
import { minorToLedger } from './top-up-rules.js';

/** SQL of the payments module: its own tables only. */

export type PaymentKind = 'top_up' | 'auto_top_up' | 'invoice';
export type PaymentStatus = 'pending' | 'paid' | 'partially_refunded' | 'refunded' | 'failed';

export interface PaymentRow {
  id: string;
  customer_id: string;
  kind: PaymentKind;
  provider: string;
  status: PaymentStatus;
  currency: string;
  amount: string;
  amount_minor: string;
  checkout_session_id: string | null;
  checkout_url: string | null;
  payment_intent_id: string | null;
  reference: string | null;
  grant_id: string | null;
  refunded: string;
  refund_taken: string;
  refund_uncollected: string;
  created_at: Date;
  paid_at: Date | null;
  invoice_id: string | null;
  attempted_at: Date | null;
  failure_code: string | null;
  failure_message: string | null;
  failed_at: Date | null;
  dispute_status: string | null;
  disputed: string;
  dispute_taken: string;
  dispute_uncollected: string;
  dispute_reinstated: string;
}

export async function findProviderCustomer(db: Queryable, customerId: string, provider: string): Promise<string | null> {
  const [row] = await db.query<{ provider_customer_id: string }>('SELECT provider_customer_id FROM payment_customers WHERE customer_id = $1 AND provider = $2', [customerId, provider]);
  return row?.provider_customer_id ?? null;
}

/** Links once; a concurrent link of the same customer keeps the first (the provider gave both the same id). */
export async function linkProviderCustomer(db: Queryable, customerId: string, provider: string, providerCustomerId: string, now: Date): Promise<void> {
  await db.query(
    `INSERT INTO payment_customers (customer_id, provider, provider_customer_id, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (customer_id, provider) DO NOTHING`,
    [customerId, provider, providerCustomerId, now],
  );
}

export type NewPayment = Pick<PaymentRow, 'id' | 'customer_id' | 'kind' | 'provider' | 'status' | 'currency' | 'amount' | 'amount_minor' | 'checkout_session_id' | 'checkout_url' | 'reference' | 'created_at'> &
  Partial<Pick<PaymentRow, 'attempted_at' | 'invoice_id'>>;

/** A new pending payment of `amountMinor` in the customer's currency (the ledger amount follows from it). */
export function pendingPayment(p: { id: string; customerId: string; kind: PaymentKind; provider: string; currency: string; amountMinor: bigint; now: Date } & Partial<NewPayment>): NewPayment {
  const { id, customerId, kind, provider, currency, amountMinor, now, ...rest } = p;
  return {
    id,
    customer_id: customerId,
    kind,
    provider,
    status: 'pending',
    currency,
    amount: minorToLedger(amountMinor, currency).toString(),
    amount_minor: amountMinor.toString(),
    checkout_session_id: null,
    checkout_url: null,
    reference: null,
    created_at: now,
    ...rest,
  };
}

/** Inserts a payment; false when it would be a second pending auto top-up of its customer (one is in flight). */
export async function insertPayment(db: Queryable, p: NewPayment): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO payments (id, customer_id, kind, provider, status, currency, amount, amount_minor, checkout_session_id, checkout_url, reference, created_at, attempted_at, invoice_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (customer_id) WHERE kind = 'auto_top_up' AND status = 'pending' DO NOTHING RETURNING 1 AS inserted`,
    [p.id, p.customer_id, p.kind, p.provider, p.status, p.currency, p.amount, p.amount_minor, p.checkout_session_id, p.checkout_url, p.reference, p.created_at, p.attempted_at ?? null, p.invoice_id ?? null],
  );
  return rows.length === 1;
}

export async function getPayment(db: Queryable, id: string): Promise<PaymentRow | null> {
  const [row] = await db.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [id]);
  return row ?? null;
}

export async function lockPayment(tx: Queryable, id: string): Promise<PaymentRow | null> {
  const [row] = await tx.query<PaymentRow>('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [id]);
  return row ?? null;
}

export async function lockPaymentByIntent(tx: Queryable, provider: string, paymentIntentId: string): Promise<PaymentRow | null> {
  const [row] = await tx.query<PaymentRow>('SELECT * FROM payments WHERE provider = $1 AND payment_intent_id = $2 FOR UPDATE', [provider, paymentIntentId]);
  return row ?? null;
}

export async function updatePayment(tx: Queryable, p: PaymentRow): Promise<void> {
  await tx.query(
    `UPDATE payments SET status = $2, payment_intent_id = $3, grant_id = $4, refunded = $5, refund_taken = $6, refund_uncollected = $7, paid_at = $8,
       attempted_at = $9, failure_code = $10, failure_message = $11, failed_at = $12,
       dispute_status = $13, disputed = $14, dispute_taken = $15, dispute_uncollected = $16, dispute_reinstated = $17 WHERE id = $1`,
    [
      p.id, p.status, p.payment_intent_id, p.grant_id, p.refunded, p.refund_taken, p.refund_uncollected, p.paid_at,
      p.attempted_at, p.failure_code, p.failure_message, p.failed_at,
      p.dispute_status, p.disputed, p.dispute_taken, p.dispute_uncollected, p.dispute_reinstated,
    ],
  );
}

export interface PaymentFilter {
  customerId?: string;
  status?: PaymentRow['status'];
}

export async function listPayments(db: Queryable, filter: PaymentFilter, limit: number, cursor?: string): Promise<PaymentRow[]> {
  return db.query<PaymentRow>(
    `SELECT * FROM payments WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR id < $2) AND ($4::text IS NULL OR status = $4)
     ORDER BY id DESC LIMIT $3`,
    [filter.customerId ?? null, cursor ?? null, limit + 1, filter.status ?? null],
  );
}

/** A page of payments of each of several customers, in one query. */
export async function listPaymentsOf(db: Queryable, customerIds: string[], limit: number, cursor?: string): Promise<PaymentRow[]> {
  return db.query<PaymentRow>(pagesPerParentSql('payments', 'customer_id'), [customerIds, cursor ?? null, limit + 1]);
}

/**
 * Records an event id; false when it was already recorded (a redelivery). A concurrent duplicate
 * waits here for the first to commit, then sees it.
 */
export async function recordEvent(tx: Queryable, provider: string, eventId: string, type: string, now: Date): Promise<boolean> {
  const rows = await tx.query(
    `INSERT INTO payment_events (provider, event_id, type, outcome, received_at) VALUES ($1, $2, $3, 'processing', $4)
     ON CONFLICT (provider, event_id) DO NOTHING RETURNING 1 AS recorded`,
    [provider, eventId, type, now],
  );
  return rows.length === 1;
}

export async function setEventOutcome(tx: Queryable, provider: string, eventId: string, outcome: string): Promise<void> {
  await tx.query('UPDATE payment_events SET outcome = $3 WHERE provider = $1 AND event_id = $2', [provider, eventId, outcome]);
}

/** Keeps the largest cumulative refund seen: events may arrive in any order. */
export async function recordRefundTotal(tx: Queryable, provider: string, paymentIntentId: string, amountRefundedMinor: bigint, now: Date): Promise<void> {
  await tx.query(
    `INSERT INTO payment_refund_totals (provider, payment_intent_id, amount_refunded_minor, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (provider, payment_intent_id) DO UPDATE SET amount_refunded_minor = GREATEST(payment_refund_totals.amount_refunded_minor, excluded.amount_refunded_minor), updated_at = excluded.updated_at`,
    [provider, paymentIntentId, amountRefundedMinor.toString(), now],
  );
}

export async function refundTotal(tx: Queryable, provider: string, paymentIntentId: string): Promise<bigint> {
  const [row] = await tx.query<{ amount_refunded_minor: string }>('SELECT amount_refunded_minor FROM payment_refund_totals WHERE provider = $1 AND payment_intent_id = $2', [provider, paymentIntentId]);
  return row ? BigInt(row.amount_refunded_minor) : 0n;
}

/** Serializes every event about one payment intent, whichever of them arrives first. */
export async function lockIntent(tx: Queryable, provider: string, key: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [`payments:${provider}`, key]);
}

export interface DisputeRow {
  dispute_id: string;
  amount_minor: string;
  status: string;
  closed: boolean;
}

/** Keeps a dispute's latest status, except that a closed one stays as it closed (events come in any order). */
export async function recordDispute(tx: Queryable, provider: string, d: { paymentIntentId: string; disputeId: string; amountMinor: bigint; status: string; closed: boolean }, now: Date): Promise<void> {
  await tx.query(
    `INSERT INTO payment_disputes (provider, payment_intent_id, dispute_id, amount_minor, status, closed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (provider, payment_intent_id) DO UPDATE SET
       dispute_id = excluded.dispute_id, amount_minor = excluded.amount_minor, status = excluded.status, closed = excluded.closed, updated_at = excluded.updated_at
     WHERE NOT payment_disputes.closed`,
    [provider, d.paymentIntentId, d.disputeId, d.amountMinor.toString(), d.status, d.closed, now],
  );
}

export async function disputeOf(tx: Queryable, provider: string, paymentIntentId: string): Promise<DisputeRow | null> {
  const [row] = await tx.query<DisputeRow>('SELECT dispute_id, amount_minor, status, closed FROM payment_disputes WHERE provider = $1 AND payment_intent_id = $2', [provider, paymentIntentId]);
  return row ?? null;
}

export interface SavedMethod {
  providerCustomerId: string;
  paymentMethodId: string | null;
}

export async function savedMethodOf(db: Queryable, customerId: string, provider: string): Promise<SavedMethod | null> {
  const [row] = await db.query<{ provider_customer_id: string; payment_method_id: string | null }>(
    'SELECT provider_customer_id, payment_method_id FROM payment_customers WHERE customer_id = $1 AND provider = $2',
    [customerId, provider],
  );
  return row ? { providerCustomerId: row.provider_customer_id, paymentMethodId: row.payment_method_id } : null;
}

/**
 * Remembers the card a payment was paid with or a card setup saved (`pay_`/`pms_` ids, time-ordered
 * after the prefix): one older than the one that saved the current card changes nothing.
 */
export async function saveMethod(tx: Queryable, customerId: string, provider: string, paymentMethodId: string, paymentId: string): Promise<void> {
  await tx.query(
    `UPDATE payment_customers SET payment_method_id = $3, payment_method_payment_id = $4
     WHERE customer_id = $1 AND provider = $2
       AND (payment_method_payment_id IS NULL OR split_part(payment_method_payment_id, '_', 2) <= split_part($4, '_', 2))`,
    [customerId, provider, paymentMethodId, paymentId],
  );
}

/** Pending off-session payments whose provider call has to be made again (it failed to answer, or the process died). */
export async function staleOffSessionPayments(db: Queryable, kind: PaymentKind, attemptedBefore: Date, limit: number): Promise<PaymentRow[]> {
  return db.query<PaymentRow>(
    `SELECT * FROM payments WHERE status = 'pending' AND payment_intent_id IS NULL AND attempted_at IS NOT NULL AND attempted_at < $1 AND kind = $3 ORDER BY attempted_at LIMIT $2`,
    [attemptedBefore, limit, kind],
  );
}

export async function hasPendingAutoTopUp(tx: Queryable, customerId: string): Promise<boolean> {
  const rows = await tx.query(`SELECT 1 FROM payments WHERE customer_id = $1 AND kind = 'auto_top_up' AND status = 'pending'`, [customerId]);
  return rows.length > 0;
}

/** An off-session payment is about to be sent to the provider (again). */
export async function markAttempted(db: Queryable, id: string, now: Date): Promise<void> {
  await db.query(`UPDATE payments SET attempted_at = $2 WHERE id = $1 AND status = 'pending'`, [id, now]);
}

/** The provider accepted the charge but has not settled it: its intent is known, the webhook will tell. */
export async function setPaymentIntent(db: Queryable, id: string, paymentIntentId: string): Promise<void> {
  await db.query('UPDATE payments SET payment_intent_id = $2 WHERE id = $1 AND payment_intent_id IS NULL', [id, paymentIntentId]);
}

/** The charges made so far for an invoice: one in flight, and the failures. */
export async function invoiceAttempts(db: Queryable, invoiceId: string): Promise<{ pending: boolean; failures: number; lastFailedAt: Date | null }> {
  const [row] = await db.query<{ pending: boolean; failures: number; last_failed_at: Date | null }>(
    `SELECT coalesce(bool_or(status = 'pending'), false) AS pending, count(*) FILTER (WHERE status = 'failed')::int AS failures, max(failed_at) AS last_failed_at
       FROM payments WHERE kind = 'invoice' AND invoice_id = $1`,
    [invoiceId],
  );
  return { pending: row!.pending, failures: Number(row!.failures), lastFailedAt: row!.last_failed_at ? new Date(row!.last_failed_at) : null };
}
