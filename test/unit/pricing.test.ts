import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { rateQuantity, validatePriceTerms, type PriceTerms, type PriceTier } from '../../src/catalog/pricing.js';
import { cmp, formatDecimal, parseDecimal, toScaledInteger, type Decimal } from '../../src/platform/decimal.js';

/*
 * The references below work on plain bigints on a fixed grid: quantities are whole numbers of
 * 0.01 (QS = 2) and amounts whole numbers of 0.0001 (AS = 4), so exact costs are integers at
 * scale QS + AS. They are written differently from the implementation on purpose (unit-by-unit
 * iteration, counting loops) so that a shared mistake is unlikely.
 */
const QS = 2;
const AS = 4;
const COST_SCALE = QS + AS;
const GRID = 10n ** BigInt(QS);

interface RefTier {
  upTo: number | null; // in grid units
  unit: bigint; // at AS
  flat: bigint; // at AS
}

const d = (text: string): Decimal => parseDecimal(text);
const q = (gridUnits: number): Decimal => ({ coef: BigInt(gridUnits), scale: QS });
const amount = (coef: bigint): Decimal => ({ coef, scale: AS });
const toTier = (t: RefTier): PriceTier => ({
  upTo: t.upTo === null ? null : q(t.upTo),
  unitAmount: amount(t.unit),
  flatAmount: amount(t.flat),
});
const tiered = (scheme: 'graduated' | 'volume', tiers: RefTier[]): PriceTerms => ({
  scheme,
  unitAmount: null,
  packageSize: null,
  tiers: tiers.map(toTier),
});
const cost = (terms: PriceTerms, quantity: Decimal): bigint => toScaledInteger(rateQuantity(terms, quantity), COST_SCALE);

function refGraduated(tiers: RefTier[], n: number): bigint {
  let total = 0n;
  const entered = new Set<number>();
  for (let k = 1; k <= n; k++) {
    // grid unit k covers (k-1, k]; it belongs to the first tier whose bound reaches k
    const i = tiers.findIndex((t) => t.upTo === null || k <= t.upTo);
    total += tiers[i].unit;
    if (!entered.has(i)) {
      entered.add(i);
      total += tiers[i].flat * GRID;
    }
  }
  return total;
}

function refVolume(tiers: RefTier[], n: number): bigint {
  // the tier holding n is the last one whose lower bound lies below n
  let chosen: RefTier | undefined;
  let lower = 0;
  for (const t of tiers) {
    if (n > lower) chosen = t;
    if (t.upTo === null) break;
    lower = t.upTo;
  }
  return chosen ? BigInt(n) * chosen.unit + chosen.flat * GRID : 0n;
}

function refPackage(size: number, unit: bigint, n: number): bigint {
  let packages = 0n;
  for (let covered = 0; covered < n; covered += size) packages++;
  return packages * unit * GRID;
}

const arbQty = fc.integer({ min: 0, max: 3000 });
const arbAmount = fc.bigInt({ min: 0n, max: 1_000_000n });
const arbTiers: fc.Arbitrary<RefTier[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 2500 }), { maxLength: 4 })
  .chain((bounds) =>
    fc
      .array(fc.tuple(arbAmount, fc.oneof(fc.constant(0n), arbAmount)), {
        minLength: bounds.length + 1,
        maxLength: bounds.length + 1,
      })
      .map((amounts) => {
        const upTos = [...bounds].sort((a, b) => a - b);
        return amounts.map(([unit, flat], i) => ({ upTo: upTos[i] ?? null, unit, flat }));
      }),
  );
const arbPackage = fc.tuple(fc.integer({ min: 1, max: 500 }), arbAmount);

// Any terms valid for the given schemes, for properties that do not need a reference.
const arbTerms = (schemes: PriceTerms['scheme'][]): fc.Arbitrary<PriceTerms> =>
  fc.constantFrom(...schemes).chain((scheme): fc.Arbitrary<PriceTerms> => {
    if (scheme === 'per_unit') {
      return arbAmount.map((u) => ({ scheme, unitAmount: amount(u), tiers: null, packageSize: null }));
    }
    if (scheme === 'package') {
      return arbPackage.map(([size, u]) => ({ scheme, unitAmount: amount(u), tiers: null, packageSize: q(size) }));
    }
    return arbTiers.map((tiers) => tiered(scheme, tiers));
  });
// Quantities at assorted scales, not only on the grid.
const arbDecimalQty = fc.record({ coef: fc.bigInt({ min: 0n, max: 10n ** 8n }), scale: fc.integer({ min: 0, max: 6 }) });

