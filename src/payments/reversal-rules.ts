/**
 * How much of a paid payment refunds and a dispute take back (ledger units). Both are reported by
 * the provider as totals, in any order; together they never take back more than the payment.
 */

/** Dispute statuses that leave the money with the operator: what the dispute took is given back. */
export const DISPUTE_RETURNED_STATUSES = new Set(['won', 'warning_closed']);

export interface PaymentReversals {
  amount: bigint;
  refunded: bigint;
  disputed: bigint;
}

/** What a refund total still has to take: never past what the dispute leaves of the payment. */
export function refundDue(p: PaymentReversals, refundTotal: bigint): bigint {
  const room = p.amount - p.disputed;
  const target = refundTotal < room ? refundTotal : room;
  return target > p.refunded ? target - p.refunded : 0n;
}

/** What the dispute holds back: its amount within what refunds left, while open or lost; nothing once won. */
export function disputeTarget(p: PaymentReversals, dispute: { amount: bigint; status: string } | null): bigint {
  if (!dispute || DISPUTE_RETURNED_STATUSES.has(dispute.status)) return 0n;
  const room = p.amount - p.refunded;
  return dispute.amount < room ? dispute.amount : room;
}

export function refundStatus(p: PaymentReversals): 'paid' | 'partially_refunded' | 'refunded' {
  if (p.refunded === 0n) return 'paid';
  return p.refunded >= p.amount ? 'refunded' : 'partially_refunded';
}
