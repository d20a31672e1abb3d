import Stripe from 'stripe';
import { withSpan } from '../observability/tracing.js';
import type { StripeConfig } from '../platform/config.js';
import {
  ProviderUnavailableError,
  SignatureError,
  type CheckoutRequest,
  type OffSessionCharge,
  type OffSessionResult,
  type PaymentProvider,
  type ProviderEvent,
} from './provider.js';

/** Stripe's default, and what the issue asks for: a signature older than this is refused. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
const NETWORK_RETRIES_MAX = 2;
const REQUEST_TIMEOUT_MS = 15_000;
const PAYMENT_METADATA_KEY = 'tollgate_payment_id';
const SETUP_METADATA_KEY = 'tollgate_setup_id';
/** Dispute statuses that end a dispute; `won` and `warning_closed` leave the money with the operator. */
const DISPUTE_CLOSED_STATUSES = new Set(['won', 'lost', 'warning_closed']);

/** The only place Tollgate calls Stripe (the official SDK). */
export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe';
  private readonly stripe: Stripe;

  constructor(private readonly config: StripeConfig) {
    const base = config.apiBase;
    this.stripe = new Stripe(config.secretKey, {
      maxNetworkRetries: NETWORK_RETRIES_MAX,
      timeout: REQUEST_TIMEOUT_MS,
      ...(base ? { host: base.hostname, port: base.port || (base.protocol === 'https:' ? 443 : 80), protocol: base.protocol === 'https:' ? 'https' : 'http' } : {}),
    });
  }

  async createCustomer(input: { customerId: string; name: string | null; email: string | null }) {
    const customer = await call('customers.create', () =>
      this.stripe.customers.create(
        { ...(input.name ? { name: input.name } : {}), ...(input.email ? { email: input.email } : {}), metadata: { tollgate_customer_id: input.customerId } },
        // Two requests racing to create the link get the same Stripe customer.
        { idempotencyKey: `tollgate-customer-${input.customerId}` },
      ),
    );
    return { providerCustomerId: customer.id };
  }

  createCheckout(input: CheckoutRequest) {
    const metadata = { [PAYMENT_METADATA_KEY]: input.paymentId, tollgate_customer_id: input.customerId };
    return this.checkoutSession(
      {
        mode: 'payment',
        customer: input.providerCustomerId,
        client_reference_id: input.paymentId,
        line_items: [{ quantity: 1, price_data: { currency: input.currency.toLowerCase(), unit_amount: Number(input.amountMinor), product_data: { name: input.description } } }],
        // Saved for auto top-up: later charges without the customer present.
        payment_intent_data: { setup_future_usage: 'off_session', metadata },
        metadata,
      },
      input.paymentId,
    );
  }

  createCardSetup(input: { setupId: string; customerId: string; providerCustomerId: string }) {
    const metadata = { [SETUP_METADATA_KEY]: input.setupId, tollgate_customer_id: input.customerId };
    return this.checkoutSession(
      { mode: 'setup', customer: input.providerCustomerId, client_reference_id: input.setupId, payment_method_types: ['card'], setup_intent_data: { metadata }, metadata },
      input.setupId,
    );
  }

  /** A Checkout Session that returns the customer to the configured pages; the key makes a retry open the same one. */
  private async checkoutSession(params: Omit<Stripe.Checkout.SessionCreateParams, 'success_url' | 'cancel_url'>, idempotencyKey: string) {
    const session = await call('checkout.sessions.create', () =>
      this.stripe.checkout.sessions.create({ ...params, success_url: this.config.checkoutSuccessUrl, cancel_url: this.config.checkoutCancelUrl }, { idempotencyKey }),
    );
    if (!session.url) throw new Error(`Stripe returned checkout session ${session.id} without a url`);
    return { sessionId: session.id, url: session.url };
  }

  async paymentMethodOfSetup(setupIntentId: string): Promise<string | null> {
    const intent = await call('setup_intents.retrieve', () => this.stripe.setupIntents.retrieve(setupIntentId));
    return idOf(intent.payment_method);
  }

  async chargeOffSession(input: OffSessionCharge): Promise<OffSessionResult> {
    let intent: Stripe.PaymentIntent;
    try {
      intent = await call('payment_intents.create', () =>
        this.stripe.paymentIntents.create(
          {
            amount: Number(input.amountMinor),
            currency: input.currency.toLowerCase(),
            customer: input.providerCustomerId,
            payment_method: input.paymentMethodId,
            confirm: true,
            off_session: true,
            description: input.description,
            metadata: { ...input.metadata, [PAYMENT_METADATA_KEY]: input.paymentId },
          },
          { idempotencyKey: input.paymentId },
        ),
      );
    } catch (error) {
      // A decline (card error) or a refused request (the saved card was removed): this attempt failed.
      if (error instanceof Stripe.errors.StripeCardError || error instanceof Stripe.errors.StripeInvalidRequestError) {
        const code = (error as Stripe.errors.StripeCardError).decline_code ?? error.code ?? error.type;
        return { status: 'failed', paymentIntentId: error.payment_intent?.id ?? null, code, message: error.message };
      }
      throw error;
    }
    if (intent.status === 'succeeded') {
      return { status: 'succeeded', paymentIntentId: intent.id, amountMinor: BigInt(intent.amount_received), currency: intent.currency.toUpperCase(), paymentMethodId: idOf(intent.payment_method) };
    }
    if (intent.status === 'processing') return { status: 'pending', paymentIntentId: intent.id };
    // requires_action (authentication) or requires_payment_method: nobody is present to complete it.
    const reason = intent.last_payment_error;
    return { status: 'failed', paymentIntentId: intent.id, code: reason?.decline_code ?? reason?.code ?? intent.status, message: reason?.message ?? `The payment needs ${intent.status}` };
  }

  async paymentMethodOf(paymentIntentId: string): Promise<string | null> {
    const intent = await call('payment_intents.retrieve', () => this.stripe.paymentIntents.retrieve(paymentIntentId));
    return idOf(intent.payment_method);
  }

  verifyWebhook(rawBody: Buffer, signature: string | undefined, now: Date): ProviderEvent {
    if (!this.config.webhookSecret) throw new Error('verifyWebhook without STRIPE_WEBHOOK_SECRET');
    if (!signature) throw new SignatureError('The Stripe-Signature header is missing');
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(rawBody, signature, this.config.webhookSecret, WEBHOOK_TOLERANCE_SECONDS, undefined, now.getTime());
    } catch (error) {
      throw new SignatureError(`The Stripe-Signature does not verify: ${(error as Error).message}`);
    }
    return toProviderEvent(event);
  }
}

