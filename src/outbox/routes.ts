import type { HttpServer } from '../platform/http.js';
import { responses } from '../platform/schemas.js';
import { EVENT_TYPES, EventEnvelope, EventTypeList, type EventType } from './event-types.js';

/** JSON Schema of a TypeBox schema, without TypeBox's own (symbol) keys. */
const plain = (schema: unknown) => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;

export function eventTypeList() {
  return {
    data: (Object.entries(EVENT_TYPES) as Array<[EventType, (typeof EVENT_TYPES)[EventType]]>).map(([type, t]) => ({ type, description: t.description, data_schema: plain(t.data) })),
  };
}

/** The OpenAPI 3.1 `webhooks` section: one entry per event type, its body the envelope with that type's data. */
export function openApiWebhooks() {
  return Object.fromEntries(
    (Object.entries(EVENT_TYPES) as Array<[EventType, (typeof EVENT_TYPES)[EventType]]>).map(([type, t]) => [
      type,
      {
        post: {
          summary: t.description,
          description: 'Signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). See docs/webhooks.md.',
          requestBody: {
            content: { 'application/json': { schema: { ...plain(EventEnvelope), properties: { ...plain(EventEnvelope).properties as object, type: { const: type }, data: plain(t.data) } } } },
          },
          responses: { '2XX': { description: 'Received; any other answer (or none within the timeout) is retried' } },
        },
      },
    ]),
  );
}

export function registerOutboxRoutes(app: HttpServer) {
  // A static path: it wins over any /v1/events/:id route the metering module may add.
  app.get('/v1/events/types', { config: { auth: 'any' }, schema: { tags: ['webhooks'], summary: 'Every outbound event type with the JSON Schema of its data', response: responses(EventTypeList) } }, async () =>
    eventTypeList(),
  );
}
