import type { Queryable } from '../platform/db.js';
import { parseDecimal, type Decimal } from '../platform/decimal.js';
import { assertInvariant } from '../platform/errors.js';
import {
  addCells,
  cellsOfEvent,
  finishGroups,
  groupKeyText,
  sortGroups,
  type GroupedTotals,
  type UsageDimension,
  type UsageEventFacts,
  type UsageGroup,
  type UsageGroupKey,
  type UsageWindow,
} from './usage-rules.js';

/** Read-only usage queries: windows over the hourly rollups, and the same answer from raw events. */

export interface UsageFilters {
  /** null: every customer (the operator's view). */
  customerId: string | null;
  productId: string | null;
  meterKey: string | null;
  apiKeyId: string | null;
  /** Whole UTC hours, from < to; `to` is exclusive. */
  from: Date;
  to: Date;
  window: UsageWindow;
  groupBy: ReadonlySet<UsageDimension>;
}

/** Most groups one query may answer; a bigger answer is refused (narrow the range or the groups). */
export const USAGE_GROUPS_MAX = 50_000;

export class TooManyGroupsError extends Error {}

// Interpolated into SQL, so only from this table (never from the request).
const WINDOW_SQL: Record<UsageWindow, string> = { hour: "'hour'", day: "'day'", month: "'month'" };
const DIMENSION_SQL: Record<UsageDimension, string> = { product: 'r.product_id', meter: 'r.meter_key', api_key: 'r.api_key_id' };

/**
 * The group columns and filters shared by both statements ($1..$7). Windows are truncated in UTC
 * whatever the session's time zone, and read back as text so neither driver converts them.
 * With `customerIds`, rows are also grouped by customer, for those customers only.
 */
function groupSql(f: UsageFilters, customerIds: readonly string[] | null) {
  assertInvariant(f.window in WINDOW_SQL, `unknown window ${f.window}`);
  const dim = (d: UsageDimension) => (f.groupBy.has(d) ? DIMENSION_SQL[d] : 'NULL::text');
  const select = `to_char(date_trunc(${WINDOW_SQL[f.window]}, r.bucket_start AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS') AS window_start,
    r.currency, ${dim('product')} AS product_id, ${dim('meter')} AS meter_key, ${dim('api_key')} AS api_key_id,
    ${customerIds ? 'r.customer_id' : 'NULL::text'} AS customer_id`;
  const where = `r.bucket_start >= $1 AND r.bucket_start < $2 AND ($3::text IS NULL OR r.customer_id = $3)
    AND ($4::text IS NULL OR r.product_id = $4) AND ($5::text IS NULL OR r.meter_key = $5) AND ($6::text IS NULL OR r.api_key_id = $6)
    AND ($7::text[] IS NULL OR r.customer_id = ANY($7::text[]))`;
  const params = [f.from, f.to, f.customerId, f.productId, f.meterKey, f.apiKeyId, customerIds];
  return { select, where, params };
}

interface GroupRow {
  window_start: string;
  currency: string;
  product_id: string | null;
  meter_key: string | null;
  api_key_id: string | null;
  customer_id: string | null;
}

function keyOfRow(row: GroupRow): UsageGroupKey {
  return {
    windowStart: new Date(`${row.window_start}Z`),
    currency: row.currency,
    productId: row.product_id,
    meterKey: row.meter_key,
    // Rollups store '' for events without an API key.
    apiKeyId: row.api_key_id === null || row.api_key_id === '' ? null : row.api_key_id,
  };
}

/** numeric columns arrive as text on both engines; they stay exact. */
const quantity = (text: string): Decimal => parseDecimal(text, { maxScale: 40, maxIntegerDigits: 60 });

/**
 * Usage per window and group from the hourly rollups: sums of sums, counts and charges, the max
 * of maxes, and distinct values of unique_count meters (counted over the whole window, from
 * usage_rollup_values, not added up per hour).
 */
export async function queryUsage(db: Queryable, f: UsageFilters): Promise<UsageGroup[]> {
  return sortGroups(await queryGroups(db, f, null));
}

/**
 * The same report for each of several customers, in the same two round trips whatever their
 * number (the GraphQL API's batched read): customer id -> groups. USAGE_GROUPS_MAX bounds the total.
 */
export async function queryUsageOfCustomers(db: Queryable, f: UsageFilters, customerIds: readonly string[]): Promise<Map<string, UsageGroup[]>> {
  const perCustomer = new Map<string, UsageGroup[]>(customerIds.map((id) => [id, []]));
  for (const { customerId, ...group } of await queryGroups(db, f, customerIds)) perCustomer.get(customerId!)?.push(group);
  return new Map([...perCustomer].map(([id, groups]) => [id, sortGroups(groups)]));
}

