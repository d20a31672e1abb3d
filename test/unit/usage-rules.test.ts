import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatDecimal, parseDecimal, ZERO, type Decimal } from '../../src/platform/decimal.js';
import {
  addCells,
  cellsOfEvent,
  combineTotals,
  finishGroups,
  isWholeHour,
  mergeGrouped,
  nextWindowStart,
  NO_USAGE,
  splitCharge,
  uniqueValueKey,
  windowCount,
  windowStart,
  type GroupedTotals,
  type UsageCell,
  type UsageDimension,
  type UsageTotals,
  type UsageWindow,
} from '../../src/metering/usage-rules.js';

const pow10 = (n: number) => 10n ** BigInt(n);
const WINDOWS: UsageWindow[] = ['hour', 'day', 'month'];
const iso = (d: Date) => d.toISOString();

// ---------------------------------------------------------------------------------------------
// splitCharge

const arbCost = fc.record({ coef: fc.bigInt({ min: 0n, max: 10n ** 24n }), scale: fc.integer({ min: 0, max: 21 }) });
/** Distinct meter keys with costs, some zero, in a random order. */
const arbMeterCosts = fc.uniqueArray(
  fc.record({ meter: fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), exact: fc.oneof(arbCost, fc.constant(ZERO)) }),
  { minLength: 1, maxLength: 8, selector: (m) => m.meter },
);
const arbCharge = fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: 0n, max: 10n ** 19n }));

/** Exact cost as an integer at a common scale, to compare proportions without division. */
function atScale(d: Decimal, scale: number): bigint {
  return d.coef * pow10(scale - d.scale);
}

