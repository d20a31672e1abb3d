import { arrayLiteral } from '../platform/columns.js';
import type { Queryable } from '../platform/db.js';

export interface CustomerRow {
  id: string;
  name: string;
  external_id: string | null;
  email: string | null;
  currency: string;
  billing_mode: 'prepaid' | 'postpaid';
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export async function insertCustomer(tx: Queryable, row: CustomerRow): Promise<void> {
  await tx.query(
    `INSERT INTO customers (id, name, external_id, email, currency, billing_mode, metadata, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [row.id, row.name, row.external_id, row.email, row.currency, row.billing_mode, JSON.stringify(row.metadata), row.created_at, row.updated_at],
  );
}

export async function findCustomer(db: Queryable, id: string, forUpdate = false): Promise<CustomerRow | null> {
  const [row] = await db.query<CustomerRow>(`SELECT * FROM customers WHERE id = $1${forUpdate ? ' FOR NO KEY UPDATE' : ''}`, [id]);
  return row ?? null;
}

export async function findCustomers(db: Queryable, ids: string[]): Promise<CustomerRow[]> {
  return db.query<CustomerRow>('SELECT * FROM customers WHERE id = ANY($1::text[])', [ids]);
}

export async function findCustomerByExternalId(db: Queryable, externalId: string): Promise<CustomerRow | null> {
  const [row] = await db.query<CustomerRow>('SELECT * FROM customers WHERE external_id = $1', [externalId]);
  return row ?? null;
}

/** Customers by id or external_id, in one query: ref -> {id, currency}. */
export async function findCustomersByRef(db: Queryable, refs: string[]): Promise<Map<string, { id: string; currency: string }>> {
  if (refs.length === 0) return new Map();
  const rows = await db.query<{ id: string; external_id: string; currency: string }>(
    'SELECT id, external_id, currency FROM customers WHERE id = ANY($1) OR external_id = ANY($1)',
    [arrayLiteral(refs)],
  );
  const found = new Map<string, { id: string; currency: string }>();
  for (const r of rows) {
    found.set(r.external_id, { id: r.id, currency: r.currency });
    found.set(r.id, { id: r.id, currency: r.currency });
  }
  return found;
}

/** `search` as an ILIKE pattern: its own %, _ and \\ match themselves. */
function containsPattern(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export async function listCustomers(db: Queryable, filter: { limit: number; cursor?: string; email?: string; search?: string }): Promise<CustomerRow[]> {
  return db.query<CustomerRow>(
    `SELECT * FROM customers WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR email = $2)
       AND ($4::text IS NULL OR name ILIKE $4 OR email ILIKE $4 OR external_id ILIKE $4 OR id ILIKE $4)
     ORDER BY id DESC LIMIT $3`,
    [filter.cursor ?? null, filter.email ?? null, filter.limit + 1, filter.search === undefined ? null : containsPattern(filter.search)],
  );
}

export async function updateCustomer(tx: Queryable, row: CustomerRow): Promise<void> {
  await tx.query(
    `UPDATE customers SET name = $2, external_id = $3, email = $4, billing_mode = $5, metadata = $6, updated_at = $7 WHERE id = $1`,
    [row.id, row.name, row.external_id, row.email, row.billing_mode, JSON.stringify(row.metadata), row.updated_at],
  );
}

export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505';
}
