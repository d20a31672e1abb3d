import { useMutation, useQuery } from '@tanstack/react-query';
import { useParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { createPortalLink } from '../api/session';
import { CopyButton } from '../components/copy-button';
import { FormStatus } from '../components/field';
import { BalanceStats } from '../components/balance-stats';
import { Page, Panel, Stat } from '../components/page';
import { QueryView } from '../components/states';
import { formatDateTime } from '../format';

/** One customer: who they are, their balance, and a one-time link into their portal. */
export function CustomerPage() {
  const { id = '' } = useParams();
  const customer = useQuery({ queryKey: ['customer', id], queryFn: () => unwrap(api.GET('/v1/customers/{id}', { params: { path: { id } } })) });
  const balance = useQuery({ queryKey: ['customer-balance', id], queryFn: () => unwrap(api.GET('/v1/customers/{id}/balance', { params: { path: { id } } })) });
  return (
    <QueryView query={customer}>
      {(c) => (
        <Page title={c.name}>
          <dl className="stats">
            <Stat label="Customer id" value={<code>{c.id}</code>} />
            <Stat label="Email" value={c.email ?? '—'} />
            <Stat label="Billing" value={`${c.billing_mode}, ${c.currency}`} />
          </dl>
          <Panel title="Balance">
            <BalanceStats query={balance} />
          </Panel>
          <PortalLink customerId={c.id} />
        </Page>
      )}
    </QueryView>
  );
}

function PortalLink({ customerId }: { customerId: string }) {
  const link = useMutation({ mutationFn: () => createPortalLink(customerId) });
  return (
    <Panel title="Customer portal">
      <p>A portal link signs the customer in once; send it to them, it expires in 15 minutes.</p>
      <button type="button" className="primary" onClick={() => link.mutate()} disabled={link.isPending}>
        Create portal link
      </button>
      <FormStatus error={link.error} />
      {link.data ? (
        <div className="secret">
          <label htmlFor="portal-link">Portal link (expires {formatDateTime(link.data.expires_at)})</label>
          <input id="portal-link" readOnly value={link.data.url} onFocus={(e) => e.target.select()} />
          <CopyButton value={link.data.url} label="Copy link" />
        </div>
      ) : null}
    </Panel>
  );
}
