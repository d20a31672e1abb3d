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
  delta: RollupDelta;
  /**
   * How many events sent each quantity (as sent, canonical): summed once per distinct value, not per
   * event. Null while the row has one event, whose quantity is the delta's sum and max as they are.
   */
  quantities: Map<string, number> | null;
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
      const unique = aggregationOf(meterKey) === 'unique_count';
      let group = groups.get(key);
      if (!group) {
        const sum = unique ? '0' : quantity;
        const delta = { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart: new Date(hour * HOUR_MS), currency: e.currency, sum, max: unique ? null : sum, count: 0, charged: 0n };
        group = { delta, quantities: null };
        groups.set(key, group);
      } else if (!unique) {
        group.quantities ??= new Map([[group.delta.sum, 1]]);
        group.quantities.set(quantity, (group.quantities.get(quantity) ?? 0) + 1);
      }
      group.delta.count += 1;
      group.delta.charged += e.split.get(meterKey) ?? 0n;
      if (unique) values.set(`${key}\n${quantity}`, { customerId: e.customerId, productId: e.productId, apiKeyId, meterKey, bucketStart: group.delta.bucketStart, value: quantity });
    }
  }
  const deltas: RollupDelta[] = [];
  for (const { delta, quantities } of groups.values()) deltas.push(quantities ? { ...delta, ...sumAndMax(quantities) } : delta);
  return { deltas, values: [...values.values()] };
}

function sumAndMax(quantities: Map<string, number>): { sum: string; max: string } {
  let sum = ZERO;
  let max: Decimal | null = null;
  for (const [text, count] of quantities) {
    const q = parseDecimal(text);
    sum = add(sum, mul(q, fromBigInt(BigInt(count))));
    if (max === null || cmp(q, max) > 0) max = q;
  }
  return { sum: formatDecimal(sum), max: formatDecimal(max!) };
}
