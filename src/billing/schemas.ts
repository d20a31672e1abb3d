import { Type, type Static } from 'typebox';
import { Money, NullableTimestamp, SignedMoney, StringEnum, Timestamp } from '../platform/schemas.js';
import { ANCHOR_DAY_MAX } from './invoice-rules.js';

export const InvoiceStatus = StringEnum(['draft', 'finalized', 'paid', 'void', 'uncollectible']);
const Period = Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'A billing period, YYYY-MM', examples: ['2026-11'] });
/** A percentage from 0 to 100 with at most 4 fractional digits: "20", "8.875". */
const TaxRate = Type.String({ pattern: '^(100(\\.0{1,4})?|\\d{1,2}(\\.\\d{1,4})?)$', description: 'Exclusive tax, a percentage from 0 to 100 (e.g. "20", "8.875")' });

const NullableString = (description: string) => Type.Union([Type.String(), Type.Null()], { description });

export const InvoiceLine = Type.Object({
  type: StringEnum(['usage', 'late_usage'], { description: "usage: the period's usage of one product and meter; late_usage: charges for an earlier invoice's period made after it was finalized" }),
  product_id: NullableString('null on a late usage line'),
  product: NullableString('The product key (null on a late usage line)'),
  meter: NullableString('null on a late usage line'),
  quantity: NullableString('The period total the meter bills, exact (null on a late usage line)'),
  price_id: NullableString('The price in force at the period end; null when there was none (billed at 0)'),
  scheme: Type.Union([StringEnum(['per_unit', 'graduated', 'volume', 'package']), Type.Null()]),
  late_invoice_id: NullableString('On a late usage line: the earlier invoice whose period the usage belongs to'),
  late_period: NullableString("On a late usage line: that invoice's period"),
  amount: Money,
  accrued: Money,
});

export const CreditNoteReason = StringEnum(['duplicate', 'product_unsatisfactory', 'order_change', 'other']);

export const CreditNote = Type.Object({
  id: Type.String(),
  invoice_id: Type.String(),
  customer_id: Type.String(),
  currency: Type.String(),
  amount: Money,
  tax: Type.String({ description: 'The part of amount credited from the tax collected (proportional to the invoice tax)' }),
  reason: CreditNoteReason,
  memo: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});
export type CreditNote = Static<typeof CreditNote>;

/** The amount in minor units only: 2 fractional digits at most for USD, none for JPY (checked per currency). */
export const CreditNoteCreate = Type.Object(
  {
    amount: Type.String({ pattern: '^\\d{1,15}(\\.\\d{1,2})?$', description: "At most the invoice's total less what was credited already, in the currency's minor units", examples: ['5.00'] }),
    reason: CreditNoteReason,
    memo: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type CreditNoteCreate = Static<typeof CreditNoteCreate>;

export const Invoice = Type.Object({
  id: Type.String(),
  number: Type.Union([Type.Integer(), Type.Null()], { description: 'Sequential per operator, given at finalization' }),
  customer_id: Type.String(),
  currency: Type.String(),
  period: Type.String(),
  period_start: Timestamp,
  period_end: Timestamp,
  status: InvoiceStatus,
  lines: Type.Array(InvoiceLine),
  subtotal: Money,
  tax_rate: Type.String(),
  tax: Money,
  total: Money,
  accrued: Money,
  adjustment: SignedMoney,
  credits_applied: Type.String({ description: "The part of the total the customer's credit grants paid (total - amount_due), set at finalization" }),
  amount_due: Type.String({ description: 'What the customer owes after credits, set at finalization (the total on a draft)' }),
  amount_paid: Money,
  amount_credited: Type.String({ description: 'The sum of the credit notes' }),
  amount_remaining: Type.String({ description: 'What is still owed: amount_due less payments and credit notes (0 once paid or void)' }),
  credit_notes: Type.Array(CreditNote),
  payment_provider: Type.Union([Type.String(), Type.Null()], { description: 'manual (mark_paid), stripe, or credit_note when credit notes covered it' }),
  payment_reference: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  finalized_at: NullableTimestamp,
  paid_at: NullableTimestamp,
  voided_at: NullableTimestamp,
  uncollectible_at: NullableTimestamp,
});
export type Invoice = Static<typeof Invoice>;

const listFields = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ pattern: '^inv_[0-9a-z]{26}$' })),
  status: Type.Optional(InvoiceStatus),
  period: Type.Optional(Period),
};
export const CreditNoteListQuery = Type.Object(
  { limit: listFields.limit, cursor: Type.Optional(Type.String({ pattern: '^cn_[0-9a-z]{26}$' })) },
  { additionalProperties: false },
);
export const InvoiceListQuery = Type.Object({ ...listFields, customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$' })) });
export type InvoiceListQuery = Static<typeof InvoiceListQuery>;
export const MyInvoiceListQuery = Type.Object(listFields, { additionalProperties: false });

/** finalize, void, mark_uncollectible take no parameters: no body, or an empty object. */
export const MarkPaid = Type.Object(
  { reference: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The bank transfer or receipt reference' })) },
  { additionalProperties: false },
);
export type MarkPaid = Static<typeof MarkPaid>;

export const BillingSettings = Type.Object({
  customer_id: Type.String(),
  tax_rate: Type.String(),
  anchor_day: Type.Integer(),
  updated_at: NullableTimestamp,
});
export const BillingSettingsPut = Type.Object(
  {
    tax_rate: Type.Optional(TaxRate),
    anchor_day: Type.Optional(Type.Integer({ minimum: 1, maximum: ANCHOR_DAY_MAX, description: 'The day of the month periods start on (default 1)' })),
  },
  { additionalProperties: false },
);
export type BillingSettingsPut = Static<typeof BillingSettingsPut>;
