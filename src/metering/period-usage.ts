import type { Queryable } from '../platform/db.js';
import { parseDecimal, type Decimal } from '../platform/decimal.js';

/**
 * A customer's usage over a billing period, per product and meter, from the hourly rollups: the
 * metering module's answer to "what did this customer use between from and to?" (billing reads
 * it through this function, never the tables). Every recorded event counts, whatever its status
 * (charged, settled or unpriced): what the customer used does not depend on how it was charged.
 */
export interface PeriodUsageRow {
  productId: string;
  meterKey: string;
  currency: string;
  /** Sum of the quantities (0 for unique_count meters, which record values). */
  sum: Decimal;
  max: Decimal | null;
  /** Events that carried this meter. */
  count: bigint;
  /** Distinct values of a unique_count meter over the whole period (0 for other meters). */
  uniqueCount: bigint;
  /** What the ledger charged for this meter's usage (ledger units), split over meters as in usage reports. */
  charged: bigint;
}

const exact = (text: string): Decimal => parseDecimal(text, { maxScale: 40, maxIntegerDigits: 60 });

/** `from` and `to` are whole UTC hours (rollups are hourly); `to` is exclusive. */
export async function periodUsage(db: Queryable, customerId: string, from: Date, to: Date): Promise<PeriodUsageRow[]> {
  const totals = await db.query<{ product_id: string; meter_key: string; currency: string; sum: string; max: string | null; count: string; charged: string }>(
    `SELECT product_id, meter_key, currency, sum(quantity_sum)::text AS sum, max(quantity_max)::text AS max,
       sum(event_count)::text AS count, sum(charged)::text AS charged
     FROM usage_rollups WHERE customer_id = $1 AND bucket_start >= $2 AND bucket_start < $3
     GROUP BY product_id, meter_key, currency ORDER BY product_id, meter_key, currency`,
    [customerId, from, to],
  );
  const distinct = await db.query<{ product_id: string; meter_key: string; n: string }>(
    `SELECT product_id, meter_key, count(DISTINCT value)::text AS n FROM usage_rollup_values
     WHERE customer_id = $1 AND bucket_start >= $2 AND bucket_start < $3 GROUP BY product_id, meter_key`,
    [customerId, from, to],
  );
  const unique = new Map(distinct.map((r) => [`${r.product_id}\n${r.meter_key}`, BigInt(r.n)]));
  return totals.map((r) => ({
    productId: r.product_id,
    meterKey: r.meter_key,
    currency: r.currency,
    sum: exact(r.sum),
    max: r.max === null ? null : exact(r.max),
    count: BigInt(r.count),
    uniqueCount: unique.get(`${r.product_id}\n${r.meter_key}`) ?? 0n,
    charged: BigInt(r.charged),
  }));
}
