import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import type { Account, Grant, Transfer } from './model.js';
import { availableBalance, heldBalance, postedBalance } from './model.js';

export function presentGrant(g: Grant) {
  return {
    id: g.id,
    customer_id: g.customerId,
    currency: g.currency,
    category: g.category,
    priority: g.priority,
    amount: formatAmount(g.amount, g.currency),
    remaining: formatAmount(g.remaining, g.currency),
    expires_at: toIso(g.expiresAt),
    expired_at: toIso(g.expiredAt),
    description: g.description,
    created_at: g.createdAt.toISOString(),
  };
}

export function presentBalance(account: Account, grants: Grant[]) {
  const c = account.currency;
  return {
    customer_id: account.customerId!,
    currency: c,
    available: formatAmount(availableBalance(account), c),
    held: formatAmount(heldBalance(account), c),
    posted: formatAmount(postedBalance(account), c),
    credit_limit: formatAmount(account.creditLimit, c),
    grants: grants.map((g) => ({ id: g.id, category: g.category, remaining: formatAmount(g.remaining, c), expires_at: toIso(g.expiresAt) })),
  };
}

export function presentTransaction(t: Transfer, customerAccountId: string) {
  return {
    id: t.id,
    kind: t.kind,
    amount: formatAmount(t.amount, t.currency),
    currency: t.currency,
    direction: t.creditAccountId === customerAccountId ? ('credit' as const) : ('debit' as const),
    pending: t.pending,
    pending_id: t.pendingId,
    reservation_id: t.reservationId,
    api_key_id: t.apiKeyId,
    grant_id: t.grantId,
    invoice_id: t.invoiceId,
    reason: t.reason,
    created_at: t.createdAt.toISOString(),
  };
}
