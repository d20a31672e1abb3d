import type { paths } from '../api/schema';
import { QueryTable, type Column } from '../components/data-table';
import { Money } from '../components/money';
import { formatDateTime } from '../format';
import { useTransactions } from './portal-queries';

type Transaction = paths['/v1/me/transactions']['get']['responses'][200]['content']['application/json']['data'][number];

const KIND_LABELS: Record<Transaction['kind'], string> = {
  grant: 'Credit added',
  hold: 'Hold',
  capture: 'Charge',
  release: 'Hold returned',
  charge: 'Charge',
  expiry: 'Credit expired',
  adjustment: 'Adjustment',
};

export const transactionColumns: Column<Transaction>[] = [
  { header: 'When', cell: (t) => formatDateTime(t.created_at) },
  { header: 'What', cell: (t) => KIND_LABELS[t.kind] },
  { header: 'Amount', numeric: true, cell: (t) => <TransactionAmount transaction={t} /> },
  { header: 'Reference', cell: (t) => <code>{t.invoice_id ?? t.reservation_id ?? t.grant_id ?? t.id}</code> },
];

/**
 * Posted movements are signed as on a statement (a debit of the customer's account is minus).
 * A hold and its return only move money between available and held: shown unsigned and muted.
 */
function TransactionAmount({ transaction: t }: { transaction: Transaction }) {
  if (t.pending || t.kind === 'release') {
    return (
      <span className="muted">
        <Money amount={t.amount} currency={t.currency} />
      </span>
    );
  }
  return <Money amount={t.direction === 'debit' ? `-${t.amount}` : t.amount} currency={t.currency} />;
}

/** The customer's latest ledger entries, newest first. */
export function TransactionsTable({ limit }: { limit: number }) {
  return <QueryTable query={useTransactions(limit)} caption="Recent transactions" empty="No transactions yet." columns={transactionColumns} rowKey={(t) => t.id} />;
}
