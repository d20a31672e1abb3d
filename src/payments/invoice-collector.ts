import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { newId } from '../platform/ids.js';
import { formatAmount } from '../platform/money.js';
import { Poller } from '../outbox/poller.js';
import { invoiceAttemptDue } from './invoice-collection-rules.js';
import * as store from './payment-store.js';
import type { OffSessionCharge, PaymentsService } from './payments-service.js';
import { ledgerToMinorCeil } from './top-up-rules.js';

const SWEEP_PAGE_MAX = 200;

/** A finalized invoice that still owes something (from the billing module). */
export interface CollectibleInvoice {
  id: string;
  customerId: string;
  currency: string;
  amountRemaining: bigint;
}

export interface CollectibleInvoices {
  /** In id order: after `after`, or just the one with `id` (none when it owes nothing or is not finalized). */
  collectible(q: { after?: string; id?: string; limit: number }): Promise<CollectibleInvoice[]>;
}

/**
 * Collects finalized postpaid invoices with the customer's saved card: one off-session charge of
 * what the invoice still owes, right after finalization and then on the retry schedule
 * (invoice-collection-rules.ts). The payment's success pays the invoice through the payments
 * module's exactly-once event path. One charge per invoice in flight, under a transaction lock,
 * whatever the number of processes.
 */
export class InvoiceCollector {
  private readonly poller: Poller;
  private running: Promise<void> | null = null;
  private readonly queued = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly invoices: CollectibleInvoices,
    private readonly payments: PaymentsService,
    private readonly log: FastifyBaseLogger,
    sweepIntervalMs: number,
  ) {
    this.poller = new Poller('invoice collection sweep', sweepIntervalMs, log, async () => {
      await this.sweep();
      return 0;
    });
  }

  /** An invoice was just finalized: try to collect it soon, off the request path. */
  notify(invoiceId: string): void {
    this.queued.add(invoiceId);
    this.drainQueued();
  }

  private drainQueued(): void {
    this.running ??= this.drain()
      .catch((err) => this.log.error({ err }, 'invoice collection failed'))
      .finally(() => {
        this.running = null;
        // Queued while the drain was finishing: run again rather than wait for the sweep.
        if (this.queued.size > 0) this.drainQueued();
      });
  }

  start(): void {
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    await this.settle();
  }

  /** Waits for the collections notify() started (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Every collectible invoice whose next attempt is due, and charges the provider never answered. */
  async sweep(): Promise<void> {
    for (const started of await this.payments.unansweredCharges('invoice')) await this.charge(started);
    for (let after = ''; ; ) {
      const page = await this.invoices.collectible({ after, limit: SWEEP_PAGE_MAX });
      for (const invoice of page) await this.collect(invoice);
      if (page.length < SWEEP_PAGE_MAX) return;
      after = page.at(-1)!.id;
    }
  }

  private async drain(): Promise<void> {
    while (this.queued.size > 0) {
      const ids = [...this.queued];
      this.queued.clear();
      for (const id of ids) for (const invoice of await this.invoices.collectible({ id, limit: 1 })) await this.collect(invoice);
    }
  }

  /** Starts a charge when one is due and none is in flight, then makes it. */
  private async collect(invoice: CollectibleInvoice): Promise<void> {
    const started = await this.db.transaction((tx) => this.begin(tx, invoice));
    if (started) await this.charge(started);
  }

  private async begin(tx: Queryable, invoice: CollectibleInvoice): Promise<OffSessionCharge | null> {
    const saved = await this.payments.savedMethod(invoice.customerId, tx);
    if (!saved) return null;
    await store.lockIntent(tx, saved.provider.name, `invoice:${invoice.id}`);
    const now = this.clock.now();
    if (!invoiceAttemptDue(await store.invoiceAttempts(tx, invoice.id), now)) return null;
    const payment = store.pendingPayment({
      id: newId('pay', now.getTime()),
      customerId: invoice.customerId,
      kind: 'invoice',
      provider: saved.provider.name,
      currency: invoice.currency,
      amountMinor: ledgerToMinorCeil(invoice.amountRemaining, invoice.currency),
      now,
      attempted_at: now,
      invoice_id: invoice.id,
    });
    await store.insertPayment(tx, payment);
    return { payment: (await store.lockPayment(tx, payment.id))!, ...saved };
  }

  private charge(started: OffSessionCharge): Promise<void> {
    const { payment } = started;
    return this.payments.chargeOffSession(started, `Invoice ${payment.invoice_id}: ${payment.currency} ${formatAmount(BigInt(payment.amount), payment.currency)}`);
  }
}
