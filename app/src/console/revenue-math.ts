import { fromUnits, toUnits } from '../format';
import type { UsageRow } from '../portal/usage-math';

/** The usage API's range for the last `months` UTC calendar months, this one included. */
export function lastMonths(months: number, now: Date): { from: string; to: string } {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (months - 1), 1));
  const to = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 + 3_600_000);
  return { from: from.toISOString(), to: to.toISOString() };
}

/** Every UTC month start from `from` up to `to`. */
export function monthStarts(from: string, to: string): string[] {
  const months: string[] = [];
  const start = new Date(from);
  for (let d = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1)); d.getTime() < Date.parse(to); d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1))) {
    months.push(d.toISOString());
  }
  return months;
}

/** The exact sum of non-negative decimal strings (quantities carry up to 12 decimals), as a decimal string. */
export function sumQuantities(values: string[]): string {
  const scale = Math.max(0, ...values.map((v) => (v.split('.')[1] ?? '').length));
  const total = values.reduce((sum, v) => {
    const [whole, fraction = ''] = v.split('.');
    return sum + BigInt(whole + fraction.padEnd(scale, '0'));
  }, 0n);
  const digits = total.toString().padStart(scale + 1, '0');
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  const whole = digits.slice(0, digits.length - scale);
  return fraction ? `${whole}.${fraction}` : whole;
}

export interface ModelMeterTotal {
  model: string;
  meter: string;
  currency: string;
  /** Events that measured this meter. */
  events: number;
  /** The summed quantity; null for a unique_count meter (distinct values do not add up across windows). */
  quantity: string | null;
  charged: string;
}

/**
 * Usage and revenue per model, meter and currency over rows grouped by product and meter: exact
 * (BigInt) sums, the largest revenue first.
 */
export function totalsByModelAndMeter(rows: UsageRow[]): ModelMeterTotal[] {
  const totals = new Map<string, { model: string; meter: string; currency: string; events: number; sums: string[]; unique: boolean; units: bigint }>();
  for (const row of rows) {
    const model = row.product ?? 'other';
    const meter = row.meter ?? '—';
    const key = `${row.currency}|${model}|${meter}`;
    const total = totals.get(key) ?? { model, meter, currency: row.currency, events: 0, sums: [], unique: false, units: 0n };
    total.events += row.count;
    if (row.sum !== null) total.sums.push(row.sum);
    if (row.unique_count !== null) total.unique = true;
    total.units += toUnits(row.charged);
    totals.set(key, total);
  }
  return [...totals.values()]
    .sort((a, b) => (a.units === b.units ? `${a.model}|${a.meter}`.localeCompare(`${b.model}|${b.meter}`) : a.units > b.units ? -1 : 1))
    .map(({ sums, unique, units, ...rest }) => ({ ...rest, quantity: unique ? null : sumQuantities(sums), charged: fromUnits(units) }));
}

/** The currencies present in the rows, most rows first (the chart draws one currency at a time). */
export function currenciesOf(rows: UsageRow[]): string[] {
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.currency, (counts.get(row.currency) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([c]) => c);
}

const monthLabel = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' });
/** A UTC month as "Nov 2026". */
export const formatMonth = (iso: string) => monthLabel.format(new Date(iso));
