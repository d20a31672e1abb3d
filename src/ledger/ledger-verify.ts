import type { Queryable } from '../platform/db.js';
import { ledgerTotals } from './ledger-queries.js';

/**
 * balanced: debits = credits per currency; totals: an account's totals are its transfers' sum;
 * references: what a transfer names exists; expiries: a grant with an expiry and a remainder is on
 * the expiry sweep's list, at its expiry (else it would never expire). Findings are listed in this order.
 */
const CHECKS = ['balanced', 'totals', 'references', 'expiries'] as const;

export interface LedgerFinding {
  check: (typeof CHECKS)[number];
  detail: string;
}

/** How many findings of each check are listed; the rest are counted. */
const FINDINGS_SHOWN = 20;

/**
 * Checks the ledger's books against themselves, reading everything (an operator's check, not a hot
 * path): per currency all debits equal all credits, posted and pending (DESIGN.md invariant 1);
 * every account's totals (an operator account's with its shards) are what its transfers add up to,
 * a hold pending, its capture posting what it takes from pending and its release returning the
 * rest unposted; and every transfer names accounts that exist, a capture or release resolving a
 * pending hold of its own reservation. The ledger is the only writer of its tables and takes those
 * ids from rows it read in the same transaction, so no foreign key checks them on each write
 * (migration 015); this is where they are checked. And every grant with an expiry and a remainder
 * is on the expiry sweep's list (migration 016), which the ledger writes beside the grant. An empty
 * list: the books agree.
 */
export async function verifyLedger(db: Queryable): Promise<LedgerFinding[]> {
  const findings: LedgerFinding[] = [];
  for (const t of await ledgerTotals(db)) {
    if (t.debits_posted !== t.credits_posted || t.debits_pending !== t.credits_pending) {
      findings.push({
        check: 'balanced',
        detail: `${t.currency}: posted debits ${t.debits_posted} and credits ${t.credits_posted}, pending debits ${t.debits_pending} and credits ${t.credits_pending}`,
      });
    }
  }
  const mismatched = await db.query<Record<string, string>>(`${DERIVED_TOTALS}
     SELECT k.id, k.dp::text, coalesce(d.dp, 0)::text AS derived_dp, k.cp::text, coalesce(d.cp, 0)::text AS derived_cp,
       k.dpe::text, coalesce(d.dpe, 0)::text AS derived_dpe, k.cpe::text, coalesce(d.cpe, 0)::text AS derived_cpe
     FROM kept k LEFT JOIN derived d ON d.account_id = k.id
     WHERE (k.dp, k.cp, k.dpe, k.cpe) IS DISTINCT FROM (coalesce(d.dp, 0), coalesce(d.cp, 0), coalesce(d.dpe, 0), coalesce(d.cpe, 0))
     ORDER BY k.id`);
  for (const m of mismatched) {
    findings.push({
      check: 'totals',
      detail: `account ${m.id} keeps debits ${m.dp} / credits ${m.cp} posted, ${m.dpe} / ${m.cpe} pending; its transfers add up to ${m.derived_dp} / ${m.derived_cp} posted, ${m.derived_dpe} / ${m.derived_cpe} pending`,
    });
  }
  const unreferenced = await db.query<{ id: string; problem: string }>(
    `SELECT t.id, 'names account ' || t.debit_account_id || ', which does not exist' AS problem FROM ledger_transfers t
     WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = t.debit_account_id)
     UNION ALL
     SELECT t.id, 'names account ' || t.credit_account_id || ', which does not exist' FROM ledger_transfers t
     WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = t.credit_account_id)
     UNION ALL
     SELECT t.id, CASE WHEN t.pending_id IS NULL THEN 'is a ' || t.kind || ' that resolves no hold'
                       WHEN t.kind NOT IN ('capture', 'release') THEN 'is a ' || t.kind || ' that names a hold'
                       ELSE 'resolves ' || t.pending_id || ', which is not a pending hold of reservation ' || coalesce(t.reservation_id, '(none)') END
     FROM ledger_transfers t LEFT JOIN ledger_transfers hold ON hold.id = t.pending_id
     WHERE (t.kind IN ('capture', 'release')) <> (t.pending_id IS NOT NULL)
       OR (t.pending_id IS NOT NULL AND (hold.id IS NULL OR NOT hold.pending OR hold.reservation_id IS DISTINCT FROM t.reservation_id))
     ORDER BY 1`,
  );
  for (const u of unreferenced) findings.push({ check: 'references', detail: `transfer ${u.id} ${u.problem}` });
  const unlisted = await db.query<{ id: string; listed_at: string | null }>(
    `SELECT g.id, e.expires_at::text AS listed_at FROM credit_grants g LEFT JOIN credit_grant_expiries e ON e.grant_id = g.id
     WHERE g.remaining > 0 AND g.expires_at IS NOT NULL AND e.expires_at IS DISTINCT FROM g.expires_at ORDER BY g.id`,
  );
  for (const u of unlisted) {
    findings.push({ check: 'expiries', detail: `grant ${u.id} has a remainder and an expiry but ${u.listed_at === null ? 'is not on the expiry sweep\'s list' : `is listed to expire at ${u.listed_at}`}` });
  }
  return shortened(findings);
}

function shortened(findings: LedgerFinding[]): LedgerFinding[] {
  const shown: LedgerFinding[] = [];
  for (const check of CHECKS) {
    const all = findings.filter((f) => f.check === check);
    shown.push(...all.slice(0, FINDINGS_SHOWN));
    if (all.length > FINDINGS_SHOWN) shown.push({ check, detail: `and ${all.length - FINDINGS_SHOWN} more` });
  }
  return shown;
}

// Totals as kept (an operator account's row plus its shards) and as derived from the transfers.
const DERIVED_TOTALS = `WITH moves AS (
    SELECT debit_account_id AS account_id, true AS debit, amount, kind, pending FROM ledger_transfers
    UNION ALL SELECT credit_account_id, false, amount, kind, pending FROM ledger_transfers
  ), derived AS (
    SELECT account_id,
      coalesce(sum(amount) FILTER (WHERE debit AND NOT pending AND kind <> 'release'), 0) AS dp,
      coalesce(sum(amount) FILTER (WHERE NOT debit AND NOT pending AND kind <> 'release'), 0) AS cp,
      coalesce(sum(CASE WHEN pending THEN amount WHEN kind IN ('capture', 'release') THEN -amount ELSE 0 END) FILTER (WHERE debit), 0) AS dpe,
      coalesce(sum(CASE WHEN pending THEN amount WHEN kind IN ('capture', 'release') THEN -amount ELSE 0 END) FILTER (WHERE NOT debit), 0) AS cpe
    FROM moves GROUP BY account_id
  ), kept AS (
    SELECT a.id, a.debits_posted + coalesce(sum(s.debits_posted), 0) AS dp, a.credits_posted + coalesce(sum(s.credits_posted), 0) AS cp,
      a.debits_pending + coalesce(sum(s.debits_pending), 0) AS dpe, a.credits_pending + coalesce(sum(s.credits_pending), 0) AS cpe
    FROM ledger_accounts a LEFT JOIN ledger_account_shards s ON s.account_id = a.id GROUP BY a.id
  )`;
