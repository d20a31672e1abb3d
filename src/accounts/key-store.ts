import { arrayLiteral } from '../platform/columns.js';
import type { Queryable } from '../platform/db.js';
import { pagesPerParentSql } from '../platform/lists.js';
import type { KeyRateLimits } from '../rate-limits/rate-limits.js';

export interface ApiKeyRow {
  id: string;
  customer_id: string;
  name: string;
  secret_hash: string;
  secret_prefix: string;
  expires_at: Date | null;
  spend_limit_amount: string | null;
  spend_limit_period: 'day' | 'month' | null;
  max_concurrency: number | null;
  /** Requests per second: the key's own limit, and the operator's allowance for it (migration 010). */
  rate_limit: number | null;
  rate_limit_max: number | null;
  revoked_at: Date | null;
  created_at: Date;
}

export async function insertKey(tx: Queryable, row: ApiKeyRow): Promise<void> {
  await tx.query(
    `INSERT INTO api_keys (id, customer_id, name, secret_hash, secret_prefix, expires_at, spend_limit_amount,
       spend_limit_period, max_concurrency, rate_limit, rate_limit_max, revoked_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [row.id, row.customer_id, row.name, row.secret_hash, row.secret_prefix, row.expires_at, row.spend_limit_amount,
      row.spend_limit_period, row.max_concurrency, row.rate_limit, row.rate_limit_max, row.revoked_at, row.created_at],
  );
}

export async function findKey(db: Queryable, id: string): Promise<ApiKeyRow | null> {
  const [row] = await db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
  return row ?? null;
}

export type KeyByHashRow = ApiKeyRow & { currency: string };

/** The keys with these secret hashes, with their customer's currency, by hash. */
export async function findKeysByHash(db: Queryable, secretHashes: string[]): Promise<Map<string, KeyByHashRow>> {
  const rows = await db.query<KeyByHashRow>(
    'SELECT k.*, c.currency FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE k.secret_hash = ANY($1)',
    [secretHashes],
  );
  return new Map(rows.map((r) => [r.secret_hash, r]));
}

/** The rate limits of several keys: key id -> limits (a key not found is absent). */
export async function keyRateLimits(db: Queryable, ids: string[]): Promise<Map<string, KeyRateLimits>> {
  const rows = await db.query<{ id: string; rate_limit: number | null; rate_limit_max: number | null }>(
    'SELECT id, rate_limit, rate_limit_max FROM api_keys WHERE id = ANY($1::text[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, { rateLimit: r.rate_limit, rateLimitMax: r.rate_limit_max }]));
}

/**
 * Keys whose rate limits changed after `since` (stamped by the database: migration 017), and the
 * database's time of this read, from which the next one starts. `since` is a value, never an
 * expression, so that the plan reads the index of stamped keys for the few recent ones.
 */
export const KEY_RATE_LIMITS_CHANGED_SQL = `SELECT r.at AS read_at, k.id, k.rate_limit, k.rate_limit_max
  FROM (SELECT statement_timestamp() AS at) r
  LEFT JOIN api_keys k ON k.rate_limits_changed_at > $1::timestamptz`;

export async function keyRateLimitsChanged(db: Queryable, since: Date): Promise<{ readAt: Date; changed: Map<string, KeyRateLimits> }> {
  const rows = await db.query<{ read_at: Date; id: string | null; rate_limit: number | null; rate_limit_max: number | null }>(KEY_RATE_LIMITS_CHANGED_SQL, [since]);
  const changed = new Map<string, KeyRateLimits>();
  for (const r of rows) if (r.id !== null) changed.set(r.id, { rateLimit: r.rate_limit, rateLimitMax: r.rate_limit_max });
  return { readAt: new Date(rows[0]!.read_at), changed };
}

/** The database's time `seconds` ago: where a process's first ask for changed limits starts. */
export async function databaseTimeAgo(db: Queryable, seconds: number): Promise<Date> {
  const [row] = await db.query<{ at: Date }>('SELECT statement_timestamp() - make_interval(secs => $1::float8) AS at', [seconds]);
  return new Date(row!.at);
}

/** Active keys (not revoked, not expired at `now`), newest first, with their customer's currency: the key cache's warm-up. */
export async function activeKeyIdentities(db: Queryable, now: Date, limit: number) {
  return db.query<{ id: string; customer_id: string; secret_hash: string; currency: string; rate_limit: number | null; rate_limit_max: number | null }>(
    `SELECT k.id, k.customer_id, k.secret_hash, c.currency, k.rate_limit, k.rate_limit_max
     FROM api_keys k JOIN customers c ON c.id = k.customer_id
     WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $1)
     ORDER BY k.id DESC LIMIT $2`,
    [now, limit],
  );
}

/** Owner of each key: key id -> customer id. */
export async function keyOwners(db: Queryable, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: string; customer_id: string }>('SELECT id, customer_id FROM api_keys WHERE id = ANY($1)', [arrayLiteral(ids)]);
  return new Map(rows.map((r) => [r.id, r.customer_id]));
}

export async function listKeys(db: Queryable, customerId: string, limit: number, cursor?: string): Promise<ApiKeyRow[]> {
  return db.query<ApiKeyRow>(
    'SELECT * FROM api_keys WHERE customer_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3',
    [customerId, cursor ?? null, limit + 1],
  );
}

/** A page of keys of each of several customers, with the customer's currency, in one query. */
export async function listKeysOf(db: Queryable, customerIds: string[], limit: number, cursor?: string): Promise<Array<ApiKeyRow & { currency: string }>> {
  return db.query<ApiKeyRow & { currency: string }>(
    `SELECT k.*, c.currency FROM (${pagesPerParentSql('api_keys', 'customer_id')}) k JOIN customers c ON c.id = k.customer_id ORDER BY k.customer_id, k.id DESC`,
    [customerIds, cursor ?? null, limit + 1],
  );
}

export async function updateKeyLimits(tx: Queryable, row: ApiKeyRow): Promise<void> {
  await tx.query(
    `UPDATE api_keys SET name = $2, spend_limit_amount = $3, spend_limit_period = $4, max_concurrency = $5,
       rate_limit = $6, rate_limit_max = $7 WHERE id = $1`,
    [row.id, row.name, row.spend_limit_amount, row.spend_limit_period, row.max_concurrency, row.rate_limit, row.rate_limit_max],
  );
}

export async function revokeKey(tx: Queryable, id: string, at: Date): Promise<void> {
  await tx.query('UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1', [id, at]);
}

/** Current limits of the keys an array expression holds, as of a time (SQL): the ledger reads them in its batch statement. */
export function keyLimitsSql(idsSql: string, nowSql: string): string {
  return `SELECT id, max_concurrency, spend_limit_amount::text AS spend_limit_amount, spend_limit_period,
       (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${nowSql})) AS active
     FROM api_keys WHERE id = ANY(${idsSql})`;
}
