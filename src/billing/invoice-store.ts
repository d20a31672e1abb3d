import type { Queryable } from '../platform/db.js';
import { columns } from '../platform/columns.js';
import type { InvoiceStatus } from './invoice-rules.js';
import { pagesPerParentSql } from '../platform/lists.js';

/** The billing module's tables: invoices, invoice_lines, invoice_numbering, billing_settings, billing_runs. */

export interface InvoiceRow {
  id: string;
  customer_id: string;
  currency: string;
  period: string;
  period_start: Date;
  period_end: Date;
  status: InvoiceStatus;
  number: string | null;
  tax_rate: string;
  subtotal: string;
  tax: string;
  total: string;
  accrued: string;
  adjustment: string;
  credits_applied: string;
  amount_due: string;
  amount_paid: string;
  amount_credited: string;
  amount_remaining: string;
  created_at: Date;
  finalized_at: Date | null;
  paid_at: Date | null;
  voided_at: Date | null;
  uncollectible_at: Date | null;
  payment_reference: string | null;
  payment_provider: string | null;
}

export interface InvoiceLineRow {
  invoice_id: string;
  position: number;
  product_id: string | null;
  product_key: string | null;
  meter_key: string | null;
  quantity: string | null;
  price_id: string | null;
  scheme: string | null;
  amount: string;
  accrued: string;
  late_invoice_id: string | null;
  late_period: string | null;
}

/** What computeInvoice() sets on an invoice; a draft's amount due is its total until finalization applies credits. */
export type InvoiceAmounts = Pick<InvoiceRow, 'subtotal' | 'tax' | 'total' | 'accrued' | 'adjustment'>;

export type DraftRow = Omit<InvoiceRow, 'finalized_at' | 'paid_at' | 'voided_at' | 'uncollectible_at' | 'payment_reference' | 'payment_provider' | 'credits_applied' | 'amount_due' | 'amount_paid' | 'amount_credited' | 'amount_remaining'>;

const INVOICE_COLUMNS = [
  'id', 'customer_id', 'currency', 'period', 'period_start', 'period_end', 'status', 'number', 'tax_rate',
  'subtotal', 'tax', 'total', 'accrued', 'adjustment', 'created_at',
] as const;

/** Inserts a draft and its lines unless the customer already has an invoice for the period; true when inserted. */
export async function insertDraft(tx: Queryable, invoice: DraftRow, lines: InvoiceLineRow[]): Promise<boolean> {
  const placeholders = INVOICE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
  const inserted = await tx.query(
    `INSERT INTO invoices (${INVOICE_COLUMNS.join(', ')}, amount_due, amount_remaining) VALUES (${placeholders}, $${INVOICE_COLUMNS.length + 1}, $${INVOICE_COLUMNS.length + 1})
     ON CONFLICT (customer_id, period) DO NOTHING RETURNING id`,
    [...INVOICE_COLUMNS.map((c) => invoice[c]), invoice.total],
  );
  if (inserted.length === 0) return false;
  await insertLines(tx, lines);
  return true;
}

async function insertLines(tx: Queryable, lines: InvoiceLineRow[]): Promise<void> {
  if (lines.length === 0) return;
  await tx.query(
    `INSERT INTO invoice_lines (invoice_id, position, product_id, product_key, meter_key, quantity, price_id, scheme, amount, accrued, late_invoice_id, late_period)
     SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[])`,
    columns(lines, [
      (l) => l.invoice_id, (l) => l.position, (l) => l.product_id, (l) => l.product_key, (l) => l.meter_key, (l) => l.quantity,
      (l) => l.price_id, (l) => l.scheme, (l) => l.amount, (l) => l.accrued, (l) => l.late_invoice_id, (l) => l.late_period,
    ]),
  );
}

/**
 * Finalization freezes a draft: its lines and amounts as recomputed now, what is due after
 * credits, its number and status (`paid` at once when nothing is due).
 */
export async function finalizeDraft(
  tx: Queryable,
  id: string,
  f: { amounts: InvoiceAmounts; lines: InvoiceLineRow[]; amountDue: bigint; number: bigint; at: Date },
): Promise<void> {
  const a = f.amounts;
  const paid = f.amountDue === 0n;
  await tx.query(
    `UPDATE invoices SET subtotal = $2::bigint, tax = $3::bigint, total = $4::bigint, accrued = $5::bigint, adjustment = $6::bigint,
       amount_due = $7::bigint, amount_remaining = $7::bigint, credits_applied = $4::bigint - $7::bigint, number = $8::bigint,
       finalized_at = $9::timestamptz, status = $10::text, paid_at = CASE WHEN $10::text = 'paid' THEN $9::timestamptz END
     WHERE id = $1`,
    [id, a.subtotal, a.tax, a.total, a.accrued, a.adjustment, f.amountDue, f.number, f.at, paid ? 'paid' : 'finalized'],
  );
  await tx.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [id]);
  await insertLines(tx, f.lines);
}

