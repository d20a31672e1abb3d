import { Type, type Static, type TSchema } from 'typebox';
import { LEDGER_SCALE } from '../platform/money.js';
import { StringEnum, Timestamp } from '../platform/schemas.js';
import { USAGE_WINDOWS_MAX } from './usage-rules.js';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The query of GET /v1/me/usage; GET /v1/usage adds `customer`. Unknown parameters are refused. */
const usageQueryFields = {
  product: Type.Optional(
    Type.String({ pattern: '^([a-z0-9][a-z0-9._/-]{0,127}|prd_[0-9a-z]{26})$', description: 'A product key or id' }),
  ),
  meter: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'A meter key' })),
  api_key: Type.Optional(Type.String({ pattern: '^key_[0-9a-z]{26}$', description: 'An API key id' })),
  from: Type.String({ format: 'date-time', description: 'Start (inclusive) of the event times counted: a whole UTC hour' }),
  to: Type.String({ format: 'date-time', description: `End (exclusive): a whole UTC hour after from, at most ${USAGE_WINDOWS_MAX} windows later` }),
  group_by: Type.Optional(
    Type.String({
      pattern: '^(product|meter|api_key)(,(product|meter|api_key)){0,2}$',
      description: 'Comma-separated subset of product, meter, api_key (default: none, one row per window and currency)',
    }),
  ),
  window: Type.Optional(StringEnum(['hour', 'day', 'month'], { description: 'UTC window (default day)' })),
};

export const MyUsageQuery = Type.Object(usageQueryFields, { additionalProperties: false });
export type MyUsageQuery = Static<typeof MyUsageQuery>;

export const UsageQuery = Type.Object(
  { customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: 'One customer (default: all)' })), ...usageQueryFields },
  { additionalProperties: false },
);
export type UsageQuery = Static<typeof UsageQuery>;

const Quantity = (description: string) => Type.String({ pattern: '^\\d+(\\.\\d+)?$', description });

export const UsageRow = Type.Object({
  window_start: Timestamp,
  product: Nullable(Type.String({ description: 'Product key, when grouped by product' })),
  meter: Nullable(Type.String({ description: 'Meter key, when grouped by meter' })),
  api_key_id: Nullable(Type.String({ description: 'When grouped by api_key; null also for events sent without a key' })),
  currency: Type.String(),
  sum: Nullable(Quantity('Sum of the quantities; set when the row is one meter (grouped by or filtered to a meter) and that meter is not unique_count')),
  count: Type.Integer({ minimum: 0, description: 'Events measured; a row spanning several meters counts an event once per meter it measured' }),
  max: Nullable(Quantity('Largest single quantity; set like sum')),
  unique_count: Nullable(Type.Integer({ minimum: 0, description: 'Distinct values in the window; set when the row is one unique_count meter' })),
  charged: Type.String({
    pattern: `^\\d+(\\.\\d{1,${LEDGER_SCALE}})?$`,
    description: "What the row's events were charged, split over their meters in proportion to cost (rows add up to the ledger exactly)",
  }),
});

export const UsageReply = Type.Object({ data: Type.Array(UsageRow) });
export type UsageReply = Static<typeof UsageReply>;
