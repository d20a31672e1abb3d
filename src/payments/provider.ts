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

/** A provider event, reduced to what it means for Tollgate. */
export type ProviderEvent =
  | { kind: 'payment_succeeded'; eventId: string; type: string; paymentId: string; paymentIntentId: string | null; amountMinor: bigint | null; currency: string | null }
  /** The cumulative amount refunded on a payment intent (a later event carries the new total). */
  | { kind: 'refunded'; eventId: string; type: string; paymentIntentId: string; amountRefundedMinor: bigint }
  | { kind: 'ignored'; eventId: string; type: string; reason: string };

/** A webhook whose signature is missing, wrong or too old: refused with 400. */
export class SignatureError extends Error {}

/** The provider could not be reached or answered with a server error: retry later. */
export class ProviderUnavailableError extends Error {}
