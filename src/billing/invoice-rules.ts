import { rateQuantity, type PriceTerms } from '../catalog/pricing.js';
import type { LedgerOp } from '../ledger/batch-rules.js';
import { add, fromBigInt, isNegative, toScaledInteger, ZERO, type Decimal } from '../platform/decimal.js';
import { assertInvariant } from '../platform/errors.js';
import { CURRENCIES, LEDGER_SCALE } from '../platform/money.js';

/**
 * Pure invoice rules (no I/O): billing periods, the quantity a meter bills, lines rated on the
 * period total, tax, and the one place invoice amounts are rounded. See docs/billing.md.
 */

export type InvoiceStatus = 'draft' | 'finalized' | 'paid' | 'void' | 'uncollectible';
export type InvoiceAction = 'finalize' | 'mark_paid' | 'void' | 'mark_uncollectible';

/** Usage at or after a period's end, up to the end of time: what "after" sums in amountDue(). */
export const FAR_FUTURE = new Date(Date.UTC(9999, 0, 1));

/** The anchor day is at most 28, so every month has it. */
export const ANCHOR_DAY_MAX = 28;

/**
 * The period "YYYY-MM" starts on the anchor day of that month (00:00 UTC) and ends, exclusive, on
 * the anchor day of the next month. With the default anchor day 1 it is the calendar month.
 */
export function periodBounds(period: string, anchorDay: number): { from: Date; to: Date } {
  const m = /^(\d{4})-(\d{2})$/.exec(period);
  assertInvariant(m !== null, `period ${period} is not YYYY-MM`);
  assertInvariant(Number.isInteger(anchorDay) && anchorDay >= 1 && anchorDay <= ANCHOR_DAY_MAX, `anchor day ${anchorDay} out of range`);
  const year = Number(m[1]);
  const month = Number(m[2]) - 1;
  return { from: new Date(Date.UTC(year, month, anchorDay)), to: new Date(Date.UTC(year, month + 1, anchorDay)) };
}

/** What a meter bills over a period, by its aggregation (the same meaning as usage reports). */
export function billableQuantity(
  aggregation: string,
  usage: { sum: Decimal; max: Decimal | null; count: bigint; uniqueCount: bigint },
): Decimal {
  switch (aggregation) {
    case 'count':
      return fromBigInt(usage.count);
    case 'max':
      return usage.max ?? ZERO;
    case 'unique_count':
      return fromBigInt(usage.uniqueCount);
    default:
      return usage.sum;
  }
}

/**
 * Rounds an exact amount to the currency's minor units, half-even, and returns it in ledger units
 * (a multiple of 10^(9 - minor units)). The ONLY place invoice amounts are rounded.
 */
export function roundToMinor(exact: Decimal, currency: string): bigint {
  const minor = CURRENCIES[currency]?.minorUnits;
  assertInvariant(minor !== undefined, `unknown currency ${currency}`);
  return toScaledInteger(exact, minor) * 10n ** BigInt(LEDGER_SCALE - minor);
}

export interface LineInput {
  productId: string;
  productKey: string;
  meterKey: string;
  quantity: Decimal;
  /** The price in force at the period's end; null when the meter has none (billed at 0). */
  price: { id: string; terms: PriceTerms } | null;
  /** What the ledger already charged for this usage as it happened (ledger units). */
  accrued: bigint;
}

export interface InvoiceLine {
  productId: string | null;
  productKey: string | null;
  meterKey: string | null;
  quantity: Decimal | null;
  /** What the ledger charged for this usage as it happened (ledger units), exact. */
  accrued: bigint;
  /** A late usage line: the earlier invoice whose period the usage belongs to (null on usage lines). */
  late: { invoiceId: string; period: string } | null;
  priceId: string | null;
  scheme: PriceTerms['scheme'] | null;
  /** The scheme applied to the whole period quantity, exact. */
  exactAmount: Decimal;
  /** exactAmount rounded to minor units (ledger units). */
  amount: bigint;
}

