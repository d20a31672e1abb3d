import { useMemo, useState } from 'react';
import { SelectField } from '../components/field';
import { Money } from '../components/money';
import { DataTable, type Column } from '../components/data-table';
import { Page, Panel } from '../components/page';
import { QueryView } from '../components/states';
import { UsageChart } from '../components/usage-chart';
import { formatDate, formatNumber } from '../format';
import { useApiKeys, usePricing, useUsage } from './portal-queries';
import { dayStarts, lastDays, stackByDay, totalCharged, usageCsv, type UsageQuery, type UsageRow } from './usage-math';

const RANGES = [7, 30, 90] as const;
const STACKS = { product: 'model', meter: 'meter', api_key_id: 'API key' } as const;
type StackKey = keyof typeof STACKS;

/** Usage per day with filters (range, model, meter, key), a stacked chart, the rows and a CSV export. */
export function UsagePage() {
  const [days, setDays] = useState<(typeof RANGES)[number]>(30);
  const [product, setProduct] = useState('');
  const [meter, setMeter] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [stack, setStack] = useState<StackKey>('product');
  const range = useMemo(() => lastDays(days, new Date()), [days]);
  const query: UsageQuery = {
    ...range,
    window: 'day',
    group_by: 'product,meter,api_key',
    ...(product ? { product } : {}),
    ...(meter ? { meter } : {}),
    ...(apiKey ? { api_key: apiKey } : {}),
  };
  const usage = useUsage(query);
  const pricing = usePricing();
  const keys = useApiKeys();
  const products = pricing.data?.data.map((entry) => entry.product.key) ?? [];
  const meters = [...new Set(pricing.data?.data.flatMap((entry) => entry.prices.map((p) => p.meter)) ?? [])].sort();
  const keyName = (id: string | null) => (id === null ? 'no key' : (keys.data?.data.find((k) => k.id === id)?.name ?? id));
  return (
    <Page title="Usage" actions={usage.data && usage.data.data.length > 0 ? <CsvButton rows={usage.data.data} name={`usage-${range.from.slice(0, 10)}-${days}d.csv`} /> : null}>
      <form className="toolbar" aria-label="Usage filters" onSubmit={(e) => e.preventDefault()}>
        <SelectField label="Range" value={days} onChange={(e) => setDays(Number(e.target.value) as (typeof RANGES)[number])}>
          {RANGES.map((d) => (
            <option key={d} value={d}>
              Last {d} days
            </option>
          ))}
        </SelectField>
        <SelectField label="Model" value={product} onChange={(e) => setProduct(e.target.value)}>
          <option value="">All models</option>
          {products.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </SelectField>
        <SelectField label="Meter" value={meter} onChange={(e) => setMeter(e.target.value)}>
          <option value="">All meters</option>
          {meters.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </SelectField>
        <SelectField label="API key" value={apiKey} onChange={(e) => setApiKey(e.target.value)}>
          <option value="">All keys</option>
          {keys.data?.data.map((k) => (
            <option key={k.id} value={k.id}>
              {k.name} ({k.prefix}…)
            </option>
          ))}
        </SelectField>
        <SelectField label="Stack chart by" value={stack} onChange={(e) => setStack(e.target.value as StackKey)}>
          {Object.entries(STACKS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </SelectField>
      </form>
      <QueryView query={usage} isEmpty={(u) => u.data.length === 0} empty="No usage matches these filters.">
        {(u) => <UsageResults rows={u.data} from={range.from} to={range.to} stack={stack} keyName={keyName} />}
      </QueryView>
    </Page>
  );
}

const usageColumns = (keyName: (id: string | null) => string): Column<UsageRow>[] => [
  { header: 'Day (UTC)', cell: (row) => formatDate(row.window_start) },
  { header: 'Model', cell: (row) => row.product ?? '—' },
  { header: 'Meter', cell: (row) => row.meter ?? '—' },
  { header: 'API key', cell: (row) => keyName(row.api_key_id) },
  { header: 'Events', numeric: true, cell: (row) => formatNumber(row.count) },
  { header: 'Quantity', numeric: true, cell: (row) => (row.sum !== null ? formatNumber(row.sum) : row.unique_count !== null ? formatNumber(row.unique_count) : '—') },
  { header: 'Charged', numeric: true, cell: (row) => <Money amount={row.charged} currency={row.currency} /> },
];

function UsageResults({ rows, from, to, stack, keyName }: { rows: UsageRow[]; from: string; to: string; stack: StackKey; keyName: (id: string | null) => string }) {
  const currency = rows[0].currency;
  const label = (row: UsageRow) => (stack === 'api_key_id' ? keyName(row.api_key_id) : (row[stack] ?? 'other'));
  const series = stackByDay(rows, dayStarts(from, to), label);
  const sorted = [...rows].sort((a, b) => b.window_start.localeCompare(a.window_start) || (a.product ?? '').localeCompare(b.product ?? ''));
  return (
    <>
      <Panel title="Charges per day">
        <p>
          Total: <Money amount={totalCharged(rows)} currency={currency} />
        </p>
        <UsageChart series={series} currency={currency} label={`Charges per day, stacked by ${STACKS[stack]}`} />
      </Panel>
      <DataTable caption="Usage per day, model, meter and key" rows={sorted} columns={usageColumns(keyName)} rowKey={(row) => `${row.window_start}|${row.product}|${row.meter}|${row.api_key_id}`} />
    </>
  );
}

/** Downloads the rows as a CSV file made in the browser (no second request). */
function CsvButton({ rows, name }: { rows: UsageRow[]; name: string }) {
  const download = () => {
    const url = URL.createObjectURL(new Blob([usageCsv(rows)], { type: 'text/csv;charset=utf-8' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <button type="button" onClick={download}>
      Export CSV
    </button>
  );
}
