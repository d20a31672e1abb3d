import { columns } from '../platform/columns.js';
import type { Queryable } from '../platform/db.js';
import { notFound } from '../platform/errors.js';
import { lockCustomerAccount, periodSpend } from './ledger-queries.js';
import { periodStart, SPEND_PERIODS } from './model.js';

/**
 * Starts counting a key's spend. Batches keep a key's spend per UTC day and month
 * (ledger_key_spend) only while the key has a spend limit; call this in the transaction that gives
 * it one. It takes the customer's ledger lock, the one every batch charging the customer takes, and
 * sets the current day and month to the key's captures and charges in them (migration 014: plus
 * what it spent before transfers named keys). A batch that committed before the lock is in that
 * sum; one after it reads the limit and adds its own spend.
 */
export async function startKeySpend(tx: Queryable, customerId: string, apiKeyId: string, at: Date): Promise<void> {
  if (!(await lockCustomerAccount(tx, customerId))) throw notFound('customer', customerId);
  const spent = await periodSpend(tx, customerId, at, apiKeyId);
  await tx.query(
    `INSERT INTO ledger_key_spend (api_key_id, period, period_start, amount)
     SELECT $1, v.period, v.start, v.amount + coalesce(c.amount, 0)
     FROM unnest($2::text[], $3::timestamptz[], $4::int8[]) AS v(period, start, amount)
     LEFT JOIN ledger_key_spend_carried c ON c.api_key_id = $1 AND c.period = v.period AND c.period_start = v.start
     ON CONFLICT (api_key_id, period, period_start) DO UPDATE SET amount = excluded.amount`,
    [apiKeyId, ...columns([...SPEND_PERIODS], [(period) => period, (period) => periodStart(period, at), (period) => spent[period]])],
  );
}
