import { add, fromBigInt, isNegative, max, ZERO, type Decimal } from '../platform/decimal.js';
import { assertInvariant } from '../platform/errors.js';

/**
 * The usage read side's rules, pure (no I/O): how an event's charge is split over its meters,
 * UTC windows, and how hourly rollup cells add up into windows. The SQL in usage-queries.ts does
 * the same sums in the database; recomputing from raw events goes through these functions, so the
 * two can check each other. See docs/metering.md, "Usage".
 */

// ---------------------------------------------------------------------------------------------
// Splitting an event's charge over its meters

export interface MeterCost {
  meter: string;
  /** The meter's exact (unrounded) cost; a bigint is taken as a whole number. */
  exact: Decimal | bigint;
}

/**
 * Splits `charged` ledger units over the meters in proportion to their exact costs, so that the
 * shares add up to `charged` exactly. Meters are taken in key order (code units): the order an
 * event's fields were sent in is not kept (jsonb sorts keys), and a split must be recomputable
 * from the stored event. Share i is floor(charged * C_i / C) - floor(charged * C_(i-1) / C) where
 * C_i is the running total of costs, so every share is within one unit of its exact proportion,
 * a meter that cost nothing gets nothing, and the last meter gets what remains. When no meter
 * cost anything (only possible for a charge of 0, since a charge never exceeds the rounded cost)
 * the last meter carries it all. The result's entries are in key order.
 */
