import type { Queryable } from '../platform/db.js';
import { pagesPerParentSql } from '../platform/lists.js';
import { periodStart, type Account, type Grant, type Reservation, type SpendPeriod, type Transfer } from './model.js';
import { accountFromRow, grantFromRow, reservationFromRow, transferFromRow } from './rows.js';

/** Read-only queries over the ledger's tables. */

export async function customerAccount(db: Queryable, customerId: string): Promise<Account | null> {
  const [row] = await db.query('SELECT * FROM ledger_accounts WHERE customer_id = $1', [customerId]);
  return row ? accountFromRow(row) : null;
}

/** The accounts of several customers in one query: customer id -> account. */
export async function customerAccounts(db: Queryable, customerIds: string[]): Promise<Map<string, Account>> {
  const rows = await db.query('SELECT * FROM ledger_accounts WHERE customer_id = ANY($1::text[])', [customerIds]);
  return new Map(rows.map((row) => [row.customer_id as string, accountFromRow(row)]));
}

/** One overdue hold of each of several customers that has any (the expiry applies per customer). */
export async function overdueHoldsOf(db: Queryable, customerIds: string[], now: Date): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT DISTINCT ON (customer_id) id FROM reservations
     WHERE customer_id = ANY($1::text[]) AND status = 'pending' AND expires_at <= $2 ORDER BY customer_id, id`,
    [customerIds, now],
  );
  return rows.map((r) => r.id);
}

/** The grants with something left of several customers, in one query: customer id -> grants. */
export async function activeGrantsOf(db: Queryable, customerIds: string[]): Promise<Map<string, Grant[]>> {
  const rows = await db.query('SELECT * FROM credit_grants WHERE customer_id = ANY($1::text[]) AND remaining > 0 ORDER BY id', [customerIds]);
  const grants = new Map<string, Grant[]>(customerIds.map((id) => [id, []]));
  for (const grant of rows.map(grantFromRow)) grants.get(grant.customerId)?.push(grant);
  return grants;
}

/** Inside a transaction: the customer's account under the lock ledger batches take (FOR NO KEY UPDATE). */
export async function lockCustomerAccount(tx: Queryable, customerId: string): Promise<Account | null> {
  const [row] = await tx.query('SELECT * FROM ledger_accounts WHERE customer_id = $1 FOR NO KEY UPDATE', [customerId]);
  return row ? accountFromRow(row) : null;
}

/**
 * What a customer spent in the UTC day and month holding `at`, through one of its keys if
 * `apiKeyId` is given: its captures (settled holds) and charges (usage beyond a hold, usage events,
 * invoices), as a ledger batch counts spend. Run under lockCustomerAccount for a figure no batch
 * changes until the caller commits.
 */
export async function periodSpend(db: Queryable, customerId: string, at: Date, apiKeyId?: string): Promise<Record<SpendPeriod, bigint>> {
  const [row] = await db.query<{ day: string; month: string }>(
    `SELECT coalesce(sum(amount) FILTER (WHERE created_at >= $2), 0)::text AS day, coalesce(sum(amount), 0)::text AS month
     FROM ledger_transfers WHERE customer_id = $1 AND kind IN ('capture', 'charge') AND created_at >= $3${apiKeyId === undefined ? '' : ' AND api_key_id = $4'}`,
    [customerId, periodStart('day', at), periodStart('month', at), ...(apiKeyId === undefined ? [] : [apiKeyId])],
  );
  return { day: BigInt(row!.day), month: BigInt(row!.month) };
}

export async function hasOverdueHolds(db: Queryable, customerId: string, now: Date): Promise<string | null> {
  const [row] = await db.query<{ id: string }>(
    `SELECT id FROM reservations WHERE customer_id = $1 AND status = 'pending' AND expires_at <= $2 LIMIT 1`,
    [customerId, now],
  );
  return row?.id ?? null;
}

export async function activeGrants(db: Queryable, customerId: string): Promise<Grant[]> {
  const rows = await db.query('SELECT * FROM credit_grants WHERE customer_id = $1 AND remaining > 0 ORDER BY id', [customerId]);
  return rows.map(grantFromRow);
}

export async function listGrants(db: Queryable, customerId: string, limit: number, cursor?: string): Promise<Grant[]> {
  const rows = await db.query(
    `SELECT * FROM credit_grants WHERE customer_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
    [customerId, cursor ?? null, limit + 1],
  );
  return rows.map(grantFromRow);
}

