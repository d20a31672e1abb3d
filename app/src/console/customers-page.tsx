import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { Field, FormStatus, SelectField } from '../components/field';
import { Money } from '../components/money';
import { QueryTable, type Column } from '../components/data-table';
import { Page, Panel } from '../components/page';
import { formatDate } from '../format';

type Customer = paths['/v1/customers']['get']['responses'][200]['content']['application/json']['data'][number];
type CustomerCreate = NonNullable<paths['/v1/customers']['post']['requestBody']>['content']['application/json'];

const columns: Column<Customer>[] = [
  { header: 'Name', cell: (c) => <Link to={`/console/customers/${c.id}`}>{c.name}</Link> },
  { header: 'Email', cell: (c) => c.email ?? '—' },
  { header: 'Billing', cell: (c) => c.billing_mode },
  { header: 'Credit limit', numeric: true, cell: (c) => <Money amount={c.credit_limit} currency={c.currency} /> },
  { header: 'Created', cell: (c) => formatDate(c.created_at) },
];

/** What the search box holds, as the list's filters: a customer id opens it, an address filters by email. */
function searchFilters(search: string): { email?: string; external_id?: string } {
  const term = search.trim();
  if (!term) return {};
  return term.includes('@') ? { email: term } : { external_id: term };
}

export function CustomersPage() {
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const navigate = useNavigate();
  const customers = useQuery({
    queryKey: ['customers', applied],
    queryFn: () => unwrap(api.GET('/v1/customers', { params: { query: { limit: 100, ...searchFilters(applied) } } })),
  });
  const onSearch = (event: FormEvent) => {
    event.preventDefault();
    const term = search.trim();
    if (/^cus_[0-9a-z]{26}$/.test(term)) navigate(`/console/customers/${term}`);
    else setApplied(term);
  };
  return (
    <Page title="Customers">
      <form className="toolbar" role="search" onSubmit={onSearch}>
        <Field label="Search customers" placeholder="cus_… id, email or external id" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      <QueryTable query={customers} caption="Customers" empty={applied ? 'No customer matches.' : 'No customers yet.'} columns={columns} rowKey={(c) => c.id} />
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
      await client.invalidateQueries({ queryKey: ['customers'] });
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
