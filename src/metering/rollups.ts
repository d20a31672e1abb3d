import { add, cmp, formatDecimal, parseDecimal, ZERO, type Decimal } from '../platform/decimal.js';
import type { RollupDelta, RollupValue } from './event-store.js';
import { windowStart, type UsageEventFacts } from './usage-rules.js';

/** Pure: what a set of new events adds to the hourly rollups. */

export interface RollupInput extends Omit<UsageEventFacts, 'charged'> {
  /** The event's charge per meter (splitCharge), adding up to what it was charged. */
  split: Map<string, bigint>;
}

export function rollupsOf(events: RollupInput[], aggregationOf: (meterKey: string) => string): { deltas: RollupDelta[]; values: RollupValue[] } {
  const groups = new Map<string, { delta: Omit<RollupDelta, 'sum' | 'max'>; sum: Decimal; max: Decimal | null }>();
  const values = new Map<string, RollupValue>();
  for (const e of events) {
    const bucketStart = windowStart(e.time, 'hour');
    const apiKeyId = e.apiKeyId ?? '';
    for (const [meterKey, quantity] of Object.entries(e.quantities)) {
      const key = [e.customerId, e.productId, apiKeyId, meterKey, bucketStart.toISOString()].join('\n');
      let group = groups.get(key);
      if (!group) {
        group = { delta: { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart, currency: e.currency, count: 0, charged: 0n }, sum: ZERO, max: null };
        groups.set(key, group);
      }
      group.delta.count += 1;
      group.delta.charged += e.split.get(meterKey) ?? 0n;
      if (aggregationOf(meterKey) === 'unique_count') {
        values.set(`${key}\n${quantity}`, { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart, value: quantity });
      } else {
        const q = parseDecimal(quantity);
        group.sum = add(group.sum, q);
        group.max = group.max === null || cmp(q, group.max) > 0 ? q : group.max;
      }
    }
  }
  return {
    deltas: [...groups.values()].map((g) => ({ ...g.delta, sum: formatDecimal(g.sum), max: g.max === null ? null : formatDecimal(g.max) })),
    values: [...values.values()],
  };
}
