import type { Queryable } from '../platform/db.js';
import type { InvoiceStatus } from './invoice-rules.js';

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
  created_at: Date;
  finalized_at: Date | null;
  paid_at: Date | null;
  voided_at: Date | null;
  uncollectible_at: Date | null;
  payment_reference: string | null;
}

export interface InvoiceLineRow {
  invoice_id: string;
  position: number;
  product_id: string;
  product_key: string;
  meter_key: string;
  quantity: string;
  price_id: string | null;
  scheme: string | null;
  amount: string;
  accrued: string;
}

const INVOICE_COLUMNS = [
  'id', 'customer_id', 'currency', 'period', 'period_start', 'period_end', 'status', 'number', 'tax_rate',
  'subtotal', 'tax', 'total', 'accrued', 'adjustment', 'created_at',
] as const;

/** Inserts a draft and its lines unless the customer already has an invoice for the period; true when inserted. */
export async function insertDraft(tx: Queryable, invoice: Omit<InvoiceRow, 'finalized_at' | 'paid_at' | 'voided_at' | 'uncollectible_at' | 'payment_reference'>, lines: InvoiceLineRow[]): Promise<boolean> {
  const placeholders = INVOICE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
  const inserted = await tx.query(
    `INSERT INTO invoices (${INVOICE_COLUMNS.join(', ')}) VALUES (${placeholders}) ON CONFLICT (customer_id, period) DO NOTHING RETURNING id`,
    INVOICE_COLUMNS.map((c) => invoice[c]),
  );
  if (inserted.length === 0) return false;
  if (lines.length > 0) {
    await tx.query(
      `INSERT INTO invoice_lines (invoice_id, position, product_id, product_key, meter_key, quantity, price_id, scheme, amount, accrued)
       SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[])`,
      [
        lines.map((l) => l.invoice_id), lines.map((l) => l.position), lines.map((l) => l.product_id), lines.map((l) => l.product_key),
        lines.map((l) => l.meter_key), lines.map((l) => l.quantity), lines.map((l) => l.price_id), lines.map((l) => l.scheme),
        lines.map((l) => l.amount), lines.map((l) => l.accrued),
      ],
    );
  }
  return true;
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

/** The next invoice number, under the numbering row's lock: sequential and gapless (a rollback gives it back). */
export async function takeInvoiceNumber(tx: Queryable): Promise<bigint> {
  const [row] = await tx.query<{ last_number: string }>(
    `UPDATE invoice_numbering SET last_number = last_number + 1 WHERE operator = 'default' RETURNING last_number`,
  );
  return BigInt(row.last_number);
}

export type StatusChange =
  | { status: 'finalized'; number: bigint; at: Date }
  | { status: 'paid'; at: Date; reference: string | null }
  | { status: 'void'; at: Date }
  | { status: 'uncollectible'; at: Date };

export async function changeStatus(tx: Queryable, id: string, change: StatusChange): Promise<void> {
  switch (change.status) {
    case 'finalized':
      await tx.query(`UPDATE invoices SET status = 'finalized', number = $2, finalized_at = $3 WHERE id = $1`, [id, change.number, change.at]);
      return;
    case 'paid':
      await tx.query(`UPDATE invoices SET status = 'paid', paid_at = $2, payment_reference = $3 WHERE id = $1`, [id, change.at, change.reference]);
      return;
    case 'void':
      await tx.query(`UPDATE invoices SET status = 'void', voided_at = $2 WHERE id = $1`, [id, change.at]);
      return;
    case 'uncollectible':
      await tx.query(`UPDATE invoices SET status = 'uncollectible', uncollectible_at = $2 WHERE id = $1`, [id, change.at]);
      return;
  }
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
