import { Type, type Static } from 'typebox';
import { Metadata, Money, NullableTimestamp, Quantities, SignedMoney, StringEnum, Timestamp } from '../platform/schemas.js';

export const HOLD_SECONDS_DEFAULT = 900;
export const HOLD_SECONDS_MAX = 86_400;

export const AuthorizeRequest = Type.Object(
  {
    api_key: Type.String({ minLength: 1, maxLength: 128, description: "The customer's API key secret, as the gateway received it" }),
    product: Type.String({ minLength: 1, maxLength: 128, description: 'Product key, e.g. fal-ai/flux/dev' }),
    estimate: Quantities,
    hold_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: HOLD_SECONDS_MAX, default: HOLD_SECONDS_DEFAULT })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
export type AuthorizeRequest = Static<typeof AuthorizeRequest>;

export const AuthorizeResponse = Type.Object({
  authorized: Type.Literal(true),
  customer: Type.String(),
  api_key_id: Type.String(),
  reservation: Type.Object({ id: Type.String(), amount: Money, currency: Type.String(), expires_at: Timestamp }),
  available_after: SignedMoney,
});

export const ReservationStatus = StringEnum(['pending', 'settled', 'released', 'expired']);

export const ReservationListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ pattern: '^res_[0-9a-z]{26}$' })),
    status: Type.Optional(ReservationStatus),
  },
  { additionalProperties: false, description: 'status=pending: the open holds' },
);

export const Reservation = Type.Object({
  id: Type.String(),
  status: ReservationStatus,
  customer_id: Type.String(),
  api_key_id: Type.String(),
  product_id: Type.String(),
  product: Type.Union([Type.String(), Type.Null()]),
  currency: Type.String(),
  amount: Money,
  estimate: Type.Record(Type.String(), Type.String()),
  usage: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
  charged: Type.Union([Money, Type.Null()]),
  released: Type.Union([Money, Type.Null()]),
  uncollected: Type.Union([Money, Type.Null()]),
  metadata: Metadata,
  expires_at: Timestamp,
  created_at: Timestamp,
  resolved_at: NullableTimestamp,
});

/** Release takes no parameters: no body, or an empty object. */
export const ReleaseRequest = Type.Object({}, { additionalProperties: false });

export const SettleRequest = Type.Object({ usage: Quantities }, { additionalProperties: false });
export type SettleRequest = Static<typeof SettleRequest>;

export const SettleResponse = Type.Object({
  reservation: Reservation,
  charged: Money,
  released: Money,
  uncollected: Money,
});

export const ReleaseResponse = Type.Object({ reservation: Reservation });
