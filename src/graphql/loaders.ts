import DataLoader from 'dataloader';
import { notFound } from '../platform/errors.js';
import type { GraphqlServices } from './resolvers.js';

/** The same read for several customers (or endpoints) at once, with the same arguments: customer id -> value (absent: no such customer). */
type BatchedRead<A, T> = (ids: string[], args: A) => Promise<Map<string, T>>;

/** A customer's (or an endpoint's) id and the arguments of the read. */
interface ParentKey<A> {
  id: string;
  args: A;
}

/**
 * A DataLoader over a batched read: the keys asked for in one tick are grouped by their arguments
 * and each group is one call of the read, so a list of customers costs the same round trips as one.
 */
function batched<A, T>(read: BatchedRead<A, T>, what = 'customer') {
  return new DataLoader<ParentKey<A>, T, string>(
    async (keys) => {
      const groups = new Map<string, { args: A; ids: Set<string> }>();
      for (const { id, args } of keys) {
        const text = JSON.stringify(args);
        const group = groups.get(text) ?? { args, ids: new Set<string>() };
        group.ids.add(id);
        groups.set(text, group);
      }
      const results = new Map<string, Map<string, T>>();
      await Promise.all([...groups].map(async ([text, { args, ids }]) => results.set(text, await read([...ids], args))));
      return keys.map(({ id, args }) => results.get(JSON.stringify(args))!.get(id) ?? notFound(what, id));
    },
    { cacheKeyFn: (key) => JSON.stringify([key.id, key.args]) },
  );
}

export interface PageArgs {
  limit: number;
  cursor?: string;
}

/** One set per request: DataLoader caches for the life of the request only, never across principals. */
export function createLoaders(s: GraphqlServices) {
  return {
    customer: batched((ids, _: null) => s.accounts.customersByIds(ids)),
    balance: batched((ids, _: null) => s.credit.balances(ids)),
    apiKeys: batched((ids, args: PageArgs) => s.accounts.listKeysOf(ids, args.limit, args.cursor)),
    creditGrants: batched((ids, args: PageArgs) => s.credit.grantsOf(ids, args.limit, args.cursor)),
    transactions: batched((ids, args: PageArgs) => s.credit.transactionsOf(ids, args.limit, args.cursor)),
    payments: batched((ids, args: PageArgs) => s.payments.listOf(ids, args.limit, args.cursor)),
    webhookEndpoints: batched((ids, args: PageArgs) => s.webhooks.listOf(ids, args.limit, args.cursor)),
    deliveries: batched((ids, args: PageArgs) => s.webhooks.deliveriesOf(ids, args.limit, args.cursor), 'webhook endpoint'),
    invoices: batched((ids, args: PageArgs & { status?: 'draft' | 'finalized' | 'paid' | 'void' | 'uncollectible' }) => s.invoices.listOf(ids, args)),
    usage: batched((ids, args: Parameters<GraphqlServices['usage']['usageOf']>[1]) => s.usage.usageOf(ids, args)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