export interface InvoiceComputation {
  lines: InvoiceLine[];
  /** Sum of the rounded line amounts. */
  subtotal: bigint;
  /** subtotal x tax rate / 100, rounded to minor units. */
  tax: bigint;
  total: bigint;
  /** What the ledger charged for the period's usage, per event, as it happened. */
  accrued: bigint;
  /** subtotal - accrued: what rating the period total (tiers) changes against per-event rating. */
  adjustment: bigint;
}

/**
 * Usage the ledger charged for an earlier invoice's period after that invoice was finalized:
 * `charged` is what the ledger charged for the period by now, `billed` what invoices already
 * billed for it (the invoice's own accrued plus late usage lines finalized since).
 */
export interface LateUsageInput {
  invoiceId: string;
  period: string;
  charged: bigint;
  billed: bigint;
}

/**
 * Invoice lines and totals for one customer and period; `taxRate` is a percentage (20 = 20 %).
 * Usage lines come first (by product and meter), then one late usage line per earlier invoice
 * whose period gained charges: its amount is the new charge rounded to minor units.
 */
export function computeInvoice(input: { currency: string; taxRate: Decimal; lines: LineInput[]; late?: LateUsageInput[] }): InvoiceComputation {
  assertInvariant(!isNegative(input.taxRate), 'tax rate must not be negative');
  const usage = [...input.lines]
    .sort((a, b) => (a.productKey === b.productKey ? cmpText(a.meterKey, b.meterKey) : cmpText(a.productKey, b.productKey)))
    .map((line): InvoiceLine => {
      const exactAmount = line.price ? rateQuantity(line.price.terms, line.quantity) : ZERO;
      const { price, ...rest } = line;
      return { ...rest, late: null, priceId: price?.id ?? null, scheme: price?.terms.scheme ?? null, exactAmount, amount: roundToMinor(exactAmount, input.currency) };
    });
  const late = (input.late ?? [])
    .filter((l) => l.charged > l.billed)
    .map((l): InvoiceLine => {
      const exactAmount: Decimal = { coef: l.charged - l.billed, scale: LEDGER_SCALE };
      return {
        productId: null, productKey: null, meterKey: null, quantity: null, priceId: null, scheme: null,
        late: { invoiceId: l.invoiceId, period: l.period }, accrued: l.charged - l.billed, exactAmount, amount: roundToMinor(exactAmount, input.currency),
      };
    });
  const lines = [...usage, ...late];
  const subtotal = lines.reduce((s, l) => s + l.amount, 0n);
  const tax = taxOn(subtotal, input.taxRate, input.currency);
  const accrued = lines.reduce((s, l) => s + l.accrued, 0n);
  return { lines, subtotal, tax, total: subtotal + tax, accrued, adjustment: subtotal - accrued };
}

/** Exclusive tax on an amount already in minor units (ledger units), rounded once. */
export function taxOn(subtotal: bigint, taxRate: Decimal, currency: string): bigint {
  // subtotal / 10^9 x rate / 100, exactly: a decimal with scale 9 + rate.scale + 2.
  const exact: Decimal = { coef: subtotal * taxRate.coef, scale: LEDGER_SCALE + taxRate.scale + 2 };
  return roundToMinor(add(exact, ZERO), currency);
}

/**
 * What the customer still owes on the invoice at finalization. The customer's grants paid part of
 * the usage as it happened, and credits apply to the oldest charges first: of the debt the ledger
 * shows after the invoice's postings, the part owed on earlier invoices (`open`) and the charges
 * for usage after the period (`after`) are not this invoice's; the rest, at most the total, is.
 * Rounded half-even to minor units (a customer cannot pay a fraction of a cent).
 */
export function amountDue(q: { posted: bigint; open: bigint; after: bigint; total: bigint; currency: string }): bigint {
  const debt = q.posted < 0n ? -q.posted : 0n;
  const owed = roundToMinor({ coef: debt - q.open - q.after, scale: LEDGER_SCALE }, q.currency);
  return owed < 0n ? 0n : owed > q.total ? q.total : owed;
}

/**
 * The tax part of `amount` given back on an invoice (a credit note, a void), when `before` was
 * given back already: proportional to tax / total and taken cumulatively, so the parts of
 * successive credits add up to exactly the invoice's tax when the whole total has been given back.
 * Each part is rounded half-even to minor units (the one other place billing rounds).
 */