describe('splitCharge', () => {
  it('splits in proportion, floors the running total, and leaves the remainder on the last meter by key', () => {
    expect([...splitCharge(10n, [{ meter: 'c', exact: 1n }, { meter: 'a', exact: 1n }, { meter: 'b', exact: 1n }])]).toEqual([['a', 3n], ['b', 3n], ['c', 4n]]);
    expect([...splitCharge(1n, [{ meter: 'output_tokens', exact: parseDecimal('0.5') }, { meter: 'input_tokens', exact: parseDecimal('0.5') }])]).toEqual([
      ['input_tokens', 0n],
      ['output_tokens', 1n],
    ]);
    // A meter that cost nothing (a unique_count meter, a free meter) gets nothing, wherever it sorts.
    expect([...splitCharge(7n, [{ meter: 'z', exact: ZERO }, { meter: 'a', exact: 3n }])]).toEqual([['a', 7n], ['z', 0n]]);
    expect([...splitCharge(0n, [{ meter: 'b', exact: ZERO }, { meter: 'a', exact: ZERO }])]).toEqual([['a', 0n], ['b', 0n]]);
    expect([...splitCharge(5n, [{ meter: 'b', exact: ZERO }, { meter: 'a', exact: ZERO }])]).toEqual([['a', 0n], ['b', 5n]]);
    expect(splitCharge(0n, []).size).toBe(0);
  });

  it('refuses impossible input loudly: a negative charge, a negative cost, a meter twice, a charge with no meter', () => {
    expect(() => splitCharge(-1n, [{ meter: 'a', exact: 1n }])).toThrow(/negative/);
    expect(() => splitCharge(1n, [{ meter: 'a', exact: -1n }])).toThrow(/negative/);
    expect(() => splitCharge(1n, [{ meter: 'a', exact: 1n }, { meter: 'a', exact: 2n }])).toThrow(/twice/);
    expect(() => splitCharge(1n, [])).toThrow(/no meter/);
  });

  it('always adds up to the charge exactly, never negative, each share within one unit of its proportion', () => {
    fc.assert(
      fc.property(arbCharge, arbMeterCosts, (charged, meterCosts) => {
        const split = splitCharge(charged, meterCosts);
        expect([...split.keys()]).toEqual(meterCosts.map((m) => m.meter).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        expect([...split.values()].reduce((a, b) => a + b, 0n)).toBe(charged);
        const scale = Math.max(...meterCosts.map((m) => (m.exact as Decimal).scale));
        const total = meterCosts.reduce((sum, m) => sum + atScale(m.exact as Decimal, scale), 0n);
        for (const m of meterCosts) {
          const share = split.get(m.meter)!;
          expect(share >= 0n).toBe(true);
          if (total === 0n) continue;
          // |share - charged * c / C| < 1  <=>  |share * C - charged * c| < C
          const diff = share * total - charged * atScale(m.exact as Decimal, scale);
          expect(diff < total && -diff < total, `${m.meter}: ${share} vs ${charged} * ${formatDecimal(m.exact as Decimal)}`).toBe(true);
          if (atScale(m.exact as Decimal, scale) === 0n) expect(share).toBe(0n);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('does not depend on the order the meters were sent in', () => {
    fc.assert(
      fc.property(arbCharge, arbMeterCosts, fc.nat(), (charged, meterCosts, seed) => {
        const shuffled = [...meterCosts].sort((a, b) => ((a.meter.length * 31 + seed) % 7) - ((b.meter.length * 31 + seed) % 7)).reverse();
        expect(splitCharge(charged, shuffled)).toEqual(splitCharge(charged, meterCosts));
      }),
    );
  });

  it('takes bigint costs as whole numbers, like the same Decimal', () => {
    fc.assert(
      fc.property(arbCharge, fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 5 }), (charged, costs) => {
        const asBigint = costs.map((exact, i) => ({ meter: `m${i}`, exact }));
        const asDecimal = costs.map((exact, i) => ({ meter: `m${i}`, exact: { coef: exact * 1000n, scale: 3 } }));
        expect(splitCharge(charged, asBigint)).toEqual(splitCharge(charged, asDecimal));
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Windows

const arbInstant = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-12-31T23:59:59.999Z'), noInvalidDate: true });
const arbWindow = fc.constantFrom<UsageWindow>(...WINDOWS);

describe('UTC windows', () => {
  it('start at the UTC hour, day or month, whatever the process time zone', () => {
    const t = new Date('2024-02-29T23:59:59.999Z');
    expect(iso(windowStart(t, 'hour'))).toBe('2024-02-29T23:00:00.000Z');
    expect(iso(windowStart(t, 'day'))).toBe('2024-02-29T00:00:00.000Z');
    expect(iso(windowStart(t, 'month'))).toBe('2024-02-01T00:00:00.000Z');
    expect(iso(nextWindowStart(windowStart(t, 'month'), 'month'))).toBe('2024-03-01T00:00:00.000Z');
    expect(iso(nextWindowStart(new Date('2026-12-01T00:00:00Z'), 'month'))).toBe('2027-01-01T00:00:00.000Z');
    // Years 0-99 stay themselves (Date.UTC would move them to 1900-1999).
    expect(iso(windowStart(new Date('0042-07-15T12:34:56Z'), 'month'))).toBe('0042-07-01T00:00:00.000Z');
    expect(isWholeHour(new Date('2026-11-21T10:00:00Z'))).toBe(true);
    expect(isWholeHour(new Date('2026-11-21T10:00:00.001Z'))).toBe(false);
  });

  it('contain their instants and nest: hour in day in month', () => {
    fc.assert(
      fc.property(arbInstant, arbWindow, (at, window) => {
        const start = windowStart(at, window);
        const next = nextWindowStart(start, window);
        expect(start.getTime() <= at.getTime() && at.getTime() < next.getTime()).toBe(true);
        expect(windowStart(start, window)).toEqual(start);
        expect(windowStart(new Date(next.getTime() - 1), window)).toEqual(start);
        expect(isWholeHour(start)).toBe(true);
        expect(windowStart(windowStart(at, 'hour'), 'day')).toEqual(windowStart(at, 'day'));
        expect(windowStart(windowStart(at, 'day'), 'month')).toEqual(windowStart(at, 'month'));
      }),
      { numRuns: 2_000 },
    );
  });

  it('are counted like walking them one by one', () => {
    const arbRange = fc.tuple(arbInstant, fc.integer({ min: 1, max: 200 * 24 * 3_600_000 })).map(([from, ms]) => [from, new Date(from.getTime() + ms)] as const);
    fc.assert(
      fc.property(arbRange, arbWindow, ([from, to], window) => {
        let walked = 0;
        for (let s = windowStart(from, window); s < to; s = nextWindowStart(s, window)) walked++;
        expect(windowCount(from, to, window)).toBe(walked);
      }),
      { numRuns: 300 },
    );
    expect(windowCount(new Date('2026-01-31T23:00:00Z'), new Date('2026-02-01T01:00:00Z'), 'month')).toBe(2);
    expect(windowCount(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-02T00:00:00Z'), 'day')).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Adding cells up

const arbDecimal = fc.record({ coef: fc.bigInt({ min: 0n, max: 10n ** 15n }), scale: fc.integer({ min: 0, max: 12 }) });
const arbTotals: fc.Arbitrary<UsageTotals> = fc.record({
  sum: arbDecimal,
  max: fc.option(arbDecimal, { nil: null }),
  count: fc.bigInt({ min: 0n, max: 1000n }),
  charged: fc.bigInt({ min: 0n, max: 10n ** 15n }),
  values: fc.uniqueArray(fc.constantFrom('users\nu1', 'users\nu2', 'users\nu3', 'sessions\nu1'), { maxLength: 4 }).map((v) => new Set(v)),
});

const HOUR = 3_600_000;
const arbCell: fc.Arbitrary<UsageCell> = fc.record({
  customerId: fc.constantFrom('cus_a', 'cus_b'),
  productId: fc.constantFrom('prd_x', 'prd_y'),
  apiKeyId: fc.constantFrom(null, 'key_1', 'key_2'),
  meterKey: fc.constantFrom('megapixels', 'users', 'tokens'),
  currency: fc.constantFrom('USD', 'EUR'),
  // Hours around month and year ends.
  bucketStart: fc.integer({ min: -40, max: 40 }).chain((h) => fc.constantFrom(Date.parse('2026-12-31T12:00:00Z'), Date.parse('2027-02-28T12:00:00Z')).map((base) => new Date(base + h * HOUR))),
  totals: arbTotals,
});
const arbGroupBy = fc.subarray<UsageDimension>(['product', 'meter', 'api_key']).map((d) => new Set(d));

const plain = (grouped: GroupedTotals) =>
  finishGroups(grouped).map((g) => ({ ...g, sum: formatDecimal(g.sum), max: g.max === null ? null : formatDecimal(g.max) }));
const canon = (t: UsageTotals) => ({ ...t, sum: formatDecimal(t.sum), max: t.max === null ? null : formatDecimal(t.max), values: [...t.values].sort() });

describe('adding usage up', () => {
  it('combines totals associatively and commutatively, with NO_USAGE as identity', () => {
    fc.assert(
      fc.property(arbTotals, arbTotals, arbTotals, (a, b, c) => {
        expect(canon(combineTotals(a, combineTotals(b, c)))).toEqual(canon(combineTotals(combineTotals(a, b), c)));
        expect(canon(combineTotals(a, b))).toEqual(canon(combineTotals(b, a)));
        expect(canon(combineTotals(a, NO_USAGE))).toEqual(canon(a));
      }),
    );
  });

  it('gives the same windows however the hourly cells are split into batches', () => {
    fc.assert(
      fc.property(fc.array(arbCell, { maxLength: 40 }), fc.nat(40), arbWindow, arbGroupBy, (cells, cut, window, groupBy) => {
        const whole = addCells(new Map(), cells, window, groupBy);
        const parts = mergeGrouped(addCells(new Map(), cells.slice(0, cut), window, groupBy), addCells(new Map(), cells.slice(cut), window, groupBy));
        expect(plain(parts)).toEqual(plain(whole));
      }),
    );
  });

  it('adds hour windows up into days and months exactly like the hourly cells themselves', () => {
    fc.assert(
      fc.property(fc.array(arbCell, { maxLength: 40 }), fc.constantFrom<UsageWindow>('day', 'month'), arbGroupBy, (cells, window, groupBy) => {
        // Group by hour, keeping every dimension, then treat each hour group as a cell again.
        const all = new Set<UsageDimension>(['product', 'meter', 'api_key']);
        const byHour = [...addCells(new Map(), cells.map((c) => ({ ...c, customerId: 'cus_any' })), 'hour', all).values()].map(({ key, totals }) => ({
          customerId: 'cus_any', productId: key.productId!, apiKeyId: key.apiKeyId, meterKey: key.meterKey!, currency: key.currency, bucketStart: key.windowStart, totals,
        }));
        expect(plain(addCells(new Map(), byHour, window, groupBy))).toEqual(plain(addCells(new Map(), cells, window, groupBy)));
      }),
    );
  });

  it('counts distinct values over the whole window, not per hour', () => {
    const cell = (hour: number, value: string): UsageCell => ({
      customerId: 'cus_a', productId: 'prd_x', apiKeyId: null, meterKey: 'users', currency: 'USD',
      bucketStart: new Date(Date.parse('2026-11-21T00:00:00Z') + hour * HOUR),
      totals: { sum: ZERO, max: null, count: 1n, charged: 0n, values: new Set([uniqueValueKey('users', value)]) },
    });
    const groups = finishGroups(addCells(new Map(), [cell(0, 'u1'), cell(1, 'u1'), cell(2, 'u2')], 'day', new Set(['meter'])));
    expect(groups.map((g) => [iso(g.windowStart), g.meterKey, g.count, g.uniqueCount])).toEqual([['2026-11-21T00:00:00.000Z', 'users', 3n, 2n]]);
    const hourly = finishGroups(addCells(new Map(), [cell(0, 'u1'), cell(1, 'u1'), cell(2, 'u2')], 'hour', new Set(['meter'])));
    expect(hourly.map((g) => g.uniqueCount)).toEqual([1n, 1n, 1n]);
  });
});

describe('cellsOfEvent', () => {
  const event = {
    customerId: 'cus_a', productId: 'prd_llm', apiKeyId: 'key_1', currency: 'USD', time: new Date('2026-11-21T10:59:59.999Z'),
    quantities: { output_tokens: '300', input_tokens: '1000', users: 'alice' }, charged: 5n,
  };

  it('makes one cell per meter in the event hour, splitting the charge over the priced meters', () => {
    const costs = new Map([['input_tokens', parseDecimal('0.0006')], ['output_tokens', parseDecimal('0.00024')]]);
    const cells = cellsOfEvent(event, new Set(['users']), costs, (t) => parseDecimal(t));
    expect(cells.map((c) => [c.meterKey, iso(c.bucketStart), formatDecimal(c.totals.sum), c.totals.max && formatDecimal(c.totals.max), c.totals.count, c.totals.charged, [...c.totals.values]])).toEqual([
      // 5 * 0.0006 / 0.00084 = 3.57: input_tokens (first by key) gets 3, output_tokens what remains.
      ['output_tokens', '2026-11-21T10:00:00.000Z', '300', '300', 1n, 2n, []],
      ['input_tokens', '2026-11-21T10:00:00.000Z', '1000', '1000', 1n, 3n, []],
      ['users', '2026-11-21T10:00:00.000Z', '0', null, 1n, 0n, ['users\nalice']],
    ]);
  });

  it('refuses a cost for a meter the event did not measure', () => {
    expect(() => cellsOfEvent(event, new Set(['users']), new Map([['gpu_seconds', parseDecimal('1')]]), (t) => parseDecimal(t))).toThrow(/did not measure/);
  });
});
