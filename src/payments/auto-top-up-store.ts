import type { BatchReadSql } from '../ledger/batch-load.js';
import type { Queryable } from '../platform/db.js';

/** SQL of auto top-up settings (the payments module's auto_top_up_settings table). */

export interface SettingsRow {
  customer_id: string;
  enabled: boolean;
  threshold: string;
  amount_minor: string;
  consecutive_failures: number;
  next_attempt_at: Date | null;
  disabled_reason: string | null;
  disabled_at: Date | null;
  updated_at: Date;
}

export async function getSettings(db: Queryable, customerId: string): Promise<SettingsRow | null> {
  const [row] = await db.query<SettingsRow>('SELECT * FROM auto_top_up_settings WHERE customer_id = $1', [customerId]);
  return row ?? null;
}

/** The row lock that serializes a customer's top-up decision with the payment events that change it. */
export async function lockSettings(tx: Queryable, customerId: string): Promise<SettingsRow | null> {
  const [row] = await tx.query<SettingsRow>('SELECT * FROM auto_top_up_settings WHERE customer_id = $1 FOR UPDATE', [customerId]);
  return row ?? null;
}

export async function putSettings(tx: Queryable, row: SettingsRow): Promise<void> {
  await tx.query(
    `INSERT INTO auto_top_up_settings (customer_id, enabled, threshold, amount_minor, consecutive_failures, next_attempt_at, disabled_reason, disabled_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (customer_id) DO UPDATE SET enabled = excluded.enabled, threshold = excluded.threshold, amount_minor = excluded.amount_minor,
       consecutive_failures = excluded.consecutive_failures, next_attempt_at = excluded.next_attempt_at, disabled_reason = excluded.disabled_reason,
       disabled_at = excluded.disabled_at, updated_at = excluded.updated_at`,
    [row.customer_id, row.enabled, row.threshold, row.amount_minor, row.consecutive_failures, row.next_attempt_at, row.disabled_reason, row.disabled_at, row.updated_at],
  );
}

/** Of these customers, those with auto top-up on. */
/** The batch's customers with auto top-up on (a ledger batch reads it, see LedgerService.onCommitted). */
export const enabledInBatch: BatchReadSql = (p) => `SELECT json_agg(customer_id) FROM auto_top_up_settings WHERE enabled AND customer_id = ANY(${p.customerIds})`;

export async function enabledAmong(db: Queryable, customerIds: string[]): Promise<string[]> {
  const rows = await db.query<{ customer_id: string }>('SELECT customer_id FROM auto_top_up_settings WHERE enabled AND customer_id = ANY($1)', [customerIds]);
  return rows.map((r) => r.customer_id);
}

/** Customers with auto top-up on, in id order after `after`, a page at a time (the sweep). */
export async function enabledPage(db: Queryable, after: string, limit: number): Promise<string[]> {
  const rows = await db.query<{ customer_id: string }>('SELECT customer_id FROM auto_top_up_settings WHERE enabled AND customer_id > $1 ORDER BY customer_id LIMIT $2', [after, limit]);
  return rows.map((r) => r.customer_id);
}
