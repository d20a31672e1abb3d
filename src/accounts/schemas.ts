import { Type, type Static } from 'typebox';
import { Currency, Metadata, Money, NullableTimestamp, Timestamp } from '../platform/schemas.js';

export const BillingMode = Type.Union([Type.Literal('prepaid'), Type.Literal('postpaid')]);

export const Customer = Type.Object({
  id: Type.String({ examples: ['cus_01jd5x9k2m3n4p5q6r7s8t9v0w'] }),
  name: Type.String(),
  external_id: Type.Union([Type.String(), Type.Null()]),
  email: Type.Union([Type.String(), Type.Null()]),
  currency: Type.String(),
  billing_mode: BillingMode,
  credit_limit: Money,
  metadata: Metadata,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Customer = Static<typeof Customer>;

const Name = Type.String({ minLength: 1, maxLength: 200 });
const ExternalId = Type.String({ minLength: 1, maxLength: 200 });
const Email = Type.String({ format: 'email', maxLength: 320 });

export const CustomerCreate = Type.Object(
  {
    name: Name,
    external_id: Type.Optional(ExternalId),
    email: Type.Optional(Email),
    currency: Currency,
    billing_mode: Type.Optional(BillingMode),
    credit_limit: Type.Optional(Money),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
export type CustomerCreate = Static<typeof CustomerCreate>;

export const CustomerUpdate = Type.Object(
  {
    name: Type.Optional(Name),
    external_id: Type.Optional(Type.Union([ExternalId, Type.Null()])),
    email: Type.Optional(Type.Union([Email, Type.Null()])),
    billing_mode: Type.Optional(BillingMode),
    credit_limit: Type.Optional(Money),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type CustomerUpdate = Static<typeof CustomerUpdate>;

export const CustomerListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$' })),
  external_id: Type.Optional(ExternalId),
  email: Type.Optional(Type.String({ maxLength: 320 })),
  search: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'Customers whose name, email, external_id or id contains this text (case-insensitive)' }),
  ),
});

export const SpendPeriod = Type.Union([Type.Literal('day'), Type.Literal('month')]);
export const SpendLimit = Type.Object(
  { amount: Money, period: SpendPeriod },
  { additionalProperties: false, description: 'Most the key may spend per UTC calendar day or month' },
);

export const ApiKey = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'First characters of the secret, to recognise it' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]),
  expires_at: NullableTimestamp,
  spend_limit: Type.Union([SpendLimit, Type.Null()]),
  max_concurrency: Type.Union([Type.Integer(), Type.Null()]),
  rate_limit: Type.Union([Type.Integer(), Type.Null()], { description: "Requests per second the key may make (within rate_limit_max); null: rate_limit_max" }),
  rate_limit_max: Type.Union([Type.Integer(), Type.Null()], { description: "The operator's allowance for the key, requests per second; null: the default (TOLLGATE_RATE_LIMIT_PER_KEY)" }),
  revoked_at: NullableTimestamp,
  created_at: Timestamp,
});
export type ApiKey = Static<typeof ApiKey>;

export const ApiKeyWithSecret = Type.Object({
  ...ApiKey.properties,
  secret: Type.String({ description: 'Shown once, at creation; only its hash is stored' }),
});

const MaxConcurrency = Type.Integer({ minimum: 1, maximum: 100_000 });
const RateLimit = Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Requests per second, within rate_limit_max when a customer sets it' });
const RateLimitMax = Type.Integer({ minimum: 1, maximum: 1_000_000, description: "Requests per second: the operator's allowance for the key (admin token only)" });

export const ApiKeyCreate = Type.Object(
  {
    name: Type.Optional(Name),
    expires_at: Type.Optional(Timestamp),
    spend_limit: Type.Optional(SpendLimit),
    max_concurrency: Type.Optional(MaxConcurrency),
    rate_limit: Type.Optional(RateLimit),
    rate_limit_max: Type.Optional(RateLimitMax),
  },
  { additionalProperties: false },
);
export type ApiKeyCreate = Static<typeof ApiKeyCreate>;

export const ApiKeyUpdate = Type.Object(
  {
    name: Type.Optional(Name),
    spend_limit: Type.Optional(Type.Union([SpendLimit, Type.Null()])),
    max_concurrency: Type.Optional(Type.Union([MaxConcurrency, Type.Null()])),
    rate_limit: Type.Optional(Type.Union([RateLimit, Type.Null()])),
    rate_limit_max: Type.Optional(Type.Union([RateLimitMax, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type ApiKeyUpdate = Static<typeof ApiKeyUpdate>;
