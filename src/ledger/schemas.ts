import { Type, type Static } from 'typebox';
import { Money, NullableTimestamp, SignedMoney, StringEnum, Timestamp } from '../platform/schemas.js';

export const GrantCategory = Type.Union([Type.Literal('purchased'), Type.Literal('promotional')]);

export const CreditGrant = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  currency: Type.String(),
  category: GrantCategory,
  priority: Type.Integer(),
  amount: Money,
  remaining: Money,
  expires_at: NullableTimestamp,
  expired_at: NullableTimestamp,
  description: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});

export const CreditGrantCreate = Type.Object(
  {
    amount: Money,
    category: Type.Optional(GrantCategory),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Lower is consumed first (default 100)' })),
    expires_at: Type.Optional(Timestamp),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type CreditGrantCreate = Static<typeof CreditGrantCreate>;

export const Balance = Type.Object({
  customer_id: Type.String(),
  currency: Type.String(),
  available: SignedMoney,
  held: Money,
  posted: SignedMoney,
  credit_limit: Money,
  grants: Type.Array(
    Type.Object({ id: Type.String(), category: GrantCategory, remaining: Money, expires_at: NullableTimestamp }),
  ),
});

/** GET /v1/balances: the customers whose balances to read, comma-separated (a page of the customer list). */
export const BALANCES_PER_REQUEST_MAX = 100;
export const BalanceListQuery = Type.Object(
  {
    customers: Type.String({
      pattern: `^cus_[0-9a-z]{26}(,cus_[0-9a-z]{26}){0,${BALANCES_PER_REQUEST_MAX - 1}}$`,
      description: `Up to ${BALANCES_PER_REQUEST_MAX} customer ids, comma-separated`,
    }),
  },
  { additionalProperties: false },
);

export const BalanceList = Type.Object({ data: Type.Array(Balance, { description: 'One per known customer, in the order asked; unknown ids are left out' }) });

export const TransferKind = StringEnum(['grant', 'hold', 'capture', 'release', 'charge', 'expiry', 'adjustment']);

export const Transaction = Type.Object({
  id: Type.String(),
  kind: TransferKind,
  amount: Money,
  currency: Type.String(),
  direction: Type.Union([Type.Literal('credit'), Type.Literal('debit')], { description: "Direction on the customer's account" }),
  pending: Type.Boolean({ description: 'A hold: moves held, not posted' }),
  pending_id: Type.Union([Type.String(), Type.Null()], { description: 'The hold a capture or release resolves' }),
  reservation_id: Type.Union([Type.String(), Type.Null()]),
  api_key_id: Type.Union([Type.String(), Type.Null()], { description: "The API key whose request made it: a reservation's hold, capture, release and charge, and usage charges" }),
  grant_id: Type.Union([Type.String(), Type.Null()]),
  invoice_id: Type.Union([Type.String(), Type.Null()], { description: 'The invoice a billing transfer belongs to' }),
  reason: Type.Union([Type.String(), Type.Null()], {
    description: 'For releases: settled, released or expired; for invoices: invoice_adjustment, invoice_tax, invoice_payment, credit_note, invoice_void',
  }),
  created_at: Timestamp,
});
