import { add, cmp, formatDecimal, fromBigInt, mul, parseDecimal, ZERO, type Decimal } from '../platform/decimal.js';
import type { RollupDelta, RollupValue } from './event-store.js';
import type { UsageEventFacts } from './usage-rules.js';

/** Pure: what a set of new events adds to the hourly rollups. */

export interface RollupInput extends Omit<UsageEventFacts, 'charged'> {
  /** The event's charge per meter (splitCharge), adding up to what it was charged. */
  split: Map<string, bigint>;
}

const HOUR_MS = 3_600_000;

interface Group {
  delta: Omit<RollupDelta, 'sum' | 'max'>;
  /** How many events sent each quantity (as sent, canonical): summed once per distinct value, not per event. */
  quantities: Map<string, number>;
}

// Runs inside the ingest transaction, with the batch's customer accounts locked: per event it only
// counts; the decimal arithmetic is per distinct quantity of a rollup row (a batch repeats a few).
export function rollupsOf(events: RollupInput[], aggregationOf: (meterKey: string) => string): { deltas: RollupDelta[]; values: RollupValue[] } {
  const groups = new Map<string, Group>();
  const values = new Map<string, RollupValue>();
  for (const e of events) {
    // The UTC hour as a number: the same bucket as windowStart(time, 'hour'), without a Date per event.
    const hour = Math.floor(e.time.getTime() / HOUR_MS);
    const apiKeyId = e.apiKeyId ?? '';
    for (const [meterKey, quantity] of Object.entries(e.quantities)) {
      const key = `${e.customerId}\n${e.productId}\n${apiKeyId}\n${meterKey}\n${hour}`;
      let group = groups.get(key);
      if (!group) {
        const bucketStart = new Date(hour * HOUR_MS);
        group = { delta: { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart, currency: e.currency, count: 0, charged: 0n }, quantities: new Map() };
        groups.set(key, group);
      }
      group.delta.count += 1;
      group.delta.charged += e.split.get(meterKey) ?? 0n;
      if (aggregationOf(meterKey) === 'unique_count') {
        values.set(`${key}\n${quantity}`, { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart: group.delta.bucketStart, value: quantity });
      } else {
        group.quantities.set(quantity, (group.quantities.get(quantity) ?? 0) + 1);
      }
    }
  }
  return { deltas: [...groups.values()].map(deltaOf), values: [...values.values()] };
}

function deltaOf({ delta, quantities }: Group): RollupDelta {
  let sum = ZERO;
  let max: Decimal | null = null;
  for (const [text, count] of quantities) {
    const q = parseDecimal(text);
    sum = add(sum, mul(q, fromBigInt(BigInt(count))));
    if (max === null || cmp(q, max) > 0) max = q;
  }
  return { ...delta, sum: formatDecimal(sum), max: max === null ? null : formatDecimal(max) };
}
