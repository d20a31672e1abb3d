import type { FastifyBaseLogger } from 'fastify';
import type { AccountsService } from '../accounts/accounts-service.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Clock } from '../platform/clock.js';
import { isRetryableDbError, type Db, type Queryable } from '../platform/db.js';
import { AppError, unavailable } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { toPage } from '../platform/lists.js';
import { ManualProvider } from './manual-provider.js';
import * as store from './payment-store.js';
import { presentPayment } from './present.js';
import { ProviderUnavailableError, SignatureError, type PaymentProvider, type ProviderEvent } from './provider.js';
import { minorToLedger, parseTopUpAmount } from './top-up-rules.js';
import { autoTopUpFailed, autoTopUpSucceeded } from './auto-top-up-outcomes.js';
import { reconcileReversals } from './payment-reversals.js';

const PROVIDER_RETRY_AFTER_SECONDS = 5;
const PURCHASED_PRIORITY = 100;
const WEBHOOK_ATTEMPTS_MAX = 4;

/** Prepaid top-ups through a payment provider, and what the provider reports back. */
export class PaymentsService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
    private readonly ledger: LedgerService,
    private readonly log: FastifyBaseLogger,
    /** Null: no provider configured (no STRIPE_SECRET_KEY). */
    private readonly provider: PaymentProvider | null,
    private readonly webhooksEnabled: boolean,
    private readonly manual = new ManualProvider(),
  ) {}

  /**
   * Creates a checkout for `amount` and a pending payment. The provider calls are external
   * effects, so they run outside any transaction: the provider customer is created with a key of
   * its own, the checkout with the payment id as the provider's idempotency key.
   */
  async createTopUp(customerId: string, amountText: string) {
    const customer = await this.accounts.getCustomer(customerId);
    const amountMinor = parseTopUpAmount(amountText, customer.currency);
    const provider = this.requireProvider();
    const now = this.clock.now();
    const paymentId = newId('pay', now.getTime());
    const checkout = await this.external(async () => {
      const providerCustomerId = await this.providerCustomer(provider, customer);
      return provider.createCheckout({ paymentId, customerId, providerCustomerId, currency: customer.currency, amountMinor, description: `${customer.currency} ${amountText} credit top-up` });
    });
    const row = store.pendingPayment({ id: paymentId, customerId, kind: 'top_up', provider: provider.name, currency: customer.currency, amountMinor, now, checkout_session_id: checkout.sessionId, checkout_url: checkout.url });
    await store.insertPayment(this.db, row);
    return presentPayment((await store.getPayment(this.db, paymentId))!);
  }

  /**
   * The operator records money received outside Tollgate (manual provider): the payment and its
   * purchased credit commit in the caller's transaction (with the idempotent reply).
   */
  async recordManual(tx: Queryable, customerId: string, input: { amount: string; reference: string }) {
    const customer = await this.accounts.getCustomer(customerId, tx);
    const amountMinor = parseTopUpAmount(input.amount, customer.currency);
    const now = this.clock.now();
    const paymentId = newId('pay', now.getTime());
    await store.insertPayment(tx, store.pendingPayment({ id: paymentId, customerId, kind: 'top_up', provider: this.manual.name, currency: customer.currency, amountMinor, now, reference: input.reference }));
    const event = this.manual.confirm({ id: paymentId, amountMinor, currency: customer.currency });
    await store.recordEvent(tx, this.manual.name, event.eventId, event.type, now);
    const outcome = await this.apply(tx, this.manual.name, event, now);
    if (outcome !== 'credit granted') throw new Error(`manual payment ${paymentId}: ${outcome}`);
    await store.setEventOutcome(tx, this.manual.name, event.eventId, outcome);
    return presentPayment((await store.lockPayment(tx, paymentId))!);
  }

  async list(filter: { customerId?: string }, limit: number, cursor?: string) {
    if (filter.customerId) await this.accounts.getCustomer(filter.customerId);
    return toPage((await store.listPayments(this.db, filter, limit, cursor)).map(presentPayment), limit);
  }

  /** Verifies a webhook and applies its event exactly once: the event record and its effect commit together. */
  async handleWebhook(rawBody: Buffer, signature: string | undefined): Promise<{ received: true; duplicate: boolean; outcome: string }> {
    const provider = this.requireProvider();
    if (!this.webhooksEnabled) throw new AppError('payments_not_configured', 'Webhooks need STRIPE_WEBHOOK_SECRET');
    let event: ProviderEvent;
    try {
      event = provider.verifyWebhook(rawBody, signature, this.clock.now());
    } catch (error) {
      if (error instanceof SignatureError) throw new AppError('invalid_signature', error.message);
      throw error;
    }
    const reply = await this.applyEvent(provider.name, event);
    if (event.kind === 'payment_succeeded' && event.paymentMethodId === undefined && event.paymentIntentId) await this.saveMethodOf(provider, event.paymentId, event.paymentIntentId);
    return reply;
  }

  /**
   * Applies a provider event exactly once (its id is recorded with its effect): a webhook's, or
   * one Tollgate learnt itself (an off-session charge's synchronous answer).
   */
  async applyEvent(providerName: string, event: ProviderEvent): Promise<{ received: true; duplicate: boolean; outcome: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.applyOnce(providerName, event);
      } catch (error) {
        // A deadlock or serialization failure left nothing behind: run it again rather than make Stripe retry.
        if (!isRetryableDbError(error) || attempt >= WEBHOOK_ATTEMPTS_MAX) throw error;
        this.log.warn({ err: error, attempt, event: event.eventId }, 'payment event retried');
      }
    }
  }

  private applyOnce(providerName: string, event: ProviderEvent) {
    const provider = { name: providerName };
    return this.ledger.transaction(async (tx) => {
      const now = this.clock.now();
      const intent = event.kind === 'ignored' ? null : event.paymentIntentId ?? ('paymentId' in event ? event.paymentId : null);
      if (intent) await store.lockIntent(tx, provider.name, intent);
      if (!(await store.recordEvent(tx, provider.name, event.eventId, event.type, now))) return { received: true as const, duplicate: true, outcome: 'duplicate' };
      const outcome = await this.apply(tx, provider.name, event, now);
      await store.setEventOutcome(tx, provider.name, event.eventId, outcome);
      if (outcome.startsWith('mismatch')) this.log.error({ event: event.eventId, outcome }, 'payment event does not match its payment');
      return { received: true as const, duplicate: false, outcome };
    });
  }

  private async apply(tx: Queryable, provider: string, event: ProviderEvent, now: Date): Promise<string> {
    switch (event.kind) {
      case 'ignored':
        return `ignored: ${event.reason}`;
      case 'refunded':
        await store.recordRefundTotal(tx, provider, event.paymentIntentId, event.amountRefundedMinor, now);
        return this.reconcileIntent(tx, provider, event.paymentIntentId, 'refund', 'no refund', now);
      case 'disputed':
        await store.recordDispute(tx, provider, event, now);
        return this.reconcileIntent(tx, provider, event.paymentIntentId, 'dispute', `dispute ${event.status}: no change`, now);
      case 'payment_failed':
        return this.fail(tx, provider, event, now);
      case 'payment_succeeded':
        return this.succeed(tx, provider, event, now);
    }
  }

  /** A refund or dispute: applied to the payment if it is paid; otherwise kept and applied when it is. */
  private async reconcileIntent(tx: Queryable, provider: string, paymentIntentId: string, what: string, unchanged: string, now: Date): Promise<string> {
    const payment = await store.lockPaymentByIntent(tx, provider, paymentIntentId);
    if (!payment || payment.status === 'pending' || payment.status === 'failed') return `${what} recorded, payment not yet paid`;
    const done = await reconcileReversals(tx, this.ledger, payment, now);
    return done.length > 0 ? done.join('; ') : unchanged;
  }

  private async succeed(tx: Queryable, provider: string, event: Extract<ProviderEvent, { kind: 'payment_succeeded' }>, now: Date): Promise<string> {
    const payment = await store.lockPayment(tx, event.paymentId);
    const mismatch = payment ? mismatchOf(payment, provider, event) : 'no such payment';
    if (mismatch) return mismatch;
    payment!.payment_intent_id ??= event.paymentIntentId;
    if (event.paymentMethodId && payment!.kind === 'top_up') await store.saveMethod(tx, payment!.customer_id, provider, event.paymentMethodId, payment!.id);
    // A failed payment that the provider reports paid after all has the money: it is credited too.
    if (payment!.status !== 'pending' && payment!.status !== 'failed') {
      await store.updatePayment(tx, payment!);
      return 'already paid';
    }
    return this.grantPaid(tx, payment!, now);
  }

  /** One purchased grant for a paid payment, then whatever refunds or dispute were reported before it. */
  private async grantPaid(tx: Queryable, payment: store.PaymentRow, now: Date): Promise<string> {
    const grantId = newId('grt', now.getTime());
    const description = payment.kind === 'auto_top_up' ? `Auto top-up ${payment.id}` : `Top-up ${payment.id}`;
    const [result] = await this.ledger.applyInTransaction(tx, [
      { type: 'grant', grantId, customerId: payment.customer_id, category: 'purchased', priority: PURCHASED_PRIORITY, amount: BigInt(payment.amount), expiresAt: null, description },
    ]);
    if (!result!.ok) throw new Error(`top-up grant refused: ${result!.code} ${result!.detail}`);
    Object.assign(payment, { status: 'paid', grant_id: grantId, paid_at: now });
    if (payment.kind === 'auto_top_up') await autoTopUpSucceeded(tx, payment.customer_id);
    const done = await reconcileReversals(tx, this.ledger, payment, now);
    return ['credit granted', ...done].join('; ');
  }

  /** A declined payment, recorded once; an auto top-up's failure counts toward turning it off. */
  private async fail(tx: Queryable, provider: string, event: Extract<ProviderEvent, { kind: 'payment_failed' }>, now: Date): Promise<string> {
    const payment = await store.lockPayment(tx, event.paymentId);
    const mismatch = payment ? mismatchOf(payment, provider, event) : 'no such payment';
    if (mismatch) return mismatch;
    payment!.payment_intent_id ??= event.paymentIntentId;
    if (payment!.status !== 'pending') {
      await store.updatePayment(tx, payment!);
      return `already ${payment!.status}`;
    }
    Object.assign(payment!, { status: 'failed', failure_code: event.code, failure_message: event.message, failed_at: now });
    await store.updatePayment(tx, payment!);
    if (payment!.kind !== 'auto_top_up') return 'payment failed';
    const { disabled } = await autoTopUpFailed(tx, { customerId: payment!.customer_id, paymentId: payment!.id, code: event.code, message: event.message }, now);
    return disabled ? 'payment failed; auto top-up disabled' : 'payment failed';
  }

  /**
   * checkout.session.completed does not name the card; the customer's first card payment is
   * looked up at the provider (outside any transaction) so auto top-up can use it. A failure here
   * is only logged: payment_intent.succeeded names the card too.
   */
  private async saveMethodOf(provider: PaymentProvider, paymentId: string, paymentIntentId: string): Promise<void> {
    try {
      const payment = await store.getPayment(this.db, paymentId);
      if (payment?.kind !== 'top_up' || payment.status === 'pending') return;
      if ((await store.savedMethodOf(this.db, payment.customer_id, provider.name))?.paymentMethodId) return;
      const method = await provider.paymentMethodOf(paymentIntentId);
      if (method) await store.saveMethod(this.db, payment.customer_id, provider.name, method, payment.id);
    } catch (err) {
      this.log.warn({ err, paymentIntentId }, 'could not look up the payment method of a paid top-up');
    }
  }

  /** The provider and its saved card for a customer's off-session charges (null: none saved). */
  async savedMethod(customerId: string, db: Queryable = this.db): Promise<{ provider: PaymentProvider; providerCustomerId: string; paymentMethodId: string } | null> {
    if (!this.provider) return null;
    const saved = await store.savedMethodOf(db, customerId, this.provider.name);
    return saved?.paymentMethodId ? { provider: this.provider, providerCustomerId: saved.providerCustomerId, paymentMethodId: saved.paymentMethodId } : null;
  }

  private async providerCustomer(provider: PaymentProvider, customer: { id: string; name: string | null; email: string | null }): Promise<string> {
    const linked = await store.findProviderCustomer(this.db, customer.id, provider.name);
    if (linked) return linked;
    const created = await provider.createCustomer({ customerId: customer.id, name: customer.name, email: customer.email });
    await store.linkProviderCustomer(this.db, customer.id, provider.name, created.providerCustomerId, this.clock.now());
    return (await store.findProviderCustomer(this.db, customer.id, provider.name))!;
  }

  private requireProvider(): PaymentProvider {
    if (!this.provider) throw new AppError('payments_not_configured', 'Card payments are not configured on this Tollgate (set STRIPE_SECRET_KEY)');
    return this.provider;
  }

  private async external<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ProviderUnavailableError) throw unavailable(error.message, PROVIDER_RETRY_AFTER_SECONDS);
      throw error;
    }
  }
}


/** Why an event cannot be this payment's, or null when it can. */
function mismatchOf(payment: store.PaymentRow, provider: string, event: { paymentIntentId: string | null; amountMinor?: bigint | null; currency?: string | null }): string | null {
  if (payment.provider !== provider) return 'no such payment';
  if (event.paymentIntentId && payment.payment_intent_id && payment.payment_intent_id !== event.paymentIntentId) return 'mismatch: another payment intent';
  const amountDiffers = event.amountMinor != null && event.amountMinor !== BigInt(payment.amount_minor);
  if (amountDiffers || (event.currency != null && event.currency !== payment.currency)) return 'mismatch: amount or currency';
  return null;
}
