import { event, type NewEvent } from '../outbox/outbox.js';
import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import type { WrittenBatch } from './ledger-service.js';
import type { Grant } from './model.js';
import { presentGrant } from './present.js';

/**
 * The events a ledger batch reports, from what it wrote (pure): grants created and expired, holds
 * expired, usage that could not be collected. Replays changed nothing and report nothing.
 */
export function ledgerEvents({ effects, applied, accounts }: WrittenBatch): NewEvent[] {
  const events: NewEvent[] = [];
  for (const grant of effects.newGrants.values()) events.push(event('credit_grant.created', grant.customerId, presentGrant(grant)));
  for (const t of effects.transfers) {
    if (t.kind !== 'expiry' || !t.grantId) continue;
    const grant = (effects.changedGrants.get(t.grantId) ?? effects.newGrants.get(t.grantId)) as Grant;
    events.push(event('credit_grant.expired', t.customerId, { grant: presentGrant(grant), expired_amount: formatAmount(t.amount, t.currency) }));
  }
  for (const r of effects.changedReservations.values()) {
    if (r.status !== 'expired') continue;
    events.push(
      event('reservation.expired', r.customerId, {
        id: r.id, customer_id: r.customerId, api_key_id: r.apiKeyId, product_id: r.productId, currency: r.currency,
        amount: formatAmount(r.amount, r.currency), expires_at: r.expiresAt.toISOString(), resolved_at: toIso(r.resolvedAt),
      }),
    );
  }
  const uncollected = (customerId: string, amount: bigint, reservationId: string | null, apiKeyId: string | null) => {
    const currency = accounts.get(customerId)?.currency ?? 'USD';
    events.push(event('usage.uncollected', customerId, { customer_id: customerId, currency, uncollected: formatAmount(amount, currency), reservation_id: reservationId, api_key_id: apiKeyId }));
  };
  for (const r of effects.settled) if ((r.uncollected ?? 0n) > 0n) uncollected(r.customerId, r.uncollected!, r.id, r.apiKeyId);
  for (const { op, result } of applied) {
    if (op.type === 'usage_charge' && result.ok && result.value.type === 'usage_charge' && result.value.uncollected > 0n) {
      uncollected(op.customerId, result.value.uncollected, null, op.apiKeyId);
    }
  }
  return events;
}
