import type { Queryable } from '../platform/db.js';

/** SQL of the payments module: its own tables only. */

export interface PaymentRow {
  id: string;
  customer_id: string;
  kind: 'top_up';
  provider: string;
  status: 'pending' | 'paid' | 'partially_refunded' | 'refunded';
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

export type NewPayment = Omit<PaymentRow, 'refunded' | 'refund_taken' | 'refund_uncollected' | 'paid_at' | 'grant_id' | 'payment_intent_id'>;

export async function insertPayment(db: Queryable, p: NewPayment): Promise<void> {
  await db.query(
    `INSERT INTO payments (id, customer_id, kind, provider, status, currency, amount, amount_minor, checkout_session_id, checkout_url, reference, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [p.id, p.customer_id, p.kind, p.provider, p.status, p.currency, p.amount, p.amount_minor, p.checkout_session_id, p.checkout_url, p.reference, p.created_at],
  );
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
    `UPDATE payments SET status = $2, payment_intent_id = $3, grant_id = $4, refunded = $5, refund_taken = $6, refund_uncollected = $7, paid_at = $8 WHERE id = $1`,
    [p.id, p.status, p.payment_intent_id, p.grant_id, p.refunded, p.refund_taken, p.refund_uncollected, p.paid_at],
  );
}

export async function listPayments(db: Queryable, filter: { customerId?: string }, limit: number, cursor?: string): Promise<PaymentRow[]> {
  return db.query<PaymentRow>(
    `SELECT * FROM payments WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
    [filter.customerId ?? null, cursor ?? null, limit + 1],
  );
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
