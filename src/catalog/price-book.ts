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
 * A catalog's price versions by product, each customer's overrides apart: finding a price in force
 * reads one product's base prices and one customer's overrides, never the whole catalog (a platform
 * lists hundreds of models, each with its history and its customers' negotiated prices).
 */
export type PriceIndex = Map<string, ProductPrices>;

export interface ProductPrices {
  /** The product's meters in the order their first price was listed. */
  meterIds: string[];
  base: PriceVersion[];
  overrides: Map<string, PriceVersion[]>;
}

export function indexPrices(prices: PriceVersion[]): PriceIndex {
  const index: PriceIndex = new Map();
  for (const p of prices) {
    let product = index.get(p.productId);
    if (!product) index.set(p.productId, (product = { meterIds: [], base: [], overrides: new Map() }));
    if (!product.meterIds.includes(p.meterId)) product.meterIds.push(p.meterId);
    if (p.customerId === null) product.base.push(p);
    else {
      const own = product.overrides.get(p.customerId);
      if (own) own.push(p);
      else product.overrides.set(p.customerId, [p]);
    }
  }
  return index;
}

/**
 * The price in force for one product, meter and currency at a time: a customer's own override
 * if one is in force, else the latest base price; among versions, the latest effective_at wins
 * (ties: the one created last).
 */
export function priceInForce(
  index: PriceIndex,
  q: { productId: string; meterId: string; currency: string; customerId: string | null; at: Date },
): PriceVersion | null {
  const product = index.get(q.productId);
  if (!product) return null;
  const own = q.customerId === null ? undefined : product.overrides.get(q.customerId);
  return (own && latestInForce(own, q, q.meterId)) ?? latestInForce(product.base, q, q.meterId);
}

/** All prices in force for a product, one per meter (what a reservation snapshots at authorize). */
export function pricesInForce(index: PriceIndex, q: { productId: string; currency: string; customerId: string | null; at: Date }): PriceVersion[] {
  const product = index.get(q.productId);
  if (!product) return [];
  const own = q.customerId === null ? undefined : product.overrides.get(q.customerId);
  const base = latestByMeter(product.base, q);
  const overridden = own ? latestByMeter(own, q) : undefined;
  return product.meterIds.flatMap((meterId) => overridden?.get(meterId) ?? base.get(meterId) ?? []);
}

type InForce = { currency: string; at: Date };

function latestInForce(versions: PriceVersion[], q: InForce, meterId: string): PriceVersion | null {
  let latest: PriceVersion | null = null;
  for (const p of versions) if (p.meterId === meterId && inForce(p, q)) latest = later(latest, p);
  return latest;
}

function latestByMeter(versions: PriceVersion[], q: InForce): Map<string, PriceVersion> {
  const latest = new Map<string, PriceVersion>();
  for (const p of versions) if (inForce(p, q)) latest.set(p.meterId, later(latest.get(p.meterId) ?? null, p));
  return latest;
}

const inForce = (p: PriceVersion, q: InForce) => p.currency === q.currency && p.effectiveAt <= q.at;

function later(current: PriceVersion | null, candidate: PriceVersion): PriceVersion {
  if (!current) return candidate;
  const byEffective = candidate.effectiveAt.getTime() - current.effectiveAt.getTime();
  if (byEffective !== 0) return byEffective > 0 ? candidate : current;
  return candidate.id > current.id ? candidate : current;
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
