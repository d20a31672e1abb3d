import type { FastifyBaseLogger } from 'fastify';
import type { AccountsService } from '../accounts/accounts-service.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Clock } from '../platform/clock.js';
import { isRetryableDbError, type Db, type Queryable } from '../platform/db.js';
import { AppError, unavailable } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { pagesPerParent, toPage, type Page } from '../platform/lists.js';
import { ManualProvider } from './manual-provider.js';
import * as store from './payment-store.js';
import { presentPayment } from './present.js';
import { ProviderUnavailableError, SignatureError, type PaymentProvider, type ProviderEvent } from './provider.js';
import { minorToLedger, parseTopUpAmount } from './top-up-rules.js';
import { autoTopUpFailed, autoTopUpSucceeded } from './auto-top-up-outcomes.js';
import { reconcileReversals } from './payment-reversals.js';
import { emit, event as outboxEvent, type NewEvent } from '../outbox/outbox.js';
import { formatAmount } from '../platform/money.js';
import { AUTO_TOP_UP_FAILURES_MAX, UNAVAILABLE_RETRY_MS } from './auto-top-up-rules.js';

/** What the payments module needs from billing to collect a postpaid invoice (wired in main.ts). */
export interface InvoicePayments {
  /**
   * Records the payment of what the invoice still owes, in the caller's transaction; returns the
   * ledger amount credited for it. Throws AppError `conflict` when the invoice is no longer
   * payable (paid meanwhile, void).
   */
  pay(tx: Queryable, invoiceId: string, payment: { provider: string; reference: string | null }): Promise<bigint>;
  /** A card payment of the invoice was declined (billing tells its listeners: invoice.payment_failed). */
  paymentFailed(tx: Queryable, invoiceId: string, reason: string): Promise<void>;
}

/** An off-session payment about to be charged to the customer's saved card. */
export interface OffSessionCharge {
  payment: store.PaymentRow;
  provider: PaymentProvider;
  providerCustomerId: string;
  paymentMethodId: string;
}