async function queryGroups(db: Queryable, f: UsageFilters, customerIds: readonly string[] | null): Promise<Array<UsageGroup & { customerId: string | null }>> {
  const { select, where, params } = groupSql(f, customerIds);
  const totals = await db.query<GroupRow & { sum: string; max: string | null; count: string; charged: string }>(
    `SELECT ${select}, sum(r.quantity_sum)::text AS sum, max(r.quantity_max)::text AS max,
       sum(r.event_count)::text AS count, sum(r.charged)::text AS charged
     FROM usage_rollups r WHERE ${where} GROUP BY 1, 2, 3, 4, 5, 6 LIMIT ${USAGE_GROUPS_MAX + 1}`,
    params,
  );
  if (totals.length > USAGE_GROUPS_MAX) throw new TooManyGroupsError(`more than ${USAGE_GROUPS_MAX} groups`);
  const distinct = await db.query<GroupRow & { unique_count: string }>(
    `SELECT ${select}, count(DISTINCT v.meter_key || chr(10) || v.value)::text AS unique_count
     FROM usage_rollup_values v
     JOIN usage_rollups r ON r.customer_id = v.customer_id AND r.product_id = v.product_id AND r.api_key_id = v.api_key_id
       AND r.meter_key = v.meter_key AND r.bucket_start = v.bucket_start
     WHERE ${where} GROUP BY 1, 2, 3, 4, 5, 6`,
    params,
  );
  const textOf = (row: GroupRow) => `${row.customer_id ?? ''}\n${groupKeyText(keyOfRow(row))}`;
  const uniqueCounts = new Map(distinct.map((row) => [textOf(row), BigInt(row.unique_count)]));
  const groups = totals.map((row) => ({
    ...keyOfRow(row),
    customerId: row.customer_id,
    sum: quantity(row.sum),
    max: row.max === null ? null : quantity(row.max),
    count: BigInt(row.count),
    charged: BigInt(row.charged),
    uniqueCount: uniqueCounts.get(textOf(row)) ?? 0n,
  }));
  assertInvariant(uniqueCounts.size <= groups.length, 'distinct values were counted for a group with no rollup');
  return groups;
}

/** What recomputing from events needs to know about meters and prices (the catalog answers). */
export interface UsageRating {
  /** Whether a meter counts distinct values (unique_count) rather than adding quantities. */
  isUniqueCount(meterKey: string): boolean;
  /** Exact cost of each priced meter of numeric quantities at the given price versions. */
  meterCosts(priceIds: string[], quantities: Record<string, string>): Map<string, Decimal>;
}

/** Events read per round trip when recomputing; memory grows with the groups, not the events. */
const RECOMPUTE_PAGE_SIZE = 5_000;

interface EventFactsRow {
  id: string;
  customer_id: string;
  product_id: string;
  api_key_id: string | null;
  currency: string;
  time: Date | string;
  quantities: Record<string, string>;
  price_ids: string[];
  charged: string;
}

/**
 * The same answer as queryUsage, computed from the raw events instead of the rollups: every
 * event in [from, to) is split over its meters again (usage-rules.ts) and added up in memory.
 * For the property tests and for operators checking the rollups; it reads every matching event,
 * so it is slow on long ranges.
 */
export async function recomputeUsageFromEvents(db: Queryable, f: UsageFilters, rating: UsageRating): Promise<UsageGroup[]> {
  const grouped: GroupedTotals = new Map();
  let after: string | null = null;
  for (;;) {
    const rows: EventFactsRow[] = await db.query<EventFactsRow>(
      `SELECT id, customer_id, product_id, api_key_id, currency, time, quantities, price_ids, charged::text AS charged
       FROM usage_events
       WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR customer_id = $3) AND ($4::text IS NULL OR product_id = $4)
         AND ($5::text IS NULL OR api_key_id = $5) AND ($6::text IS NULL OR id > $6)
       ORDER BY id LIMIT ${RECOMPUTE_PAGE_SIZE}`,
      [f.from, f.to, f.customerId, f.productId, f.apiKeyId, after],
    );
    for (const row of rows) {
      const cells = cellsOfRow(row, rating).filter((c) => f.meterKey === null || c.meterKey === f.meterKey);
      addCells(grouped, cells, f.window, f.groupBy);
    }
    if (rows.length < RECOMPUTE_PAGE_SIZE) break;
    after = rows[rows.length - 1].id;
  }
  if (grouped.size > USAGE_GROUPS_MAX) throw new TooManyGroupsError(`more than ${USAGE_GROUPS_MAX} groups`);
  return finishGroups(grouped);
}

function cellsOfRow(row: EventFactsRow, rating: UsageRating) {
  const event: UsageEventFacts = {
    customerId: row.customer_id,
    productId: row.product_id,
    apiKeyId: row.api_key_id,
    currency: row.currency,
    time: new Date(row.time),
    quantities: row.quantities,
    charged: BigInt(row.charged),
  };
  const unique = new Set(Object.keys(event.quantities).filter((m) => rating.isUniqueCount(m)));
  const numeric = Object.fromEntries(Object.entries(event.quantities).filter(([m]) => !unique.has(m)));
  const costs = event.charged === 0n ? new Map<string, Decimal>() : rating.meterCosts(row.price_ids, numeric);
  return cellsOfEvent(event, unique, costs, (text) => parseDecimal(text));
}
