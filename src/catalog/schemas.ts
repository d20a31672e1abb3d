import { Type, type Static } from 'typebox';
import { Currency, StringEnum, Timestamp } from '../platform/schemas.js';

export const MeterKey = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', examples: ['megapixels'] });
export const ProductKey = Type.String({ pattern: '^[a-z0-9][a-z0-9._/-]{0,127}$', examples: ['fal-ai/flux/dev'] });
/** A price amount: exact decimal string, up to 12 fractional digits. */
export const PriceAmount = Type.String({ pattern: '^\\d{1,15}(\\.\\d{1,12})?$', examples: ['0.025'] });
export const Aggregation = StringEnum(['sum', 'count', 'max', 'unique_count']);
export const Scheme = StringEnum(['per_unit', 'graduated', 'volume', 'package']);

export const Meter = Type.Object({
  id: Type.String(),
  key: Type.String(),
  name: Type.String(),
  unit: Type.String(),
  aggregation: Aggregation,
  created_at: Timestamp,
});
export const MeterCreate = Type.Object(
  {
    key: MeterKey,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    unit: Type.String({ minLength: 1, maxLength: 64, examples: ['megapixel'] }),
    aggregation: Type.Optional(Aggregation),
  },
  { additionalProperties: false },
);
export type MeterCreate = Static<typeof MeterCreate>;

export const Product = Type.Object({
  id: Type.String(),
  key: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});
export const ProductCreate = Type.Object(
  {
    key: ProductKey,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type ProductCreate = Static<typeof ProductCreate>;

export const Tier = Type.Object(
  {
    up_to: Type.Union([PriceAmount, Type.Null()], { description: 'Upper bound of the tier (inclusive); null for the last tier' }),
    unit_amount: Type.Optional(PriceAmount),
    flat_amount: Type.Optional(PriceAmount),
  },
  { additionalProperties: false },
);

export const Price = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  product: Type.String({ description: 'Product key' }),
  meter_id: Type.String(),
  meter: Type.String({ description: 'Meter key' }),
  currency: Type.String(),
  customer_id: Type.Union([Type.String(), Type.Null()]),
  scheme: Scheme,
  unit_amount: Type.Union([Type.String(), Type.Null()]),
  tiers: Type.Union([
    Type.Array(Type.Object({ up_to: Type.Union([Type.String(), Type.Null()]), unit_amount: Type.String(), flat_amount: Type.String() })),
    Type.Null(),
  ]),
  package_size: Type.Union([Type.String(), Type.Null()]),
  effective_at: Timestamp,
  created_at: Timestamp,
});
export type Price = Static<typeof Price>;

export const PriceCreate = Type.Object(
  {
    product: Type.String({ minLength: 1, maxLength: 128, description: 'Product key or id' }),
    meter: Type.String({ minLength: 1, maxLength: 64, description: 'Meter key or id' }),
    currency: Currency,
    scheme: Scheme,
    unit_amount: Type.Optional(PriceAmount),
    tiers: Type.Optional(Type.Array(Tier, { minItems: 1, maxItems: 50 })),
    package_size: Type.Optional(PriceAmount),
    customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: 'Makes this a price override for one customer' })),
    effective_at: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);
export type PriceCreate = Static<typeof PriceCreate>;

export const PriceListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ pattern: '^pri_[0-9a-z]{26}$' })),
  product: Type.Optional(Type.String({ maxLength: 128 })),
  customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$' })),
});

export const PricingEntry = Type.Object({
  product: Product,
  prices: Type.Array(
    Type.Object({
      meter: Type.String(),
      unit: Type.String(),
      price: Price,
    }),
  ),
});
export const PricingQuery = Type.Object({
  customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$' })),
  currency: Type.Optional(Currency),
});
