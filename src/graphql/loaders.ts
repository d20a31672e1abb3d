import DataLoader from 'dataloader';
import { notFound } from '../platform/errors.js';
import type { GraphqlServices } from './resolvers.js';

/** The same read for several customers at once, with the same arguments: customer id -> value (absent: no such customer). */
type BatchedRead<A, T> = (customerIds: string[], args: A) => Promise<Map<string, T>>;

interface PerCustomerKey<A> {
  customerId: string;
  args: A;
}

/**
 * A DataLoader over a batched read: the keys asked for in one tick are grouped by their arguments
 * and each group is one call of the read, so a list of customers costs the same round trips as one.
 */
function perCustomer<A, T>(read: BatchedRead<A, T>) {
  return new DataLoader<PerCustomerKey<A>, T, string>(
    async (keys) => {
      const groups = new Map<string, { args: A; ids: Set<string> }>();
      for (const { customerId, args } of keys) {
        const text = JSON.stringify(args);
        const group = groups.get(text) ?? { args, ids: new Set<string>() };
        group.ids.add(customerId);
        groups.set(text, group);
      }
      const results = new Map<string, Map<string, T>>();
      await Promise.all([...groups].map(async ([text, { args, ids }]) => results.set(text, await read([...ids], args))));
      return keys.map(({ customerId, args }) => results.get(JSON.stringify(args))!.get(customerId) ?? notFound('customer', customerId));
    },
    { cacheKeyFn: (key) => JSON.stringify([key.customerId, key.args]) },
  );
}

export interface PageArgs {
  limit: number;
  cursor?: string;
}

/** One set per request: DataLoader caches for the life of the request only, never across principals. */
export function createLoaders(s: GraphqlServices) {
  return {
    customer: perCustomer((ids, _: null) => s.accounts.customersByIds(ids)),
    balance: perCustomer((ids, _: null) => s.credit.balances(ids)),
    apiKeys: perCustomer((ids, args: PageArgs) => s.accounts.listKeysOf(ids, args.limit, args.cursor)),
    invoices: perCustomer((ids, args: PageArgs & { status?: 'draft' | 'finalized' | 'paid' | 'void' | 'uncollectible' }) => s.invoices.listOf(ids, args)),
    usage: perCustomer((ids, args: Parameters<GraphqlServices['usage']['usageOf']>[1]) => s.usage.usageOf(ids, args)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
