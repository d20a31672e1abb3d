import type { FastifyRequest } from 'fastify';
import { sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf } from '../platform/idempotency.js';
import { ListOf, ListQuery } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, responses } from '../platform/schemas.js';
import type { CreditService } from './credit-service.js';
import { Balance, BalanceList, BalanceListQuery, CreditGrant, CreditGrantCreate, Transaction } from './schemas.js';

const CustomerId = IdParam('cus');

export function registerLedgerRoutes(app: HttpServer, credit: CreditService) {
  const tags = ['credit'];
  app.post('/v1/customers/:id/credit_grants', { schema: { tags, summary: 'Grant credit to a customer', headers: IdempotencyHeader, params: CustomerId, body: CreditGrantCreate, response: responses(CreditGrant, 201) } }, async (req, reply) =>
    sendStored(reply, await credit.grant(req.params.id, req.body, idempotencyOf(req))),
  );
  app.get('/v1/customers/:id/credit_grants', { schema: { tags, summary: "List a customer's credit grants", params: CustomerId, querystring: ListQuery, response: responses(ListOf(CreditGrant)) } }, async (req) =>
    credit.grants(req.params.id, req.query.limit ?? 20, req.query.cursor),
  );
  app.get('/v1/customers/:id/balance', { schema: { tags, summary: "A customer's balance", params: CustomerId, response: responses(Balance) } }, async (req) =>
    credit.balance(req.params.id),
  );
  // The operator's customer list shows every row's balance: one request (three queries) per page, not one per row.
  app.get('/v1/balances', { schema: { tags, summary: 'The balances of several customers at once', querystring: BalanceListQuery, response: responses(BalanceList) } }, async (req) => {
    const ids = [...new Set(req.query.customers.split(','))];
    const balances = await credit.balances(ids);
    return { data: ids.flatMap((id) => balances.get(id) ?? []) };
  });
  app.get('/v1/customers/:id/transactions', { schema: { tags, summary: "A customer's ledger entries, newest first", params: CustomerId, querystring: ListQuery, response: responses(ListOf(Transaction)) } }, async (req) =>
    credit.transactions(req.params.id, req.query.limit ?? 20, req.query.cursor),
  );

  const config = { auth: 'customer' as const };
  const me = (req: FastifyRequest) => (req.principal as { customerId: string }).customerId;
  app.get('/v1/me/balance', { config, schema: { tags: ['me'], summary: 'My balance', response: responses(Balance) } }, async (req) => credit.balance(me(req)));
  app.get('/v1/me/transactions', { config, schema: { tags: ['me'], summary: 'My ledger entries', querystring: ListQuery, response: responses(ListOf(Transaction)) } }, async (req) =>
    credit.transactions(me(req), req.query.limit ?? 20, req.query.cursor),
  );
  app.get('/v1/me/credit_grants', { config, schema: { tags: ['me'], summary: 'My credit grants', querystring: ListQuery, response: responses(ListOf(CreditGrant)) } }, async (req) =>
    credit.grants(me(req), req.query.limit ?? 20, req.query.cursor),
  );
}
