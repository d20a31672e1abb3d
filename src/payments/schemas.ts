import { Type, type Static } from 'typebox';
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

export const PaymentStatus = StringEnum(['pending', 'paid', 'partially_refunded', 'refunded', 'failed'] as const);

export const Payment = Type.Object({
  id: Type.String({ description: 'pay_ id' }),
  customer_id: Type.String(),
  kind: StringEnum(['top_up', 'auto_top_up', 'invoice'] as const, { description: 'top_up (Checkout or manual), auto_top_up (off-session, below the threshold), invoice (collecting a postpaid invoice)' }),
  provider: Type.String({ description: 'stripe (Checkout top-up) or manual (recorded by the operator)' }),
  status: PaymentStatus,
  currency: Currency,
  amount: Type.String(),
  url: Type.Union([Type.String(), Type.Null()], { description: 'The Checkout page where the customer pays' }),
  reference: Type.Union([Type.String(), Type.Null()], { description: "Manual payments: the operator's reference" }),
  grant_id: Type.Union([Type.String(), Type.Null()], { description: 'The purchased credit grant, once paid (an invoice payment: only for what it received beyond what the invoice owed)' }),
  payment_intent_id: Type.Union([Type.String(), Type.Null()], { description: "The provider's payment (Stripe PaymentIntent id), once known" }),
  refunded: Type.String({ description: 'Refunded by the provider' }),
  refund_taken: Type.String({ description: 'Of the refund, taken back from the customer credit' }),
  refund_uncollected: Type.String({ description: 'Of the refund, already spent: not taken back' }),
  failure_code: Type.Union([Type.String(), Type.Null()], { description: "Failed: the provider's decline code, e.g. card_declined" }),
  failure_message: Type.Union([Type.String(), Type.Null()]),
  dispute_status: Type.Union([Type.String(), Type.Null()], { description: "The provider's dispute status (needs_response, under_review, won, lost, ...), null when never disputed" }),
  disputed: Type.String({ description: 'Held back by an open or lost dispute (0 once won)' }),
  dispute_taken: Type.String({ description: 'Of the disputed amount, taken back from the customer credit' }),
  dispute_uncollected: Type.String({ description: 'Of the disputed amount, already spent: not taken back' }),
  dispute_reinstated: Type.String({ description: 'Credit given back when the dispute was won' }),
  invoice_id: Type.Union([Type.String(), Type.Null()], { description: 'kind invoice: the invoice it collects' }),
  created_at: Timestamp,
  paid_at: NullableTimestamp,
  failed_at: NullableTimestamp,
});

const AMOUNT_RULES = "In the customer's currency, at most its minor-unit digits: from 1.00 to 10000.00 (100 to 1000000 for JPY and KRW)";

export const AutoTopUpPut = Type.Object(
  {
    enabled: Type.Boolean({ description: 'On needs a saved card (a paid Checkout top-up): otherwise 409 payment_method_required' }),
    threshold: Type.String({ ...Money, description: `Top up when the available balance falls below this. ${AMOUNT_RULES}`, examples: ['10.00'] }),
    amount: Type.String({ ...Money, description: `Credit bought each time. ${AMOUNT_RULES}`, examples: ['50.00'] }),
  },
  { additionalProperties: false },
);
export type AutoTopUpPut = Static<typeof AutoTopUpPut>;

export const AutoTopUp = Type.Object({
  customer_id: Type.String(),
  enabled: Type.Boolean(),
  currency: Currency,
  threshold: Type.Union([Type.String(), Type.Null()], { description: 'Null until configured' }),
  amount: Type.Union([Type.String(), Type.Null()], { description: 'Null until configured' }),
  payment_method: Type.Union([Type.String(), Type.Null()], { description: "The saved card charged (the provider's id), from the last paid Checkout top-up" }),
  consecutive_failures: Type.Integer({ description: 'Declines in a row; 3 turns auto top-up off' }),
  next_attempt_at: Type.Union([Timestamp, Type.Null()], { description: 'After a decline: no new attempt before this' }),
  disabled_reason: Type.Union([Type.String(), Type.Null()], { description: 'too_many_failures when Tollgate turned it off' }),
  disabled_at: NullableTimestamp,
  updated_at: NullableTimestamp,
});

export const PaymentListQuery = Type.Object(
  {
    ...ListQuery.properties,
    customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: 'Only payments of this customer' })),
    status: Type.Optional(PaymentStatus),
  },
  { additionalProperties: false },
);

export const CardSetup = Type.Object(
  {
    id: Type.String({ description: 'pms_...: the setup (the provider\'s idempotency key)' }),
    customer_id: Type.String(),
    url: Type.String({ description: 'The Checkout page (setup mode) to send the customer to: it saves a card without paying' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
