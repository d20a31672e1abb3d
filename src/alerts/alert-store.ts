import { columns } from '../platform/columns.js';
import type { Queryable } from '../platform/db.js';
import { SPEND_PERIODS, periodStart, type SpendPeriod } from '../ledger/model.js';
import type { AlertState } from './alert-rules.js';
import type { BatchReadSql } from '../ledger/batch-load.js';

type AlertRow = {
  customer_id: string;
  balance_low: string | null;
  spend_day: string | null;
  spend_month: string | null;
  balance_low_fired: boolean;
  balance_depleted_fired: boolean;
  spend_day_fired_for: Date | null;
  spend_month_fired_for: Date | null;
};

const big = (v: string | null) => (v === null ? null : BigInt(v));
const date = (v: Date | string | null) => (v === null ? null : new Date(v));

function fromRow(r: AlertRow): AlertState {
  return {
    customerId: r.customer_id,
    balanceLow: big(r.balance_low),
    spend: { day: big(r.spend_day), month: big(r.spend_month) },
    balanceLowFired: r.balance_low_fired,
    balanceDepletedFired: r.balance_depleted_fired,
    spendFiredFor: { day: date(r.spend_day_fired_for), month: date(r.spend_month_fired_for) },
  };
}

export async function loadAlerts(db: Queryable, customerIds: string[]): Promise<Map<string, AlertState>> {
  if (customerIds.length === 0) return new Map();
  const rows = await db.query<AlertRow>('SELECT * FROM customer_alerts WHERE customer_id = ANY($1)', [customerIds]);
  return new Map(rows.map((r) => [r.customer_id, fromRow(r)]));
}

/** Saves what fired and what re-armed; thresholds are only ever set by saveThresholds. */
export async function saveFired(tx: Queryable, states: AlertState[]): Promise<void> {
  if (states.length === 0) return;
  await tx.query(
    `INSERT INTO customer_alerts (customer_id, balance_low_fired, balance_depleted_fired, spend_day_fired_for, spend_month_fired_for)
     SELECT * FROM unnest($1::text[], $2::bool[], $3::bool[], $4::timestamptz[], $5::timestamptz[])
     ON CONFLICT (customer_id) DO UPDATE SET balance_low_fired = excluded.balance_low_fired,
       balance_depleted_fired = excluded.balance_depleted_fired, spend_day_fired_for = excluded.spend_day_fired_for,
       spend_month_fired_for = excluded.spend_month_fired_for`,
    columns(states, [(s) => s.customerId, (s) => s.balanceLowFired, (s) => s.balanceDepletedFired, (s) => s.spendFiredFor.day, (s) => s.spendFiredFor.month]),
  );
}

/** New thresholds re-arm every alert: the next batch evaluates the customer afresh. */
export async function saveThresholds(tx: Queryable, customerId: string, balanceLow: bigint | null, spend: Record<SpendPeriod, bigint | null>): Promise<void> {
  await tx.query(
    `INSERT INTO customer_alerts (customer_id, balance_low, spend_day, spend_month) VALUES ($1, $2, $3, $4)
     ON CONFLICT (customer_id) DO UPDATE SET balance_low = excluded.balance_low, spend_day = excluded.spend_day,
       spend_month = excluded.spend_month, balance_low_fired = false, balance_depleted_fired = false,
       spend_day_fired_for = NULL, spend_month_fired_for = NULL`,
    [customerId, balanceLow?.toString() ?? null, spend.day?.toString() ?? null, spend.month?.toString() ?? null],
  );
}

/**
 * Sets a customer's spend in the UTC day and month holding `now` (what the ledger says it spent in
 * each so far), when a spend alert is set: from then on each ledger batch adds to them (addCustomerSpend).
 */
export async function setCustomerSpend(tx: Queryable, customerId: string, spent: Record<SpendPeriod, bigint>, now: Date): Promise<void> {
  await tx.query(
    `INSERT INTO customer_spend (customer_id, period, period_start, amount)
     SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::int8[])
     ON CONFLICT (customer_id, period, period_start) DO UPDATE SET amount = excluded.amount`,
    [customerId, ...columns([...SPEND_PERIODS], [(period) => period, (period) => periodStart(period, now), (period) => spent[period]])],
  );
}

/** Adds spend (captured and charged) per customer to the current UTC day and month. */
export async function addCustomerSpend(tx: Queryable, spend: Map<string, bigint>, now: Date): Promise<void> {
  const rows = [...spend.entries()].flatMap(([customerId, amount]) =>
    SPEND_PERIODS.map((period) => ({ customerId, period, start: periodStart(period, now), amount })),
  );
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO customer_spend (customer_id, period, period_start, amount)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int8[])
     ON CONFLICT (customer_id, period, period_start) DO UPDATE SET amount = customer_spend.amount + excluded.amount`,
    columns(rows, [(r) => r.customerId, (r) => r.period, (r) => r.start, (r) => r.amount]),
  );
}

/**
 * What a ledger batch reads for the alerts of its customers, in its own read statement: their
 * thresholds and fired state, and the current day's and month's spend of those with a spend
 * threshold (amounts as text: JSON numbers would pass through a float).
 */
export const batchReads: Record<'alerts' | 'alert_spend', BatchReadSql> = {
  alerts: (p) => `SELECT json_agg(a) FROM (
      SELECT customer_id, balance_low::text AS balance_low, spend_day::text AS spend_day, spend_month::text AS spend_month,
        balance_low_fired, balance_depleted_fired, spend_day_fired_for, spend_month_fired_for
      FROM customer_alerts WHERE customer_id = ANY(${p.customerIds})) a`,
  // The current day's and month's spend of the customers with a spend threshold, each row by its whole key.
  alert_spend: (p) => `SELECT json_agg(s) FROM (
      SELECT s.customer_id, s.period, s.amount::text AS amount
      FROM customer_alerts a CROSS JOIN (VALUES ('day', ${p.dayStart}::timestamptz), ('month', ${p.monthStart}::timestamptz)) AS p(period, start)
      CROSS JOIN LATERAL (SELECT * FROM customer_spend s WHERE s.customer_id = a.customer_id AND s.period = p.period AND s.period_start = p.start OFFSET 0) s
      WHERE a.customer_id = ANY(${p.customerIds}) AND (a.spend_day IS NOT NULL OR a.spend_month IS NOT NULL)) s`,
};

/** The alert states a batch read (batchReads.alerts), by customer. */
export function alertsRead(read: unknown): Map<string, AlertState> {
  return new Map(((read ?? []) as AlertRow[]).map((r) => [r.customer_id, fromRow(r)]));
}

/** The spend a batch read (batchReads.alert_spend) of each customer with a spend threshold. */
export function spendRead(read: unknown, customerIds: string[]): Map<string, Record<SpendPeriod, bigint>> {
  const spent = new Map(customerIds.map((id) => [id, { day: 0n, month: 0n }]));
  for (const r of (read ?? []) as Array<{ customer_id: string; period: SpendPeriod; amount: string }>) spent.get(r.customer_id)![r.period] = BigInt(r.amount);
  return spent;
}
