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

const PROVIDER_RETRY_AFTER_SECONDS = 5;
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
    const row: store.NewPayment = {
      id: paymentId,
      customer_id: customerId,
      kind: 'top_up' as const,
      provider: provider.name,
      status: 'pending' as const,
      currency: customer.currency,
      amount: minorToLedger(amountMinor, customer.currency).toString(),
      amount_minor: amountMinor.toString(),
      checkout_session_id: checkout.sessionId,
      checkout_url: checkout.url,
      reference: null,
      created_at: now,
    };
    await store.insertPayment(this.db, row);
    return presentPayment({ ...row, payment_intent_id: null, grant_id: null, refunded: '0', refund_taken: '0', refund_uncollected: '0', paid_at: null });
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
    await store.insertPayment(tx, {
      id: paymentId,
      customer_id: customerId,
      kind: 'top_up',
      provider: this.manual.name,
      status: 'pending',
      currency: customer.currency,
      amount: minorToLedger(amountMinor, customer.currency).toString(),
      amount_minor: amountMinor.toString(),
      checkout_session_id: null,
      checkout_url: null,
      reference: input.reference,
      created_at: now,
    });
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
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.applyOnce(provider.name, event);
      } catch (error) {
        // A deadlock or serialization failure left nothing behind: run it again rather than make Stripe retry.
        if (!isRetryableDbError(error) || attempt >= WEBHOOK_ATTEMPTS_MAX) throw error;
        this.log.warn({ err: error, attempt, event: event.eventId }, 'payment event retried');
      }
    }
  }

  private applyOnce(providerName: string, event: ProviderEvent) {
    const provider = { name: providerName };
    return this.db.transaction(async (tx) => {
      const now = this.clock.now();
      const intent = event.kind === 'ignored' ? null : event.paymentIntentId ?? (event.kind === 'payment_succeeded' ? event.paymentId : null);
      if (intent) await store.lockIntent(tx, provider.name, intent);
      if (!(await store.recordEvent(tx, provider.name, event.eventId, event.type, now))) return { received: true as const, duplicate: true, outcome: 'duplicate' };
      const outcome = await this.apply(tx, provider.name, event, now);
      await store.setEventOutcome(tx, provider.name, event.eventId, outcome);
      if (outcome.startsWith('mismatch')) this.log.error({ event: event.eventId, outcome }, 'payment event does not match its top-up');
      return { received: true as const, duplicate: false, outcome };
    });
  }

  private async apply(tx: Queryable, provider: string, event: ProviderEvent, now: Date): Promise<string> {
    if (event.kind === 'ignored') return `ignored: ${event.reason}`;
    if (event.kind === 'refunded') {
      await store.recordRefundTotal(tx, provider, event.paymentIntentId, event.amountRefundedMinor, now);
      const payment = await store.lockPaymentByIntent(tx, provider, event.paymentIntentId);
      // Not paid yet as far as Tollgate knows: the total waits and is applied with the payment.
      if (!payment || payment.status === 'pending') return 'refund recorded, payment not yet paid';
      return this.applyRefunds(tx, payment);
    }
    const payment = await store.lockPayment(tx, event.paymentId);
    if (!payment || payment.provider !== provider) return 'no such top-up';
    if (event.paymentIntentId && payment.payment_intent_id && payment.payment_intent_id !== event.paymentIntentId) return 'mismatch: another payment intent';
    if ((event.amountMinor !== null && event.amountMinor !== BigInt(payment.amount_minor)) || (event.currency !== null && event.currency !== payment.currency)) {
      return 'mismatch: amount or currency';
    }
    payment.payment_intent_id ??= event.paymentIntentId;
    if (payment.status !== 'pending') {
      await store.updatePayment(tx, payment);
      return 'already paid';
    }
    const grantId = newId('grt', now.getTime());
    const [result] = await this.ledger.applyInTransaction(tx, [
      { type: 'grant', grantId, customerId: payment.customer_id, category: 'purchased', priority: 100, amount: BigInt(payment.amount), expiresAt: null, description: `Top-up ${payment.id}` },
    ]);
    if (!result!.ok) throw new Error(`top-up grant refused: ${result!.code} ${result!.detail}`);
    Object.assign(payment, { status: 'paid', grant_id: grantId, paid_at: now });
    const outcome = await this.applyRefunds(tx, payment);
    return outcome === 'no refund' ? 'credit granted' : `credit granted; ${outcome}`;
  }

  /** Brings a paid payment up to the refund total the provider reported, with one clawback for the difference. */
  private async applyRefunds(tx: Queryable, payment: store.PaymentRow): Promise<string> {
    const totalMinor = payment.payment_intent_id ? await store.refundTotal(tx, payment.provider, payment.payment_intent_id) : 0n;
    const target = minorToLedger(totalMinor, payment.currency);
    const cap = BigInt(payment.amount);
    const due = (target < cap ? target : cap) - BigInt(payment.refunded);
    if (due <= 0n) {
      await store.updatePayment(tx, payment);
      return 'no refund';
    }
    const [result] = await this.ledger.applyInTransaction(tx, [{ type: 'clawback', customerId: payment.customer_id, grantId: payment.grant_id, amount: due, reason: 'refund' }]);
    if (!result!.ok || result!.value.type !== 'clawback') throw new Error(`refund clawback refused: ${JSON.stringify(result)}`);
    const { taken, uncollected } = result!.value;
    payment.refunded = (BigInt(payment.refunded) + due).toString();
    payment.refund_taken = (BigInt(payment.refund_taken) + taken).toString();
    payment.refund_uncollected = (BigInt(payment.refund_uncollected) + uncollected).toString();
    payment.status = BigInt(payment.refunded) >= cap ? 'refunded' : 'partially_refunded';
    await store.updatePayment(tx, payment);
    return uncollected > 0n ? 'refund applied, part already spent' : 'refund applied';
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

