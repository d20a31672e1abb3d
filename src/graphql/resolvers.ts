import type { AccountsService } from '../accounts/accounts-service.js';
import type { InvoiceService } from '../billing/invoice-service.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { GatewayService } from '../gateway/gateway-service.js';
import type { CreditService } from '../ledger/credit-service.js';
import type { UsageService } from '../metering/usage-service.js';
import type { PaymentsService } from '../payments/payments-service.js';
import { AppError, notFound } from '../platform/errors.js';
import type { Principal } from '../platform/http.js';
import { LIST_LIMIT_MAX } from '../platform/lists.js';
import type { WebhooksService } from '../webhooks/webhooks-service.js';
import type { Loaders, PageArgs } from './loaders.js';

/** The services the GraphQL API reads through: the same ones REST uses, never their tables. */
export interface GraphqlServices {
  accounts: AccountsService;
  credit: CreditService;
  invoices: InvoiceService;
  usage: UsageService;
  payments: PaymentsService;
  catalog: CatalogService;
  webhooks: WebhooksService;
  gateway: GatewayService;
}

export interface GraphqlContext {
  principal: Principal;
  loaders: Loaders;
  services: GraphqlServices;
}

type Args = Record<string, unknown>;
type Resolver = (parent: any, args: Args, context: GraphqlContext) => unknown;

/** What REST's `format: date-time` accepts: an RFC 3339 date and time with an offset. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

const INVOICE_STATUSES = ['draft', 'finalized', 'paid', 'void', 'uncollectible'] as const;

function refuse(path: string, message: string): AppError {
  return new AppError('invalid_request', `${path} ${message}`, [{ path, message }]);
}

/** limit and cursor as REST takes them (?limit= 1..100, ?cursor= an id); GraphQL has already checked their types. */
function pageArgs(args: Args): PageArgs {
  const limit = args.limit as number;
  if (limit < 1 || limit > LIST_LIMIT_MAX) throw refuse('limit', `must be from 1 to ${LIST_LIMIT_MAX}`);
  const cursor = (args.cursor as string | null | undefined) ?? undefined;
  if (cursor !== undefined && !/^[a-z]{2,3}_[0-9a-z]{26}$/.test(cursor)) throw refuse('cursor', 'must be the next_cursor of a previous page');
  return { limit, cursor };
}

function idArg(args: Args, prefix: string): string {
  const id = args.id as string;
  if (!new RegExp(`^${prefix}_[0-9a-z]{26}$`).test(id)) throw refuse('id', `must be a ${prefix}_ id`);
  return id;
}

function adminOnly(context: GraphqlContext, what: string) {
  if (context.principal.kind !== 'admin') throw new AppError('forbidden', `${what} needs the admin token; a customer key reads its own customer (me)`);
}

/** What a customer key owns; null for the admin token (everything). */
function ownerOf(context: GraphqlContext): string | undefined {
  return context.principal.kind === 'customer' ? context.principal.customerId : undefined;
}

const customerOf = (parent: { customer_id: string }, _: Args, c: GraphqlContext) => c.loaders.customer.load({ id: parent.customer_id, args: null });

const query: Record<string, Resolver> = {
  me: (_, __, c) => (c.principal.kind === 'customer' ? c.loaders.customer.load({ id: c.principal.customerId, args: null }) : null),
  customer: (_, args, c) => {
    const id = idArg(args, 'cus');
    const owner = ownerOf(c);
    // Another customer's id is "not found" to a customer key, as in REST: its existence is not revealed.
    if (owner !== undefined && owner !== id) throw notFound('customer', id);
    return c.loaders.customer.load({ id, args: null });
  },
  customers: (_, args, c) => {
    adminOnly(c, 'customers');
    return c.services.accounts.listCustomers(pageArgs(args));
  },
  reservation: async (_, args, c) => {
    const id = idArg(args, 'res');
    const reservation = await c.services.gateway.get(id);
    const owner = ownerOf(c);
    if (owner !== undefined && reservation.customer_id !== owner) throw notFound('reservation', id);
    return reservation;
  },
  invoice: (_, args, c) => c.services.invoices.get(idArg(args, 'inv'), ownerOf(c)),
  webhook_endpoint: (_, args, c) => c.services.webhooks.get(idArg(args, 'whe'), endpointOwner(c)),
  meters: (_, args, c) => {
    adminOnly(c, 'meters');
    const { limit, cursor } = pageArgs(args);
    return c.services.catalog.listMeters(limit, cursor);
  },
  products: (_, args, c) => {
    adminOnly(c, 'products');
    const { limit, cursor } = pageArgs(args);
    return c.services.catalog.listProducts(limit, cursor);
  },
  prices: (_, args, c) => {
    adminOnly(c, 'prices');
    return c.services.catalog.listPrices({ ...pageArgs(args), product: (args.product as string | null) ?? undefined });
  },
};

function endpointOwner(c: GraphqlContext) {
  const owner = ownerOf(c);
  return owner === undefined ? null : { customerId: owner };
}

/** A Customer has been authorized where it was reached (Query.customer, me, customers): its fields read freely. */
const customer: Record<string, Resolver> = {
  balance: (parent, _, c) => c.loaders.balance.load({ id: parent.id, args: null }),
  credit_grants: (parent, args, c) => c.loaders.creditGrants.load({ id: parent.id, args: pageArgs(args) }),
  transactions: (parent, args, c) => c.loaders.transactions.load({ id: parent.id, args: pageArgs(args) }),
  api_keys: (parent, args, c) => c.loaders.apiKeys.load({ id: parent.id, args: pageArgs(args) }),
  invoices: (parent, args, c) => {
    const status = (args.status as string | null) ?? undefined;
    if (status !== undefined && !(INVOICE_STATUSES as readonly string[]).includes(status)) throw refuse('status', `must be one of ${INVOICE_STATUSES.join(', ')}`);
    return c.loaders.invoices.load({ id: parent.id, args: { ...pageArgs(args), status: status as (typeof INVOICE_STATUSES)[number] | undefined } });
  },
  payments: (parent, args, c) => c.loaders.payments.load({ id: parent.id, args: pageArgs(args) }),
  usage: (parent, args, c) => {
    const optional = (name: string) => (args[name] as string | null | undefined) ?? undefined;
    const groupBy = (args.group_by as string[] | null | undefined) ?? [];
    for (const name of ['from', 'to']) if (!DATE_TIME.test(args[name] as string)) throw refuse(name, 'must be an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z');
    const usageArgs = {
      from: args.from as string,
      to: args.to as string,
      window: args.window as 'hour' | 'day' | 'month',
      group_by: groupBy.length > 0 ? [...new Set(groupBy)].join(',') : undefined,
      product: optional('product'),
      meter: optional('meter'),
      api_key: optional('api_key'),
    };
    return c.loaders.usage.load({ id: parent.id, args: usageArgs });
  },
  webhook_endpoints: (parent, args, c) => c.loaders.webhookEndpoints.load({ id: parent.id, args: pageArgs(args) }),
};

export const resolvers: Record<string, Record<string, Resolver>> = {
  Query: query,
  Customer: customer,
  ApiKey: { customer: customerOf },
  Invoice: { customer: customerOf },
  Reservation: { customer: customerOf },
  WebhookEndpoint: {
    // The endpoint was authorized where it was reached (a customer's endpoints, or webhook_endpoint with its owner).
    deliveries: (parent, args, c) => c.loaders.deliveries.load({ id: parent.id, args: pageArgs(args) }),
  },
};
