import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { add, cmp, formatDecimal, parseDecimal, ZERO } from '../../src/platform/decimal.js';
import { rollupsOf, type RollupInput } from '../../src/metering/rollups.js';
import { windowStart } from '../../src/metering/usage-rules.js';

// rollupsOf aggregates per distinct quantity and buckets by hour number (it runs with the batch's
// accounts locked); the rows it returns must be those of adding every event up one by one.

const aggregation = (meter: string) => (meter === 'visitors' ? 'unique_count' : 'sum');
const HOUR = 3_600_000;
const base = Date.UTC(2026, 10, 21, 22, 0, 0);

const arbEvent: fc.Arbitrary<RollupInput> = fc
  .record({
    customerId: fc.constantFrom('cus_a', 'cus_b'),
    apiKeyId: fc.constantFrom(null, 'key_1'),
    atMs: fc.integer({ min: -2 * HOUR, max: 3 * HOUR }),
    meters: fc.uniqueArray(fc.constantFrom('megapixels', 'tokens', 'visitors'), { minLength: 1, maxLength: 3 }),
    quantity: fc.constantFrom('0', '1.5', '2', '0.000001', '123456789.25'),
    visitor: fc.constantFrom('u1', 'u2', 'u3'),
    charge: fc.bigInt({ min: 0n, max: 1000n }),
  })
  .map((r) => ({
    customerId: r.customerId, productId: 'prd_1', apiKeyId: r.apiKeyId, currency: 'USD', time: new Date(base + r.atMs),
    quantities: Object.fromEntries(r.meters.map((m) => [m, m === 'visitors' ? r.visitor : r.quantity])),
    split: new Map(r.meters.filter((m) => m !== 'visitors').map((m) => [m, r.charge])),
  }));

/** One row per customer, product, key, meter and hour, each event added in turn. */
function oneByOne(events: RollupInput[]) {
  const rows = new Map<string, { sum: string; max: string | null; count: number; charged: bigint; values: Set<string> }>();
  for (const e of events) {
    for (const [meter, quantity] of Object.entries(e.quantities)) {
      const key = [e.customerId, e.productId, e.apiKeyId ?? '', meter, windowStart(e.time, 'hour').toISOString()].join(' ');
      const row = rows.get(key) ?? { sum: '0', max: null, count: 0, charged: 0n, values: new Set<string>() };
      row.count++;
      row.charged += e.split.get(meter) ?? 0n;
      if (aggregation(meter) === 'unique_count') row.values.add(quantity);
      else {
        row.sum = formatDecimal(add(parseDecimal(row.sum), parseDecimal(quantity)));
        row.max = row.max === null || cmp(parseDecimal(quantity), parseDecimal(row.max)) > 0 ? quantity : row.max;
      }
      rows.set(key, row);
    }
  }
  return rows;
}

describe('rollupsOf', () => {
  it('returns the rows of adding every event up one by one (sum, max, count, charge, distinct values, UTC hour)', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { maxLength: 60 }), (events) => {
        const { deltas, values } = rollupsOf(events, aggregation);
        const expected = oneByOne(events);
        expect(deltas).toHaveLength(expected.size);
        for (const d of deltas) {
          const row = expected.get([d.customerId, d.productId, d.apiKeyId, d.meterKey, d.bucketStart.toISOString()].join(' '))!;
          expect(row).toBeDefined();
          const unique = aggregation(d.meterKey) === 'unique_count';
          expect({ sum: d.sum, max: d.max, count: d.count, charged: d.charged }).toEqual({
            sum: unique ? formatDecimal(ZERO) : row.sum, max: unique ? null : row.max && formatDecimal(parseDecimal(row.max)), count: row.count, charged: row.charged,
          });
          const mine = values.filter((v) => [v.customerId, v.productId, v.apiKeyId, v.meterKey, v.bucketStart.toISOString()].join(' ') === [d.customerId, d.productId, d.apiKeyId, d.meterKey, d.bucketStart.toISOString()].join(' '));
          expect(new Set(mine.map((v) => v.value))).toEqual(row.values);
          expect(mine).toHaveLength(row.values.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
