import { Type, type Static } from 'typebox';
import { Money, NullableTimestamp, SignedMoney, StringEnum, Timestamp } from '../platform/schemas.js';
import { ANCHOR_DAY_MAX } from './invoice-rules.js';

export const InvoiceStatus = StringEnum(['draft', 'finalized', 'paid', 'void', 'uncollectible']);
const Period = Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'A billing period, YYYY-MM', examples: ['2026-11'] });
/** A percentage from 0 to 100 with at most 4 fractional digits: "20", "8.875". */
const TaxRate = Type.String({ pattern: '^(100(\\.0{1,4})?|\\d{1,2}(\\.\\d{1,4})?)$', description: 'Exclusive tax, a percentage from 0 to 100 (e.g. "20", "8.875")' });

export const InvoiceLine = Type.Object({
  product_id: Type.String(),
  product: Type.String({ description: 'The product key' }),
  meter: Type.String(),
  quantity: Type.String({ description: 'The period total the meter bills, exact' }),
  price_id: Type.Union([Type.String(), Type.Null()], { description: 'The price in force at the period end; null when there was none (billed at 0)' }),
  scheme: Type.Union([StringEnum(['per_unit', 'graduated', 'volume', 'package']), Type.Null()]),
  amount: Money,
  accrued: Money,
});

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
export const InvoiceListQuery = Type.Object({ ...listFields, customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$' })) });
export type InvoiceListQuery = Static<typeof InvoiceListQuery>;
export const MyInvoiceListQuery = Type.Object(listFields, { additionalProperties: false });

/** finalize, void, mark_uncollectible take no parameters: no body, or an empty object. */
export const NoParameters = Type.Object({}, { additionalProperties: false });
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
