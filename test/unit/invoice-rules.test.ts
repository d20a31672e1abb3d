import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { PriceTerms } from '../../src/catalog/pricing.js';
import { amountDue, billableQuantity, computeInvoice, divideHalfEven, finalizationPostings, nextStatus, periodBounds, roundToMinor, taxOn, taxShare, type InvoiceAction, type InvoiceStatus } from '../../src/billing/invoice-rules.js';
import { parseDecimal, ZERO, type Decimal } from '../../src/platform/decimal.js';

const d = (text: string): Decimal => parseDecimal(text);
const NANO = 10n ** 9n;

/**
 * Reference half-even rounding, written differently from the implementation: round half up by
 * adding half a step to the doubled numerator, then step a tie that landed on an odd number back.
 */
function refRound(coef: bigint, scale: number, digits: number): bigint {
  const neg = coef < 0n;
  const num = (neg ? -coef : coef) * 10n ** BigInt(digits);
  const den = 10n ** BigInt(scale);
  let q = (2n * num + den) / (2n * den); // half up
  const tie = (2n * num) % (2n * den) === den && (2n * num) / den % 2n === 1n;
  if (tie && q % 2n === 1n) q -= 1n;
  return neg ? -q : q;
}

describe('roundToMinor: the one place invoice amounts are rounded', () => {
  it('is half-even to the currency minor units, returned in ledger units', () => {
    expect(roundToMinor(d('0.125'), 'USD')).toBe(120_000_000n); // tie to even: 0.12
    expect(roundToMinor(d('0.135'), 'USD')).toBe(140_000_000n); // tie to even: 0.14
    expect(roundToMinor(d('0.1251'), 'USD')).toBe(130_000_000n);
    expect(roundToMinor(d('2.5'), 'JPY')).toBe(2n * NANO);
    expect(roundToMinor(d('3.5'), 'JPY')).toBe(4n * NANO);
  });

  it('equals the reference on any amount and currency (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.integer({ min: 0, max: 14 }), fc.constantFrom('USD', 'EUR', 'JPY', 'KRW'), (coef, scale, currency) => {
        const minor = currency === 'JPY' || currency === 'KRW' ? 0 : 2;
        const got = roundToMinor({ coef, scale }, currency);
        expect(got).toBe(refRound(coef, scale, minor) * 10n ** BigInt(9 - minor));
      }),
      { numRuns: 2000 },
    );
  });
});

interface RefTier {
  upTo: number | null;
  unitCents: number;
  flatCents: number;
}

/** Graduated, unit by unit: unit i (1-based) costs the unit amount of the tier containing it. */
function refGraduated(tiers: RefTier[], n: number): bigint {
  let total = 0n;
  let entered = -1;
  for (let i = 1; i <= n; i++) {
    const t = tiers.findIndex((tier) => tier.upTo === null || i <= tier.upTo);
    if (t > entered) {
      for (let k = entered + 1; k <= t; k++) total += BigInt(tiers[k].flatCents);
      entered = t;
    }
    total += BigInt(tiers[t].unitCents);
  }
  return total;
}

function refVolume(tiers: RefTier[], n: number): bigint {
  if (n === 0) return 0n;
  const tier = tiers.find((t) => t.upTo === null || n <= t.upTo)!;
  return BigInt(n) * BigInt(tier.unitCents) + BigInt(tier.flatCents);
}

const tiersArb = fc
  .array(fc.record({ width: fc.integer({ min: 1, max: 40 }), unitCents: fc.integer({ min: 0, max: 500 }), flatCents: fc.integer({ min: 0, max: 1000 }) }), { minLength: 1, maxLength: 5 })
  .map((raw) => {
    let top = 0;
    return raw.map((t, i): RefTier => {
      top += t.width;
      return { upTo: i === raw.length - 1 ? null : top, unitCents: t.unitCents, flatCents: t.flatCents };
    });
  });

const termsOf = (scheme: 'graduated' | 'volume', tiers: RefTier[]): PriceTerms => ({
  scheme,
  unitAmount: null,
  packageSize: null,
  tiers: tiers.map((t) => ({ upTo: t.upTo === null ? null : d(String(t.upTo)), unitAmount: { coef: BigInt(t.unitCents), scale: 2 }, flatAmount: { coef: BigInt(t.flatCents), scale: 2 } })),
});

