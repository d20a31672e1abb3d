import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../platform/db.js';
import { noBodyIsEmpty, sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, replayOrRun, runIdempotent } from '../platform/idempotency.js';
import { ListOf, ListQuery } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, NoParameters, responses } from '../platform/schemas.js';
import type { AutoTopUpService } from './auto-top-up-service.js';
import type { PaymentsService } from './payments-service.js';
import { AutoTopUp, AutoTopUpPut, CardSetup, ManualPaymentCreate, Payment, PaymentListQuery, TopUpCreate } from './schemas.js';

const CustomerId = IdParam('cus');
const MeListQuery = Type.Object({ ...ListQuery.properties }, { additionalProperties: false });

export function registerPaymentRoutes(app: HttpServer, db: Db, payments: PaymentsService, autoTopUp: AutoTopUpService) {
  const tags = ['payments'];
  // A top-up calls the provider (an external effect), so it cannot sit in one database transaction
  // with its reply: the key is reserved first and a retry waits for, then replays, the first reply.
  app.post('/v1/customers/:id/top_ups', { schema: { tags, summary: 'Start a prepaid top-up: a Stripe Checkout page for the customer to pay', headers: IdempotencyHeader, params: CustomerId, body: TopUpCreate, response: responses(Payment, 201) } }, async (req, reply) =>
    sendStored(reply, await replayOrRun(db, idempotencyOf(req), async () => ({ status: 201, body: await payments.createTopUp(req.params.id, req.body.amount) }))),
  );
  const setupSummary = 'Save a card without paying: a Stripe Checkout page in setup mode; postpaid invoices (and auto top-up) are then charged to it';
  app.post('/v1/customers/:id/card_setups', { preValidation: noBodyIsEmpty, schema: { tags, summary: setupSummary, headers: IdempotencyHeader, params: CustomerId, body: NoParameters, response: responses(CardSetup, 201) } }, async (req, reply) =>
    sendStored(reply, await replayOrRun(db, idempotencyOf(req), async () => ({ status: 201, body: await payments.createCardSetup(req.params.id) }))),
  );
  app.post('/v1/customers/:id/payments', { schema: { tags, summary: 'Record money received outside Tollgate (a bank transfer): a paid payment and its purchased credit', headers: IdempotencyHeader, params: CustomerId, body: ManualPaymentCreate, response: responses(Payment, 201) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await payments.recordManual(tx, req.params.id, req.body) }))),
  );
  app.get('/v1/payments', { schema: { tags, summary: 'List payments (top-ups) and their state, newest first', querystring: PaymentListQuery, response: responses(ListOf(Payment)) } }, async (req) =>
    payments.list({ customerId: req.query.customer, status: req.query.status }, req.query.limit ?? 20, req.query.cursor),
  );

  const autoTags = ['auto top-up'];
  app.get('/v1/customers/:id/auto_top_up', { schema: { tags: autoTags, summary: "A customer's auto top-up settings and state", params: CustomerId, response: responses(AutoTopUp) } }, async (req) =>
    autoTopUp.settings(req.params.id),
  );
  app.put('/v1/customers/:id/auto_top_up', { schema: { tags: autoTags, summary: 'Replace auto top-up settings: charge the saved card for `amount` when available falls below `threshold`', params: CustomerId, body: AutoTopUpPut, response: responses(AutoTopUp) } }, async (req) =>
    autoTopUp.putSettings(req.params.id, req.body),
  );

  const config = { auth: 'customer' as const };
  const me = (req: { principal: unknown }) => (req.principal as { customerId: string }).customerId;
  app.post('/v1/me/top_ups', { config, schema: { tags: ['me'], summary: 'Buy credit: a Stripe Checkout page to pay', headers: IdempotencyHeader, body: TopUpCreate, response: responses(Payment, 201) } }, async (req, reply) =>
    sendStored(reply, await replayOrRun(db, idempotencyOf(req), async () => ({ status: 201, body: await payments.createTopUp(me(req), req.body.amount) }))),
  );
  app.post('/v1/me/card_setups', { config, preValidation: noBodyIsEmpty, schema: { tags: ['me'], summary: setupSummary, headers: IdempotencyHeader, body: NoParameters, response: responses(CardSetup, 201) } }, async (req, reply) =>
    sendStored(reply, await replayOrRun(db, idempotencyOf(req), async () => ({ status: 201, body: await payments.createCardSetup(me(req)) }))),
  );
  app.get('/v1/me/payments', { config, schema: { tags: ['me'], summary: 'List my payments (top-ups)', querystring: MeListQuery, response: responses(ListOf(Payment)) } }, async (req) =>
    payments.list({ customerId: me(req) }, req.query.limit ?? 20, req.query.cursor),
  );

  app.get('/v1/me/auto_top_up', { config, schema: { tags: ['me'], summary: 'My auto top-up settings and state', response: responses(AutoTopUp) } }, async (req) => autoTopUp.settings(me(req)));
  app.put('/v1/me/auto_top_up', { config, schema: { tags: ['me'], summary: 'Replace my auto top-up settings', body: AutoTopUpPut, response: responses(AutoTopUp) } }, async (req) =>
    autoTopUp.putSettings(me(req), req.body),
  );

  registerWebhookRoute(app, payments);
}

/**
 * Stripe signs the exact bytes it sends, so this route keeps the raw body: in its own plugin
 * scope, JSON is not parsed. It is authenticated by the signature, not a bearer token, and is not
 * part of the client API (hidden from /openapi.json; see docs/payments.md).
 */
function registerWebhookRoute(app: HttpServer, payments: PaymentsService) {
  const raw = new WeakMap<FastifyRequest, Buffer>();
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      raw.set(req, body as Buffer);
      done(null, undefined);
    });
    scope.post('/v1/stripe/webhook', { config: { auth: 'none' }, schema: { hide: true } }, async (req) => {
      const signature = req.headers['stripe-signature'];
      return payments.handleWebhook(raw.get(req) ?? Buffer.alloc(0), Array.isArray(signature) ? signature[0] : signature);
    });
  });
}