/** A customer's invoices finalized before `periodStart` (late usage sources), with what was billed for each period so far. */
export async function billedPeriods(db: Queryable, customerId: string, periodStart: Date): Promise<Array<{ id: string; period: string; period_start: Date; period_end: Date; billed: string }>> {
  return db.query(
    `SELECT i.id, i.period, i.period_start, i.period_end,
       ((SELECT coalesce(sum(l.accrued), 0) FROM invoice_lines l WHERE l.invoice_id = i.id AND l.late_invoice_id IS NULL)
        + (SELECT coalesce(sum(l.accrued), 0) FROM invoice_lines l JOIN invoices b ON b.id = l.invoice_id
           WHERE l.late_invoice_id = i.id AND b.status <> 'draft'))::text AS billed
     FROM invoices i WHERE i.customer_id = $1 AND i.status <> 'draft' AND i.period_end <= $2 ORDER BY i.period_start`,
    [customerId, periodStart],
  );
}

/** What the customer still owes on its other unpaid invoices (finalized or uncollectible). */
export async function openRemaining(db: Queryable, customerId: string, exceptId: string): Promise<bigint> {
  const [row] = await db.query<{ open: string }>(
    `SELECT coalesce(sum(amount_remaining), 0)::text AS open FROM invoices
     WHERE customer_id = $1 AND id <> $2 AND status IN ('finalized', 'uncollectible')`,
    [customerId, exceptId],
  );
  return BigInt(row.open);
}

/** Money received for an invoice (or credited on it) lowers what it still owes; `paid` is recorded with the provider. */
export async function settleAmounts(
  tx: Queryable,
  id: string,
  s: { paid: bigint; credited: bigint; remaining: bigint; status: InvoiceStatus; at: Date; provider?: string | null; reference?: string | null },
): Promise<void> {
  await tx.query(
    `UPDATE invoices SET amount_paid = amount_paid + $2::bigint, amount_credited = amount_credited + $3::bigint, amount_remaining = $4::bigint,
       status = $5::text, paid_at = CASE WHEN $5::text = 'paid' AND status <> 'paid' THEN $6::timestamptz ELSE paid_at END,
       voided_at = CASE WHEN $5::text = 'void' THEN $6::timestamptz ELSE voided_at END,
       payment_provider = coalesce($7::text, payment_provider), payment_reference = coalesce($8::text, payment_reference)
     WHERE id = $1`,
    [id, s.paid, s.credited, s.remaining, s.status, s.at, s.provider ?? null, s.reference ?? null],
  );
}

export interface CreditNoteRow {
  id: string;
  invoice_id: string;
  customer_id: string;
  currency: string;
  amount: string;
  tax: string;
  reason: string;
  memo: string | null;
  created_at: Date;
}