describe('rateQuantity against references', () => {
  it('per_unit is quantity times unit amount', () => {
    fc.assert(
      fc.property(arbAmount, arbQty, (unit, n) => {
        const terms: PriceTerms = { scheme: 'per_unit', unitAmount: amount(unit), tiers: null, packageSize: null };
        expect(cost(terms, q(n))).toBe(BigInt(n) * unit);
      }),
    );
  });

  it('graduated matches unit-by-unit iteration', () => {
    fc.assert(
      fc.property(arbTiers, arbQty, (tiers, n) => {
        expect(cost(tiered('graduated', tiers), q(n))).toBe(refGraduated(tiers, n));
      }),
    );
  });

  it('volume matches a tier scan', () => {
    fc.assert(
      fc.property(arbTiers, arbQty, (tiers, n) => {
        expect(cost(tiered('volume', tiers), q(n))).toBe(refVolume(tiers, n));
      }),
    );
  });

  it('package matches counting packages', () => {
    fc.assert(
      fc.property(arbPackage, arbQty, ([size, unit], n) => {
        const terms: PriceTerms = { scheme: 'package', unitAmount: amount(unit), tiers: null, packageSize: q(size) };
        expect(cost(terms, q(n))).toBe(refPackage(size, unit, n));
      }),
    );
  });
});

describe('rateQuantity properties', () => {
  it('cost never decreases with quantity (per_unit, graduated, package)', () => {
    fc.assert(
      fc.property(arbTerms(['per_unit', 'graduated', 'package']), arbDecimalQty, arbDecimalQty, (terms, a, b) => {
        const [lo, hi] = cmp(a, b) <= 0 ? [a, b] : [b, a];
        expect(cmp(rateQuantity(terms, lo), rateQuantity(terms, hi))).toBeLessThanOrEqual(0);
      }),
    );
  });

  it('a single unbounded tier without flat amount is per_unit, for graduated and volume', () => {
    fc.assert(
      fc.property(arbAmount, arbDecimalQty, (unit, quantity) => {
        const perUnit = rateQuantity({ scheme: 'per_unit', unitAmount: amount(unit), tiers: null, packageSize: null }, quantity);
        const one: RefTier[] = [{ upTo: null, unit, flat: 0n }];
        expect(rateQuantity(tiered('graduated', one), quantity)).toEqual(perUnit);
        expect(rateQuantity(tiered('volume', one), quantity)).toEqual(perUnit);
      }),
    );
  });

  it('quantity 0 costs 0 under every scheme, and valid terms pass validation', () => {
    fc.assert(
      fc.property(arbTerms(['per_unit', 'graduated', 'volume', 'package']), (terms) => {
        expect(validatePriceTerms(terms)).toEqual([]);
        expect(cost(terms, q(0))).toBe(0n);
      }),
    );
  });

  it('rejects negative quantities', () => {
    const terms: PriceTerms = { scheme: 'per_unit', unitAmount: d('1'), tiers: null, packageSize: null };
    expect(() => rateQuantity(terms, parseDecimal('-1', { allowNegative: true }))).toThrow(RangeError);
  });
});

describe('hand-computed examples', () => {
  const rate = (terms: PriceTerms, quantity: string) => formatDecimal(rateQuantity(terms, d(quantity)));
  const tiers = (...ts: [string | null, string, string][]): PriceTier[] =>
    ts.map(([upTo, unit, flat]) => ({ upTo: upTo === null ? null : d(upTo), unitAmount: d(unit), flatAmount: d(flat) }));

  it('graduated', () => {
    const terms: PriceTerms = {
      scheme: 'graduated',
      unitAmount: null,
      packageSize: null,
      tiers: tiers(['1000', '0.01', '0'], [null, '0.008', '1']),
    };
    expect(rate(terms, '2500')).toBe('23'); // 1000 * 0.01 + 1500 * 0.008 + 1
    expect(rate(terms, '1000')).toBe('10');
    expect(rate(terms, '1001')).toBe('11.008');
    expect(rate(terms, '0.5')).toBe('0.005');
    expect(rate(terms, '0')).toBe('0');

    const flatFirst: PriceTerms = { ...terms, tiers: tiers(['10', '0', '5'], [null, '1', '0']) };
    expect(rate(flatFirst, '0')).toBe('0');
    expect(rate(flatFirst, '0.001')).toBe('5');
    expect(rate(flatFirst, '12')).toBe('7');
  });

  it('volume, including its cliff at a tier boundary', () => {
    const terms: PriceTerms = {
      scheme: 'volume',
      unitAmount: null,
      packageSize: null,
      tiers: tiers(['1000', '0.01', '0'], [null, '0.008', '1']),
    };
    expect(rate(terms, '1000')).toBe('10');
    expect(rate(terms, '1001')).toBe('9.008'); // cheaper than 1000: volume pricing is not monotone
    expect(rate(terms, '2500')).toBe('21');
    expect(rate(terms, '0')).toBe('0');
  });

  it('package and per_unit', () => {
    const pkg: PriceTerms = { scheme: 'package', unitAmount: d('2.5'), tiers: null, packageSize: d('1000') };
    expect(rate(pkg, '0')).toBe('0');
    expect(rate(pkg, '1')).toBe('2.5');
    expect(rate(pkg, '1000')).toBe('2.5');
    expect(rate(pkg, '1001')).toBe('5');
    expect(rate({ ...pkg, packageSize: d('0.5') }, '1.2')).toBe('7.5');

    const perUnit: PriceTerms = { scheme: 'per_unit', unitAmount: d('0.000015'), tiers: null, packageSize: null };
    expect(rate(perUnit, '1234567')).toBe('18.518505');
  });
});

