import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { ConfirmButton } from '../components/confirm-button';
import { QueryTable, type Column } from '../components/data-table';
import { Field, FormStatus, SelectField } from '../components/field';
import { Money } from '../components/money';
import { Page, Panel } from '../components/page';
import { SecretReveal } from '../components/secret-reveal';
import { formatDate } from '../format';
import { portalKeys, useApiKeys, useMe } from './portal-queries';

type ApiKey = paths['/v1/me/api_keys']['get']['responses'][200]['content']['application/json']['data'][number];
type KeyCreate = NonNullable<paths['/v1/me/api_keys']['post']['requestBody']>['content']['application/json'];
type KeyUpdate = NonNullable<paths['/v1/me/api_keys/{id}']['patch']['requestBody']>['content']['application/json'];
type SpendPeriod = NonNullable<KeyCreate['spend_limit']>['period'];

/** The limits part of the key forms, as typed by the customer (empty: no limit). */
interface LimitsForm {
  spendAmount: string;
  spendPeriod: SpendPeriod;
  maxConcurrency: string;
}

const noLimits: LimitsForm = { spendAmount: '', spendPeriod: 'month', maxConcurrency: '' };

function limitsBody(form: LimitsForm) {
  return {
    spend_limit: form.spendAmount.trim() ? { amount: form.spendAmount.trim(), period: form.spendPeriod } : null,
    max_concurrency: form.maxConcurrency.trim() ? Number.parseInt(form.maxConcurrency, 10) : null,
  };
}

const keyColumns = (edit: (key: ApiKey) => void): Column<ApiKey>[] => [
  { header: 'Name', cell: (key) => key.name },
  { header: 'Key', cell: (key) => <code>{key.prefix}…</code> },
  { header: 'Status', cell: (key) => <span className={key.status === 'active' ? 'badge ok' : 'badge bad'}>{key.status}</span> },
  { header: 'Spend limit', cell: (key) => <SpendLimitText limit={key.spend_limit} /> },
  { header: 'Max concurrency', cell: (key) => key.max_concurrency ?? 'No limit' },
  { header: 'Created', cell: (key) => formatDate(key.created_at) },
  {
    header: 'Actions',
    hiddenHeader: true,
    cell: (key) =>
      key.status === 'active' ? (
        <>
          <button type="button" onClick={() => edit(key)} aria-label={`Edit limits of ${key.name}`}>
            Limits
          </button>
          <RevokeKey apiKey={key} />
        </>
      ) : null,
  },
];

/** The customer's API keys: create (the secret shown once), set limits, revoke with confirmation. */
export function ApiKeysPage() {
  const keys = useApiKeys();
  const [editing, setEditing] = useState<ApiKey | null>(null);
  return (
    <Page title="API keys">
      <CreateKey />
      <QueryTable query={keys} caption="API keys" empty="No API keys yet: create one above." columns={keyColumns(setEditing)} rowKey={(key) => key.id} />
      {editing ? <EditLimits key={editing.id} apiKey={editing} done={() => setEditing(null)} /> : null}
    </Page>
  );
}

function SpendLimitText({ limit }: { limit: ApiKey['spend_limit'] }) {
  const me = useMe();
  if (!limit) return <>No limit</>;
  return me.data ? (
    <>
      <Money amount={limit.amount} currency={me.data.currency} /> per {limit.period}
    </>
  ) : (
    <>
      {limit.amount} per {limit.period}
    </>
  );
}

function LimitFields({ form, onChange }: { form: LimitsForm; onChange: (form: LimitsForm) => void }) {
  return (
    <>
      <Field label="Spend limit" inputMode="decimal" pattern="\d+(\.\d{1,9})?" placeholder="No limit" value={form.spendAmount} onChange={(e) => onChange({ ...form, spendAmount: e.target.value })} />
      <SelectField label="Spend limit period" value={form.spendPeriod} onChange={(e) => onChange({ ...form, spendPeriod: e.target.value as SpendPeriod })}>
        <option value="day">Per day (UTC)</option>
        <option value="month">Per month (UTC)</option>
      </SelectField>
      <Field label="Max concurrency" type="number" min={1} step={1} placeholder="No limit" value={form.maxConcurrency} onChange={(e) => onChange({ ...form, maxConcurrency: e.target.value })} hint="Requests running at once" />
    </>
  );
}

function CreateKey() {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [limits, setLimits] = useState<LimitsForm>(noLimits);
  const create = useMutation({
    mutationFn: (body: KeyCreate) => unwrap(api.POST('/v1/me/api_keys', { body })),
    onSuccess: () => {
      setName('');
      setLimits(noLimits);
      return client.invalidateQueries({ queryKey: portalKeys.keys });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const { spend_limit, max_concurrency } = limitsBody(limits);
    create.mutate({ name: name.trim() || undefined, ...(spend_limit ? { spend_limit } : {}), ...(max_concurrency !== null ? { max_concurrency } : {}) });
  };
  return (
    <Panel title="Create a key">
      <form className="form grid" onSubmit={submit}>
        <Field label="Key name" maxLength={200} placeholder="e.g. production" value={name} onChange={(e) => setName(e.target.value)} />
        <LimitFields form={limits} onChange={setLimits} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Create key
        </button>
      </form>
      <FormStatus error={create.error} />
      {create.data ? <SecretReveal label={`Secret of ${create.data.name}: copy it now, it is shown only once`} value={create.data.secret} onDone={() => create.reset()} /> : null}
    </Panel>
  );
}

function EditLimits({ apiKey, done }: { apiKey: ApiKey; done: () => void }) {
  const client = useQueryClient();
  const [form, setForm] = useState<LimitsForm>({
    spendAmount: apiKey.spend_limit?.amount ?? '',
    spendPeriod: apiKey.spend_limit?.period ?? 'month',
    maxConcurrency: apiKey.max_concurrency?.toString() ?? '',
  });
  const save = useMutation({
    mutationFn: (body: KeyUpdate) => unwrap(api.PATCH('/v1/me/api_keys/{id}', { params: { path: { id: apiKey.id } }, body })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: portalKeys.keys });
      done();
    },
  });
  return (
    <Panel title={`Limits of ${apiKey.name}`}>
      <form
        className="form grid"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate(limitsBody(form));
        }}
      >
        <LimitFields form={form} onChange={setForm} />
        <div className="actions">
          <button type="submit" className="primary" disabled={save.isPending}>
            Save limits
          </button>
          <button type="button" onClick={done}>
            Cancel
          </button>
        </div>
      </form>
      <FormStatus error={save.error} />
    </Panel>
  );
}

function RevokeKey({ apiKey }: { apiKey: ApiKey }) {
  const client = useQueryClient();
  const revoke = async () => {
    await unwrap(api.DELETE('/v1/me/api_keys/{id}', { params: { path: { id: apiKey.id } } }));
    await client.invalidateQueries({ queryKey: portalKeys.keys });
  };
  return (
    <ConfirmButton label="Revoke" title={`Revoke ${apiKey.name}?`} confirmLabel="Revoke key" danger onConfirm={revoke}>
      <p>
        Requests with <code>{apiKey.prefix}…</code> are refused from the next one on. This cannot be undone.
      </p>
    </ConfirmButton>
  );
}