export function splitCharge(charged: bigint, meterCosts: readonly MeterCost[]): Map<string, bigint> {
  assertInvariant(charged >= 0n, `a charge to split must not be negative (${charged})`);
  if (meterCosts.length === 1) {
    // The common case (one priced meter), taken once per ingested event: all of it goes there.
    const only = meterCosts[0]!;
    assertInvariant(!isNegative(typeof only.exact === 'bigint' ? fromBigInt(only.exact) : only.exact), `meter ${only.meter} has a negative cost`);
    return new Map([[only.meter, charged]]);
  }
  const sorted = [...meterCosts].sort((a, b) => compareText(a.meter, b.meter));
  if (sorted.length === 0) {
    assertInvariant(charged === 0n, `a charge of ${charged} has no meter to go to`);
    return new Map();
  }
  const costs = sorted.map((m) => (typeof m.exact === 'bigint' ? fromBigInt(m.exact) : m.exact));
  sorted.forEach((m, i) => {
    assertInvariant(!isNegative(costs[i]), `meter ${m.meter} has a negative cost`);
    assertInvariant(i === 0 || sorted[i - 1].meter !== m.meter, `meter ${m.meter} appears twice in one split`);
  });
  const scale = Math.max(...costs.map((c) => c.scale));
  const units = costs.map((c) => c.coef * 10n ** BigInt(scale - c.scale));
  const total = units.reduce((a, b) => a + b, 0n);
  const out = new Map<string, bigint>();
  let running = 0n;
  let given = 0n;
  sorted.forEach((m, i) => {
    running += units[i];
    const upTo = total === 0n ? (i === sorted.length - 1 ? charged : 0n) : (charged * running) / total; // floor: all >= 0
    out.set(m.meter, upTo - given);
    given = upTo;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Windows (UTC)

export type UsageWindow = 'hour' | 'day' | 'month';
export const USAGE_WINDOWS: readonly UsageWindow[] = ['hour', 'day', 'month'];
/** Most windows one usage query may span (10,000 hours is about 14 months). */
export const USAGE_WINDOWS_MAX = 10_000;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A UTC date from parts; unlike Date.UTC, years 0-99 stay years 0-99. */
function utc(year: number, month: number, day: number, hour = 0): Date {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(hour, 0, 0, 0);
  return d;
}

/** The start of the UTC window containing `at`. */
export function windowStart(at: Date, window: UsageWindow): Date {
  switch (window) {
    case 'hour':
      return utc(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate(), at.getUTCHours());
    case 'day':
      return utc(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
    case 'month':
      return utc(at.getUTCFullYear(), at.getUTCMonth(), 1);
  }
}

/** The start of the window after the one starting at `start`. */
export function nextWindowStart(start: Date, window: UsageWindow): Date {
  switch (window) {
    case 'hour':
      return new Date(start.getTime() + HOUR_MS);
    case 'day':
      return new Date(start.getTime() + DAY_MS);
    case 'month':
      return utc(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
  }
}

/** How many windows meet [from, to) (from < to). */
export function windowCount(from: Date, to: Date, window: UsageWindow): number {
  assertInvariant(from.getTime() < to.getTime(), 'windowCount needs from < to');
  const first = windowStart(from, window);
  const last = windowStart(new Date(to.getTime() - 1), window);
  if (window === 'month') {
    return (last.getUTCFullYear() - first.getUTCFullYear()) * 12 + (last.getUTCMonth() - first.getUTCMonth()) + 1;
  }
  const length = window === 'hour' ? HOUR_MS : DAY_MS;
  return Math.round((last.getTime() - first.getTime()) / length) + 1;
}

/** Rollups are hourly: a query's bounds must fall on whole UTC hours to be answered exactly. */
export function isWholeHour(at: Date): boolean {
  return at.getTime() % HOUR_MS === 0;
}

// ---------------------------------------------------------------------------------------------
// Adding usage up

/**
 * What a set of measurements adds up to. `values` holds the distinct values seen by unique_count
 * meters as `meter + "\n" + value` (meter keys never contain a newline), so distinct values of
 * different meters never merge.
 */
export interface UsageTotals {
  sum: Decimal;
  max: Decimal | null;
  count: bigint;
  charged: bigint;
  values: ReadonlySet<string>;
}

export const NO_USAGE: UsageTotals = Object.freeze({ sum: ZERO, max: null, count: 0n, charged: 0n, values: new Set<string>() });

/** Sum of sums, max of maxes, sum of counts and charges, union of values: associative and commutative. */
export function combineTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  let values = a.values;
  if (b.values.size > 0) values = a.values.size === 0 ? b.values : new Set([...a.values, ...b.values]);
  return {
    sum: add(a.sum, b.sum),
    max: a.max === null ? b.max : b.max === null ? a.max : max(a.max, b.max),
    count: a.count + b.count,
    charged: a.charged + b.charged,
    values,
  };
}

export const uniqueValueKey = (meter: string, value: string) => `${meter}\n${value}`;

/** One meter of one customer, product and API key over one UTC hour: a usage_rollups row. */
export interface UsageCell {
  customerId: string;
  productId: string;
  apiKeyId: string | null;
  meterKey: string;
  currency: string;
  bucketStart: Date;
  totals: UsageTotals;
}

export type UsageDimension = 'product' | 'meter' | 'api_key';
export const USAGE_DIMENSIONS: readonly UsageDimension[] = ['product', 'meter', 'api_key'];

/** The key of a reply row: its window, its currency and the dimensions grouped by (else null). */
export interface UsageGroupKey {
  windowStart: Date;
  currency: string;
  productId: string | null;
  meterKey: string | null;
  apiKeyId: string | null;
}

export interface UsageGroup extends UsageGroupKey {
  sum: Decimal;
  max: Decimal | null;
  count: bigint;
  charged: bigint;
  /** Distinct (meter, value) pairs of unique_count meters in the group. */
  uniqueCount: bigint;
}

export type GroupedTotals = Map<string, { key: UsageGroupKey; totals: UsageTotals }>;

export function groupKeyText(k: UsageGroupKey): string {
  return JSON.stringify([k.windowStart.toISOString(), k.currency, k.productId, k.meterKey, k.apiKeyId]);
}

export function groupKeyOf(cell: UsageCell, window: UsageWindow, groupBy: ReadonlySet<UsageDimension>): UsageGroupKey {
  return {
    windowStart: windowStart(cell.bucketStart, window),
    currency: cell.currency,
    productId: groupBy.has('product') ? cell.productId : null,
    meterKey: groupBy.has('meter') ? cell.meterKey : null,
    apiKeyId: groupBy.has('api_key') ? cell.apiKeyId : null,
  };
}

/** Adds cells into `into` (mutated and returned), one entry per window and group. */
export function addCells(into: GroupedTotals, cells: Iterable<UsageCell>, window: UsageWindow, groupBy: ReadonlySet<UsageDimension>): GroupedTotals {
  for (const cell of cells) {
    const key = groupKeyOf(cell, window, groupBy);
    const text = groupKeyText(key);
    const current = into.get(text);
    into.set(text, { key, totals: current ? combineTotals(current.totals, cell.totals) : cell.totals });
  }
  return into;
}

/** Two groupings of disjoint cells, as one (a new map). */
export function mergeGrouped(a: GroupedTotals, b: GroupedTotals): GroupedTotals {
  const out: GroupedTotals = new Map(a);
  for (const [text, entry] of b) {
    const current = out.get(text);
    out.set(text, current ? { key: entry.key, totals: combineTotals(current.totals, entry.totals) } : entry);
  }
  return out;
}

/** Groups in reply order: by window, currency, product, meter, API key (code-unit order, nulls first). */
export function finishGroups(grouped: GroupedTotals): UsageGroup[] {
  return sortGroups(
    [...grouped.values()].map(({ key, totals }) => ({
      ...key,
      sum: totals.sum,
      max: totals.max,
      count: totals.count,
      charged: totals.charged,
      uniqueCount: BigInt(totals.values.size),
    })),
  );
}

export function sortGroups<T extends UsageGroupKey>(groups: T[]): T[] {
  return groups.sort(
    (a, b) =>
      a.windowStart.getTime() - b.windowStart.getTime() ||
      compareText(a.currency, b.currency) ||
      compareText(a.productId ?? '', b.productId ?? '') ||
      compareText(a.meterKey ?? '', b.meterKey ?? '') ||
      compareText(a.apiKeyId ?? '', b.apiKeyId ?? ''),
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// From raw events (the recomputation the rollups are checked against)

/** What the read side needs of one stored event. */
export interface UsageEventFacts {
  customerId: string;
  productId: string;
  apiKeyId: string | null;
  currency: string;
  time: Date;
  /** meter key -> canonical decimal string, or the value to count for a unique_count meter. */
  quantities: Record<string, string>;
  charged: bigint;
}

/**
 * One cell per meter of an event, in its UTC hour. `exactCosts` holds the exact cost of each
 * priced meter (an unpriced event or a unique_count meter has none); the event's charge is split
 * over the priced meters with splitCharge. `quantity` parses a non-unique meter's quantity.
 */
export function cellsOfEvent(
  event: UsageEventFacts,
  uniqueMeters: ReadonlySet<string>,
  exactCosts: ReadonlyMap<string, Decimal>,
  quantity: (text: string) => Decimal,
): UsageCell[] {
  for (const meter of exactCosts.keys()) assertInvariant(meter in event.quantities, `a cost for meter ${meter}, which the event did not measure`);
  const shares = splitCharge(event.charged, [...exactCosts].map(([meter, exact]) => ({ meter, exact })));
  const bucketStart = windowStart(event.time, 'hour');
  return Object.keys(event.quantities).map((meter) => {
    const charged = shares.get(meter) ?? 0n;
    const raw = event.quantities[meter];
    const unique = uniqueMeters.has(meter);
    const q = unique ? ZERO : quantity(raw);
    return {
      customerId: event.customerId,
      productId: event.productId,
      apiKeyId: event.apiKeyId,
      meterKey: meter,
      currency: event.currency,
      bucketStart,
      totals: { sum: q, max: unique ? null : q, count: 1n, charged, values: unique ? new Set([uniqueValueKey(meter, raw)]) : new Set<string>() },
    };
  });
}