describe('validatePriceTerms', () => {
  const base = { unitAmount: null, tiers: null, packageSize: null };
  const tier = (upTo: string | null, unit = '1', flat = '0'): PriceTier => ({
    upTo: upTo === null ? null : d(upTo),
    unitAmount: parseDecimal(unit, { allowNegative: true }),
    flatAmount: parseDecimal(flat, { allowNegative: true }),
  });
  const problems = (terms: Partial<PriceTerms> & Pick<PriceTerms, 'scheme'>) => validatePriceTerms({ ...base, ...terms });
  const neg = parseDecimal('-1', { allowNegative: true });

  it('per_unit', () => {
    expect(problems({ scheme: 'per_unit', unitAmount: d('0') })).toEqual([]);
    expect(problems({ scheme: 'per_unit' })).toHaveLength(1);
    expect(problems({ scheme: 'per_unit', unitAmount: neg })).toHaveLength(1);
    expect(problems({ scheme: 'per_unit', unitAmount: d('1'), tiers: [tier(null)], packageSize: d('1') })).toHaveLength(2);
  });

  it('package', () => {
    expect(problems({ scheme: 'package', unitAmount: d('1'), packageSize: d('0.5') })).toEqual([]);
    expect(problems({ scheme: 'package', unitAmount: d('1') })).toHaveLength(1);
    expect(problems({ scheme: 'package', unitAmount: d('1'), packageSize: d('0') })).toHaveLength(1);
    expect(problems({ scheme: 'package', packageSize: d('1') })).toHaveLength(1);
  });

  it.each(['graduated', 'volume'] as const)('%s tiers', (scheme) => {
    expect(problems({ scheme, tiers: [tier('10'), tier('20.5'), tier(null)] })).toEqual([]);
    expect(problems({ scheme, tiers: [tier(null)] })).toEqual([]);
    const fifty = [...Array.from({ length: 49 }, (_, i) => tier(String(i + 1))), tier(null)];
    expect(problems({ scheme, tiers: fifty })).toEqual([]);
    expect(problems({ scheme, tiers: [...fifty, tier(null)] }).join()).toMatch(/between 1 and 50/);
    expect(problems({ scheme, tiers: [] })).toHaveLength(1);
    expect(problems({ scheme })).toHaveLength(1);
    expect(problems({ scheme, tiers: [tier('10'), tier('10'), tier(null)] }).join()).toMatch(/tiers\[1\]\.up_to/);
    expect(problems({ scheme, tiers: [tier('10'), tier('5'), tier(null)] })).toHaveLength(1);
    expect(problems({ scheme, tiers: [tier('0'), tier(null)] })).toHaveLength(1);
    expect(problems({ scheme, tiers: [tier(null), tier('10')] })).toHaveLength(2);
    expect(problems({ scheme, tiers: [tier('10')] }).join()).toMatch(/must be null on the last tier/);
    expect(problems({ scheme, tiers: [tier('10', '-1', '-1'), tier(null)] })).toHaveLength(2);
    expect(problems({ scheme, tiers: [tier(null)], unitAmount: d('1'), packageSize: d('1') })).toHaveLength(2);
  });

  it('unknown scheme', () => {
    expect(problems({ scheme: 'tiered' as PriceTerms['scheme'] })).toHaveLength(1);
  });
});
