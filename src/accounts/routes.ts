import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, runIdempotent, sealedSecretReplies, type ReplyStorage } from '../platform/idempotency.js';
import { ListOf, ListQuery } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, responses } from '../platform/schemas.js';
import type { SecretBox } from '../platform/secret-box.js';
import type { AccountsService } from './accounts-service.js';
import { ApiKey, ApiKeyCreate, ApiKeyUpdate, ApiKeyWithSecret, Customer, CustomerCreate, CustomerListQuery, CustomerUpdate } from './schemas.js';

const CustomerId = IdParam('cus');
const KeyId = IdParam('key');
const ExternalIdParam = Type.Object({ external_id: Type.String({ minLength: 1, maxLength: 200 }) });

export function registerAccountRoutes(app: HttpServer, db: Db, accounts: AccountsService, box: SecretBox) {
  // A key's secret is returned once, and again only to a replay of that same creation.
  const keyReplies = sealedSecretReplies(box, 'This key creation can no longer be replayed (the admin token changed); create a new key');
  const tags = ['customers'];
  app.post('/v1/customers', { schema: { tags, summary: 'Create a customer', headers: IdempotencyHeader, body: CustomerCreate, response: responses(Customer, 201) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await accounts.createCustomer(tx, req.body) }))),
  );
  app.get('/v1/customers', { schema: { tags, summary: 'List customers, newest first', querystring: CustomerListQuery, response: responses(ListOf(Customer)) } }, async (req) =>
    accounts.listCustomers({ ...req.query, limit: req.query.limit ?? 20 }),
  );
  app.get('/v1/customers/by_external_id/:external_id', { schema: { tags, summary: 'Look a customer up by external_id', params: ExternalIdParam, response: responses(Customer) } }, async (req) =>
    accounts.getCustomerByExternalId(req.params.external_id),
  );
  app.get('/v1/customers/:id', { schema: { tags, summary: 'Get a customer', params: CustomerId, response: responses(Customer) } }, async (req) =>
    accounts.getCustomer(req.params.id),
  );
  app.patch('/v1/customers/:id', { schema: { tags, summary: 'Update a customer', params: CustomerId, body: CustomerUpdate, response: responses(Customer) } }, async (req) =>
    db.transaction((tx) => accounts.updateCustomer(tx, req.params.id, req.body)),
  );

  const keyTags = ['api keys'];
  app.post('/v1/customers/:id/api_keys', { schema: { tags: keyTags, summary: 'Create an API key; the secret is shown once', headers: IdempotencyHeader, params: CustomerId, body: ApiKeyCreate, response: responses(ApiKeyWithSecret, 201) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await accounts.createKey(tx, req.params.id, req.body) }), keyReplies)),
  );
  app.get('/v1/customers/:id/api_keys', { schema: { tags: keyTags, summary: "List a customer's API keys (never secrets)", params: CustomerId, querystring: ListQuery, response: responses(ListOf(ApiKey)) } }, async (req) =>
    accounts.listKeys(req.params.id, req.query.limit ?? 20, req.query.cursor),
  );
  app.get('/v1/api_keys/:id', { schema: { tags: keyTags, summary: 'Get an API key', params: KeyId, response: responses(ApiKey) } }, async (req) =>
    accounts.getKey(req.params.id),
  );
  app.patch('/v1/api_keys/:id', { schema: { tags: keyTags, summary: "Change a key's name, spend limit, max concurrency or rate limits", params: KeyId, body: ApiKeyUpdate, response: responses(ApiKey) } }, async (req) =>
    accounts.keyUpdated(await db.transaction((tx) => accounts.updateKey(tx, req.params.id, req.body))),
  );
  app.delete('/v1/api_keys/:id', { schema: { tags: keyTags, summary: 'Revoke an API key, effective on the next authorize', params: KeyId, response: responses(ApiKey) } }, async (req) =>
    db.transaction((tx) => accounts.revokeKey(tx, req.params.id)),
  );

  registerMeRoutes(app, db, accounts, keyReplies);
}

/** What a customer's own API key may do with its own customer. */
function registerMeRoutes(app: HttpServer, db: Db, accounts: AccountsService, keyReplies: ReplyStorage) {
  const tags = ['me'];
  const config = { auth: 'customer' as const };
  const me = (req: { principal: unknown }) => (req.principal as { customerId: string }).customerId;
  app.get('/v1/me', { config, schema: { tags, summary: 'The customer this key belongs to', response: responses(Customer) } }, async (req) =>
    accounts.getCustomer(me(req)),
  );
  app.get('/v1/me/api_keys', { config, schema: { tags, summary: 'List my API keys', querystring: ListQuery, response: responses(ListOf(ApiKey)) } }, async (req) =>
    accounts.listKeys(me(req), req.query.limit ?? 20, req.query.cursor),
  );
  app.post('/v1/me/api_keys', { config, schema: { tags, summary: 'Create an API key for myself', headers: IdempotencyHeader, body: ApiKeyCreate, response: responses(ApiKeyWithSecret, 201) } }, async (req, reply) =>
    sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await accounts.createKey(tx, me(req), req.body, me(req)) }), keyReplies)),
  );
  app.get('/v1/me/api_keys/:id', { config, schema: { tags, summary: 'Get one of my API keys', params: KeyId, response: responses(ApiKey) } }, async (req) =>
    accounts.getKey(req.params.id, me(req)),
  );
  app.patch('/v1/me/api_keys/:id', { config, schema: { tags, summary: 'Change one of my API keys', params: KeyId, body: ApiKeyUpdate, response: responses(ApiKey) } }, async (req) =>
    accounts.keyUpdated(await db.transaction((tx) => accounts.updateKey(tx, req.params.id, req.body, me(req)))),
  );
  app.delete('/v1/me/api_keys/:id', { config, schema: { tags, summary: 'Revoke one of my API keys', params: KeyId, response: responses(ApiKey) } }, async (req) =>
    db.transaction((tx) => accounts.revokeKey(tx, req.params.id, me(req))),
  );
}
