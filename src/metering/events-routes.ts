import type { CatalogService } from '../catalog/catalog-service.js';
import type { Db } from '../platform/db.js';
import { AppError } from '../platform/errors.js';
import { sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, replayOrRun, type IdempotencyRequest, type StoredReply } from '../platform/idempotency.js';
import { ListOf, toPage } from '../platform/lists.js';
import { formatAmount } from '../platform/money.js';
import { IdempotencyHeader, responses } from '../platform/schemas.js';
import * as store from './event-store.js';
import type { EventResult } from './model.js';
import { EventListQuery, EventsBody, IngestReply, UsageEvent } from './schemas.js';

/** Where accepted events go: written directly (embedded) or published to the bus (NATS mode). */
export interface EventSink {
  ingest(inputs: unknown[]): Promise<EventResult[]>;
  /**
   * With an Idempotency-Key, for a sink that writes in transactions of its own: the key is claimed
   * and the reply stored in the transaction of the events (no commits of their own). Without it,
   * the route reserves the key around `ingest` (replayOrRun).
   */
  ingestOnce?(inputs: unknown[], request: IdempotencyRequest): Promise<StoredReply & { replayed: boolean }>;
}

const EVENTS_BODY_LIMIT = 8 * 1024 * 1024;

export function registerEventRoutes(app: HttpServer, db: Db, sink: EventSink, catalog: CatalogService) {
  const tags = ['usage'];
  app.post(
    '/v1/events',
    {
      bodyLimit: EVENTS_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Record usage events (CloudEvents 1.0, one or a batch of up to 1,000), exactly once per source and id',
        description: 'Each event gets its own result: accepted, duplicate, or rejected with a code. See docs/metering.md.',
        headers: IdempotencyHeader,
        body: EventsBody,
        response: responses(IngestReply),
      },
    },
    async (req, reply) => {
      const inputs = Array.isArray(req.body) ? req.body : [req.body];
      const request = idempotencyOf(req);
      if (request && sink.ingestOnce) return sendStored(reply, await sink.ingestOnce(inputs, request));
      return sendStored(reply, await replayOrRun(db, request, async () => ({ status: 200, body: { data: await sink.ingest(inputs) } })));
    },
  );

  app.get('/v1/events', { schema: { tags, summary: 'Recorded usage events, newest first', querystring: EventListQuery, response: responses(ListOf(UsageEvent)) } }, async (req) => {
    const q = req.query;
    if (q.from && q.to && q.from >= q.to) throw new AppError('invalid_request', 'to must be after from', [{ path: 'to', message: 'must be after from' }]);
    const product = q.product ? ((await catalog.usageView()).product(q.product)?.id ?? q.product) : undefined;
    const limit = q.limit ?? 20;
    const rows = await store.listEvents(db, {
      customer: q.customer,
      product,
      source: q.source,
      status: q.status,
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
      limit,
      cursor: q.cursor,
    });
    return toPage(rows.map((r) => presentEvent(r, (id) => catalog.productKeyOf(id))), limit);
  });
}

function presentEvent(r: Record<string, any>, productKey: (id: string) => string | null) {
  const money = (v: string | null) => (v === null ? null : formatAmount(BigInt(v), r.currency));
  return {
    id: r.id,
    source: r.source,
    event_id: r.event_id,
    type: r.type,
    time: new Date(r.time).toISOString(),
    received_at: new Date(r.received_at).toISOString(),
    customer_id: r.customer_id,
    product_id: r.product_id,
    product: productKey(r.product_id),
    api_key_id: r.api_key_id,
    currency: r.currency,
    quantities: r.quantities,
    metadata: r.metadata,
    status: r.status,
    amount: money(r.amount),
    charged: money(r.charged)!,
    uncollected: money(r.uncollected)!,
  };
}
