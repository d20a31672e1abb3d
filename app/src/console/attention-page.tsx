import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { QueryTable, type Column } from '../components/data-table';
import { Money } from '../components/money';
import { Page, Panel } from '../components/page';
import { formatDateTime, formatNumber } from '../format';
import { consoleKeys } from './console-queries';
import { StatusBadge } from './status-badge';

type UsageEvent = paths['/v1/events']['get']['responses'][200]['content']['application/json']['data'][number];
type Payment = paths['/v1/payments']['get']['responses'][200]['content']['application/json']['data'][number];
type Endpoint = paths['/v1/webhook_endpoints']['get']['responses'][200]['content']['application/json']['data'][number];

/** How many of each the page lists (newest first); the heading says when there are more. */
const SHOWN = 50;

const customerLink = (id: string | null) => (id ? <Link to={`/console/customers/${id}`}>{id}</Link> : 'operator');

const eventColumns: Column<UsageEvent>[] = [
  { header: 'Event time', cell: (e) => formatDateTime(e.time) },
  // Its price history, where the missing price is published.
  { header: 'Model', cell: (e) => <Link to={`/console/catalog?product=${encodeURIComponent(e.product ?? e.product_id)}`}>{e.product ?? e.product_id}</Link> },
  { header: 'Quantities', cell: (e) => Object.entries(e.quantities).map(([meter, q]) => `${meter} ${formatNumber(q)}`).join(', ') },
  { header: 'Customer', cell: (e) => customerLink(e.customer_id) },
  { header: 'Source / id', cell: (e) => <code>{`${e.source} / ${e.event_id}`}</code> },
];

const paymentColumns: Column<Payment>[] = [
  { header: 'Failed', cell: (p) => formatDateTime(p.failed_at ?? p.created_at) },
  { header: 'Customer', cell: (p) => customerLink(p.customer_id) },
  { header: 'Kind', cell: (p) => p.kind.replace(/_/g, ' ') },
  { header: 'Amount', numeric: true, cell: (p) => <Money amount={p.amount} currency={p.currency} /> },
  { header: 'Why', cell: (p) => [p.failure_message, p.failure_code && `(${p.failure_code})`].filter(Boolean).join(' ') || '—' },
];

const endpointColumns: Column<Endpoint>[] = [
  { header: 'URL', cell: (e) => <code>{e.url}</code> },
  { header: 'State', cell: (e) => <StatusBadge status={e.enabled ? 'failing' : 'disabled'} good={[]} bad={['failing', 'disabled']} /> },
  { header: 'Since', cell: (e) => (e.failing_since ? formatDateTime(e.failing_since) : formatDateTime(e.updated_at)) },
  { header: 'Customer', cell: (e) => customerLink(e.customer_id) },
  { header: 'Reason', cell: (e) => e.disabled_reason ?? (e.enabled ? 'deliveries are failing and being retried' : 'turned off') },
];

function useAttention<T>(name: string, read: () => Promise<T>) {
  return useQuery({ queryKey: [...consoleKeys.attention, name], queryFn: read, refetchInterval: 60_000 });
}

const more = (page: { has_more: boolean } | undefined) => (page?.has_more ? ` (newest ${SHOWN})` : '');

/** What needs the operator: usage no price covers, payments that failed, webhook endpoints that fail. */
export function AttentionPage() {
  const unpriced = useAttention('unpriced', () => unwrap(api.GET('/v1/events', { params: { query: { status: 'unpriced', limit: SHOWN } } })));
  const failedPayments = useAttention('payments', () => unwrap(api.GET('/v1/payments', { params: { query: { status: 'failed', limit: SHOWN } } })));
  const endpoints = useAttention('endpoints', () => unwrap(api.GET('/v1/webhook_endpoints', { params: { query: { failing: true, limit: SHOWN } } })));
  return (
    <Page title="Needs attention">
      <Panel title={`Unpriced events${more(unpriced.data)}`}>
        <p className="muted">Usage recorded with no price in force for one of its meters: it was not charged. Publish a price in the catalog; events keep the price of their own time.</p>
        <QueryTable query={unpriced} caption="Unpriced events" empty="No unpriced events." columns={eventColumns} rowKey={(e) => e.id} />
      </Panel>
      <Panel title={`Failed payments${more(failedPayments.data)}`}>
        <QueryTable query={failedPayments} caption="Failed payments" empty="No failed payments." columns={paymentColumns} rowKey={(p) => p.id} />
      </Panel>
      <Panel title={`Failing webhook endpoints${more(endpoints.data)}`}>
        <QueryTable query={endpoints} caption="Failing or disabled webhook endpoints" empty="Every webhook endpoint is delivering." columns={endpointColumns} rowKey={(e) => e.id} />
      </Panel>
    </Page>
  );
}