export async function insertCreditNote(tx: Queryable, row: CreditNoteRow): Promise<void> {
  await tx.query(
    `INSERT INTO credit_notes (id, invoice_id, customer_id, currency, amount, tax, reason, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [row.id, row.invoice_id, row.customer_id, row.currency, row.amount, row.tax, row.reason, row.memo, row.created_at],
  );
}

/** Credit notes of the invoices, oldest first. */
export async function creditNotesOf(db: Queryable, invoiceIds: string[]): Promise<Map<string, CreditNoteRow[]>> {
  const rows = await db.query<CreditNoteRow>('SELECT * FROM credit_notes WHERE invoice_id = ANY($1::text[]) ORDER BY invoice_id, id', [invoiceIds]);
  const out = new Map<string, CreditNoteRow[]>(invoiceIds.map((id) => [id, []]));
  for (const row of rows) out.get(row.invoice_id)!.push(row);
  return out;
}

export async function listCreditNotes(db: Queryable, invoiceId: string, limit: number, cursor?: string): Promise<CreditNoteRow[]> {
  return db.query<CreditNoteRow>(
    'SELECT * FROM credit_notes WHERE invoice_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3',
    [invoiceId, cursor ?? null, limit + 1],
  );
}

export async function invoiceFor(db: Queryable, customerId: string, period: string): Promise<InvoiceRow | null> {
  const [row] = await db.query<InvoiceRow>('SELECT * FROM invoices WHERE customer_id = $1 AND period = $2', [customerId, period]);
  return row ?? null;
}

export async function getInvoice(db: Queryable, id: string, lock = false): Promise<InvoiceRow | null> {
  const [row] = await db.query<InvoiceRow>(`SELECT * FROM invoices WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  return row ?? null;
}

export async function linesOf(db: Queryable, invoiceIds: string[]): Promise<Map<string, InvoiceLineRow[]>> {
  const rows = await db.query<InvoiceLineRow>('SELECT * FROM invoice_lines WHERE invoice_id = ANY($1::text[]) ORDER BY invoice_id, position', [invoiceIds]);
  const out = new Map<string, InvoiceLineRow[]>(invoiceIds.map((id) => [id, []]));
  for (const row of rows) out.get(row.invoice_id)!.push(row);
  return out;
}

export interface InvoiceFilter {
  limit: number;
  cursor?: string;
  customerId?: string;
  status?: InvoiceStatus;
  period?: string;
}

export async function listInvoices(db: Queryable, f: InvoiceFilter): Promise<InvoiceRow[]> {
  return db.query<InvoiceRow>(
    `SELECT * FROM invoices WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR customer_id = $2)
       AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR period = $4)
     ORDER BY id DESC LIMIT $5`,
    [f.cursor ?? null, f.customerId ?? null, f.status ?? null, f.period ?? null, f.limit + 1],
  );
}

/** A page of invoices of each of several customers (optionally of one status), in one query. */
export async function listInvoicesOf(db: Queryable, customerIds: string[], f: { limit: number; cursor?: string; status?: InvoiceStatus }): Promise<InvoiceRow[]> {
  return db.query<InvoiceRow>(pagesPerParentSql('invoices', 'customer_id', '$4::text IS NULL OR t.status = $4'), [customerIds, f.cursor ?? null, f.limit + 1, f.status ?? null]);
}

/** The next invoice number, under the numbering row's lock: sequential and gapless (a rollback gives it back). */
export async function takeInvoiceNumber(tx: Queryable): Promise<bigint> {
  const [row] = await tx.query<{ last_number: string }>(
    `UPDATE invoice_numbering SET last_number = last_number + 1 WHERE operator = 'default' RETURNING last_number`,
  );
  return BigInt(row.last_number);
}

export async function markUncollectible(tx: Queryable, id: string, at: Date): Promise<void> {
  await tx.query(`UPDATE invoices SET status = 'uncollectible', uncollectible_at = $2 WHERE id = $1`, [id, at]);
}

export interface SettingsRow {
  customer_id: string;
  tax_rate: string;
  anchor_day: number;
  updated_at: Date;
}

export async function getSettings(db: Queryable, customerId: string): Promise<SettingsRow | null> {
  const [row] = await db.query<SettingsRow>('SELECT * FROM billing_settings WHERE customer_id = $1', [customerId]);
  return row ?? null;
}

export async function hasInvoices(db: Queryable, customerId: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM invoices WHERE customer_id = $1 LIMIT 1', [customerId])).length > 0;
}

export async function putSettings(tx: Queryable, row: SettingsRow): Promise<void> {
  await tx.query(
    `INSERT INTO billing_settings (customer_id, tax_rate, anchor_day, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (customer_id) DO UPDATE SET tax_rate = EXCLUDED.tax_rate, anchor_day = EXCLUDED.anchor_day, updated_at = EXCLUDED.updated_at`,
    [row.customer_id, row.tax_rate, row.anchor_day, row.updated_at],
  );
}

export async function startRun(db: Queryable, id: string, period: string, at: Date): Promise<void> {
  await db.query('INSERT INTO billing_runs (id, period, started_at) VALUES ($1, $2, $3)', [id, period, at]);
}

export async function finishRun(db: Queryable, id: string, at: Date, customers: number, created: number): Promise<void> {
  await db.query('UPDATE billing_runs SET finished_at = $2, customers = $3, invoices_created = $4 WHERE id = $1', [id, at, customers, created]);
}

export async function collectibleInvoices(db: Queryable, q: { after?: string; id?: string; limit: number }): Promise<InvoiceRow[]> {
  return db.query<InvoiceRow>(
    `SELECT * FROM invoices WHERE status = 'finalized' AND amount_remaining > 0 AND id > $1 AND ($2::text IS NULL OR id = $2) ORDER BY id LIMIT $3`,
    [q.after ?? '', q.id ?? null, q.limit],
  );
}
