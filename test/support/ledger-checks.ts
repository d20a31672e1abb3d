import { expect } from 'vitest';
import { ledgerTotals } from '../../src/ledger/ledger-queries.js';
import type { Queryable } from '../../src/platform/db.js';

/**
 * DESIGN.md invariant 1: per currency, all debits equal all credits, posted and pending; and the
 * ledger's books agree with themselves (expectTotalsFromTransfers).
 */
export async function expectDoubleEntry(db: Queryable): Promise<void> {
  const totals = await ledgerTotals(db);
  expect(totals.length).toBeGreaterThan(0);
  for (const t of totals) {
    expect(t.debits_posted, `posted debits = credits in ${t.currency}`).toBe(t.credits_posted);
    expect(t.debits_pending, `pending debits = credits in ${t.currency}`).toBe(t.credits_pending);
  }
  await expectTotalsFromTransfers(db);
}

/**
 * Every account's totals (an operator account's with its shards) are what its transfers add up to:
 * a hold is pending, its capture posts what it takes from pending and its release returns the rest
 * unposted; and every transfer moves money between accounts that exist, a capture or release
 * resolving a hold of its own reservation. The account totals are kept by deltas (in place for a
 * customer, in shards for an operator account); this recomputes them from the transfers themselves.
 */
export async function expectTotalsFromTransfers(db: Queryable): Promise<void> {
  const mismatched = await db.query(
    `WITH moves AS (
       SELECT debit_account_id AS account_id, true AS debit, amount, kind, pending FROM ledger_transfers
       UNION ALL SELECT credit_account_id, false, amount, kind, pending FROM ledger_transfers
     ), derived AS (
       SELECT account_id,
         coalesce(sum(amount) FILTER (WHERE debit AND NOT pending AND kind <> 'release'), 0) AS debits_posted,
         coalesce(sum(amount) FILTER (WHERE NOT debit AND NOT pending AND kind <> 'release'), 0) AS credits_posted,
         coalesce(sum(CASE WHEN pending THEN amount WHEN kind IN ('capture', 'release') THEN -amount ELSE 0 END) FILTER (WHERE debit), 0) AS debits_pending,
         coalesce(sum(CASE WHEN pending THEN amount WHEN kind IN ('capture', 'release') THEN -amount ELSE 0 END) FILTER (WHERE NOT debit), 0) AS credits_pending
       FROM moves GROUP BY account_id
     ), kept AS (
       SELECT a.id, a.debits_posted + coalesce(sum(s.debits_posted), 0) AS debits_posted, a.credits_posted + coalesce(sum(s.credits_posted), 0) AS credits_posted,
         a.debits_pending + coalesce(sum(s.debits_pending), 0) AS debits_pending, a.credits_pending + coalesce(sum(s.credits_pending), 0) AS credits_pending
       FROM ledger_accounts a LEFT JOIN ledger_account_shards s ON s.account_id = a.id GROUP BY a.id
     )
     SELECT coalesce(k.id, d.account_id) AS account, k.debits_posted::text AS kept_dp, d.debits_posted::text AS derived_dp,
       k.credits_posted::text AS kept_cp, d.credits_posted::text AS derived_cp, k.debits_pending::text AS kept_dpe, d.debits_pending::text AS derived_dpe,
       k.credits_pending::text AS kept_cpe, d.credits_pending::text AS derived_cpe
     FROM kept k FULL JOIN derived d ON d.account_id = k.id
     WHERE k.id IS NULL
       OR (k.debits_posted, k.credits_posted, k.debits_pending, k.credits_pending)
          IS DISTINCT FROM (coalesce(d.debits_posted, 0), coalesce(d.credits_posted, 0), coalesce(d.debits_pending, 0), coalesce(d.credits_pending, 0))`,
  );
  expect(mismatched, 'accounts whose totals are not what their transfers add up to (or transfers to no account)').toEqual([]);
  const unresolved = await db.query(
    `SELECT t.id, t.kind FROM ledger_transfers t LEFT JOIN ledger_transfers hold ON hold.id = t.pending_id
     WHERE (t.kind IN ('capture', 'release')) <> (t.pending_id IS NOT NULL)
       OR (t.pending_id IS NOT NULL AND (hold.id IS NULL OR NOT hold.pending OR hold.reservation_id IS DISTINCT FROM t.reservation_id))`,
  );
  expect(unresolved, 'captures and releases that resolve no hold of their reservation').toEqual([]);
}