const line = (meterKey: string, quantity: number, terms: PriceTerms | null, accrued = 0n) => ({
  productId: 'prd_x',
  productKey: 'p',
  meterKey,
  quantity: d(String(quantity)),
  price: terms ? { id: `pri_${meterKey}`, terms } : null,
  accrued,
});

describe('computeInvoice: tiers on the period total', () => {
  it('graduated and volume lines equal the unit-by-unit reference on the whole period quantity (property)', () => {
    fc.assert(
      fc.property(tiersArb, tiersArb, fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (gTiers, vTiers, gQty, vQty) => {
        const inv = computeInvoice({ currency: 'USD', taxRate: ZERO, lines: [line('a', gQty, termsOf('graduated', gTiers)), line('b', vQty, termsOf('volume', vTiers))] });
        expect(inv.lines.map((l) => l.amount)).toEqual([refGraduated(gTiers, gQty) * 10n ** 7n, refVolume(vTiers, vQty) * 10n ** 7n]);
        expect(inv.subtotal).toBe(inv.lines[0].amount + inv.lines[1].amount);
      }),
      { numRuns: 500 },
    );
  });

  it('totals add up: lines rounded, subtotal their sum, tax rounded once, total = subtotal + tax (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 9_999_999 })), { minLength: 0, maxLength: 6 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.constantFrom('USD', 'JPY'),
        (specs, taxMillis, currency) => {
          const minor = currency === 'JPY' ? 0 : 2;
          const lines = specs.map(([qty, unitMicros], i) => line(`m${i}`, qty, { scheme: 'per_unit', unitAmount: { coef: BigInt(unitMicros), scale: 6 }, tiers: null, packageSize: null }, 5n));
          const taxRate: Decimal = { coef: BigInt(taxMillis), scale: 4 }; // 0 .. 100 %
          const inv = computeInvoice({ currency, taxRate, lines });
          const step = 10n ** BigInt(9 - minor);
          for (const l of inv.lines) {
            const [qty, unitMicros] = specs[Number(l.meterKey!.slice(1))];
            expect(l.amount).toBe(refRound(BigInt(qty) * BigInt(unitMicros), 6, minor) * step);
            expect(l.amount % step).toBe(0n);
          }
          expect(inv.subtotal).toBe(inv.lines.reduce((s, l) => s + l.amount, 0n));
          // tax = subtotal (at scale 9) x taxMillis / 10^4 / 100, rounded half-even to minor units
          expect(inv.tax).toBe(refRound(inv.subtotal * BigInt(taxMillis), 9 + 4 + 2, minor) * step);
          expect(inv.total).toBe(inv.subtotal + inv.tax);
          expect(inv.accrued).toBe(5n * BigInt(specs.length));
          expect(inv.adjustment).toBe(inv.subtotal - inv.accrued);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a hand-computed invoice, to the cent', () => {
    // graduated: first 100 at 0.10, next at 0.05 (+1.00 flat on entering tier 2); 250 units -> 10 + 7.5 + 1 = 18.50
    const graduated = termsOf('graduated', [{ upTo: 100, unitCents: 10, flatCents: 0 }, { upTo: null, unitCents: 5, flatCents: 100 }]);
    // volume: up to 1000 at 0.02, above at 0.015; 1200 units -> 18.00
    const volume = termsOf('volume', [{ upTo: 1000, unitCents: 2, flatCents: 0 }, { upTo: null, unitCents: 0, flatCents: 0 }]);
    volume.tiers![1].unitAmount = d('0.015');
    const inv = computeInvoice({ currency: 'USD', taxRate: d('8.875'), lines: [line('b', 1200, volume, 20n * NANO), line('a', 250, graduated, 24n * NANO), line('c', 3, null)] });
    expect(inv.lines.map((l) => [l.meterKey, l.amount])).toEqual([['a', 18_500_000_000n], ['b', 18_000_000_000n], ['c', 0n]]);
    expect(inv.subtotal).toBe(36_500_000_000n);
    expect(inv.tax).toBe(3_240_000_000n); // 36.50 x 8.875 % = 3.239375 -> 3.24
    expect(inv.total).toBe(39_740_000_000n);
    expect(inv.adjustment).toBe(-7_500_000_000n); // 36.50 - 44.00 accrued per event
  });

  it('tax on 0 is 0; tax ties round to even', () => {
    expect(taxOn(0n, d('20'), 'USD')).toBe(0n);
    expect(taxOn(250_000_000n, d('10'), 'USD')).toBe(20_000_000n); // 0.025 -> 0.02
    expect(taxOn(350_000_000n, d('10'), 'USD')).toBe(40_000_000n); // 0.035 -> 0.04
  });
});

