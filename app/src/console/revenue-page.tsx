import { useMemo, useState } from 'react';
import { DataTable, type Column } from '../components/data-table';
import { SelectField } from '../components/field';
import { Money } from '../components/money';
import { Page, Panel } from '../components/page';
import { QueryView } from '../components/states';
import { UsageChart } from '../components/usage-chart';
import { formatDate, formatDay, formatNumber } from '../format';
import { dayStarts, lastDays, stackByDay, type UsageRow } from '../portal/usage-math';
import { useAdminUsage } from './console-queries';
import { currenciesOf, formatMonth, lastMonths, monthStarts, totalsByModelAndMeter, type ModelMeterTotal } from './revenue-math';

const WINDOWS = {
  day: { label: 'Per day, last 30 days', range: () => lastDays(30, new Date()), starts: dayStarts, tick: formatDay, cell: formatDate },
  month: { label: 'Per month, last 12 months', range: () => lastMonths(12, new Date()), starts: monthStarts, tick: formatMonth, cell: formatMonth },
} as const;
type Window = keyof typeof WINDOWS;

const totalColumns: Column<ModelMeterTotal>[] = [
  { header: 'Model', cell: (t) => t.model },
  { header: 'Meter', cell: (t) => t.meter },
  { header: 'Events', numeric: true, cell: (t) => formatNumber(t.events) },
  { header: 'Quantity', numeric: true, cell: (t) => (t.quantity === null ? 'distinct per window' : formatNumber(t.quantity, 12)) },
  { header: 'Revenue', numeric: true, cell: (t) => <Money amount={t.charged} currency={t.currency} /> },
];

/**
 * What every customer was charged, by model over time (GET /v1/usage grouped by product, all
 * customers). The chart draws Numbers (it only draws); every figure shown is exact.
 */
export function RevenuePage() {
  const [window, setWindow] = useState<Window>('day');
  const range = useMemo(() => WINDOWS[window].range(), [window]);
  // By product and meter: a row's count is then the events that measured that meter (a row over
  // several meters would count a two-meter event twice) and its sum a quantity of one unit.
  const usage = useAdminUsage({ ...range, window, group_by: 'product,meter' });
  return (
    <Page title="Revenue and usage by model">
      <form className="toolbar" aria-label="Revenue range" onSubmit={(e) => e.preventDefault()}>
        <SelectField label="Period" value={window} onChange={(e) => setWindow(e.target.value as Window)}>
          {Object.entries(WINDOWS).map(([value, w]) => (
            <option key={value} value={value}>
              {w.label}
            </option>
          ))}
        </SelectField>
      </form>
      <QueryView query={usage} isEmpty={(u) => u.data.length === 0} empty="No usage in this period.">
        {(u) => <Revenue rows={u.data} window={window} from={range.from} to={range.to} />}
      </QueryView>
    </Page>
  );
}

function Revenue({ rows, window, from, to }: { rows: UsageRow[]; window: Window; from: string; to: string }) {
  const { starts, tick, cell } = WINDOWS[window];
  const rowColumns: Column<UsageRow>[] = [
    { header: window === 'day' ? 'Day (UTC)' : 'Month (UTC)', cell: (r) => cell(r.window_start) },
    { header: 'Model', cell: (r) => r.product ?? 'other' },
    { header: 'Meter', cell: (r) => r.meter ?? '—' },
    { header: 'Events', numeric: true, cell: (r) => formatNumber(r.count) },
    { header: 'Quantity', numeric: true, cell: (r) => (r.sum !== null ? formatNumber(r.sum, 12) : r.unique_count !== null ? formatNumber(r.unique_count) : '—') },
    { header: 'Revenue', numeric: true, cell: (r) => <Money amount={r.charged} currency={r.currency} /> },
  ];
  const sorted = [...rows].sort((a, b) => b.window_start.localeCompare(a.window_start) || `${a.product}|${a.meter}`.localeCompare(`${b.product}|${b.meter}`));
  return (
    <>
      {currenciesOf(rows).map((currency) => (
        <Panel key={currency} title={`Revenue in ${currency}`}>
          <UsageChart
            series={stackByDay(rows.filter((r) => r.currency === currency), starts(from, to), (r) => r.product ?? 'other')}
            currency={currency}
            label={`Revenue in ${currency} ${window === 'day' ? 'per day' : 'per month'}, stacked by model`}
            tickLabel={tick}
          />
        </Panel>
      ))}
      <Panel title="Totals by model and meter">
        <DataTable caption="Revenue and usage by model over the period" rows={totalsByModelAndMeter(rows)} columns={totalColumns} rowKey={(t) => `${t.currency}|${t.model}|${t.meter}`} />
      </Panel>
      <Panel title={window === 'day' ? 'Per day' : 'Per month'}>
        <DataTable caption={`Revenue by model ${window === 'day' ? 'per day' : 'per month'}`} rows={sorted} columns={rowColumns} rowKey={(r) => `${r.window_start}|${r.currency}|${r.product}|${r.meter}`} />
      </Panel>
    </>
  );
}
