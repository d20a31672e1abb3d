/**
 * The payment-provider boundary: what the payments module needs from a card processor. Stripe is
 * one implementation (stripe-provider.ts, the only file that talks to Stripe); the manual provider
 * (manual-provider.ts) is the operator recording money received outside Tollgate.
 */
export interface PaymentProvider {
  readonly name: string;
  /** Creates the provider's customer for a Tollgate customer; the same key gives the same customer. */
  createCustomer(input: { customerId: string; name: string | null; email: string | null }): Promise<{ providerCustomerId: string }>;
  /** A hosted payment page for a top-up; `paymentId` is also the provider's idempotency key. */
  createCheckout(input: CheckoutRequest): Promise<{ sessionId: string; url: string }>;
  /**
   * Charges a saved payment method without the customer present (auto top-up, a finalized
   * invoice); `paymentId` is the provider's idempotency key, so a retry of the same payment never
   * charges twice. A decline is a `failed` result, not an error; the provider unreachable throws
   * ProviderUnavailableError.
   */
  chargeOffSession(input: OffSessionCharge): Promise<OffSessionResult>;
  /** The payment method a payment intent was paid with (to save it), or null. */
  paymentMethodOf(paymentIntentId: string): Promise<string | null>;
  /**
   * A hosted page where the customer saves a card without paying (Checkout in setup mode), for
   * later off-session charges (postpaid invoices, auto top-up); `setupId` is the idempotency key.
   */
  createCardSetup(input: { setupId: string; customerId: string; providerCustomerId: string }): Promise<{ sessionId: string; url: string }>;
  /** The card a completed setup saved (looked up when its event does not name it). */
  paymentMethodOfSetup(setupIntentId: string): Promise<string | null>;
  /** Checks a webhook's signature and turns its event into what Tollgate acts on. */
  verifyWebhook(rawBody: Buffer, signature: string | undefined, now: Date): ProviderEvent;
}

export interface CheckoutRequest {
  paymentId: string;
  customerId: string;
  providerCustomerId: string;
  currency: string;
  amountMinor: bigint;
  description: string;
}

export interface OffSessionCharge {
  paymentId: string;
  providerCustomerId: string;
  paymentMethodId: string;
  amountMinor: bigint;
  currency: string;
  description: string;
  /** Sent with the charge; tollgate_payment_id is always included. */
  metadata: Record<string, string>;
}

export type OffSessionResult =
  | { status: 'succeeded'; paymentIntentId: string; amountMinor: bigint; currency: string; paymentMethodId: string | null }
  /** Not settled yet (e.g. processing): the webhook will tell. */
  | { status: 'pending'; paymentIntentId: string }
  | { status: 'failed'; paymentIntentId: string | null; code: string; message: string };

/** A provider event, reduced to what it means for Tollgate. */
export type ProviderEvent =
  | {
      kind: 'payment_succeeded';
      eventId: string;
      type: string;
      paymentId: string;
      paymentIntentId: string | null;
      amountMinor: bigint | null;
      currency: string | null;
      /** The payment method it was paid with, when the event says (saved for auto top-up). */
      paymentMethodId?: string | null;
    }
  | { kind: 'payment_failed'; eventId: string; type: string; paymentId: string; paymentIntentId: string | null; code: string; message: string }
  /** The cumulative amount refunded on a payment intent (a later event carries the new total). */
  | { kind: 'refunded'; eventId: string; type: string; paymentIntentId: string; amountRefundedMinor: bigint }
  /** A dispute (chargeback) on a payment intent, in its current status. */
  | { kind: 'disputed'; eventId: string; type: string; paymentIntentId: string; disputeId: string; amountMinor: bigint; status: string; closed: boolean }
  /** A card setup completed: the customer's card, or the setup intent to look it up from. */
  | { kind: 'card_saved'; eventId: string; type: string; setupId: string; customerId: string; setupIntentId: string | null; paymentMethodId: string | null }
  | { kind: 'ignored'; eventId: string; type: string; reason: string };

/** A webhook whose signature is missing, wrong or too old: refused with 400. */
export class SignatureError extends Error {}

/** The provider could not be reached or answered with a server error: retry later. */
export class ProviderUnavailableError extends Error {}
