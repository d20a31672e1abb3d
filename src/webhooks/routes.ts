import type { Db } from '../platform/db.js';
import { noBodyIsEmpty, sendStored, type HttpServer, type Principal } from '../platform/http.js';
import { idempotencyOf, runIdempotent, sealedSecretReplies } from '../platform/idempotency.js';
import { ListOf } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, NoParameters, responses } from '../platform/schemas.js';
import type { SecretBox } from '../platform/secret-box.js';
import {
  DeliveryListQuery,
  MyWebhookEndpointCreate,
  MyWebhookEndpointListQuery,
  ReplayRange,
  ReplayResult,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointCreate,
  WebhookEndpointListQuery,
  WebhookEndpointUpdate,
  WebhookEndpointWithSecret,
} from './schemas.js';
import type { Owner } from './webhook-store.js';
import type { WebhooksService } from './webhooks-service.js';

const EndpointId = IdParam('whe');
const DeliveryId = IdParam('whd');

/**
 * The same webhook routes twice: for the operator under /v1 (every endpoint; an endpoint may be a
 * customer's) and for a customer's key under /v1/me (its own endpoints, its own events only).
 */
export function registerWebhookRoutes(app: HttpServer, db: Db, webhooks: WebhooksService, box: SecretBox) {
  const secretReplies = sealedSecretReplies(box, 'This reply can no longer be replayed (the admin token changed); rotate the secret');
  for (const me of [false, true]) {
    const base = me ? '/v1/me' : '/v1';
    const tags = [me ? 'me' : 'webhooks'];
    const config = { auth: me ? ('customer' as const) : ('admin' as const) };
    const owner = (req: { principal: Principal | null }): Owner => (req.principal?.kind === 'customer' ? { customerId: req.principal.customerId } : null);
    const whose = me ? 'my' : 'a';

    app.post(`${base}/webhook_endpoints`, { config, schema: { tags, summary: `Create ${whose} webhook endpoint; the reply has its signing secret`, headers: IdempotencyHeader, body: me ? MyWebhookEndpointCreate : WebhookEndpointCreate, response: responses(WebhookEndpointWithSecret, 201) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await webhooks.create(tx, owner(req), req.body) }), secretReplies)),
    );
    app.get(`${base}/webhook_endpoints`, { config, schema: { tags, summary: `List ${me ? 'my' : 'all'} webhook endpoints, newest first`, querystring: me ? MyWebhookEndpointListQuery : WebhookEndpointListQuery, response: responses(ListOf(WebhookEndpoint)) } }, async (req) =>
      webhooks.list(owner(req), { ...(req.query as { cursor?: string; customer?: string; failing?: boolean }), limit: req.query.limit ?? 20 }),
    );
    app.get(`${base}/webhook_endpoints/:id`, { config, schema: { tags, summary: 'Get a webhook endpoint (never its secret)', params: EndpointId, response: responses(WebhookEndpoint) } }, async (req) =>
      webhooks.get(req.params.id, owner(req)),
    );
    app.patch(`${base}/webhook_endpoints/:id`, { config, schema: { tags, summary: "Change a webhook endpoint's url, event types, description or enabled", params: EndpointId, body: WebhookEndpointUpdate, response: responses(WebhookEndpoint) } }, async (req) =>
      db.transaction((tx) => webhooks.update(tx, req.params.id, owner(req), req.body)),
    );
    app.delete(`${base}/webhook_endpoints/:id`, { config, schema: { tags, summary: 'Delete a webhook endpoint and its delivery log', params: EndpointId, response: responses(WebhookEndpoint) } }, async (req) =>
      db.transaction((tx) => webhooks.remove(tx, req.params.id, owner(req))),
    );
    app.post(`${base}/webhook_endpoints/:id/rotate_secret`, { config, preValidation: noBodyIsEmpty, schema: { tags, summary: 'New signing secret; the previous one keeps signing for 24 hours', headers: IdempotencyHeader, params: EndpointId, body: NoParameters, response: responses(WebhookEndpointWithSecret) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await webhooks.rotateSecret(tx, req.params.id, owner(req)) }), secretReplies)),
    );
    app.get(`${base}/webhook_endpoints/:id/deliveries`, { config, schema: { tags, summary: "An endpoint's delivery log, newest first: every attempt's status code, latency and response excerpt", params: EndpointId, querystring: DeliveryListQuery, response: responses(ListOf(WebhookDelivery)) } }, async (req) =>
      webhooks.deliveries(req.params.id, owner(req), req.query.limit ?? 20, req.query.cursor),
    );
    app.post(`${base}/webhook_endpoints/:id/replay`, { config, schema: { tags, summary: 'Deliver again every event of a time range the endpoint wants (same webhook-id)', headers: IdempotencyHeader, params: EndpointId, body: ReplayRange, response: responses(ReplayResult) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await webhooks.replayRange(tx, req.params.id, owner(req), req.body) }))),
    );
    app.post(`${base}/webhook_deliveries/:id/replay`, { config, preValidation: noBodyIsEmpty, schema: { tags, summary: 'Deliver one event again, now (same webhook-id)', headers: IdempotencyHeader, params: DeliveryId, body: NoParameters, response: responses(WebhookDelivery) } }, async (req, reply) =>
      sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 200, body: await webhooks.replayDelivery(tx, req.params.id, owner(req)) }))),
    );
  }
}
