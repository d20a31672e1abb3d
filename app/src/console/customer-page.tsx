import { useMutation } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { createPortalLink } from '../api/session';
import { BalanceStats } from '../components/balance-stats';
import { CopyButton } from '../components/copy-button';
import { FormStatus } from '../components/field';
import { Page, Panel, Stat } from '../components/page';
import { QueryView } from '../components/states';
import { formatDateTime } from '../format';
import { useCustomer, useCustomerBalance } from './console-queries';
import { CustomerInvoices, CustomerKeys, CustomerPayments, CustomerUsage } from './customer-activity';
import { CustomerLedger, GrantCreditForm } from './customer-ledger';

/** One customer: who they are, balance and ledger, keys, usage, invoices; grant credit; a portal link. */
export function CustomerPage() {
  const { id = '' } = useParams();
  const customer = useCustomer(id);
  const balance = useCustomerBalance(id);
  return (
    <QueryView query={customer}>
      {(c) => (
        <Page title={c.name} actions={<Link to="/console">All customers</Link>}>
          <dl className="stats">
            <Stat label="Customer id" value={<code>{c.id}</code>} />
            <Stat label="Email" value={c.email ?? '—'} />
            <Stat label="External id" value={c.external_id ?? '—'} />
            <Stat label="Billing" value={`${c.billing_mode}, ${c.currency}`} />
          </dl>
          <Panel title="Balance">
            <BalanceStats query={balance} />
          </Panel>
          <div className="two-columns">
            <GrantCreditForm customer={c} />
            <PortalLink customerId={c.id} />
          </div>
          <CustomerUsage customerId={c.id} />
          <CustomerLedger customerId={c.id} />
          <CustomerKeys customerId={c.id} currency={c.currency} />
          <CustomerInvoices customerId={c.id} />
          <CustomerPayments customerId={c.id} />
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
          <div className="actions">
            <CopyButton value={link.data.url} label="Copy link" />
          </div>
        </div>
      ) : null}
    </Panel>
  );
}
