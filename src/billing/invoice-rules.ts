import { rateQuantity, type PriceTerms } from '../catalog/pricing.js';
import { add, fromBigInt, isNegative, toScaledInteger, ZERO, type Decimal } from '../platform/decimal.js';
import { assertInvariant } from '../platform/errors.js';
import { CURRENCIES, LEDGER_SCALE } from '../platform/money.js';

/**
 * Pure invoice rules (no I/O): billing periods, the quantity a meter bills, lines rated on the
 * period total, tax, and the one place invoice amounts are rounded. See docs/billing.md.
 */

export type InvoiceStatus = 'draft' | 'finalized' | 'paid' | 'void' | 'uncollectible';
export type InvoiceAction = 'finalize' | 'mark_paid' | 'void' | 'mark_uncollectible';

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

export interface InvoiceLine extends Omit<LineInput, 'price'> {
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

/** Invoice lines and totals for one customer and period; `taxRate` is a percentage (20 = 20 %). */
export function computeInvoice(input: { currency: string; taxRate: Decimal; lines: LineInput[] }): InvoiceComputation {
  assertInvariant(!isNegative(input.taxRate), 'tax rate must not be negative');
  const lines = [...input.lines]
    .sort((a, b) => (a.productKey === b.productKey ? cmpText(a.meterKey, b.meterKey) : cmpText(a.productKey, b.productKey)))
    .map((line): InvoiceLine => {
      const exactAmount = line.price ? rateQuantity(line.price.terms, line.quantity) : ZERO;
      const { price, ...rest } = line;
      return { ...rest, priceId: price?.id ?? null, scheme: price?.terms.scheme ?? null, exactAmount, amount: roundToMinor(exactAmount, input.currency) };
    });
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

export function allowedFrom(action: InvoiceAction): InvoiceStatus[] {
  return TRANSITIONS[action].from;
}

const cmpText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