const PROVIDER_RETRY_AFTER_SECONDS = 5;
const UNANSWERED_PAGE_MAX = 500;
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
    /** What paying an invoice does (the billing module); null: invoice payments are not collected here. */
    private readonly invoices: InvoicePayments | null = null,
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
   * A Checkout page in setup mode where the customer saves a card without paying: a postpaid
   * customer's invoices are then charged to it (and auto top-up can use it). Nothing is stored
   * until the provider reports the setup completed; the setup id is the provider's idempotency key.
   */
  async createCardSetup(customerId: string) {
    const customer = await this.accounts.getCustomer(customerId);
    const provider = this.requireProvider();
    const now = this.clock.now();
    const setupId = newId('pms', now.getTime());
    const session = await this.external(async () => {
      const providerCustomerId = await this.providerCustomer(provider, customer);
      return provider.createCardSetup({ setupId, customerId, providerCustomerId });
    });
    return { id: setupId, customer_id: customerId, url: session.url, created_at: now.toISOString() };
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

  async list(filter: store.PaymentFilter, limit: number, cursor?: string) {
    if (filter.customerId) await this.accounts.getCustomer(filter.customerId);
    return toPage((await store.listPayments(this.db, filter, limit, cursor)).map(presentPayment), limit);
  }

  /** A page of payments of each of several customers, in one query (the GraphQL API's batched read): customer id -> page. */
  async listOf(customerIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<ReturnType<typeof presentPayment>>>> {
    return pagesPerParent(customerIds, await store.listPaymentsOf(this.db, customerIds, limit, cursor), (r) => r.customer_id, presentPayment, limit);
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
    // A completed setup names its setup intent only: the card is looked up first, outside any
    // transaction (Stripe unreachable: 503, and Stripe delivers the event again).
    if (event.kind === 'card_saved' && !event.paymentMethodId && event.setupIntentId) {
      const setupIntentId = event.setupIntentId;
      event = { ...event, paymentMethodId: await this.external(() => provider.paymentMethodOfSetup(setupIntentId)) };
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
      const intent = event.kind === 'ignored' ? null : event.kind === 'card_saved' ? event.setupId : event.paymentIntentId ?? ('paymentId' in event ? event.paymentId : null);
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
      case 'card_saved':
        if (!event.paymentMethodId) return 'setup without a card';
        await store.saveMethod(tx, event.customerId, provider, event.paymentMethodId, event.setupId);
        return 'card saved';
    }
  }

  /** A refund or dispute: applied to the payment if it is paid; otherwise kept and applied when it is. */
  private async reconcileIntent(tx: Queryable, provider: string, paymentIntentId: string, what: string, unchanged: string, now: Date): Promise<string> {
    const payment = await store.lockPaymentByIntent(tx, provider, paymentIntentId);
    if (!payment || payment.status === 'pending' || payment.status === 'failed') return `${what} recorded, payment not yet paid`;
    const done = await reconcileReversals(tx, this.ledger, payment, now);
    if (done.some((d) => d.startsWith('refund applied'))) await this.emitAbout(tx, payment.id, 'payment.refunded', now);
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

  /**
   * A paid payment: a top-up becomes one purchased grant; an invoice payment pays its invoice
   * (whatever it received beyond what the invoice still owed, e.g. the invoice was paid by other
   * means meanwhile, becomes purchased credit rather than being lost). Then whatever refunds or
   * dispute were reported before it.
   */
  private async grantPaid(tx: Queryable, payment: store.PaymentRow, now: Date): Promise<string> {
    const received = BigInt(payment.amount);
    const invoicePaid = payment.kind === 'invoice' ? await this.payInvoice(tx, payment) : null;
    const extra = received - (invoicePaid?.credited ?? 0n);
    const grantId = extra > 0n ? newId('grt', now.getTime()) : null;
    if (grantId) {
      const description = { top_up: `Top-up ${payment.id}`, auto_top_up: `Auto top-up ${payment.id}`, invoice: `Payment ${payment.id} beyond invoice ${payment.invoice_id}` }[payment.kind];
      const [result] = await this.ledger.applyInTransaction(tx, [
        { type: 'grant', grantId, customerId: payment.customer_id, category: 'purchased', priority: PURCHASED_PRIORITY, amount: extra, expiresAt: null, description },
      ]);
      if (!result!.ok) throw new Error(`payment grant refused: ${result!.code} ${result!.detail}`);
    }
    Object.assign(payment, { status: 'paid', grant_id: grantId, paid_at: now });
    if (payment.kind === 'auto_top_up') await autoTopUpSucceeded(tx, payment.customer_id);
    const done = await reconcileReversals(tx, this.ledger, payment, now);
    await this.emitAbout(tx, payment.id, 'payment.succeeded', now);
    if (done.some((d) => d.startsWith('refund applied'))) await this.emitAbout(tx, payment.id, 'payment.refunded', now);
    return [invoicePaid?.outcome ?? 'credit granted', ...done].join('; ');
  }

  private async emitAbout(tx: Queryable, paymentId: string, type: 'payment.succeeded' | 'payment.refunded', now: Date): Promise<void> {
    const payment = presentPayment((await store.getPayment(tx, paymentId))!);
    await emit(tx, [outboxEvent(type, payment.customer_id, payment)], now);
  }

  /** Pays the payment's invoice in this transaction; an invoice that is no longer payable pays nothing. */
  private async payInvoice(tx: Queryable, payment: store.PaymentRow): Promise<{ credited: bigint; outcome: string }> {
    if (!this.invoices || !payment.invoice_id) throw new Error(`invoice payment ${payment.id} without an invoice to pay`);
    try {
      const credited = await this.invoices.pay(tx, payment.invoice_id, { provider: payment.provider, reference: payment.payment_intent_id ?? payment.id });
      return { credited, outcome: credited < BigInt(payment.amount) ? 'invoice paid; the rest credited' : 'invoice paid' };
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'conflict') throw error;
      return { credited: 0n, outcome: 'invoice no longer payable: credited as purchased credit' };
    }
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
    const reason = `${event.code}: ${event.message}`;
    // An invoice's failed payment is retried by the collector on its schedule (it counts the failures).
    if (payment!.kind === 'invoice' && payment!.invoice_id) await this.invoices?.paymentFailed(tx, payment!.invoice_id, reason);
    if (payment!.kind !== 'auto_top_up') return 'payment failed';
    const { disabled } = await autoTopUpFailed(tx, { customerId: payment!.customer_id, paymentId: payment!.id, code: event.code, message: event.message }, now);
    const customerId = payment!.customer_id;
    const events: NewEvent[] = [outboxEvent('top_up.failed', customerId, { customer_id: customerId, payment_id: payment!.id, currency: payment!.currency, amount: formatAmount(BigInt(payment!.amount), payment!.currency), reason })];
    if (disabled) events.push(outboxEvent('auto_top_up.disabled', customerId, { customer_id: customerId, reason: `${AUTO_TOP_UP_FAILURES_MAX} declined payments in a row (last: ${reason})` }));
    await emit(tx, events, now);
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

  /**
   * Charges a saved card off-session, outside any transaction (the payment id is the provider's
   * idempotency key, so calling again never charges twice). Its answer goes through the same
   * exactly-once path as the provider's webhook, which may arrive first. The provider unreachable
   * is not a decline: the payment stays pending and the caller's sweep calls again.
   */
  async chargeOffSession({ payment, provider, providerCustomerId, paymentMethodId }: OffSessionCharge, description: string): Promise<void> {
    await store.markAttempted(this.db, payment.id, this.clock.now());
    let event: ProviderEvent | null;
    try {
      const result = await provider.chargeOffSession({
        paymentId: payment.id,
        providerCustomerId,
        paymentMethodId,
        amountMinor: BigInt(payment.amount_minor),
        currency: payment.currency,
        description,
        metadata: { tollgate_customer_id: payment.customer_id, ...(payment.invoice_id ? { tollgate_invoice_id: payment.invoice_id } : {}) },
      });
      if (result.status === 'pending') await store.setPaymentIntent(this.db, payment.id, result.paymentIntentId);
      event = offSessionEvent(payment.id, result);
    } catch (error) {
      if (!(error instanceof ProviderUnavailableError)) throw error;
      this.log.warn({ err: error, payment: payment.id, kind: payment.kind }, 'off-session charge: provider unavailable, will retry');
      return;
    }
    if (event) await this.applyEvent(provider.name, event);
    else this.log.info({ payment: payment.id, kind: payment.kind }, 'off-session charge pending at the provider: waiting for its webhook');
  }

  /**
   * Off-session charges of `kind` the provider never answered (it was down, or the process died
   * mid-call), due to be sent again with the same idempotency key.
   */
  async unansweredCharges(kind: store.PaymentKind): Promise<OffSessionCharge[]> {
    const stale = await store.staleOffSessionPayments(this.db, kind, new Date(this.clock.now().getTime() - UNAVAILABLE_RETRY_MS), UNANSWERED_PAGE_MAX);
    const charges: OffSessionCharge[] = [];
    for (const payment of stale) {
      const saved = await this.savedMethod(payment.customer_id);
      if (saved) charges.push({ payment, ...saved });
    }
    return charges;
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

/** The synchronous answer of an off-session charge as the event it stands for (null: wait for the webhook). */
function offSessionEvent(paymentId: string, result: Awaited<ReturnType<PaymentProvider['chargeOffSession']>>): ProviderEvent | null {
  const base = { eventId: `off_session:${paymentId}`, type: 'off_session.confirmed', paymentId };
  switch (result.status) {
    case 'succeeded':
      return { ...base, kind: 'payment_succeeded', paymentIntentId: result.paymentIntentId, amountMinor: result.amountMinor, currency: result.currency, paymentMethodId: result.paymentMethodId };
    case 'failed':
      return { ...base, kind: 'payment_failed', paymentIntentId: result.paymentIntentId, code: result.code, message: result.message };
    case 'pending':
      return null;
  }
}
