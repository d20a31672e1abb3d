import type { Db } from '../platform/db.js';
import { sendStored, type HttpServer } from '../platform/http.js';
import { idempotencyOf, runIdempotent } from '../platform/idempotency.js';
import { ListOf, ListQuery } from '../platform/lists.js';
import { IdempotencyHeader, IdParam, responses } from '../platform/schemas.js';
import { Type } from 'typebox';
import type { CatalogService } from './catalog-service.js';
import { Meter, MeterCreate, Price, PriceCreate, PriceListQuery, PricingEntry, PricingQuery, Product, ProductCreate, ProductKey } from './schemas.js';

export function registerCatalogRoutes(app: HttpServer, db: Db, catalog: CatalogService) {
  const tags = ['catalog'];
  /** A catalog change is visible to the next request on this instance: the cache is dropped once it has committed. */
  const committed = <T>(stored: T): T => (catalog.invalidate(), stored);
  app.post('/v1/meters', { schema: { tags, summary: 'Create a meter', headers: IdempotencyHeader, body: MeterCreate, response: responses(Meter, 201) } }, async (req, reply) =>
    sendStored(reply, committed(await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await catalog.createMeter(tx, req.body) })))),
  );
  app.get('/v1/meters', { schema: { tags, summary: 'List meters', querystring: ListQuery, response: responses(ListOf(Meter)) } }, async (req) =>
    catalog.listMeters(req.query.limit ?? 20, req.query.cursor),
  );
  app.post('/v1/products', { schema: { tags, summary: 'Create a product (a sellable model endpoint)', headers: IdempotencyHeader, body: ProductCreate, response: responses(Product, 201) } }, async (req, reply) =>
    sendStored(reply, committed(await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await catalog.createProduct(tx, req.body) })))),
  );
  app.get('/v1/products', { schema: { tags, summary: 'List products', querystring: ListQuery, response: responses(ListOf(Product)) } }, async (req) =>
    catalog.listProducts(req.query.limit ?? 20, req.query.cursor),
  );
  app.get('/v1/products/*', { schema: { tags, summary: 'Get a product by key (which may contain slashes) or id', params: Type.Object({ '*': ProductKey }), response: responses(Product) } }, async (req) =>
    catalog.getProduct(req.params['*']),
  );
  app.post('/v1/prices', { schema: { tags, summary: 'Create a price version (prices are immutable)', headers: IdempotencyHeader, body: PriceCreate, response: responses(Price, 201) } }, async (req, reply) =>
    sendStored(reply, committed(await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await catalog.createPrice(tx, req.body) })))),
  );
  app.get('/v1/prices', { schema: { tags, summary: 'List price versions', querystring: PriceListQuery, response: responses(ListOf(Price)) } }, async (req) =>
    catalog.listPrices({ ...req.query, limit: req.query.limit ?? 20 }),
  );
  app.get('/v1/prices/:id', { schema: { tags, summary: 'Get a price version', params: IdParam('pri'), response: responses(Price) } }, async (req) =>
    catalog.getPrice(req.params.id),
  );
  app.get('/v1/pricing', { config: { auth: 'any' }, schema: { tags, summary: 'What each product costs now, per unit (a price page)', querystring: PricingQuery, response: responses(Type.Object({ data: Type.Array(PricingEntry) })) } }, async (req) => {
    const principal = req.principal!;
    // A customer key sees its own prices; only the operator may ask on behalf of any customer.
    const customer = principal.kind === 'customer' ? principal.customerId : req.query.customer ?? null;
    return { data: await catalog.pricing(customer, req.query.currency) };
  });
}
