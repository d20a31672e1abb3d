import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { Field, FormStatus, SelectField } from '../components/field';
import { Money } from '../components/money';
import { QueryTable, type Column } from '../components/data-table';
import { Page, Panel } from '../components/page';
import { formatDate } from '../format';
import { useBalances, useCustomers } from './console-queries';

type Customer = paths['/v1/customers']['get']['responses'][200]['content']['application/json']['data'][number];
type CustomerCreate = NonNullable<paths['/v1/customers']['post']['requestBody']>['content']['application/json'];

/** The available balance of a row, from the page's one balances request. */
function AvailableCell({ customer, balances }: { customer: Customer; balances: ReturnType<typeof useBalances> }) {
  if (balances.isPending) return <span className="muted">…</span>;
  const balance = balances.data?.data.find((b) => b.customer_id === customer.id);
  if (!balance) return <span className="muted">—</span>;
  return <Money amount={balance.available} currency={balance.currency} />;
}

const columns = (balances: ReturnType<typeof useBalances>): Column<Customer>[] => [
  { header: 'Name', cell: (c) => <Link to={`/console/customers/${c.id}`}>{c.name}</Link> },
  { header: 'Email', cell: (c) => c.email ?? '—' },
  { header: 'External id', cell: (c) => c.external_id ?? '—' },
  { header: 'Billing', cell: (c) => c.billing_mode },
  { header: 'Available', numeric: true, cell: (c) => <AvailableCell customer={c} balances={balances} /> },
  { header: 'Created', cell: (c) => formatDate(c.created_at) },
];

/** Customers with their available balance; the search matches any part of a name, email, external id or id. */
export function CustomersPage() {
  const [params, setParams] = useSearchParams();
  const applied = params.get('q') ?? '';
  const [search, setSearch] = useState(applied);
  const navigate = useNavigate();
  const customers = useCustomers(applied);
  const balances = useBalances(customers.data?.data.map((c) => c.id) ?? []);
  const onSearch = (event: FormEvent) => {
    event.preventDefault();
    const term = search.trim();
    // A whole customer id opens that customer.
    if (/^cus_[0-9a-z]{26}$/.test(term)) navigate(`/console/customers/${term}`);
    else setParams(term ? { q: term } : {});
  };
  const clear = () => {
    setSearch('');
    setParams({});
  };
  return (
    <Page title="Customers">
      <form className="toolbar" role="search" onSubmit={onSearch}>
        <Field label="Search customers" maxLength={200} placeholder="Name, email, external id or cus_… id" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit">Search</button>
        {applied ? (
          <button type="button" onClick={clear}>
            Clear
          </button>
        ) : null}
      </form>
      {applied ? <p className="muted" role="status">Customers matching “{applied}”</p> : null}
      <QueryTable query={customers} caption="Customers" empty={applied ? 'No customer matches.' : 'No customers yet.'} columns={columns(balances)} rowKey={(c) => c.id} />
      {customers.data?.has_more ? <p className="muted">Showing the newest 100: search to find others.</p> : null}
      <CreateCustomer />
    </Page>
  );
}

function CreateCustomer() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const [form, setForm] = useState<CustomerCreate>({ name: '', email: '', currency: 'USD', billing_mode: 'prepaid' });
  const create = useMutation({
    mutationFn: (body: CustomerCreate) => unwrap(api.POST('/v1/customers', { body })),
    onSuccess: async (customer) => {
      await client.invalidateQueries({ queryKey: ['console', 'customers'] });
      navigate(`/console/customers/${customer.id}`);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate({ ...form, email: form.email || undefined });
  };
  return (
    <Panel title="New customer">
      <form className="form grid" onSubmit={submit}>
        <Field label="Name" required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <Field label="Email" type="email" value={form.email ?? ''} onChange={(e) => setForm({ ...form, email: e.target.value })} />
        <Field label="Currency" required pattern="[A-Z]{3}" maxLength={3} value={form.currency} onChange={(e) => setForm({ ...form, currency: e.target.value.toUpperCase() as CustomerCreate['currency'] })} />
        <SelectField label="Billing mode" value={form.billing_mode} onChange={(e) => setForm({ ...form, billing_mode: e.target.value as CustomerCreate['billing_mode'] })}>
          <option value="prepaid">Prepaid</option>
          <option value="postpaid">Postpaid</option>
        </SelectField>
        <FormStatus error={create.error} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Create customer
        </button>
      </form>
    </Panel>
  );
}
