import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { indexPrices, priceInForce, pricesInForce, type PriceVersion } from '../../src/catalog/price-book.js';
import { parseDecimal } from '../../src/platform/decimal.js';

/*
 * The reference is the rule as the catalog states it, applied to the whole list by scanning every
 * version (what rating did before prices were indexed by product and customer): the indexed lookup
 * must pick the same versions, in the same meter order, for any catalog.
 */
function referenceInForce(prices: PriceVersion[], q: { productId: string; meterId: string; currency: string; customerId: string | null; at: Date }): PriceVersion | null {
  const candidates = prices.filter((p) => p.productId === q.productId && p.meterId === q.meterId && p.currency === q.currency && p.effectiveAt <= q.at);
  const latest = (versions: PriceVersion[]) =>
    versions.reduce<PriceVersion | null>((best, p) => {
      if (!best) return p;
      if (p.effectiveAt.getTime() !== best.effectiveAt.getTime()) return p.effectiveAt > best.effectiveAt ? p : best;
      return p.id > best.id ? p : best;
    }, null);
  return latest(candidates.filter((p) => p.customerId !== null && p.customerId === q.customerId)) ?? latest(candidates.filter((p) => p.customerId === null));
}

function referenceAllInForce(prices: PriceVersion[], q: { productId: string; currency: string; customerId: string | null; at: Date }): PriceVersion[] {
  const meters = [...new Set(prices.filter((p) => p.productId === q.productId).map((p) => p.meterId))];
  return meters.flatMap((meterId) => referenceInForce(prices, { ...q, meterId }) ?? []);
}

const products = ['prd_a', 'prd_b', 'prd_c'];
const meters = ['met_images', 'met_seconds', 'met_tokens'];
const currencies = ['USD', 'EUR'];
const customers = ['cus_1', 'cus_2', 'cus_3'];
const DAY = 86_400_000;
const day = (n: number) => new Date(Date.UTC(2026, 0, 1) + n * DAY);

const version = fc.record({
  productId: fc.constantFrom(...products),
  meterId: fc.constantFrom(...meters),
  currency: fc.constantFrom(...currencies),
  customerId: fc.option(fc.constantFrom(...customers), { nil: null }),
  effectiveDay: fc.integer({ min: 0, max: 3 }),
});

/** Catalogs with ties on effective_at, several versions per meter, and overrides of some customers. */
const catalog = fc.array(version, { maxLength: 60 }).map((vs) =>
  vs.map(
    (v, i): PriceVersion => ({
      // Ids in an order unrelated to the list's, as a reload may list them.
      id: `price_${String((i * 7919) % 1009).padStart(4, '0')}_${i}`,
      productId: v.productId,
      meterId: v.meterId,
      meterKey: v.meterId.slice(4),
      currency: v.currency,
      customerId: v.customerId,
      terms: { scheme: 'per_unit', unitAmount: parseDecimal('0.01'), tiers: null, packageSize: null },
      effectiveAt: day(v.effectiveDay),
      createdAt: day(v.effectiveDay),
    }),
  ),
);

const query = fc.record({
  productId: fc.constantFrom(...products, 'prd_unknown'),
  currency: fc.constantFrom(...currencies),
  customerId: fc.option(fc.constantFrom(...customers, 'cus_without_overrides'), { nil: null }),
  at: fc.integer({ min: -1, max: 4 }).map(day),
});

describe('prices in force, indexed by product and customer', () => {
  it('picks what scanning the whole catalog picks, for one meter', () => {
    fc.assert(
      fc.property(catalog, query, fc.constantFrom(...meters), (prices, q, meterId) => {
        expect(priceInForce(indexPrices(prices), { ...q, meterId })).toBe(referenceInForce(prices, { ...q, meterId }));
      }),
      { numRuns: 500 },
    );
  });

  it('picks what scanning the whole catalog picks, for every meter of a product, in the same order', () => {
    fc.assert(
      fc.property(catalog, query, (prices, q) => {
        expect(pricesInForce(indexPrices(prices), q)).toEqual(referenceAllInForce(prices, q));
      }),
      { numRuns: 500 },
    );
  });

  it("takes a customer's override over a later base price, and only that customer's", () => {
    const base = (id: string, effective: number): PriceVersion => ({
      id, productId: 'prd_a', meterId: 'met_images', meterKey: 'images', currency: 'USD', customerId: null,
      terms: { scheme: 'per_unit', unitAmount: parseDecimal('0.02'), tiers: null, packageSize: null }, effectiveAt: day(effective), createdAt: day(effective),
    });
    const override: PriceVersion = { ...base('price_override', 1), customerId: 'cus_1' };
    const index = indexPrices([base('price_old', 0), override, base('price_new', 5)]);
    const at = day(6);
    expect(pricesInForce(index, { productId: 'prd_a', currency: 'USD', customerId: 'cus_1', at }).map((p) => p.id)).toEqual(['price_override']);
    expect(pricesInForce(index, { productId: 'prd_a', currency: 'USD', customerId: 'cus_2', at }).map((p) => p.id)).toEqual(['price_new']);
    expect(pricesInForce(index, { productId: 'prd_a', currency: 'USD', customerId: null, at: day(3) }).map((p) => p.id)).toEqual(['price_old']);
    expect(pricesInForce(index, { productId: 'prd_a', currency: 'EUR', customerId: 'cus_1', at })).toEqual([]);
  });
});
