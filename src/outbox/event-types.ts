import { Type, type Static, type TSchema } from 'typebox';
import { ApiKey, Customer } from '../accounts/schemas.js';
import { Invoice } from '../billing/schemas.js';
import { CreditGrant } from '../ledger/schemas.js';
import { Payment } from '../payments/schemas.js';
import { Money, NullableTimestamp, StringEnum, Timestamp } from '../platform/schemas.js';

/**
 * Every event type Tollgate emits, with the schema of its `data`: the one registry behind
 * `GET /v1/events/types`, the OpenAPI document and the docs (docs/webhooks.md).
 */

const BalanceAlert = Type.Object({
  customer_id: Type.String(),
  currency: Type.String(),
  available: Money,
  threshold: Money,
});

const ExpiredReservation = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  api_key_id: Type.String(),
  product_id: Type.String(),
  currency: Type.String(),
  amount: Money,
  expires_at: Timestamp,
  resolved_at: NullableTimestamp,
});

export const EVENT_TYPES = {
  'customer.created': { description: 'A customer was created', data: Customer },
  'api_key.created': { description: 'An API key was created (never its secret)', data: ApiKey },
  'api_key.revoked': { description: 'An API key was revoked', data: ApiKey },
  'credit_grant.created': { description: 'Credit was granted (a top-up, a manual payment or a promotional grant)', data: CreditGrant },
  'credit_grant.expired': {
    description: "A grant's remainder expired; part of it may expire later, once open holds no longer need it",
    data: Type.Object({ grant: CreditGrant, expired_amount: Money }),
  },
  'balance.low': { description: 'Available balance went below the customer\'s balance_low threshold (once per crossing)', data: BalanceAlert },
  'balance.depleted': {
    description: 'Available balance reached zero (once per crossing)',
    data: Type.Object({ customer_id: Type.String(), currency: Type.String(), available: Money }),
  },
  'spend_limit.reached': {
    description: "Spend in the current UTC day or month reached the customer's threshold (once per period)",
    data: Type.Object({
      customer_id: Type.String(),
      currency: Type.String(),
      period: StringEnum(['day', 'month']),
      period_start: Timestamp,
      spent: Money,
      threshold: Money,
    }),
  },
  'reservation.expired': { description: 'A hold nobody settled or released expired and returned to available', data: ExpiredReservation },
  'usage.uncollected': {
    description: 'Usage cost more than the customer could pay; the rest was not charged',
    data: Type.Object({
      customer_id: Type.String(),
      currency: Type.String(),
      uncollected: Money,
      reservation_id: Type.Union([Type.String(), Type.Null()]),
      api_key_id: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  'invoice.finalized': { description: 'An invoice was finalized (numbered, due)', data: Invoice },
  'invoice.paid': { description: 'An invoice was paid', data: Invoice },
  'invoice.payment_failed': { description: "An invoice's payment failed", data: Type.Object({ invoice: Invoice, reason: Type.String() }) },
  'payment.succeeded': { description: 'A payment (top-up) succeeded', data: Payment },
  'payment.refunded': { description: 'A payment was refunded (in part or in full)', data: Payment },
  'top_up.failed': {
    description: 'A top-up could not be paid',
    data: Type.Object({ customer_id: Type.String(), payment_id: Type.Union([Type.String(), Type.Null()]), currency: Type.String(), amount: Money, reason: Type.String() }),
  },
  'auto_top_up.disabled': { description: 'Automatic top-ups were turned off for a customer', data: Type.Object({ customer_id: Type.String(), reason: Type.String() }) },
  'webhook_endpoint.disabled': {
    description: 'Tollgate disabled a webhook endpoint that kept failing',
    data: Type.Object({ id: Type.String(), customer_id: Type.Union([Type.String(), Type.Null()]), url: Type.String(), reason: Type.String() }),
  },
} as const satisfies Record<string, { description: string; data: TSchema }>;

export type EventType = keyof typeof EVENT_TYPES;
export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as EventType[];
export type EventData<T extends EventType> = Static<(typeof EVENT_TYPES)[T]['data']>;

/** What a receiver gets (webhook body, bus message): the event with its stable id. */
export const EventEnvelope = Type.Object({
  id: Type.String({ description: 'msg_... : the same on every delivery and replay (the webhook-id header); dedupe on it' }),
  type: StringEnum(EVENT_TYPE_NAMES),
  created_at: Timestamp,
  customer_id: Type.Union([Type.String(), Type.Null()]),
  data: Type.Object({}, { additionalProperties: true, description: 'The payload of the type (GET /v1/events/types)' }),
});

export const EventTypeInfo = Type.Object({
  type: Type.String(),
  description: Type.String(),
  data_schema: Type.Unknown({ description: 'JSON Schema of the event\'s data' }),
});

export const EventTypeList = Type.Object({ data: Type.Array(EventTypeInfo) });

export const EventTypeName = StringEnum(EVENT_TYPE_NAMES);
