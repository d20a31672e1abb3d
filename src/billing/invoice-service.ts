import type { PeriodPricing } from '../catalog/catalog-service.js';
import type { LedgerOp, LedgerOpResult } from '../ledger/batch-rules.js';
import type { PeriodUsageRow } from '../metering/period-usage.js';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { formatDecimal, parseDecimal } from '../platform/decimal.js';
import { AppError, assertInvariant, notFound } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { pagesPerParent, toPage, type Page } from '../platform/lists.js';
import { formatAmount, parseAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import {
  allowedFrom,
  amountDue,
  billableQuantity,
  computeInvoice,
  CREDIT_NOTE_FROM,
  creditPostings,
  FAR_FUTURE,
  finalizationPostings,
  minorUnit,
  periodBounds,
  taxShare,
  type InvoiceStatus,
  type LateUsageInput,
  type LineInput,
} from './invoice-rules.js';
import { renderInvoicePdf } from './invoice-pdf.js';
import { emit, event, type NewEvent } from '../outbox/outbox.js';
import { presentCreditNote, presentInvoice } from './invoice-present.js';
import * as store from './invoice-store.js';
import type { BillingSettingsPut, CreditNote, CreditNoteCreate, Invoice } from './schemas.js';

/** What billing needs from the other modules (wired in main.ts, each through its service). */
export interface BillingDeps {
  /** The customer's currency and billing mode; throws not_found for an unknown customer. */
  customer(id: string): Promise<{ id: string; name: string; email: string | null; currency: string; billing_mode: 'prepaid' | 'postpaid'; created_at: string }>;
  /** Every postpaid customer's id, in id order. */
  postpaidCustomerIds(): Promise<string[]>;
  /** Product keys, meter aggregations and the prices in force at `at`, as a lookup without I/O (the catalog). */
  periodPricing(q: { currency: string; customerId: string; at: Date }): Promise<PeriodPricing>;
  /** The customer's usage in [from, to) per product and meter (the metering module), read through `db` (a transaction). */
  periodUsage(customerId: string, from: Date, to: Date, db?: Queryable): Promise<PeriodUsageRow[]>;
  /** Locks the customer's ledger account in `tx` and reads its posted balance (the ledger). */
  lockAccount(tx: Queryable, customerId: string): Promise<{ posted: bigint }>;
  /** Applies ledger operations in `tx` (LedgerService.applyInTransaction). */
  post(tx: Queryable, ops: LedgerOp[]): Promise<LedgerOpResult[]>;
}

export interface BillingSettingsView {
  customer_id: string;
  tax_rate: string;
  anchor_day: number;
  updated_at: string | null;
}

export class InvoiceService {
  private readonly finalizedListeners: Array<(invoiceId: string) => void> = [];
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly deps: BillingDeps,
  ) {}

  /** Every postpaid customer's id (whom a billing run invoices). */
  postpaidCustomerIds(): Promise<string[]> {
    return this.deps.postpaidCustomerIds();
  }

  /**
   * Whether a billing run invoices this customer's period now: `open` until the period (by the
   * customer's anchor day) has ended; `before_customer` when it ended before the customer existed
   * and holds no (back-dated) usage: no empty invoices for months before a customer signed up.
   */
  async periodState(customerId: string, period: string): Promise<'billable' | 'open' | 'before_customer'> {
    const customer = await this.deps.customer(customerId);
    const { from, to } = periodBounds(period, (await this.settings(customerId)).anchor_day);
    if (to > this.clock.now()) return 'open';
    if (to > new Date(customer.created_at)) return 'billable';
    return (await this.deps.periodUsage(customerId, from, to)).length === 0 ? 'before_customer' : 'billable';
  }

  async settings(customerId: string, db: Queryable = this.db): Promise<BillingSettingsView> {
    await this.deps.customer(customerId);
    const row = await store.getSettings(db, customerId);
    return { customer_id: customerId, tax_rate: row?.tax_rate ?? '0', anchor_day: row?.anchor_day ?? 1, updated_at: toIso(row ? new Date(row.updated_at) : null) };
  }

  /**
   * Replaces the settings; an omitted field takes its default. They apply to invoices drafted from
   * now on. The anchor day cannot change once the customer has an invoice: periods would overlap
   * or leave a gap (409 conflict).
   */
  async putSettings(customerId: string, input: BillingSettingsPut): Promise<BillingSettingsView> {
    const current = await this.settings(customerId);
    const taxRate = formatDecimal(parseDecimal(input.tax_rate ?? '0', { maxScale: 4 }));
    const anchorDay = input.anchor_day ?? 1;
    await this.db.transaction(async (tx) => {
      if (anchorDay !== current.anchor_day && (await store.hasInvoices(tx, customerId))) {
        throw new AppError('conflict', `The customer already has invoices for periods starting on day ${current.anchor_day}; the anchor day cannot change`, [{ path: 'anchor_day', message: `must stay ${current.anchor_day}` }]);
      }
      await store.putSettings(tx, { customer_id: customerId, tax_rate: taxRate, anchor_day: anchorDay, updated_at: this.clock.now() });
    });
    return this.settings(customerId);
  }

  /**
   * The customer's draft invoice for a period that has ended: load usage and prices, compute with
   * the pure rules, write invoice and lines in one transaction. Idempotent: a customer's period is
   * invoiced at most once (unique (customer, period)); `created` says whether this call did it.
   * A draft is a preview: finalization computes it again from the usage as it is then.
   */
  async draft(customerId: string, period: string): Promise<{ created: boolean; invoice: Invoice }> {
    const existing = await store.invoiceFor(this.db, customerId, period);
    if (existing) return { created: false, invoice: await this.present(existing) };
    const customer = await this.deps.customer(customerId);
    const settings = await this.settings(customerId);
    const { from, to } = periodBounds(period, settings.anchor_day);
    const now = this.clock.now();
    if (to > now) throw new AppError('invalid_request', `The period ${period} ends at ${to.toISOString()}; it can be invoiced after that`);

    const id = newId('inv', now.getTime());
    const pricing = await this.deps.periodPricing({ currency: customer.currency, customerId, at: new Date(to.getTime() - 1) });
    const { amounts, lines } = await this.compute(this.db, { id, customer_id: customerId, currency: customer.currency, tax_rate: settings.tax_rate, period_start: from, period_end: to }, pricing);
    const row = { id, customer_id: customerId, currency: customer.currency, period, period_start: from, period_end: to, status: 'draft' as const, number: null, tax_rate: settings.tax_rate, ...amounts, created_at: now };
    const created = await this.db.transaction((tx) => store.insertDraft(tx, row, lines));
    const stored = created ? await store.getInvoice(this.db, id) : await store.invoiceFor(this.db, customerId, period);
    return { created, invoice: await this.present(stored!) };
  }

  /**
   * The invoice's lines and amounts from the usage as `db` sees it now: one line per product and
   * meter used in the period, priced at the period's end, then late usage of earlier periods.
   */
  private async compute(
    db: Queryable,
    inv: Pick<store.InvoiceRow, 'id' | 'customer_id' | 'currency' | 'tax_rate' | 'period_start' | 'period_end'>,
    pricing: PeriodPricing,
  ): Promise<{ amounts: store.InvoiceAmounts; lines: store.InvoiceLineRow[] }> {
    const [from, to] = [new Date(inv.period_start), new Date(inv.period_end)];
    const usage = (await this.deps.periodUsage(inv.customer_id, from, to, db)).filter((u) => u.currency === inv.currency);
    const lines = usage.map((u): LineInput => {
      const { productKey, aggregation, price } = pricing(u.productId, u.meterKey);
      return { productId: u.productId, productKey, meterKey: u.meterKey, quantity: billableQuantity(aggregation, u), price, accrued: u.charged };
    });
    const late: LateUsageInput[] = [];
    for (const earlier of await store.billedPeriods(db, inv.customer_id, from)) {
      const charged = await this.charged(db, inv.customer_id, new Date(earlier.period_start), new Date(earlier.period_end));
      late.push({ invoiceId: earlier.id, period: earlier.period, charged, billed: BigInt(earlier.billed) });
    }
    const c = computeInvoice({ currency: inv.currency, taxRate: parseDecimal(inv.tax_rate, { maxScale: 4 }), lines, late });
    return {
      amounts: { subtotal: String(c.subtotal), tax: String(c.tax), total: String(c.total), accrued: String(c.accrued), adjustment: String(c.adjustment) },
      lines: c.lines.map((l, position): store.InvoiceLineRow => ({
        invoice_id: inv.id, position, product_id: l.productId, product_key: l.productKey, meter_key: l.meterKey, quantity: l.quantity && formatDecimal(l.quantity),
        price_id: l.priceId, scheme: l.scheme, amount: String(l.amount), accrued: String(l.accrued), late_invoice_id: l.late?.invoiceId ?? null, late_period: l.late?.period ?? null,
      })),
    };
  }

  /** What the ledger charged for the customer's usage in [from, to), by now. */
  private async charged(db: Queryable, customerId: string, from: Date, to: Date): Promise<bigint> {
    return (await this.deps.periodUsage(customerId, from, to, db)).reduce((sum, u) => sum + u.charged, 0n);
  }

  /** Reads, before finalization's transaction, the catalog the invoice is rated with (no I/O inside it). */
  async pricingFor(id: string): Promise<PeriodPricing> {
    const row = await store.getInvoice(this.db, id);
    if (!row) throw notFound('invoice', id);
    return this.deps.periodPricing({ currency: row.currency, customerId: row.customer_id, at: new Date(new Date(row.period_end).getTime() - 1) });
  }

  /**
   * Finalizes a draft in the caller's transaction: recomputes its lines from the usage as it is
   * now (the customer's account locked first, so no charge commits in between), posts the
   * adjustment and the tax to the ledger, applies the customer's credits (amountDue) and takes the
   * next number. Nothing due: it is paid at once.
   */
  async finalize(tx: Queryable, id: string, pricing: PeriodPricing): Promise<Invoice> {
    const row = await this.lockFor(tx, id, allowedFrom('finalize'), 'finalize');
    await this.deps.lockAccount(tx, row.customer_id);
    const { amounts, lines } = await this.compute(tx, row, pricing);
    const now = this.clock.now();
    const ops = finalizationPostings({ id, customerId: row.customer_id, adjustment: BigInt(amounts.adjustment), tax: BigInt(amounts.tax) }, newId('grt', now.getTime()));
    await this.post(tx, ops);
    const { posted } = await this.deps.lockAccount(tx, row.customer_id);
    const due = amountDue({
      posted,
      open: await store.openRemaining(tx, row.customer_id, id),
      after: await this.charged(tx, row.customer_id, new Date(row.period_end), FAR_FUTURE),
      total: BigInt(amounts.total),
      currency: row.currency,
    });
    await store.finalizeDraft(tx, id, { amounts, lines, amountDue: due, number: await store.takeInvoiceNumber(tx), at: now });
    const invoice = await this.present((await store.getInvoice(tx, id))!, tx);
    const events: NewEvent[] = [event('invoice.finalized', invoice.customer_id, invoice)];
    if (invoice.status === 'paid') events.push(event('invoice.paid', invoice.customer_id, invoice));
    await emit(tx, events, now);
    return invoice;
  }

  /**
   * Records a payment of what the invoice still owes, in the caller's transaction: the ledger
   * credits the customer `amount_remaining` from the operator's `payments` account (paying its
   * debt first; anything beyond the debt stays as spendable credit) and the invoice becomes
   * `paid`. For the manual provider (POST .../mark_paid) and, later, Stripe's invoice payments.
   * 409 conflict unless the invoice is finalized or uncollectible.
   */
  async payInTransaction(tx: Queryable, invoiceId: string, payment: { provider: string; reference: string | null }): Promise<Invoice> {
    await this.recordPayment(tx, invoiceId, payment);
    return this.present((await store.getInvoice(tx, invoiceId))!, tx);
  }

  /** payInTransaction() for the payments module: returns the ledger units credited (what the invoice still owed). */
  async recordPayment(tx: Queryable, invoiceId: string, payment: { provider: string; reference: string | null }): Promise<bigint> {
    const row = await this.lockFor(tx, invoiceId, allowedFrom('mark_paid'), 'mark_paid');
    const remaining = BigInt(row.amount_remaining);
    await this.deps.lockAccount(tx, row.customer_id);
    await this.post(tx, [{ type: 'credit', customerId: row.customer_id, invoiceId, source: 'payments', amount: remaining, reason: 'invoice_payment', grantId: newId('grt') }]);
    await store.settleAmounts(tx, invoiceId, { paid: remaining, credited: 0n, remaining: 0n, status: 'paid', at: this.clock.now(), ...payment });
    await this.emitAbout(tx, invoiceId, (invoice) => event('invoice.paid', invoice.customer_id, invoice));
    return remaining;
  }

  /** A card payment of the invoice was declined (the payments module, in its transaction): invoice.payment_failed. */
  async paymentFailed(tx: Queryable, invoiceId: string, reason: string): Promise<void> {
    await this.emitAbout(tx, invoiceId, (invoice) => event('invoice.payment_failed', invoice.customer_id, { invoice, reason }));
  }

  private async emitAbout(tx: Queryable, invoiceId: string, make: (invoice: Invoice) => NewEvent): Promise<void> {
    const invoice = await this.present((await store.getInvoice(tx, invoiceId))!, tx);
    await emit(tx, [make(invoice)], this.clock.now());
  }

  /** Finalized invoices that still owe something, in id order (after `after`, or the one `id`): what card collection charges. */
  async collectible(q: { after?: string; id?: string; limit: number }): Promise<Array<{ id: string; customerId: string; currency: string; amountRemaining: bigint }>> {
    return (await store.collectibleInvoices(this.db, q)).map((r) => ({ id: r.id, customerId: r.customer_id, currency: r.currency, amountRemaining: BigInt(r.amount_remaining) }));
  }

  /** Called once a finalization has committed (the finalize route): listeners start collecting it. */
  announceFinalized(invoiceId: string): void {
    for (const listener of this.finalizedListeners) listener(invoiceId);
  }

  onFinalized(listener: (invoiceId: string) => void): void {
    this.finalizedListeners.push(listener);
  }

  /**
   * Voids a finalized or uncollectible invoice: what it still owes is forgiven, credited back to
   * the customer (the tax part from the tax account, the rest from revenue). Credits already
   * applied to it are not given back.
   */
  async void(tx: Queryable, id: string): Promise<Invoice> {
    const row = await this.lockFor(tx, id, allowedFrom('void'), 'void');
    const remaining = BigInt(row.amount_remaining);
    const total = BigInt(row.total);
    const tax = taxShare(remaining, total - remaining, { total, tax: BigInt(row.tax) }, row.currency);
    await this.deps.lockAccount(tx, row.customer_id);
    await this.post(tx, creditPostings({ id, customerId: row.customer_id }, { amount: remaining, tax }, 'invoice_void', [newId('grt'), newId('grt')]));
    await store.settleAmounts(tx, id, { paid: 0n, credited: 0n, remaining: 0n, status: 'void', at: this.clock.now() });
    return this.present((await store.getInvoice(tx, id))!, tx);
  }

  /** Writes an invoice off: no ledger effect, the debt stays on the customer's account (which blocks spending). */
  async markUncollectible(tx: Queryable, id: string): Promise<Invoice> {
    await this.lockFor(tx, id, allowedFrom('mark_uncollectible'), 'mark_uncollectible');
    await store.markUncollectible(tx, id, this.clock.now());
    return this.present((await store.getInvoice(tx, id))!, tx);
  }

  /**
   * A credit note on a finalized, paid or uncollectible invoice: gives `amount` back (the tax part
   * from the tax account, the rest from revenue), paying the customer's debt first; it lowers what
   * the invoice still owes, and an unpaid invoice whose remaining reaches 0 is paid. On a paid
   * invoice the credit ends as spendable credit.
   */
  async creditNote(tx: Queryable, id: string, input: CreditNoteCreate): Promise<CreditNote> {
    const row = await this.lockFor(tx, id, CREDIT_NOTE_FROM, 'credit_note');
    const amount = this.creditNoteAmount(row, input.amount);
    const credited = BigInt(row.amount_credited);
    const tax = taxShare(amount, credited, { total: BigInt(row.total), tax: BigInt(row.tax) }, row.currency);
    const now = this.clock.now();
    const note: store.CreditNoteRow = {
      id: newId('cn', now.getTime()), invoice_id: id, customer_id: row.customer_id, currency: row.currency, amount: String(amount), tax: String(tax),
      reason: input.reason, memo: input.memo ?? null, created_at: now,
    };
    await this.deps.lockAccount(tx, row.customer_id);
    await this.post(tx, creditPostings({ id, customerId: row.customer_id }, { amount, tax }, 'credit_note', [newId('grt'), newId('grt')]));
    const before = BigInt(row.amount_remaining);
    const remaining = before > amount ? before - amount : 0n;
    const paidByNote = row.status !== 'paid' && remaining === 0n;
    await store.insertCreditNote(tx, note);
    await store.settleAmounts(tx, id, { paid: 0n, credited: amount, remaining, status: paidByNote ? 'paid' : row.status, at: now, provider: paidByNote ? 'credit_note' : null });
    if (paidByNote) await this.emitAbout(tx, id, (invoice) => event('invoice.paid', invoice.customer_id, invoice));
    return presentCreditNote(note);
  }

  /** The amount of a credit note: in the currency's minor units, above 0, at most the total less what was credited. */
  private creditNoteAmount(row: store.InvoiceRow, text: string): bigint {
    const amount = parseAmount(text);
    const left = BigInt(row.total) - BigInt(row.amount_credited);
    const refuse = (message: string) => new AppError('invalid_request', `amount ${message}`, [{ path: 'amount', message }]);
    if (amount % minorUnit(row.currency) !== 0n) throw refuse(`must be in whole minor units of ${row.currency}`);
    if (amount <= 0n) throw refuse('must be greater than 0');
    if (amount > left) throw refuse(`must be at most ${formatAmount(left, row.currency)} (the total less what was credited already)`);
    return amount;
  }

  async creditNotes(invoiceId: string, limit: number, cursor?: string, owner?: string): Promise<Page<CreditNote>> {
    await this.get(invoiceId, owner);
    return toPage((await store.listCreditNotes(this.db, invoiceId, limit, cursor)).map(presentCreditNote), limit);
  }

  /** The invoice under its row lock, refused with 409 conflict unless its status allows the action. */
  private async lockFor(tx: Queryable, id: string, from: InvoiceStatus[], action: string): Promise<store.InvoiceRow> {
    const row = await store.getInvoice(tx, id, true);
    if (!row) throw notFound('invoice', id);
    if (!from.includes(row.status)) {
      throw new AppError('conflict', `Invoice ${id} is ${row.status}; ${action} needs an invoice that is ${from.join(' or ')}`, undefined, { status: row.status });
    }
    return row;
  }

  /** Billing's postings never refuse (no balance check applies to them): a refusal is a broken invariant. */
  private async post(tx: Queryable, ops: LedgerOp[]): Promise<void> {
    for (const result of await this.deps.post(tx, ops)) assertInvariant(result.ok, `an invoice posting was refused: ${result.ok ? '' : result.detail}`);
  }

  /** The invoice as a PDF, with the operator's and the customer's names. */
  async pdf(id: string, operatorName: string, owner?: string): Promise<Buffer> {
    const invoice = await this.get(id, owner);
    const customer = await this.deps.customer(invoice.customer_id);
    return renderInvoicePdf(invoice, { operatorName, customer: { id: customer.id, name: customer.name, email: customer.email } });
  }

  async get(id: string, owner?: string): Promise<Invoice> {
    const row = await store.getInvoice(this.db, id);
    // Another customer's invoice is "not found" to a customer key: its existence is not revealed.
    if (!row || (owner !== undefined && row.customer_id !== owner)) throw notFound('invoice', id);
    return this.present(row);
  }

  async list(f: store.InvoiceFilter): Promise<Page<Invoice>> {
    const rows = await store.listInvoices(this.db, f);
    const ids = rows.map((r) => r.id);
    const [lines, notes] = [await store.linesOf(this.db, ids), await store.creditNotesOf(this.db, ids)];
    return toPage(rows.map((r) => presentInvoice(r, lines.get(r.id)!, notes.get(r.id)!)), f.limit);
  }

  /** A page of invoices of each of several customers in three queries whatever their number (the GraphQL API's batched read). */
  async listOf(customerIds: string[], f: { limit: number; cursor?: string; status?: InvoiceStatus }): Promise<Map<string, Page<Invoice>>> {
    const rows = await store.listInvoicesOf(this.db, customerIds, f);
    const ids = rows.map((r) => r.id);
    const [lines, notes] = await Promise.all([store.linesOf(this.db, ids), store.creditNotesOf(this.db, ids)]);
    return pagesPerParent(customerIds, rows, (r) => r.customer_id, (r) => presentInvoice(r, lines.get(r.id)!, notes.get(r.id)!), f.limit);
  }

  private async present(row: store.InvoiceRow, db: Queryable = this.db): Promise<Invoice> {
    return presentInvoice(row, (await store.linesOf(db, [row.id])).get(row.id)!, (await store.creditNotesOf(db, [row.id])).get(row.id)!);
  }
}
