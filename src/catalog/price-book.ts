import { add, formatScaled, parseDecimal, toScaledInteger, ZERO, type Decimal, decimalFromJson } from '../platform/decimal.js';
import { refusal, type Outcome } from '../platform/errors.js';
import { AMOUNT_MAX, LEDGER_SCALE } from '../platform/money.js';
import { rateQuantity, type PriceTerms } from './pricing.js';

/** One immutable price version, as the rating rules use it. */
export interface PriceVersion {
  id: string;
  productId: string;
  meterId: string;
  meterKey: string;
  currency: string;
  customerId: string | null;
  terms: PriceTerms;
  effectiveAt: Date;
  createdAt: Date;
}

/**
 * The price in force for one product, meter and currency at a time: a customer's own override
 * if one is in force, else the latest base price; among versions, the latest effective_at wins
 * (ties: the one created last).
 */
export function priceInForce(
  prices: PriceVersion[],
  q: { productId: string; meterId: string; currency: string; customerId: string | null; at: Date },
): PriceVersion | null {
  let override: PriceVersion | null = null;
  let base: PriceVersion | null = null;
  for (const p of prices) {
    if (p.productId !== q.productId || p.meterId !== q.meterId || p.currency !== q.currency || p.effectiveAt > q.at) continue;
    if (p.customerId === null) base = later(base, p);
    else if (p.customerId === q.customerId) override = later(override, p);
  }
  return override ?? base;
}

function later(current: PriceVersion | null, candidate: PriceVersion): PriceVersion {
  if (!current) return candidate;
  const byEffective = candidate.effectiveAt.getTime() - current.effectiveAt.getTime();
  if (byEffective !== 0) return byEffective > 0 ? candidate : current;
  return candidate.id > current.id ? candidate : current;
}

/** All prices in force for a product, one per meter (what a reservation snapshots at authorize). */
export function pricesInForce(prices: PriceVersion[], q: { productId: string; currency: string; customerId: string | null; at: Date }): PriceVersion[] {
  const meters = new Set(prices.filter((p) => p.productId === q.productId).map((p) => p.meterId));
  return [...meters].flatMap((meterId) => priceInForce(prices, { ...q, meterId }) ?? []);
}

/**
 * Rates quantities per meter key with the given prices: each meter's cost is exact, their sum is
 * rounded once, half-even, to the ledger's scale. This is the only place usage is rounded.
 */
export function rateQuantities(prices: PriceVersion[], quantities: Record<string, string>): Outcome<bigint> {
  const rated = rateByMeter(prices, quantities);
  return rated.ok ? { ok: true, value: rated.value.amount } : rated;
}

/** rateQuantities, keeping each meter's exact cost (usage reports split a charge over meters with it). */
export function rateByMeter(prices: PriceVersion[], quantities: Record<string, string>): Outcome<{ amount: bigint; meterCosts: Record<string, Decimal> }> {
  let total: Decimal = ZERO;
  const meterCosts: Record<string, Decimal> = {};
  for (const [meterKey, text] of Object.entries(quantities)) {
    const price = prices.find((p) => p.meterKey === meterKey);
    if (!price) return refusal('no_price', `No price for meter "${meterKey}" on this product`, { meter: meterKey });
    meterCosts[meterKey] = rateQuantity(price.terms, parseDecimal(text));
    total = add(total, meterCosts[meterKey]);
  }
  const amount = toScaledInteger(total, LEDGER_SCALE);
  // Absurd quantities: a cost the ledger's bigint columns could not hold is bad input, not a crash.
  if (amount > AMOUNT_MAX) {
    const message = `costs more than ${formatScaled(AMOUNT_MAX, LEDGER_SCALE, 0)}, the most one request may move`;
    return refusal('invalid_request', `The quantities ${message}`, { errors: Object.keys(quantities).map((path) => ({ path, message })) });
  }
  return { ok: true, value: { amount, meterCosts } };
}

/** Quantities arrive as decimal strings or JSON numbers; they are kept as canonical strings. */
export function normalizeQuantities(input: Record<string, string | number>): Outcome<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(input)) {
    try {
      const d = decimalFromJson(value, { maxScale: 12, maxIntegerDigits: 15 });
      out[key] = d.scale === 0 ? d.coef.toString() : formatPlain(d);
    } catch (error) {
      return refusal('invalid_request', `Quantity of "${key}" ${(error as Error).message}`, { errors: [{ path: key, message: (error as Error).message }] });
    }
  }
  return { ok: true, value: out };
}

function formatPlain(d: Decimal): string {
  const digits = d.coef.toString().padStart(d.scale + 1, '0');
  return `${digits.slice(0, digits.length - d.scale)}.${digits.slice(digits.length - d.scale)}`;
}
