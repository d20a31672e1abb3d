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

export interface ModelTotal {
  model: string;
  currency: string;
  events: number;
  charged: string;
}

/** Revenue per model and currency over the rows, exactly (BigInt units), largest first. */
export function totalsByModel(rows: UsageRow[]): ModelTotal[] {
  const totals = new Map<string, { model: string; currency: string; events: number; units: bigint }>();
  for (const row of rows) {
    const model = row.product ?? 'other';
    const key = `${row.currency}|${model}`;
    const total = totals.get(key) ?? { model, currency: row.currency, events: 0, units: 0n };
    total.events += row.count;
    total.units += toUnits(row.charged);
    totals.set(key, total);
  }
  return [...totals.values()]
    .sort((a, b) => (a.units === b.units ? a.model.localeCompare(b.model) : a.units > b.units ? -1 : 1))
    .map(({ units, ...rest }) => ({ ...rest, charged: fromUnits(units) }));
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