describe('periods, quantities and lifecycle', () => {
  it('a period starts on the anchor day and ends on the next month’s (December rolls over)', () => {
    expect(periodBounds('2026-11', 1)).toEqual({ from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-12-01T00:00:00Z') });
    expect(periodBounds('2026-12', 15)).toEqual({ from: new Date('2026-12-15T00:00:00Z'), to: new Date('2027-01-15T00:00:00Z') });
    expect(() => periodBounds('2026-11', 29)).toThrow();
  });

  it('a meter bills by its aggregation', () => {
    const usage = { sum: d('12.5'), max: d('4'), count: 7n, uniqueCount: 3n };
    expect(billableQuantity('sum', usage)).toEqual(d('12.5'));
    expect(billableQuantity('max', usage)).toEqual(d('4'));
    expect(billableQuantity('count', usage)).toEqual(d('7'));
    expect(billableQuantity('unique_count', usage)).toEqual(d('3'));
  });

  it('draft -> finalized -> paid | void | uncollectible; nothing else', () => {
    const statuses: InvoiceStatus[] = ['draft', 'finalized', 'paid', 'void', 'uncollectible'];
    const actions: InvoiceAction[] = ['finalize', 'mark_paid', 'void', 'mark_uncollectible'];
    const allowed = statuses.flatMap((s) => actions.flatMap((a) => (nextStatus(s, a) ? [`${s} ${a} -> ${nextStatus(s, a)}`] : [])));
    expect(allowed).toEqual([
      'draft finalize -> finalized',
      'finalized mark_paid -> paid',
      'finalized void -> void',
      'finalized mark_uncollectible -> uncollectible',
      'uncollectible mark_paid -> paid',
      'uncollectible void -> void',
    ]);
  });
});

describe('amountDue: credits apply to the oldest charges first', () => {
  const usd = (cents: number) => BigInt(cents) * 10_000_000n;
  it('is the debt less what earlier invoices still owe and usage after the period, between 0 and the total', () => {
    // Total 23.64; a grant of 10.00 paid part of the usage: posted -13.64, nothing else owed.
    expect(amountDue({ posted: -usd(1364), open: 0n, after: 0n, total: usd(2364), currency: 'USD' })).toBe(usd(1364));
    // 5.00 still open on October's invoice and 2.00 of December usage are not this invoice's.
    expect(amountDue({ posted: -usd(2064), open: usd(500), after: usd(200), total: usd(2364), currency: 'USD' })).toBe(usd(1364));
    // Grants covered everything: nothing due.
    expect(amountDue({ posted: usd(300), open: 0n, after: 0n, total: usd(2364), currency: 'USD' })).toBe(0n);
    // Never more than the total.
    expect(amountDue({ posted: -usd(9000), open: 0n, after: 0n, total: usd(2364), currency: 'USD' })).toBe(usd(2364));
    // Sub-cent debt rounds half-even: 0.125 -> 0.12.
    expect(amountDue({ posted: -125_000_000n, open: 0n, after: 0n, total: usd(100), currency: 'USD' })).toBe(usd(12));
  });

  it('is clamp(round(debt - open - after), 0, total) on any input (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 13n), max: 10n ** 13n }), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.nat(10 ** 6), (posted, open, after, totalCents) => {
        const total = usd(totalCents);
        const due = amountDue({ posted, open, after, total, currency: 'USD' });
        const debt = posted < 0n ? -posted : 0n;
        const rounded = refRound(debt - open - after, 9, 2) * 10_000_000n;
        expect(due).toBe(rounded < 0n ? 0n : rounded > total ? total : rounded);
        expect(due % 10_000_000n).toBe(0n);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('taxShare: the tax part of what an invoice gives back', () => {
  const cents = (n: bigint) => n * 10_000_000n;
  it('parts of successive credits add up to exactly the tax once the whole total is given back (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 9n }), fc.nat(10_000), fc.array(fc.bigInt({ min: 1n, max: 10n ** 9n }), { minLength: 1, maxLength: 8 }), (subtotal, rateBasisPoints, weights) => {
        const tax = (subtotal * BigInt(rateBasisPoints)) / 10_000n;
        const total = subtotal + tax;
        // Split the total into parts proportional to the weights; the last part takes the rest.
        const sum = weights.reduce((s, w) => s + w, 0n);
        const parts = weights.map((w) => (total * w) / sum);
        parts[parts.length - 1] += total - parts.reduce((s, p) => s + p, 0n);
        let before = 0n;
        let taxGiven = 0n;
        for (const part of parts) {
          const share = taxShare(cents(part), cents(before), { total: cents(total), tax: cents(tax) }, 'USD');
          expect(share).toBeGreaterThanOrEqual(0n);
          expect(share).toBeLessThanOrEqual(cents(part));
          expect(share % 10_000_000n).toBe(0n);
          taxGiven += share;
          before += part;
        }
        expect(taxGiven).toBe(cents(tax));
      }),
      { numRuns: 1000 },
    );
  });

  it('is proportional, rounded half-even: 20 % tax on 12.00 of 23.64 = 3.94 x 12 / 23.64 = 2.0000 -> 2.00', () => {
    expect(taxShare(cents(1200n), 0n, { total: cents(2364n), tax: cents(394n) }, 'USD')).toBe(cents(200n));
    expect(taxShare(cents(1n), 0n, { total: cents(2n), tax: cents(1n) }, 'USD')).toBe(0n); // 0.5 cent: tie to even
    expect(taxShare(cents(1n), cents(1n), { total: cents(2n), tax: cents(1n) }, 'USD')).toBe(cents(1n));
    expect(taxShare(cents(5n), 0n, { total: 0n, tax: 0n }, 'USD')).toBe(0n);
  });

  it('divideHalfEven rounds ties to even', () => {
    expect([divideHalfEven(5n, 2n), divideHalfEven(7n, 2n), divideHalfEven(5n, 3n), divideHalfEven(4n, 3n)]).toEqual([2n, 4n, 2n, 1n]);
  });
});

describe('finalizationPostings', () => {
  it('credits a negative adjustment from revenue, charges a positive one to revenue, and the tax to the tax account', () => {
    const inv = { id: 'inv_1', customerId: 'cus_1', tax: 394n };
    expect(finalizationPostings({ ...inv, adjustment: -7237n }, 'grt_1').map((o) => [o.type, 'source' in o ? o.source : 'target' in o ? o.target : null, 'amount' in o ? o.amount : null])).toEqual([
      ['credit', 'revenue', 7237n],
      ['invoice_charge', 'tax', 394n],
    ]);
    expect(finalizationPostings({ ...inv, adjustment: 3n, tax: 0n }, 'grt_1')).toMatchObject([{ type: 'invoice_charge', target: 'revenue', amount: 3n, reason: 'invoice_adjustment' }]);
    expect(finalizationPostings({ ...inv, adjustment: 0n, tax: 0n }, 'grt_1')).toEqual([]);
  });
});

describe('late usage lines', () => {
  it('bill what the ledger charged for an earlier period since, rounded to minor units; nothing when nothing is new', () => {
    const inv = computeInvoice({
      currency: 'USD',
      taxRate: d('10'),
      lines: [],
      late: [
        { invoiceId: 'inv_a', period: '2026-10', charged: 5_250_000_000n, billed: 2_000_000_000n }, // 3.25 new
        { invoiceId: 'inv_b', period: '2026-11', charged: 4_000_000_000n, billed: 4_000_000_000n }, // nothing new
        { invoiceId: 'inv_c', period: '2026-09', charged: 1_004_000_000n, billed: 1_000_000_000n }, // 0.004 -> 0.00
      ],
    });
    expect(inv.lines.map((l) => [l.late?.invoiceId, l.amount, l.accrued])).toEqual([
      ['inv_a', 3_250_000_000n, 3_250_000_000n],
      ['inv_c', 0n, 4_000_000n],
    ]);
    // tax 10 % of 3.25 = 0.325 -> 0.32 (half-even)
    expect(inv).toMatchObject({ subtotal: 3_250_000_000n, tax: 320_000_000n, accrued: 3_254_000_000n, adjustment: -4_000_000n });
  });
});
