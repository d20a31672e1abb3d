import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { QueryTable, type Column } from '../components/data-table';
import { Field, FormStatus, SelectField } from '../components/field';
import { Page, Panel } from '../components/page';
import { formatDate } from '../format';
import { consoleKeys, useMeters, useProducts } from './console-queries';
import { PriceEditor } from './price-editor';

type Product = paths['/v1/products']['get']['responses'][200]['content']['application/json']['data'][number];
type Meter = paths['/v1/meters']['get']['responses'][200]['content']['application/json']['data'][number];
type ProductCreate = NonNullable<paths['/v1/products']['post']['requestBody']>['content']['application/json'];
type MeterCreate = NonNullable<paths['/v1/meters']['post']['requestBody']>['content']['application/json'];

const meterColumns: Column<Meter>[] = [
  { header: 'Key', cell: (m) => <code>{m.key}</code> },
  { header: 'Name', cell: (m) => m.name },
  { header: 'Unit', cell: (m) => m.unit },
  { header: 'Aggregation', cell: (m) => m.aggregation.replace('_', ' ') },
  { header: 'Created', cell: (m) => formatDate(m.created_at) },
];

/** Products (model endpoints), meters and each product's price versions. */
export function CatalogPage() {
  const [params, setParams] = useSearchParams();
  const products = useProducts();
  const meters = useMeters();
  const selected = params.get('product') ?? products.data?.data[0]?.key ?? '';
  const productColumns: Column<Product>[] = [
    { header: 'Key', cell: (p) => <code>{p.key}</code> },
    { header: 'Name', cell: (p) => p.name },
    { header: 'Description', cell: (p) => p.description ?? '—' },
    { header: 'Created', cell: (p) => formatDate(p.created_at) },
    {
      header: 'Prices',
      hiddenHeader: true,
      cell: (p) => (
        <button type="button" onClick={() => setParams({ product: p.key })} aria-pressed={p.key === selected}>
          Prices<span className="visually-hidden"> of {p.key}</span>
        </button>
      ),
    },
  ];
  return (
    <Page title="Catalog and prices">
      <Panel title="Products">
        <QueryTable query={products} caption="Products" empty="No products yet: create the first below." columns={productColumns} rowKey={(p) => p.id} />
        <CreateProduct onCreated={(key) => setParams({ product: key })} />
      </Panel>
      {selected ? (
        <>
          <SelectField label="Product whose prices to show" value={selected} onChange={(e) => setParams({ product: e.target.value })}>
            {products.data?.data.map((p) => (
              <option key={p.id} value={p.key}>
                {p.name} ({p.key})
              </option>
            ))}
          </SelectField>
          <PriceEditor key={selected} product={selected} />
        </>
      ) : null}
      <Panel title="Meters">
        <QueryTable query={meters} caption="Meters" empty="No meters yet: create the first below." columns={meterColumns} rowKey={(m) => m.id} />
        <CreateMeter />
      </Panel>
    </Page>
  );
}

function CreateProduct({ onCreated }: { onCreated: (key: string) => void }) {
  const client = useQueryClient();
  const [form, setForm] = useState<ProductCreate>({ key: '', name: '', description: '' });
  const create = useMutation({
    mutationFn: (body: ProductCreate) => unwrap(api.POST('/v1/products', { body })),
    onSuccess: async (product) => {
      setForm({ key: '', name: '', description: '' });
      await client.invalidateQueries({ queryKey: consoleKeys.products });
      onCreated(product.key);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate({ key: form.key.trim(), name: form.name.trim(), ...(form.description?.trim() ? { description: form.description.trim() } : {}) });
  };
  return (
    <form className="form grid" onSubmit={submit} aria-label="New product">
      <Field label="Product key" required pattern="[a-z0-9][a-z0-9._\/\-]{0,127}" placeholder="fal-ai/flux/dev" value={form.key} onChange={(e) => setForm({ ...form, key: e.target.value })} />
      <Field label="Product name" required maxLength={200} value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
      <Field label="Product description" maxLength={2000} value={form.description ?? ''} onChange={(e) => setForm({ ...form, description: e.target.value })} />
      <FormStatus error={create.error} />
      <button type="submit" disabled={create.isPending}>
        Create product
      </button>
    </form>
  );
}

function CreateMeter() {
  const client = useQueryClient();
  const empty: MeterCreate = { key: '', name: '', unit: '', aggregation: 'sum' };
  const [form, setForm] = useState<MeterCreate>(empty);
  const create = useMutation({
    mutationFn: (body: MeterCreate) => unwrap(api.POST('/v1/meters', { body })),
    onSuccess: async () => {
      setForm(empty);
      await client.invalidateQueries({ queryKey: consoleKeys.meters });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate({ ...form, key: form.key.trim(), name: form.name.trim(), unit: form.unit.trim() });
  };
  return (
    <form className="form grid" onSubmit={submit} aria-label="New meter">
      <Field label="Meter key" required pattern="[a-z][a-z0-9_]{0,63}" placeholder="megapixels" value={form.key} onChange={(e) => setForm({ ...form, key: e.target.value })} />
      <Field label="Meter name" required maxLength={200} value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
      <Field label="Unit" required maxLength={64} placeholder="megapixel" value={form.unit} onChange={(e) => setForm({ ...form, unit: e.target.value })} />
      <SelectField label="Aggregation" value={form.aggregation} onChange={(e) => setForm({ ...form, aggregation: e.target.value as MeterCreate['aggregation'] })}>
        <option value="sum">Sum</option>
        <option value="count">Count</option>
        <option value="max">Max</option>
        <option value="unique_count">Unique count</option>
      </SelectField>
      <FormStatus error={create.error} />
      <button type="submit" disabled={create.isPending}>
        Create meter
      </button>
    </form>
  );
}
