import type { Account, Grant, Reservation, Transfer } from './model.js';

/** Row <-> entity mapping for the ledger's tables; bigint columns arrive as strings. */

type Row = Record<string, any>;

const big = (value: unknown): bigint => BigInt(value as string);
const bigOrNull = (value: unknown): bigint | null => (value === null || value === undefined ? null : BigInt(value as string));
const date = (value: unknown): Date => new Date(value as string);
const dateOrNull = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as string));

export function accountFromRow(r: Row): Account {
  return {
    id: r.id,
    currency: r.currency,
    code: r.code,
    customerId: r.customer_id,
    creditLimit: big(r.credit_limit),
    debitsPosted: big(r.debits_posted),
    creditsPosted: big(r.credits_posted),
    debitsPending: big(r.debits_pending),
    creditsPending: big(r.credits_pending),
  };
}

export function grantFromRow(r: Row): Grant {
  return {
    id: r.id,
    customerId: r.customer_id,
    currency: r.currency,
    category: r.category,
    priority: Number(r.priority),
    amount: big(r.amount),
    remaining: big(r.remaining),
    expiresAt: dateOrNull(r.expires_at),
    expiredAt: dateOrNull(r.expired_at),
    description: r.description,
    createdAt: date(r.created_at),
  };
}

export function reservationFromRow(r: Row): Reservation {
  return {
    id: r.id,
    customerId: r.customer_id,
    apiKeyId: r.api_key_id,
    productId: r.product_id,
    currency: r.currency,
    amount: big(r.amount),
    priceIds: r.price_ids,
    estimate: r.estimate,
    metadata: r.metadata,
    status: r.status,
    holdTransferId: r.hold_transfer_id,
    expiresAt: date(r.expires_at),
    createdAt: date(r.created_at),
    resolvedAt: dateOrNull(r.resolved_at),
    usage: r.usage,
    captured: bigOrNull(r.captured),
    charged: bigOrNull(r.charged),
    released: bigOrNull(r.released),
    uncollected: bigOrNull(r.uncollected),
  };
}

export function transferFromRow(r: Row): Transfer {
  return {
    id: r.id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: big(r.amount),
    currency: r.currency,
    kind: r.kind,
    pending: r.pending,
    pendingId: r.pending_id,
    customerId: r.customer_id,
    reservationId: r.reservation_id,
    apiKeyId: r.api_key_id ?? null,
    grantId: r.grant_id,
    invoiceId: r.invoice_id ?? null,
    reason: r.reason,
    createdAt: date(r.created_at),
  };
}
