import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import type { PaymentRow } from './payment-store.js';

export function presentPayment(p: PaymentRow) {
  return {
    id: p.id,
    customer_id: p.customer_id,
    kind: p.kind,
    provider: p.provider,
    status: p.status,
    currency: p.currency,
    amount: formatAmount(BigInt(p.amount), p.currency),
    url: p.checkout_url,
    reference: p.reference,
    grant_id: p.grant_id,
    payment_intent_id: p.payment_intent_id,
    refunded: formatAmount(BigInt(p.refunded), p.currency),
    refund_taken: formatAmount(BigInt(p.refund_taken), p.currency),
    refund_uncollected: formatAmount(BigInt(p.refund_uncollected), p.currency),
    failure_code: p.failure_code,
    failure_message: p.failure_message,
    dispute_status: p.dispute_status,
    disputed: formatAmount(BigInt(p.disputed), p.currency),
    dispute_taken: formatAmount(BigInt(p.dispute_taken), p.currency),
    dispute_uncollected: formatAmount(BigInt(p.dispute_uncollected), p.currency),
    dispute_reinstated: formatAmount(BigInt(p.dispute_reinstated), p.currency),
    invoice_id: p.invoice_id,
    created_at: toIso(p.created_at)!,
    paid_at: toIso(p.paid_at),
    failed_at: toIso(p.failed_at),
  };
}
