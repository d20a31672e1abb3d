import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { QueryTable, type Column } from '../components/data-table';
import { Money } from '../components/money';
import { Panel } from '../components/page';
import { QueryView } from '../components/states';
import { UsageChart } from '../components/usage-chart';
import { formatDate, formatDateTime, formatNumber } from '../format';
import { dayStarts, lastDays, stackByDay, totalCharged } from '../portal/usage-math';
import { consoleKeys, useAdminUsage } from './console-queries';
import { StatusBadge } from './status-badge';

type ApiKey = paths['/v1/customers/{id}/api_keys']['get']['responses'][200]['content']['application/json']['data'][number];
type Invoice = paths['/v1/invoices']['get']['responses'][200]['content']['application/json']['data'][number];
type Payment = paths['/v1/payments']['get']['responses'][200]['content']['application/json']['data'][number];

const USAGE_DAYS = 30;

const keyColumns = (currency: string): Column<ApiKey>[] => [
  { header: 'Name', cell: (k) => k.name },
  { header: 'Prefix', cell: (k) => <code>{k.prefix}…</code> },
  { header: 'Status', cell: (k) => <StatusBadge status={k.status} good={['active']} bad={['revoked', 'expired']} /> },
  { header: 'Spend limit', numeric: true, cell: (k) => (k.spend_limit ? <><Money amount={k.spend_limit.amount} currency={currency} /> per {k.spend_limit.period}</> : '—') },
  { header: 'Max concurrency', numeric: true, cell: (k) => (k.max_concurrency === null ? '—' : formatNumber(k.max_concurrency)) },
  { header: 'Created', cell: (k) => formatDate(k.created_at) },
];

export function CustomerKeys({ customerId, currency }: { customerId: string; currency: string }) {
  const keys = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'api_keys'],
    queryFn: () => unwrap(api.GET('/v1/customers/{id}/api_keys', { params: { path: { id: customerId }, query: { limit: 100 } } })),
  });
  return (
    <Panel title="API keys">
      <QueryTable query={keys} caption="API keys" empty="No API keys." columns={keyColumns(currency)} rowKey={(k) => k.id} />
    </Panel>
  );
}

/** The customer's charges per day over the last 30 days, stacked by model. */
export function CustomerUsage({ customerId }: { customerId: string }) {
  const range = useMemo(() => lastDays(USAGE_DAYS, new Date()), []);
  const usage = useAdminUsage({ customer: customerId, ...range, window: 'day', group_by: 'product' });
  return (
    <Panel title={`Usage, last ${USAGE_DAYS} days`}>
      <QueryView query={usage} isEmpty={(u) => u.data.length === 0} empty={`No usage in the last ${USAGE_DAYS} days.`}>
        {(u) => (
          <>
            <p>
              Charged: <Money amount={totalCharged(u.data)} currency={u.data[0].currency} />
            </p>
            <UsageChart series={stackByDay(u.data, dayStarts(range.from, range.to), (row) => row.product ?? 'other')} currency={u.data[0].currency} label={`Charges per day over the last ${USAGE_DAYS} days, stacked by model`} />
          </>
        )}
      </QueryView>
    </Panel>
  );
}

const invoiceColumns: Column<Invoice>[] = [
  { header: 'Number', cell: (i) => (i.number === null ? 'draft' : `#${i.number}`) },
  { header: 'Period', cell: (i) => i.period },
  { header: 'Status', cell: (i) => <StatusBadge status={i.status} good={['paid']} bad={['uncollectible']} /> },
  { header: 'Total', numeric: true, cell: (i) => <Money amount={i.total} currency={i.currency} /> },
  { header: 'Remaining', numeric: true, cell: (i) => <Money amount={i.amount_remaining} currency={i.currency} /> },
  {
    header: 'PDF',
    hiddenHeader: true,
    // A plain GET with the session cookie: no token in the link.
    cell: (i) => (
      <a href={`/v1/invoices/${i.id}/pdf`} download>
        PDF<span className="visually-hidden"> of invoice {i.number ?? i.id}</span>
      </a>
    ),
  },
];

export function CustomerInvoices({ customerId }: { customerId: string }) {
  const invoices = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'invoices'],
    queryFn: () => unwrap(api.GET('/v1/invoices', { params: { query: { customer: customerId, limit: 100 } } })),
  });
  return (
    <Panel title="Invoices">
      <QueryTable query={invoices} caption="Invoices" empty="No invoices yet." columns={invoiceColumns} rowKey={(i) => i.id} />
    </Panel>
  );
}

const paymentColumns: Column<Payment>[] = [
  { header: 'Created', cell: (p) => formatDateTime(p.created_at) },
  { header: 'Kind', cell: (p) => p.kind.replace(/_/g, ' ') },
  { header: 'Status', cell: (p) => <StatusBadge status={p.status} good={['paid']} bad={['failed']} /> },
  { header: 'Amount', numeric: true, cell: (p) => <Money amount={p.amount} currency={p.currency} /> },
  { header: 'Failure', cell: (p) => (p.failure_message ? `${p.failure_message}${p.failure_code ? ` (${p.failure_code})` : ''}` : '—') },
];

export function CustomerPayments({ customerId }: { customerId: string }) {
  const payments = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'payments'],
    queryFn: () => unwrap(api.GET('/v1/payments', { params: { query: { customer: customerId, limit: 100 } } })),
  });
  return (
    <Panel title="Payments">
      <QueryTable query={payments} caption="Payments" empty="No payments yet." columns={paymentColumns} rowKey={(p) => p.id} />
    </Panel>
  );
}
