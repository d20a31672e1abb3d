import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import type { InvoiceStatus } from './invoice-rules.js';
import type { CreditNoteRow, InvoiceLineRow, InvoiceRow } from './invoice-store.js';
import type { CreditNote, Invoice } from './schemas.js';

/** Invoices and credit notes as the API shows them: amounts as decimal strings in the invoice's currency. */

const iso = (value: Date | null) => toIso(value ? new Date(value) : null);

export function presentInvoice(r: InvoiceRow, lines: InvoiceLineRow[], notes: CreditNoteRow[]): Invoice {
  const money = (v: string) => formatAmount(BigInt(v), r.currency);
  return {
    id: r.id,
    number: r.number === null ? null : Number(r.number),
    customer_id: r.customer_id,
    currency: r.currency,
    period: r.period,
    period_start: new Date(r.period_start).toISOString(),
    period_end: new Date(r.period_end).toISOString(),
    status: r.status as InvoiceStatus,
    lines: lines.map((l) => ({
      type: l.late_invoice_id === null ? ('usage' as const) : ('late_usage' as const),
      product_id: l.product_id,
      product: l.product_key,
      meter: l.meter_key,
      quantity: l.quantity,
      price_id: l.price_id,
      scheme: l.scheme as Invoice['lines'][number]['scheme'],
      late_invoice_id: l.late_invoice_id,
      late_period: l.late_period,
      amount: money(l.amount),
      accrued: money(l.accrued),
    })),
    subtotal: money(r.subtotal),
    tax_rate: r.tax_rate,
    tax: money(r.tax),
    total: money(r.total),
    accrued: money(r.accrued),
    adjustment: money(r.adjustment),
    credits_applied: money(r.credits_applied),
    amount_due: money(r.amount_due),
    amount_paid: money(r.amount_paid),
    amount_credited: money(r.amount_credited),
    amount_remaining: money(r.amount_remaining),
    credit_notes: notes.map(presentCreditNote),
    payment_provider: r.payment_provider,
    payment_reference: r.payment_reference,
    created_at: new Date(r.created_at).toISOString(),
    finalized_at: iso(r.finalized_at),
    paid_at: iso(r.paid_at),
    voided_at: iso(r.voided_at),
    uncollectible_at: iso(r.uncollectible_at),
  };
}

export function presentCreditNote(n: CreditNoteRow): CreditNote {
  return {
    id: n.id,
    invoice_id: n.invoice_id,
    customer_id: n.customer_id,
    currency: n.currency,
    amount: formatAmount(BigInt(n.amount), n.currency),
    tax: formatAmount(BigInt(n.tax), n.currency),
    reason: n.reason as CreditNote['reason'],
    memo: n.memo,
    created_at: new Date(n.created_at).toISOString(),
  };
}
