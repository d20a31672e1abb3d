import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { QueryTable, type Column } from '../components/data-table';
import { Field, FormStatus, SelectField } from '../components/field';
import { Money } from '../components/money';
import { Panel } from '../components/page';
import { formatDateTime, formatMoney } from '../format';
import { transactionColumns } from '../portal/transactions-table';
import { consoleKeys, type Customer } from './console-queries';

type Grant = paths['/v1/customers/{id}/credit_grants']['get']['responses'][200]['content']['application/json']['data'][number];
type GrantCreate = NonNullable<paths['/v1/customers/{id}/credit_grants']['post']['requestBody']>['content']['application/json'];
type Reservation = paths['/v1/customers/{id}/reservations']['get']['responses'][200]['content']['application/json']['data'][number];

/** How many ledger entries and open holds the page shows (newest first). */
const SHOWN = 100;

/** An amount as the API takes it: digits, an optional point and at most 9 decimals. */
const AMOUNT_PATTERN = '\\d{1,15}(\\.\\d{1,9})?';

/** Grant credit (POST /v1/customers/{id}/credit_grants); the balance and ledger refresh after. */
export function GrantCreditForm({ customer }: { customer: Customer }) {
  const client = useQueryClient();
  const [form, setForm] = useState({ amount: '', category: 'promotional' as GrantCreate['category'], description: '', expires: '' });
  const grant = useMutation({
    mutationFn: (body: GrantCreate) => unwrap(api.POST('/v1/customers/{id}/credit_grants', { params: { path: { id: customer.id } }, body })),
    onSuccess: async () => {
      setForm((f) => ({ ...f, amount: '', description: '' }));
      await client.invalidateQueries({ queryKey: consoleKeys.customer(customer.id) });
      await client.invalidateQueries({ queryKey: ['console', 'balances'] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    grant.mutate({
      amount: form.amount.trim(),
      category: form.category,
      ...(form.description.trim() ? { description: form.description.trim() } : {}),
      // datetime-local is the operator's local time; the API takes UTC.
      ...(form.expires ? { expires_at: new Date(form.expires).toISOString() } : {}),
    });
  };
  return (
    <Panel title="Grant credit">
      <form className="form grid" onSubmit={submit}>
        <Field
          label={`Amount (${customer.currency})`}
          required
          inputMode="decimal"
          pattern={AMOUNT_PATTERN}
          placeholder="25.00"
          value={form.amount}
          onChange={(e) => setForm({ ...form, amount: e.target.value })}
          hint="A decimal amount, e.g. 25.00"
        />
        <SelectField label="Category" value={form.category} onChange={(e) => setForm({ ...form, category: e.target.value as GrantCreate['category'] })}>
          <option value="promotional">Promotional</option>
          <option value="purchased">Purchased</option>
        </SelectField>
        <Field label="Description" maxLength={500} value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} />
        <Field label="Expires (optional)" type="datetime-local" value={form.expires} onChange={(e) => setForm({ ...form, expires: e.target.value })} />
        <FormStatus error={grant.error} success={grant.data ? `Granted ${formatMoney(grant.data.amount, grant.data.currency)}.` : null} />
        <button type="submit" className="primary" disabled={grant.isPending}>
          Grant credit
        </button>
      </form>
    </Panel>
  );
}

const grantColumns: Column<Grant>[] = [
  { header: 'Granted', cell: (g) => formatDateTime(g.created_at) },
  { header: 'Category', cell: (g) => g.category },
  { header: 'Amount', numeric: true, cell: (g) => <Money amount={g.amount} currency={g.currency} /> },
  { header: 'Remaining', numeric: true, cell: (g) => <Money amount={g.remaining} currency={g.currency} /> },
  { header: 'Expires', cell: (g) => (g.expired_at ? `expired ${formatDateTime(g.expired_at)}` : g.expires_at ? formatDateTime(g.expires_at) : 'never') },
  { header: 'Description', cell: (g) => g.description ?? '—' },
];

const holdColumns: Column<Reservation>[] = [
  { header: 'Held since', cell: (r) => formatDateTime(r.created_at) },
  { header: 'Model', cell: (r) => r.product ?? r.product_id },
  { header: 'Amount', numeric: true, cell: (r) => <Money amount={r.amount} currency={r.currency} /> },
  { header: 'Expires', cell: (r) => formatDateTime(r.expires_at) },
  { header: 'API key', cell: (r) => <code>{r.api_key_id}</code> },
  { header: 'Reservation', cell: (r) => <code>{r.id}</code> },
];

/** The customer's ledger: open holds (reservations still pending), the latest entries and the credit grants. */
export function CustomerLedger({ customerId }: { customerId: string }) {
  const holds = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'holds'],
    queryFn: () => unwrap(api.GET('/v1/customers/{id}/reservations', { params: { path: { id: customerId }, query: { status: 'pending', limit: SHOWN } } })),
    // Holds come and go with running jobs, like the balance beside them.
    refetchInterval: 30_000,
  });
  const transactions = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'transactions'],
    queryFn: () => unwrap(api.GET('/v1/customers/{id}/transactions', { params: { path: { id: customerId }, query: { limit: SHOWN } } })),
  });
  const grants = useQuery({
    queryKey: [...consoleKeys.customer(customerId), 'grants'],
    queryFn: () => unwrap(api.GET('/v1/customers/{id}/credit_grants', { params: { path: { id: customerId }, query: { limit: SHOWN } } })),
  });
  return (
    <>
      <Panel title="Open holds">
        <QueryTable query={holds} caption="Open holds" empty="No open holds: nothing is running." columns={holdColumns} rowKey={(r) => r.id} />
      </Panel>
      <Panel title="Ledger">
        <QueryTable query={transactions} caption="Ledger entries, newest first" empty="No ledger entries yet." columns={transactionColumns} rowKey={(t) => t.id} />
      </Panel>
      <Panel title="Credit grants">
        <QueryTable query={grants} caption="Credit grants" empty="No credit granted yet." columns={grantColumns} rowKey={(g) => g.id} />
      </Panel>
    </>
  );
}
