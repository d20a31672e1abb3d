import { noBodyIsEmpty, sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf } from '../platform/idempotency.js';
import { IdempotencyHeader, IdParam, responses } from '../platform/schemas.js';
import type { GatewayService } from './gateway-service.js';
import { ListOf } from '../platform/lists.js';
import { AuthorizeRequest, AuthorizeResponse, ReleaseRequest, ReleaseResponse, Reservation, ReservationListQuery, SettleRequest, SettleResponse } from './schemas.js';

const ReservationId = IdParam('res');
const CustomerId = IdParam('cus');

export function registerGatewayRoutes(app: HttpServer, gateway: GatewayService) {
  const tags = ['hot path'];
  app.post('/v1/authorize', { schema: { tags, summary: 'May this key run this product now? Holds the estimated cost', headers: IdempotencyHeader, body: AuthorizeRequest, response: responses(AuthorizeResponse) } }, async (req, reply) =>
    sendStored(reply, await gateway.authorize(req.body, idempotencyOf(req))),
  );
  app.post('/v1/reservations/:id/settle', { schema: { tags, summary: 'Charge the units actually used and return the rest of the hold', headers: IdempotencyHeader, params: ReservationId, body: SettleRequest, response: responses(SettleResponse) } }, async (req, reply) =>
    sendStored(reply, await gateway.settle(req.params.id, req.body, idempotencyOf(req))),
  );
  app.post('/v1/reservations/:id/release', { preValidation: noBodyIsEmpty, schema: { tags, summary: 'Return the whole hold (the job failed or was cancelled)', headers: IdempotencyHeader, params: ReservationId, body: ReleaseRequest, response: responses(ReleaseResponse) } }, async (req, reply) =>
    sendStored(reply, await gateway.release(req.params.id, idempotencyOf(req))),
  );
  app.get('/v1/reservations/:id', { schema: { tags, summary: 'Get a reservation', params: ReservationId, response: responses(Reservation) } }, async (req) =>
    gateway.get(req.params.id),
  );
  app.get('/v1/customers/:id/reservations', { schema: { tags, summary: "A customer's reservations, newest first (status=pending: its open holds)", params: CustomerId, querystring: ReservationListQuery, response: responses(ListOf(Reservation)) } }, async (req) =>
    gateway.list(req.params.id, { ...req.query, limit: req.query.limit ?? 20 }),
  );
}
