import type { ProviderEvent } from './provider.js';

/**
 * The manual provider: the operator records money received outside Tollgate (a bank transfer).
 * There is no page to pay on and no webhook: recording is the confirmation, so it yields the same
 * "payment succeeded" event a card payment's webhook does, applied by the same exactly-once path.
 */
export class ManualProvider {
  readonly name = 'manual';

  confirm(payment: { id: string; amountMinor: bigint; currency: string }): ProviderEvent {
    return { kind: 'payment_succeeded', eventId: `manual:${payment.id}`, type: 'manual.payment_recorded', paymentId: payment.id, paymentIntentId: null, amountMinor: payment.amountMinor, currency: payment.currency };
  }
}
