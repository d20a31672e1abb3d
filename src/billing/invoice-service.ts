import type { PriceTerms } from '../catalog/pricing.js';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { formatDecimal, parseDecimal, type Decimal } from '../platform/decimal.js';
import { AppError, notFound } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { toPage, type Page } from '../platform/lists.js';
import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import { allowedFrom, billableQuantity, computeInvoice, nextStatus, periodBounds, type InvoiceAction, type InvoiceStatus, type LineInput } from './invoice-rules.js';
import { renderInvoicePdf } from './invoice-pdf.js';
import * as store from './invoice-store.js';
import type { BillingSettingsPut, Invoice } from './schemas.js';

/** What billing needs from the other modules (wired in main.ts, each through its service). */
export interface BillingDeps {
  /** The customer's currency and billing mode; throws not_found for an unknown customer. */
  customer(id: string): Promise<{ id: string; name: string; email: string | null; currency: string; billing_mode: 'prepaid' | 'postpaid'; created_at: string }>;
  /** Every postpaid customer's id, in id order. */
  postpaidCustomerIds(): Promise<string[]>;
  /** Prices in force for a product at a time, one per meter (customer overrides applied). */
  pricesAt(q: { productId: string; currency: string; customerId: string; at: Date }): Promise<Array<{ id: string; meterKey: string; terms: PriceTerms }>>;
  meterAggregation(meterKey: string): Promise<string>;
  productKey(productId: string): Promise<string>;
  /** The customer's usage in [from, to) per product and meter (the metering module). */
  periodUsage(customerId: string, from: Date, to: Date): Promise<Array<{ productId: string; meterKey: string; currency: string; sum: Decimal; max: Decimal | null; count: bigint; uniqueCount: bigint; charged: bigint }>>;
}

export interface BillingSettingsView {
  customer_id: string;
  tax_rate: string;
  anchor_day: number;
  updated_at: string | null;
}

export class InvoiceService {
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
   */
  async draft(customerId: string, period: string): Promise<{ created: boolean; invoice: Invoice }> {
    const existing = await store.invoiceFor(this.db, customerId, period);
    if (existing) return { created: false, invoice: await this.present(existing) };
    const customer = await this.deps.customer(customerId);
    const settings = await this.settings(customerId);
    const { from, to } = periodBounds(period, settings.anchor_day);
    const now = this.clock.now();
    if (to > now) throw new AppError('invalid_request', `The period ${period} ends at ${to.toISOString()}; it can be invoiced after that`);

    const lines = await this.lineInputs(customer, from, to);
    const computed = computeInvoice({ currency: customer.currency, taxRate: parseDecimal(settings.tax_rate, { maxScale: 4 }), lines });
    const id = newId('inv', now.getTime());
    const row = {
      id, customer_id: customerId, currency: customer.currency, period, period_start: from, period_end: to, status: 'draft' as const, number: null,
      tax_rate: settings.tax_rate, subtotal: String(computed.subtotal), tax: String(computed.tax), total: String(computed.total),
      accrued: String(computed.accrued), adjustment: String(computed.adjustment), created_at: now,
    };
    const lineRows = computed.lines.map((l, position): store.InvoiceLineRow => ({
      invoice_id: id, position, product_id: l.productId, product_key: l.productKey, meter_key: l.meterKey, quantity: formatDecimal(l.quantity),
      price_id: l.priceId, scheme: l.scheme, amount: String(l.amount), accrued: String(l.accrued),
    }));
    const created = await this.db.transaction((tx) => store.insertDraft(tx, row, lineRows));
    const stored = created ? await store.getInvoice(this.db, id) : await store.invoiceFor(this.db, customerId, period);
    return { created, invoice: await this.present(stored!) };
  }

