import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { ConfirmButton } from '../components/confirm-button';
import { QueryTable, type Column } from '../components/data-table';
import { Field, FormStatus } from '../components/field';
import { Page, Panel } from '../components/page';
import { SecretReveal } from '../components/secret-reveal';
import { QueryView } from '../components/states';
import { formatDateTime } from '../format';
import { portalKeys } from './portal-queries';

type Endpoint = paths['/v1/me/webhook_endpoints']['get']['responses'][200]['content']['application/json']['data'][number];
type AlertSettingsPut = paths['/v1/me/alert_settings']['put']['requestBody']['content']['application/json'];

const endpointColumns = (selected: string | null, select: (id: string | null) => void): Column<Endpoint>[] => [
  { header: 'URL', cell: (e) => <code>{e.url}</code> },
  { header: 'Events', cell: (e) => (e.event_types.length === 0 ? 'All events' : e.event_types.join(', ')) },
  { header: 'Status', cell: (e) => <span className={e.enabled ? 'badge ok' : 'badge bad'}>{e.enabled ? 'enabled' : `disabled${e.disabled_reason ? ` (${e.disabled_reason})` : ''}`}</span> },
  {
    header: 'Actions',
    hiddenHeader: true,
    cell: (e) => (
      <>
        <button type="button" onClick={() => select(e.id)} aria-pressed={selected === e.id} aria-label={`Deliveries to ${e.url}`}>
          Deliveries
        </button>
        <EndpointToggle endpoint={e} />
        <DeleteEndpoint endpoint={e} onDeleted={() => select(selected === e.id ? null : selected)} />
      </>
    ),
  },
];

/** Webhook endpoints with their recent deliveries (replay one), and the alert thresholds. */
export function WebhooksPage() {
  const endpoints = useQuery({ queryKey: portalKeys.endpoints, queryFn: () => unwrap(api.GET('/v1/me/webhook_endpoints', { params: { query: { limit: 100 } } })) });
  const [selected, setSelected] = useState<string | null>(null);
  return (
    <Page title="Webhooks">
      <CreateEndpoint />
      <Panel title="Endpoints">
        <QueryTable query={endpoints} caption="Webhook endpoints" empty="No webhook endpoints yet." columns={endpointColumns(selected, setSelected)} rowKey={(e) => e.id} />
      </Panel>
      {selected ? <Deliveries endpointId={selected} /> : null}
      <AlertThresholds />
    </Page>
  );
}

function CreateEndpoint() {
  const client = useQueryClient();
  const [url, setUrl] = useState('');
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/v1/me/webhook_endpoints', { body: { url: url.trim() } })),
    onSuccess: () => {
      setUrl('');
      return client.invalidateQueries({ queryKey: portalKeys.endpoints });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Panel title="Add an endpoint">
      <form className="toolbar" onSubmit={submit}>
        <Field label="Endpoint URL" type="url" required placeholder="https://example.com/webhooks" value={url} onChange={(e) => setUrl(e.target.value)} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Add endpoint
        </button>
      </form>
      <FormStatus error={create.error} />
      {create.data ? <SecretReveal label="Signing secret (shown once): verify webhooks with it" value={create.data.secret} onDone={() => create.reset()} /> : null}
    </Panel>
  );
}

function EndpointToggle({ endpoint }: { endpoint: Endpoint }) {
  const client = useQueryClient();
  const toggle = useMutation({
    mutationFn: () => unwrap(api.PATCH('/v1/me/webhook_endpoints/{id}', { params: { path: { id: endpoint.id } }, body: { enabled: !endpoint.enabled } })),
    onSuccess: () => client.invalidateQueries({ queryKey: portalKeys.endpoints }),
  });
  return (
    <button type="button" onClick={() => toggle.mutate()} disabled={toggle.isPending} title={toggle.error instanceof Error ? toggle.error.message : undefined}>
      {endpoint.enabled ? 'Disable' : 'Enable'}
    </button>
  );
}

function DeleteEndpoint({ endpoint, onDeleted }: { endpoint: Endpoint; onDeleted: () => void }) {
  const client = useQueryClient();
  const remove = async () => {
    await unwrap(api.DELETE('/v1/me/webhook_endpoints/{id}', { params: { path: { id: endpoint.id } } }));
    onDeleted();
    await client.invalidateQueries({ queryKey: portalKeys.endpoints });
  };
  return (
    <ConfirmButton label="Delete" title="Delete this endpoint?" confirmLabel="Delete endpoint" danger onConfirm={remove}>
      <p>
        <code>{endpoint.url}</code> stops receiving events, and its delivery log is deleted.
      </p>
    </ConfirmButton>
  );
}