export function taxShare(amount: bigint, before: bigint, invoice: { total: bigint; tax: bigint }, currency: string): bigint {
  if (invoice.total === 0n) return 0n;
  const unit = minorUnit(currency);
  const at = (x: bigint) => divideHalfEven(x * invoice.tax, invoice.total * unit) * unit;
  return at(before + amount) - at(before);
}

/** One minor unit of the currency in ledger units (0.01 USD = 10^7). */
export function minorUnit(currency: string): bigint {
  const minor = CURRENCIES[currency]?.minorUnits;
  assertInvariant(minor !== undefined, `unknown currency ${currency}`);
  return 10n ** BigInt(LEDGER_SCALE - minor);
}

/** n / d rounded half-even, for n >= 0 and d > 0. */
export function divideHalfEven(n: bigint, d: bigint): bigint {
  assertInvariant(n >= 0n && d > 0n, 'divideHalfEven takes n >= 0 and d > 0');
  const q = n / d;
  const twice = 2n * (n % d);
  return twice > d || (twice === d && q % 2n === 1n) ? q + 1n : q;
}

/**
 * The ledger postings that make the customer's account show what the invoice bills: the
 * adjustment (negative: credited from revenue; positive: charged to revenue) and the tax
 * (charged to the tax account). Charges are posted in full, whatever the credit limit.
 */
export function finalizationPostings(inv: { id: string; customerId: string; adjustment: bigint; tax: bigint }, grantId: string): LedgerOp[] {
  const link = { customerId: inv.customerId, invoiceId: inv.id };
  const ops: LedgerOp[] = [];
  if (inv.adjustment < 0n) ops.push({ type: 'credit', ...link, source: 'revenue', amount: -inv.adjustment, reason: 'invoice_adjustment', grantId });
  if (inv.adjustment > 0n) ops.push({ type: 'invoice_charge', ...link, target: 'revenue', amount: inv.adjustment, reason: 'invoice_adjustment' });
  if (inv.tax > 0n) ops.push({ type: 'invoice_charge', ...link, target: 'tax', amount: inv.tax, reason: 'invoice_tax' });
  return ops;
}

/**
 * Credits that give `amount` of an invoice back to the customer: the tax part (taxShare) from
 * the tax account, the rest from revenue, both paying the customer's debt first.
 */
export function creditPostings(
  inv: { id: string; customerId: string },
  parts: { amount: bigint; tax: bigint },
  reason: 'credit_note' | 'invoice_void',
  grantIds: [string, string],
): LedgerOp[] {
  const link = { customerId: inv.customerId, invoiceId: inv.id, reason };
  const ops: LedgerOp[] = [];
  if (parts.tax > 0n) ops.push({ type: 'credit', ...link, source: 'tax', amount: parts.tax, grantId: grantIds[0] });
  if (parts.amount > parts.tax) ops.push({ type: 'credit', ...link, source: 'revenue', amount: parts.amount - parts.tax, grantId: grantIds[1] });
  return ops;
}

const TRANSITIONS: Record<InvoiceAction, { from: InvoiceStatus[]; to: InvoiceStatus }> = {
  finalize: { from: ['draft'], to: 'finalized' },
  mark_paid: { from: ['finalized', 'uncollectible'], to: 'paid' },
  void: { from: ['finalized', 'uncollectible'], to: 'void' },
  mark_uncollectible: { from: ['finalized'], to: 'uncollectible' },
};

/** The status an action leads to, or null when the invoice's status does not allow it. */
export function nextStatus(current: InvoiceStatus, action: InvoiceAction): InvoiceStatus | null {
  const t = TRANSITIONS[action];
  return t.from.includes(current) ? t.to : null;
}

export function allowedFrom(action: InvoiceAction | 'credit_note'): InvoiceStatus[] {
  return action === 'credit_note' ? CREDIT_NOTE_FROM : TRANSITIONS[action].from;
}

/** Credit notes are issued on invoices that were finalized: unpaid, paid or written off. */
export const CREDIT_NOTE_FROM: InvoiceStatus[] = ['finalized', 'paid', 'uncollectible'];

const cmpText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
