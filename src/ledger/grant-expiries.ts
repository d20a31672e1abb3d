import type { Queryable } from '../platform/db.js';

/**
 * The expiry sweep's list: credit_grant_expiries holds a row for each grant written with an expiry
 * (migration 016). A grant's remaining only ever goes down, so a row whose grant is past its expiry
 * with nothing left is done with for good.
 */

/** Forgets the grants past their expiry with nothing left (spent before it, or expired since). */
export async function forgetSpentExpiries(db: Queryable, now: Date): Promise<void> {
  await db.query(
    `DELETE FROM credit_grant_expiries e USING credit_grants g
     WHERE g.id = e.grant_id AND e.expires_at <= $1 AND g.remaining = 0`,
    [now],
  );
}

/**
 * Grants past their expiry with something left that can leave now: a remainder that open holds
 * still need (available is zero) waits until they resolve, and does not crowd out the others.
 */
export async function dueGrantExpiries(db: Queryable, now: Date, limit: number): Promise<Array<{ id: string; customerId: string }>> {
  const rows = await db.query<{ id: string; customer_id: string }>(
    `SELECT g.id, g.customer_id FROM credit_grant_expiries e
       JOIN credit_grants g ON g.id = e.grant_id
       JOIN ledger_accounts a ON a.customer_id = g.customer_id
     WHERE e.expires_at <= $1 AND g.remaining > 0
       AND a.credits_posted - a.debits_posted - (a.debits_pending - a.credits_pending) + a.credit_limit > 0
     ORDER BY e.expires_at LIMIT $2`,
    [now, limit],
  );
  return rows.map((r) => ({ id: r.id, customerId: r.customer_id }));
}
