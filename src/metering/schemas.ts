import { Type, type Static } from 'typebox';
import { ListQuery } from '../platform/lists.js';
import { Money, StringEnum, Timestamp } from '../platform/schemas.js';

export const EVENTS_PER_REQUEST_MAX = 1_000;

/** The documented shape of one usage event; each is checked on its own (docs/metering.md). */
export const CloudEvent = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ minLength: 1, maxLength: 256 }),
    source: Type.String({ minLength: 1, maxLength: 256, examples: ['gateway/eu-1'] }),
    type: Type.Literal('usage'),
    time: Type.Optional(Timestamp),
    subject: Type.String({ minLength: 1, maxLength: 256, description: 'Customer id or external_id' }),
    data: Type.Object(
      {
        product: Type.String({ description: 'Product key or id' }),
        api_key_id: Type.Optional(Type.String()),
        metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: Type.Union([Type.String(), Type.Number()]), description: 'Every other key is a meter key with its quantity' },
    ),
  },
  { description: 'CloudEvents 1.0 structured event' },
);

/**
 * The request body: one event or an array of up to 1,000. Events are validated one by one so
 * that one bad event rejects only itself; the body schema only checks the envelope.
 */
export const EventsBody = Type.Union([
  Type.Array(Type.Unknown({ description: 'A CloudEvent (see CloudEvent)' }), { minItems: 1, maxItems: EVENTS_PER_REQUEST_MAX }),
  Type.Object({}, { additionalProperties: true, description: 'A single CloudEvent' }),
]);

export const EventResult = Type.Object({
  id: Type.String(),
  source: Type.String(),
  status: StringEnum(['accepted', 'duplicate', 'rejected']),
  event: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  code: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});

export const IngestReply = Type.Object({ data: Type.Array(EventResult) });

export const EventStatus = StringEnum(['charged', 'unpriced', 'settled']);

export const UsageEvent = Type.Object({
  id: Type.String(),
  source: Type.String(),
  event_id: Type.String(),
  type: Type.String(),
  time: Timestamp,
  received_at: Timestamp,
  customer_id: Type.String(),
  product_id: Type.String(),
  product: Type.Union([Type.String(), Type.Null()]),
  api_key_id: Type.Union([Type.String(), Type.Null()]),
  currency: Type.String(),
  quantities: Type.Record(Type.String(), Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  status: EventStatus,
  amount: Type.Union([Money, Type.Null()]),
  charged: Money,
  uncollected: Money,
});

export const EventListQuery = Type.Object(
  {
    ...ListQuery.properties,
    customer: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    product: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    status: Type.Optional(EventStatus),
    from: Type.Optional(Timestamp),
    to: Type.Optional(Timestamp),
  },
);
export type EventListQuery = Static<typeof EventListQuery>;
