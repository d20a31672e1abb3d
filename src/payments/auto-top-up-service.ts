import type { FastifyBaseLogger } from 'fastify';
import type { AccountsService } from '../accounts/accounts-service.js';
import type { CreditService } from '../ledger/credit-service.js';
import { Poller } from '../outbox/poller.js';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import { parseSettings, topUpDue } from './auto-top-up-rules.js';
import * as settingsStore from './auto-top-up-store.js';
import * as store from './payment-store.js';
import type { OffSessionCharge, PaymentsService } from './payments-service.js';
import type { AutoTopUpPut } from './schemas.js';
import { minorToLedger } from './top-up-rules.js';

const SWEEP_PAGE_MAX = 500;

/**
 * Auto top-up: when a customer's available balance falls below its threshold, one off-session
 * charge of the saved card buys `amount` of credit. Crossings are noticed after ledger commits
 * (notify) and by a periodic sweep. The database decides that a customer has at most one auto
 * top-up in flight (a row lock and a partial unique index), so any number of processes agree.
 */
export class AutoTopUpService {
  private readonly queued = new Set<string>();
  private draining: Promise<void> | null = null;
  private readonly poller: Poller;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
    private readonly credit: CreditService,
    private readonly payments: PaymentsService,
    private readonly log: FastifyBaseLogger,
    sweepIntervalMs: number,
  ) {
    this.poller = new Poller('auto top-up sweep', sweepIntervalMs, log, async () => {
      await this.sweep();
      return 0;
    });
  }

  async settings(customerId: string) {
    const customer = await this.accounts.getCustomer(customerId);
    const row = await settingsStore.getSettings(this.db, customerId);
    const saved = await this.payments.savedMethod(customerId);
    return {
      customer_id: customerId,
      enabled: row?.enabled ?? false,
      currency: customer.currency,
      threshold: row ? formatAmount(BigInt(row.threshold), customer.currency) : null,
      amount: row ? formatAmount(minorToLedger(BigInt(row.amount_minor), customer.currency), customer.currency) : null,
      payment_method: saved?.paymentMethodId ?? null,
      consecutive_failures: row?.consecutive_failures ?? 0,
      next_attempt_at: toIso(row?.next_attempt_at ?? null),
      disabled_reason: row?.disabled_reason ?? null,
      disabled_at: toIso(row?.disabled_at ?? null),
      updated_at: toIso(row?.updated_at ?? null),
    };
  }

  /**
   * Replaces the settings. Turning it on needs a saved card (409 payment_method_required) and
   * starts afresh: no failures counted, no wait. If the balance is already below the threshold,
   * a top-up starts right away.
   */
  async putSettings(customerId: string, input: AutoTopUpPut) {
    const customer = await this.accounts.getCustomer(customerId);
    const parsed = parseSettings(input, customer.currency);
    const now = this.clock.now();
    await this.db.transaction(async (tx) => {
      if (parsed.enabled && !(await this.payments.savedMethod(customerId, tx))) {
        throw new AppError('payment_method_required', 'Auto top-up needs a saved card: pay a Checkout top-up first (its card is saved for later charges)', [
          { path: 'enabled', message: 'needs a saved payment method' },
        ]);
      }
      const current = await settingsStore.lockSettings(tx, customerId);
      const keepFailures = current && !parsed.enabled;
      await settingsStore.putSettings(tx, {
        customer_id: customerId,
        enabled: parsed.enabled,
        threshold: parsed.threshold.toString(),
        amount_minor: parsed.amountMinor.toString(),
        consecutive_failures: keepFailures ? current.consecutive_failures : 0,
        next_attempt_at: keepFailures ? current.next_attempt_at : null,
        disabled_reason: keepFailures ? current.disabled_reason : null,
        disabled_at: keepFailures ? current.disabled_at : null,
        updated_at: now,
      });
    });
    if (parsed.enabled) this.notify([customerId]);
    return this.settings(customerId);
  }

  /** Which of a ledger batch's customers notify() needs to hear about: those with auto top-up on. */
  readonly watchedInBatch = settingsStore.enabledInBatch;

  /** The ledger's post-commit listener: customers whose balance changed are checked soon, off the request path. */
  notify(customerIds: string[]): void {
    for (const id of customerIds) this.queued.add(id);
    this.draining ??= this.drainQueue().finally(() => (this.draining = null));
  }

  /** Waits for the checks notify() started (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drainQueue(): Promise<void> {
    while (this.queued.size > 0) {
      const ids = [...this.queued].slice(0, SWEEP_PAGE_MAX);
      for (const id of ids) this.queued.delete(id);
      try {
        const enabled = await settingsStore.enabledAmong(this.db, ids);
        await Promise.all(enabled.map((id) => this.check(id)));
      } catch (err) {
        this.log.error({ err }, 'auto top-up check failed');
      }
    }
  }

  start(): void {
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    await this.settle();
  }

  /**
   * The safety net: calls the provider again for auto top-ups it never answered (down, or the
   * process died), then checks every customer with auto top-up on (retries after a decline are due here).
   */
  async sweep(): Promise<void> {
    for (const started of await this.payments.unansweredCharges('auto_top_up')) await this.charge(started);
    for (let after = ''; ; ) {
      const page = await settingsStore.enabledPage(this.db, after, SWEEP_PAGE_MAX);
      for (const id of page) await this.check(id);
      if (page.length < SWEEP_PAGE_MAX) return;
      after = page.at(-1)!;
    }
  }

  /** Starts a top-up if one is due and none is in flight, then charges the card. */
  private async check(customerId: string): Promise<void> {
    const started = await this.db.transaction((tx) => this.begin(tx, customerId));
    if (started) await this.charge(started);
  }

  /**
   * Decides under the customer's settings row lock, which the payment events that end a top-up
   * also take: the balance read here includes any top-up that has just been paid, and a top-up
   * still pending is seen, so a second one never starts beside it.
   */
  private async begin(tx: Queryable, customerId: string): Promise<OffSessionCharge | null> {
    const settings = await settingsStore.lockSettings(tx, customerId);
    if (!settings?.enabled) return null;
    const now = this.clock.now();
    const available = await this.credit.available(customerId, tx);
    const due = topUpDue({ enabled: settings.enabled, threshold: BigInt(settings.threshold), amountMinor: BigInt(settings.amount_minor), nextAttemptAt: settings.next_attempt_at }, available ?? 0n, now);
    if (!due || (await store.hasPendingAutoTopUp(tx, customerId))) return null;
    const saved = await this.payments.savedMethod(customerId, tx);
    if (!saved) return null;
    const customer = await this.accounts.getCustomer(customerId, tx);
    const payment = store.pendingPayment({ id: newId('pay', now.getTime()), customerId, kind: 'auto_top_up', provider: saved.provider.name, currency: customer.currency, amountMinor: BigInt(settings.amount_minor), now, attempted_at: now });
    if (!(await store.insertPayment(tx, payment))) return null;
    return { payment: (await store.lockPayment(tx, payment.id))!, ...saved };
  }

  private charge(started: OffSessionCharge): Promise<void> {
    const { payment } = started;
    return this.payments.chargeOffSession(started, `${payment.currency} ${formatAmount(BigInt(payment.amount), payment.currency)} auto top-up`);
  }
}
