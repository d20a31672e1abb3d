import type { Queryable } from '../platform/db.js';
import { AppError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { availableBalance, OPERATOR_ACCOUNT_CODES } from './model.js';
import { accountFromRow } from './rows.js';

/** Opens a customer's ledger account (and the operator's accounts for its currency, once). */
export async function openCustomerAccount(tx: Queryable, customerId: string, currency: string, creditLimit: bigint, now: Date) {
  for (const code of OPERATOR_ACCOUNT_CODES) {
    await tx.query(
      `INSERT INTO ledger_accounts (id, currency, code, customer_id, created_at) VALUES ($1, $2, $3, NULL, $4)
       ON CONFLICT (code, currency) WHERE customer_id IS NULL DO NOTHING`,
      [newId('acc', now.getTime()), currency, code, now],
    );
  }
  await tx.query(
    `INSERT INTO ledger_accounts (id, currency, code, customer_id, credit_limit, created_at) VALUES ($1, $2, 'customer', $3, $4, $5)`,
    [newId('acc', now.getTime()), currency, customerId, creditLimit.toString(), now],
  );
}

/**
 * Changes how far below zero a customer may go; refused if that would leave available below zero
 * (or, when an unpaid invoice already took it below zero, lower than it is).
 */
export async function setCreditLimit(tx: Queryable, customerId: string, creditLimit: bigint): Promise<void> {
  const [row] = await tx.query('SELECT * FROM ledger_accounts WHERE customer_id = $1 FOR NO KEY UPDATE', [customerId]);
  if (!row) throw new AppError('not_found', `No ledger account for customer ${customerId}`);
  const current = accountFromRow(row);
  const after = availableBalance({ ...current, creditLimit });
  if (after < 0n && after < availableBalance(current)) {
    throw new AppError('conflict', 'The customer already uses more credit than this credit limit allows');
  }
  await tx.query('UPDATE ledger_accounts SET credit_limit = $2 WHERE customer_id = $1', [customerId, creditLimit.toString()]);
}

export async function creditLimitsOf(tx: Queryable, customerIds: string[]): Promise<Map<string, bigint>> {
  const rows = await tx.query<{ customer_id: string; credit_limit: string }>(
    'SELECT customer_id, credit_limit FROM ledger_accounts WHERE customer_id = ANY($1)',
    [customerIds],
  );
  return new Map(rows.map((r) => [r.customer_id, BigInt(r.credit_limit)]));
}
