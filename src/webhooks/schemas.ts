import { Type, type Static } from 'typebox';
import { EventTypeName } from '../outbox/event-types.js';
import { NullableTimestamp, Timestamp } from '../platform/schemas.js';

const Url = Type.String({ minLength: 1, maxLength: 2_000, description: 'http:// or https://; never a private, loopback or link-local address' });
const EventTypes = Type.Array(EventTypeName, { maxItems: 50, uniqueItems: true, description: 'Event types to receive; empty or omitted: every type' });
const Description = Type.String({ maxLength: 500 });

export const WebhookEndpoint = Type.Object({
  id: Type.String(),
  customer_id: Type.Union([Type.String(), Type.Null()], { description: "null: the operator's endpoint, receiving every customer's events" }),
  url: Type.String(),
  event_types: Type.Array(Type.String()),
  description: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Boolean(),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  failing_since: Type.Union([Timestamp, Type.Null()], { description: 'Every delivery attempt has failed since then (null: the last one succeeded); disabled after a while' }),
  previous_secret_expires_at: Type.Union([Timestamp, Type.Null()], { description: 'After a rotation: until then both secrets sign' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type WebhookEndpoint = Static<typeof WebhookEndpoint>;

export const WebhookEndpointWithSecret = Type.Object({
  ...WebhookEndpoint.properties,
  secret: Type.String({ description: 'whsec_... (Standard Webhooks): shown at creation and rotation only' }),
});

const endpointFields = { url: Url, event_types: Type.Optional(EventTypes), description: Type.Optional(Description), enabled: Type.Optional(Type.Boolean()) };

export const MyWebhookEndpointCreate = Type.Object(endpointFields, { additionalProperties: false });
export type MyWebhookEndpointCreate = Static<typeof MyWebhookEndpointCreate>;

export const WebhookEndpointCreate = Type.Object(
  { ...endpointFields, customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: "A customer's endpoint (only its events); omitted: the operator's" })) },
  { additionalProperties: false },
);
export type WebhookEndpointCreate = Static<typeof WebhookEndpointCreate>;

export const WebhookEndpointUpdate = Type.Object(
  { url: Type.Optional(Url), event_types: Type.Optional(EventTypes), description: Type.Optional(Type.Union([Description, Type.Null()])), enabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);
export type WebhookEndpointUpdate = Static<typeof WebhookEndpointUpdate>;


export const MyWebhookEndpointListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ pattern: '^whe_[0-9a-z]{26}$' })),
});
export const WebhookEndpointListQuery = Type.Object({
  ...MyWebhookEndpointListQuery.properties,
  customer: Type.Optional(Type.String({ pattern: '^cus_[0-9a-z]{26}$', description: "Only this customer's endpoints" })),
  failing: Type.Optional(Type.Boolean({ description: 'true: only endpoints that are failing (failing_since set) or disabled' })),
});

export const DeliveryListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ pattern: '^whd_[0-9a-z]{26}$' })),
});

export const DeliveryAttempt = Type.Object({
  attempt: Type.Integer(),
  attempted_at: Timestamp,
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  latency_ms: Type.Integer(),
  response_excerpt: Type.Union([Type.String(), Type.Null()], { description: 'The first 1,000 characters of the response body' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why there was no HTTP answer (timeout, refused, ...)' }),
});

export const WebhookDelivery = Type.Object({
  id: Type.String(),
  endpoint_id: Type.String(),
  event_id: Type.String({ description: 'The webhook-id header' }),
  event_type: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: NullableTimestamp,
  last_attempt_at: NullableTimestamp,
  last_status_code: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp,
  log: Type.Array(DeliveryAttempt),
});
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const ReplayRange = Type.Object(
  { from: Timestamp, to: Timestamp },
  { additionalProperties: false, description: 'Events created in [from, to) that this endpoint wants, oldest first, at most 1,000 per call' },
);
export type ReplayRange = Static<typeof ReplayRange>;

export const ReplayResult = Type.Object({
  replayed: Type.Integer({ description: 'Deliveries created or put back to pending' }),
  next_from: Type.Union([Timestamp, Type.Null()], { description: 'More events remain: call again with this as from' }),
});