  /** One line per product and meter used in the period, priced at the period's end (docs/billing.md). */
  private async lineInputs(customer: { id: string; currency: string }, from: Date, to: Date): Promise<LineInput[]> {
    const usage = (await this.deps.periodUsage(customer.id, from, to)).filter((u) => u.currency === customer.currency);
    const at = new Date(to.getTime() - 1);
    const pricesByProduct = new Map<string, Awaited<ReturnType<BillingDeps['pricesAt']>>>();
    const lines: LineInput[] = [];
    for (const u of usage) {
      let prices = pricesByProduct.get(u.productId);
      if (!prices) pricesByProduct.set(u.productId, (prices = await this.deps.pricesAt({ productId: u.productId, currency: customer.currency, customerId: customer.id, at })));
      const price = prices.find((p) => p.meterKey === u.meterKey) ?? null;
      lines.push({
        productId: u.productId,
        productKey: await this.deps.productKey(u.productId),
        meterKey: u.meterKey,
        quantity: billableQuantity(await this.deps.meterAggregation(u.meterKey), u),
        price: price ? { id: price.id, terms: price.terms } : null,
        accrued: u.charged,
      });
    }
    return lines;
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
    const lines = await store.linesOf(this.db, rows.map((r) => r.id));
    return toPage(rows.map((r) => presentInvoice(r, lines.get(r.id)!)), f.limit);
  }

  /**
   * Moves an invoice along its lifecycle (invoice-rules.ts); anything else is 409 conflict. A
   * finalized invoice's lines and amounts never change: only its status and payment fields do.
   */
  async act(tx: Queryable, id: string, action: InvoiceAction, reference: string | null = null): Promise<Invoice> {
    const row = await store.getInvoice(tx, id, true);
    if (!row) throw notFound('invoice', id);
    const next = nextStatus(row.status, action);
    if (next === null) {
      throw new AppError('conflict', `Invoice ${id} is ${row.status}; ${action} needs an invoice that is ${allowedFrom(action).join(' or ')}`, undefined, { status: row.status });
    }
    const at = this.clock.now();
    if (next === 'finalized') await store.changeStatus(tx, id, { status: next, number: await store.takeInvoiceNumber(tx), at });
    else if (next === 'paid') await store.changeStatus(tx, id, { status: next, at, reference });
    else await store.changeStatus(tx, id, { status: next as 'void' | 'uncollectible', at });
    return this.present((await store.getInvoice(tx, id))!, tx);
  }

  private async present(row: store.InvoiceRow, db: Queryable = this.db): Promise<Invoice> {
    return presentInvoice(row, (await store.linesOf(db, [row.id])).get(row.id)!);
  }
}

function presentInvoice(r: store.InvoiceRow, lines: store.InvoiceLineRow[]): Invoice {
  const money = (v: string) => formatAmount(BigInt(v), r.currency);
  return {
    id: r.id,
    number: r.number === null ? null : Number(r.number),
    customer_id: r.customer_id,
    currency: r.currency,
    period: r.period,
    period_start: new Date(r.period_start).toISOString(),
    period_end: new Date(r.period_end).toISOString(),
    status: r.status as InvoiceStatus,
    lines: lines.map((l) => ({
      product_id: l.product_id,
      product: l.product_key,
      meter: l.meter_key,
      quantity: l.quantity,
      price_id: l.price_id,
      scheme: l.scheme as Invoice['lines'][number]['scheme'],
      amount: money(l.amount),
      accrued: money(l.accrued),
    })),
    subtotal: money(r.subtotal),
    tax_rate: r.tax_rate,
    tax: money(r.tax),
    total: money(r.total),
    accrued: money(r.accrued),
    adjustment: money(r.adjustment),
    payment_reference: r.payment_reference,
    created_at: new Date(r.created_at).toISOString(),
    finalized_at: toIso(r.finalized_at ? new Date(r.finalized_at) : null),
    paid_at: toIso(r.paid_at ? new Date(r.paid_at) : null),
    voided_at: toIso(r.voided_at ? new Date(r.voided_at) : null),
    uncollectible_at: toIso(r.uncollectible_at ? new Date(r.uncollectible_at) : null),
  };
}
