import { Type } from 'typebox';
import { ListQuery } from '../platform/lists.js';
import { Currency, Money, NullableTimestamp, StringEnum, Timestamp } from '../platform/schemas.js';

export const TopUpCreate = Type.Object(
  {
    amount: Type.String({
      ...Money,
      description: "Credit to buy, in the customer's currency, at most its minor-unit digits: from 1.00 to 10000.00 (100 to 1000000 for JPY and KRW)",
      examples: ['25.00'],
    }),
  },
  { additionalProperties: false },
);

export const ManualPaymentCreate = Type.Object(
  {
    amount: TopUpCreate.properties.amount,
    reference: Type.String({ minLength: 1, maxLength: 200, description: 'Your reference for the money received, e.g. the bank transfer id' }),
  },
  { additionalProperties: false },
);

export const Payment = Type.Object({
  id: Type.String({ description: 'pay_ id' }),
  customer_id: Type.String(),
  kind: StringEnum(['top_up'] as const),
  provider: Type.String({ description: 'stripe (Checkout top-up) or manual (recorded by the operator)' }),
  status: StringEnum(['pending', 'paid', 'partially_refunded', 'refunded'] as const),
  currency: Currency,
  amount: Type.String(),
  url: Type.Union([Type.String(), Type.Null()], { description: 'The Checkout page where the customer pays' }),
  reference: Type.Union([Type.String(), Type.Null()], { description: "Manual payments: the operator's reference" }),
  grant_id: Type.Union([Type.String(), Type.Null()], { description: 'The purchased credit grant, once paid' }),
  refunded: Type.String({ description: 'Refunded by the provider' }),
  refund_taken: Type.String({ description: 'Of the refund, taken back from the customer credit' }),
  refund_uncollected: Type.String({ description: 'Of the refund, already spent: not taken back' }),
  created_at: Timestamp,
  paid_at: NullableTimestamp,
});

export const PaymentListQuery = Type.Object(
  {
    ...ListQuery.properties,
    customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: 'Only payments of this customer' })),
  },
  { additionalProperties: false },
);