function Deliveries({ endpointId }: { endpointId: string }) {
  const client = useQueryClient();
  const deliveries = useQuery({
    queryKey: portalKeys.deliveries(endpointId),
    queryFn: () => unwrap(api.GET('/v1/me/webhook_endpoints/{id}/deliveries', { params: { path: { id: endpointId }, query: { limit: 50 } } })),
    refetchInterval: 10_000,
  });
  const replay = useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/v1/me/webhook_deliveries/{id}/replay', { params: { path: { id } }, body: {} })),
    onSuccess: () => client.invalidateQueries({ queryKey: portalKeys.deliveries(endpointId) }),
  });
  return (
    <Panel title="Recent deliveries">
      <FormStatus error={replay.error} success={replay.isSuccess ? 'Delivery queued again.' : null} />
      <QueryTable
        query={deliveries}
        caption="Recent deliveries"
        empty="Nothing delivered to this endpoint yet."
        rowKey={(d) => d.id}
        columns={[
          { header: 'Event', cell: (d) => d.event_type },
          { header: 'Created', cell: (d) => formatDateTime(d.created_at) },
          { header: 'Status', cell: (d) => <span className={d.status === 'succeeded' ? 'badge ok' : d.status === 'failed' ? 'badge bad' : 'badge'}>{d.status}</span> },
          { header: 'Attempts', numeric: true, cell: (d) => d.attempts },
          { header: 'Last answer', cell: (d) => d.last_status_code ?? d.log[0]?.error ?? '—' },
          {
            header: 'Actions',
            hiddenHeader: true,
            cell: (d) => (
              <button type="button" onClick={() => replay.mutate(d.id)} disabled={replay.isPending} aria-label={`Replay ${d.event_type} of ${formatDateTime(d.created_at)}`}>
                Replay
              </button>
            ),
          },
        ]}
      />
    </Panel>
  );
}

const THRESHOLDS = [
  { field: 'balance_low', label: 'Balance below' },
  { field: 'spend_day', label: 'Spend in a day reaches' },
  { field: 'spend_month', label: 'Spend in a month reaches' },
] as const;

function AlertThresholds() {
  const client = useQueryClient();
  const settings = useQuery({ queryKey: portalKeys.alerts, queryFn: () => unwrap(api.GET('/v1/me/alert_settings')) });
  const [form, setForm] = useState<Record<(typeof THRESHOLDS)[number]['field'], string> | null>(null);
  const save = useMutation({
    mutationFn: (body: AlertSettingsPut) => unwrap(api.PUT('/v1/me/alert_settings', { body })),
    onSuccess: (saved) => {
      client.setQueryData(portalKeys.alerts, saved);
      setForm(null);
    },
  });
  return (
    <Panel title="Alert thresholds">
      <p className="muted">Alerts arrive as webhook events (balance.low, spend_limit.reached). Leave a field empty to turn that alert off.</p>
      <QueryView query={settings}>
        {(s) => {
          const current = form ?? { balance_low: s.balance_low ?? '', spend_day: s.spend_day ?? '', spend_month: s.spend_month ?? '' };
          const submit = (event: FormEvent) => {
            event.preventDefault();
            const value = (v: string) => (v.trim() ? v.trim() : null);
            save.mutate({ balance_low: value(current.balance_low), spend_day: value(current.spend_day), spend_month: value(current.spend_month) });
          };
          return (
            <form className="form grid" onSubmit={submit}>
              {THRESHOLDS.map((t) => (
                <Field
                  key={t.field}
                  label={`${t.label} (${s.currency})`}
                  inputMode="decimal"
                  pattern="\d+(\.\d{1,9})?"
                  placeholder="Off"
                  value={current[t.field]}
                  onChange={(e) => setForm({ ...current, [t.field]: e.target.value })}
                />
              ))}
              <button type="submit" className="primary" disabled={save.isPending}>
                Save thresholds
              </button>
              <FormStatus error={save.error} success={save.isSuccess && !form ? 'Saved.' : null} />
            </form>
          );
        }}
      </QueryView>
    </Panel>
  );
}