export async function listTransfers(db: Queryable, customerId: string, limit: number, cursor?: string): Promise<Transfer[]> {
  const rows = await db.query(
    `SELECT * FROM ledger_transfers WHERE customer_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
    [customerId, cursor ?? null, limit + 1],
  );
  return rows.map(transferFromRow);
}

/** A page of grants of each of several customers, in one query. */
export async function listGrantsOf(db: Queryable, customerIds: string[], limit: number, cursor?: string): Promise<Grant[]> {
  return (await db.query(pagesPerParentSql('credit_grants', 'customer_id'), [customerIds, cursor ?? null, limit + 1])).map(grantFromRow);
}

/** A page of ledger transfers of each of several customers, in one query. */
export async function listTransfersOf(db: Queryable, customerIds: string[], limit: number, cursor?: string): Promise<Transfer[]> {
  return (await db.query(pagesPerParentSql('ledger_transfers', 'customer_id'), [customerIds, cursor ?? null, limit + 1])).map(transferFromRow);
}

export async function getReservation(db: Queryable, id: string): Promise<Reservation | null> {
  const [row] = await db.query('SELECT * FROM reservations WHERE id = $1', [id]);
  return row ? reservationFromRow(row) : null;
}

/** A customer's reservations, newest first (limit + 1 rows with id < cursor), optionally of one status. */
export async function listReservations(db: Queryable, customerId: string, filter: { status?: Reservation['status']; limit: number; cursor?: string }): Promise<Reservation[]> {
  const rows = await db.query(
    `SELECT * FROM reservations WHERE customer_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id < $3)
     ORDER BY id DESC LIMIT $4`,
    [customerId, filter.status ?? null, filter.cursor ?? null, filter.limit + 1],
  );
  return rows.map(reservationFromRow);
}

export async function overdueReservations(db: Queryable, now: Date, limit: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT DISTINCT ON (customer_id) id FROM reservations WHERE status = 'pending' AND expires_at <= $1 ORDER BY customer_id, id LIMIT $2`,
    [now, limit],
  );
  return rows.map((r) => r.id);
}

/** Sums per currency over every account: the double-entry check (DESIGN.md invariant 1). */
export async function ledgerTotals(db: Queryable) {
  return db.query<{ currency: string; debits_posted: string; credits_posted: string; debits_pending: string; credits_pending: string }>(
    `SELECT currency, sum(debits_posted)::text AS debits_posted, sum(credits_posted)::text AS credits_posted,
       sum(debits_pending)::text AS debits_pending, sum(credits_pending)::text AS credits_pending
     FROM (
       SELECT currency, debits_posted, credits_posted, debits_pending, credits_pending FROM ledger_accounts
       UNION ALL -- the operator accounts' shards (migration 012)
       SELECT currency, debits_posted, credits_posted, debits_pending, credits_pending FROM ledger_account_shards
     ) totals GROUP BY currency ORDER BY currency`,
  );
}

/** Open holds per currency, and how many of them are past their expiry (waiting for the sweeper). */
export async function holdCounts(db: Queryable, now: Date) {
  return db.query<{ currency: string; open: string; overdue: string }>(
    `SELECT currency, count(*)::text AS open, count(*) FILTER (WHERE expires_at <= $1)::text AS overdue
     FROM reservations WHERE status = 'pending' GROUP BY currency ORDER BY currency`,
    [now],
  );
}
