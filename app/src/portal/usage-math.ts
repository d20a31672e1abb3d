import type { paths } from '../api/schema';
import { fromUnits, toUnits } from '../format';

export type UsageQuery = NonNullable<paths['/v1/me/usage']['get']['parameters']['query']>;
export type UsageRow = paths['/v1/me/usage']['get']['responses'][200]['content']['application/json']['data'][number];

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The next whole UTC hour after `now` (usage ranges end on whole hours, exclusive). */
export function nextHour(now: Date): Date {
  return new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS);
}

/** The last `days` UTC calendar days including today, as the usage API's from/to. */
export function lastDays(days: number, now: Date): { from: string; to: string } {
  const todayStart = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  return { from: new Date(todayStart - (days - 1) * DAY_MS).toISOString(), to: nextHour(now).toISOString() };
}

/** The last `days` × 24 hours up to the next whole hour: the burn-rate window. */
export function lastHours(days: number, now: Date): { from: string; to: string } {
  const to = nextHour(now);
  return { from: new Date(to.getTime() - days * DAY_MS).toISOString(), to: to.toISOString() };
}

/** Every UTC day start from `from` up to `to`, so a chart shows the quiet days too. */
export function dayStarts(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += DAY_MS) days.push(new Date(t).toISOString());
  return days;
}

/** The sum of the rows' charges, exactly (BigInt units), as a decimal string. */
export function totalCharged(rows: UsageRow[]): string {
  return fromUnits(rows.reduce((sum, row) => sum + toUnits(row.charged), 0n));
}

/** Average spend per day over `days`: total / days, truncated at 10^-9. */
export function burnRatePerDay(rows: UsageRow[], days: number): string {
  return fromUnits(toUnits(totalCharged(rows)) / BigInt(days));
}

/**
 * Whole days the available balance lasts at the daily burn rate; null when nothing is being spent
 * (no runway to speak of). Zero or less available: 0 days.
 */
export function runwayDays(available: string, burnPerDay: string): bigint | null {
  const burn = toUnits(burnPerDay);
  if (burn <= 0n) return null;
  const left = toUnits(available);
  return left <= 0n ? 0n : left / burn;
}

export interface StackedSeries {
  /** One point per day: `day` plus the charge of each series key on it. */
  points: Array<{ day: string } & Record<string, number | string>>;
  keys: string[];
}

/**
 * Rows grouped by `key` (product, meter or api key) into one point per day for a stacked chart.
 * Chart values are Numbers: a chart only draws, it never adds money up for display (the tables
 * and totals use the exact decimal strings).
 */
export function stackByDay(rows: UsageRow[], days: string[], key: (row: UsageRow) => string): StackedSeries {
  const byDay = new Map<string, Map<string, bigint>>(days.map((d) => [d, new Map()]));
  const keys = new Set<string>();
  for (const row of rows) {
    const day = new Date(Math.floor(Date.parse(row.window_start) / DAY_MS) * DAY_MS).toISOString();
    const series = key(row);
    keys.add(series);
    const sums = byDay.get(day) ?? new Map<string, bigint>();
    byDay.set(day, sums);
    sums.set(series, (sums.get(series) ?? 0n) + toUnits(row.charged));
  }
  const sortedKeys = [...keys].sort();
  const points = [...byDay.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([day, sums]) => {
      const point: { day: string } & Record<string, number | string> = { day };
      for (const k of sortedKeys) point[k] = Number(fromUnits(sums.get(k) ?? 0n));
      return point;
    });
  return { points, keys: sortedKeys };
}

const CSV_COLUMNS = ['window_start', 'product', 'meter', 'api_key_id', 'currency', 'count', 'sum', 'max', 'unique_count', 'charged'] as const;

/** The usage rows as CSV (RFC 4180 quoting), the columns of the API. */
export function usageCsv(rows: UsageRow[]): string {
  const cell = (value: unknown) => {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [CSV_COLUMNS.join(','), ...rows.map((row) => CSV_COLUMNS.map((c) => cell(row[c])).join(','))].join('\r\n') + '\r\n';
}
