import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { Field, FormStatus } from '../components/field';
import { Money } from '../components/money';
import { BalanceStats } from '../components/balance-stats';
import { QueryTable, type Column } from '../components/data-table';
import { Page, Panel } from '../components/page';
import { QueryView } from '../components/states';
import { formatDate, formatDateTime } from '../format';
import { portalKeys, useBalance } from './portal-queries';

type Invoice = paths['/v1/me/invoices']['get']['responses'][200]['content']['application/json']['data'][number];
type Payment = paths['/v1/me/payments']['get']['responses'][200]['content']['application/json']['data'][number];
type AutoTopUpPut = paths['/v1/me/auto_top_up']['put']['requestBody']['content']['application/json'];

/** Send the browser to a Stripe Checkout page (top-up or saving a card). */
const goTo = (url: string) => window.location.assign(url);

/** Top-ups through Stripe Checkout, auto top-up, invoices (PDF) and payments. */
export function BillingPage() {
  const balance = useBalance();
  return (
    <Page title="Billing">
      <BalanceStats query={balance} />
      <div className="two-columns">
        <TopUp currency={balance.data?.currency} />
        <AutoTopUp />
      </div>
      <Invoices />
      <Payments />
    </Page>
  );
}

function TopUp({ currency }: { currency?: string }) {
  const [amount, setAmount] = useState('25.00');
  const topUp = useMutation({
    mutationFn: () => unwrap(api.POST('/v1/me/top_ups', { body: { amount: amount.trim() } })),
    onSuccess: (payment) => {
      if (payment.url) goTo(payment.url);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    topUp.mutate();
  };
  return (
    <Panel title="Top up">
      <form className="form" onSubmit={submit}>
        <Field label={`Amount${currency ? ` (${currency})` : ''}`} inputMode="decimal" required pattern="\d+(\.\d{1,2})?" value={amount} onChange={(e) => setAmount(e.target.value)} hint="You pay on Stripe's secure page and come back here." />
        <button type="submit" className="primary" disabled={topUp.isPending}>
          {topUp.isPending || topUp.isSuccess ? 'Opening checkout…' : 'Top up'}
        </button>
      </form>
      <FormStatus error={topUp.error} />
    </Panel>
  );
}

function AutoTopUp() {
  const client = useQueryClient();
  const settings = useQuery({ queryKey: portalKeys.autoTopUp, queryFn: () => unwrap(api.GET('/v1/me/auto_top_up')) });
  const [form, setForm] = useState<AutoTopUpPut | null>(null);
  const save = useMutation({
    mutationFn: (body: AutoTopUpPut) => unwrap(api.PUT('/v1/me/auto_top_up', { body })),
    onSuccess: (saved) => {
      client.setQueryData(portalKeys.autoTopUp, saved);
      setForm(null);
    },
  });
  const saveCard = useMutation({
    mutationFn: () => unwrap(api.POST('/v1/me/card_setups', { body: {} })),
    onSuccess: (setup) => goTo(setup.url),
  });
  return (
    <Panel title="Auto top-up">
      <QueryView query={settings}>
        {(s) => {
          const current = form ?? { enabled: s.enabled, threshold: s.threshold ?? '10.00', amount: s.amount ?? '50.00' };
          return (
            <form
              className="form"
              onSubmit={(e) => {
                e.preventDefault();
                save.mutate(current);
              }}
            >
              <p className="muted">
                {s.payment_method ? 'A saved card is charged when your balance runs low.' : 'Auto top-up needs a saved card: pay a top-up or save a card first.'}
                {s.disabled_reason ? ` It was turned off (${s.disabled_reason}).` : ''}
              </p>
              <label className="checkbox">
                <input type="checkbox" checked={current.enabled} onChange={(e) => setForm({ ...current, enabled: e.target.checked })} /> Top up automatically
              </label>
              <Field label={`When available falls below (${s.currency})`} inputMode="decimal" required pattern="\d+(\.\d{1,2})?" value={current.threshold} onChange={(e) => setForm({ ...current, threshold: e.target.value })} />
              <Field label={`Add (${s.currency})`} inputMode="decimal" required pattern="\d+(\.\d{1,2})?" value={current.amount} onChange={(e) => setForm({ ...current, amount: e.target.value })} />
              <div className="actions">
                <button type="submit" className="primary" disabled={save.isPending}>
                  Save auto top-up
                </button>
                <button type="button" onClick={() => saveCard.mutate()} disabled={saveCard.isPending}>
                  {s.payment_method ? 'Replace card' : 'Save a card'}
                </button>
              </div>
              <FormStatus error={save.error ?? saveCard.error} success={save.isSuccess && !form ? 'Saved.' : null} />
            </form>
          );
        }}
      </QueryView>
    </Panel>
  );
}

const invoiceColumns: Column<Invoice>[] = [
  { header: 'Number', cell: (inv) => inv.number ?? 'Draft' },
  { header: 'Period', cell: (inv) => `${formatDate(inv.period_start)} – ${formatDate(new Date(Date.parse(inv.period_end) - 1).toISOString())}` },
  { header: 'Status', cell: (inv) => <span className={inv.status === 'paid' ? 'badge ok' : 'badge'}>{inv.status}</span> },
  { header: 'Total', numeric: true, cell: (inv) => <Money amount={inv.total} currency={inv.currency} /> },
  { header: 'Still owed', numeric: true, cell: (inv) => <Money amount={inv.amount_remaining} currency={inv.currency} /> },
  {
    header: 'PDF',
    // A plain link: the cookie authenticates the GET, and the browser saves the file.
    cell: (inv) => (
      <a href={`/v1/me/invoices/${encodeURIComponent(inv.id)}/pdf`} download={`invoice-${inv.number ?? inv.id}.pdf`}>
        Download PDF<span className="visually-hidden"> of invoice {inv.number ?? inv.id}</span>
      </a>
    ),
  },
];

function Invoices() {
  const invoices = useQuery({ queryKey: portalKeys.invoices, queryFn: () => unwrap(api.GET('/v1/me/invoices', { params: { query: { limit: 100 } } })) });
  return (
    <Panel title="Invoices">
      <QueryTable query={invoices} caption="Invoices" empty="No invoices yet." columns={invoiceColumns} rowKey={(inv) => inv.id} />
    </Panel>
  );
}

const paymentColumns: Column<Payment>[] = [
  { header: 'Date', cell: (p) => formatDateTime(p.created_at) },
  { header: 'Kind', cell: (p) => p.kind.replace(/_/g, ' ') },
  { header: 'Status', cell: (p) => <span className={p.status === 'paid' ? 'badge ok' : p.status === 'failed' ? 'badge bad' : 'badge'}>{p.status.replace(/_/g, ' ')}</span> },
  { header: 'Amount', numeric: true, cell: (p) => <Money amount={p.amount} currency={p.currency} /> },
];

function Payments() {
  const payments = useQuery({ queryKey: portalKeys.payments, queryFn: () => unwrap(api.GET('/v1/me/payments', { params: { query: { limit: 100 } } })) });
  return (
    <Panel title="Payments">
      <QueryTable query={payments} caption="Payments" empty="No payments yet." columns={paymentColumns} rowKey={(p) => p.id} />
    </Panel>
  );
}