/**
 * One Stripe API call, in a span named after it (under the request that made it). Stripe
 * unreachable or failing on its side is a 503 to retry; anything else is our bug.
 */
async function call<T>(operation: string, request: () => Promise<T>): Promise<T> {
  try {
    return await withSpan(`stripe ${operation}`, { 'rpc.system': 'stripe', 'rpc.method': operation }, request, { root: false });
  } catch (error) {
    if (error instanceof Stripe.errors.StripeConnectionError || error instanceof Stripe.errors.StripeAPIError || error instanceof Stripe.errors.StripeRateLimitError) {
      throw new ProviderUnavailableError(`Stripe is unavailable: ${error.message}`);
    }
    throw error;
  }
}

const idOf = (value: string | { id: string } | null | undefined): string | null => (value == null ? null : typeof value === 'string' ? value : value.id);

function toProviderEvent(event: Stripe.Event): ProviderEvent {
  const base = { eventId: event.id, type: event.type };
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const session = event.data.object;
      const setupId = session.metadata?.[SETUP_METADATA_KEY];
      if (session.mode === 'setup' && setupId && session.metadata?.tollgate_customer_id) {
        return { ...base, kind: 'card_saved', setupId, customerId: session.metadata.tollgate_customer_id, setupIntentId: idOf(session.setup_intent), paymentMethodId: null };
      }
      const paymentId = session.metadata?.[PAYMENT_METADATA_KEY];
      if (!paymentId) return { ...base, kind: 'ignored', reason: 'not a Tollgate top-up' };
      if (session.payment_status !== 'paid') return { ...base, kind: 'ignored', reason: `payment_status ${session.payment_status}` };
      return { ...base, kind: 'payment_succeeded', paymentId, paymentIntentId: idOf(session.payment_intent), amountMinor: session.amount_total == null ? null : BigInt(session.amount_total), currency: session.currency?.toUpperCase() ?? null };
    }
    case 'payment_intent.succeeded': {
      const intent = event.data.object;
      const paymentId = intent.metadata?.[PAYMENT_METADATA_KEY];
      if (!paymentId) return { ...base, kind: 'ignored', reason: 'not a Tollgate top-up' };
      return { ...base, kind: 'payment_succeeded', paymentId, paymentIntentId: intent.id, amountMinor: BigInt(intent.amount_received), currency: intent.currency.toUpperCase(), paymentMethodId: idOf(intent.payment_method) };
    }
    case 'setup_intent.succeeded': {
      const intent = event.data.object;
      const setupId = intent.metadata?.[SETUP_METADATA_KEY];
      const customerId = intent.metadata?.tollgate_customer_id;
      if (!setupId || !customerId) return { ...base, kind: 'ignored', reason: 'not a Tollgate card setup' };
      return { ...base, kind: 'card_saved', setupId, customerId, setupIntentId: intent.id, paymentMethodId: idOf(intent.payment_method) };
    }
    case 'payment_intent.payment_failed': {
      const intent = event.data.object;
      const paymentId = intent.metadata?.[PAYMENT_METADATA_KEY];
      if (!paymentId) return { ...base, kind: 'ignored', reason: 'not a Tollgate payment' };
      const reason = intent.last_payment_error;
      return { ...base, kind: 'payment_failed', paymentId, paymentIntentId: intent.id, code: reason?.decline_code ?? reason?.code ?? 'payment_failed', message: reason?.message ?? 'The payment failed' };
    }
    case 'charge.dispute.created':
    case 'charge.dispute.updated':
    case 'charge.dispute.closed': {
      const dispute = event.data.object;
      const paymentIntentId = idOf(dispute.payment_intent);
      if (!paymentIntentId) return { ...base, kind: 'ignored', reason: 'a dispute without a payment intent' };
      return { ...base, kind: 'disputed', paymentIntentId, disputeId: dispute.id, amountMinor: BigInt(dispute.amount), status: dispute.status, closed: DISPUTE_CLOSED_STATUSES.has(dispute.status) };
    }
    case 'charge.refunded': {
      const charge = event.data.object;
      const paymentIntentId = idOf(charge.payment_intent);
      if (!paymentIntentId) return { ...base, kind: 'ignored', reason: 'a charge without a payment intent' };
      return { ...base, kind: 'refunded', paymentIntentId, amountRefundedMinor: BigInt(charge.amount_refunded) };
    }
    default:
      return { ...base, kind: 'ignored', reason: 'type not handled' };
  }
}
