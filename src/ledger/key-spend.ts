import type { Queryable } from '../platform/db.js';
import { notFound } from '../platform/errors.js';
import { lockCustomerAccount } from './ledger-queries.js';
import { periodStart } from './model.js';

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
  await tx.query(
    `INSERT INTO ledger_key_spend (api_key_id, period, period_start, amount)
     SELECT $2, p.period, p.start, coalesce(t.amount, 0) + coalesce(c.amount, 0)
     FROM (VALUES ('day', $3::timestamptz), ('month', $4::timestamptz)) AS p(period, start)
     CROSS JOIN LATERAL (
       SELECT sum(amount) AS amount FROM ledger_transfers
       WHERE customer_id = $1 AND api_key_id = $2 AND kind IN ('capture', 'charge') AND created_at >= p.start
     ) t
     LEFT JOIN ledger_key_spend_carried c ON c.api_key_id = $2 AND c.period = p.period AND c.period_start = p.start
     ON CONFLICT (api_key_id, period, period_start) DO UPDATE SET amount = excluded.amount`,
    [customerId, apiKeyId, periodStart('day', at), periodStart('month', at)],
  );
}
