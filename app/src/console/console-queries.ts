import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';

// The console's reads, one query key per resource so a mutation can invalidate what it changed.
// The operator session's cookie is the admin credential: these are the admin routes under /v1.

export type Customer = paths['/v1/customers/{id}']['get']['responses'][200]['content']['application/json'];
export type Balance = paths['/v1/customers/{id}/balance']['get']['responses'][200]['content']['application/json'];
export type Price = paths['/v1/prices']['get']['responses'][200]['content']['application/json']['data'][number];
export type PriceCreate = NonNullable<paths['/v1/prices']['post']['requestBody']>['content']['application/json'];
export type UsageQuery = NonNullable<paths['/v1/usage']['get']['parameters']['query']>;

export const consoleKeys = {
  customers: (search: string) => ['console', 'customers', search] as const,
  balances: (ids: string[]) => ['console', 'balances', ids] as const,
  /** The customer, and the prefix of everything shown of it: a grant invalidates it all (balance, grants, transactions). */
  customer: (id: string) => ['console', 'customer', id] as const,
  meters: ['console', 'meters'] as const,
  products: ['console', 'products'] as const,
  prices: (product: string) => ['console', 'prices', product] as const,
  usage: (query: UsageQuery) => ['console', 'usage', query] as const,
  attention: ['console', 'attention'] as const,
};

/** Customers newest first; `search` matches any part of a name, email, external id or id. */
export const useCustomers = (search: string) =>
  useQuery({
    queryKey: consoleKeys.customers(search),
    queryFn: () => unwrap(api.GET('/v1/customers', { params: { query: { limit: 100, ...(search ? { search } : {}) } } })),
  });

/** The balances of a page of customers in one request (GET /v1/balances). */
export const useBalances = (ids: string[]) =>
  useQuery({
    queryKey: consoleKeys.balances(ids),
    queryFn: () => unwrap(api.GET('/v1/balances', { params: { query: { customers: ids.join(',') } } })),
    enabled: ids.length > 0,
  });

export const useCustomer = (id: string) =>
  useQuery({ queryKey: consoleKeys.customer(id), queryFn: () => unwrap(api.GET('/v1/customers/{id}', { params: { path: { id } } })) });

export const useCustomerBalance = (id: string) =>
  useQuery({
    queryKey: [...consoleKeys.customer(id), 'balance'],
    queryFn: () => unwrap(api.GET('/v1/customers/{id}/balance', { params: { path: { id } } })),
    refetchInterval: 30_000,
  });

export const useMeters = () =>
  useQuery({ queryKey: consoleKeys.meters, queryFn: () => unwrap(api.GET('/v1/meters', { params: { query: { limit: 100 } } })) });

export const useProducts = () =>
  useQuery({ queryKey: consoleKeys.products, queryFn: () => unwrap(api.GET('/v1/products', { params: { query: { limit: 100 } } })) });

/** Every price version of a product (public and overrides), newest first. */
export const usePrices = (product: string) =>
  useQuery({
    queryKey: consoleKeys.prices(product),
    queryFn: () => unwrap(api.GET('/v1/prices', { params: { query: { product, limit: 100 } } })),
    enabled: product !== '',
  });

export const useAdminUsage = (query: UsageQuery) =>
  useQuery({ queryKey: consoleKeys.usage(query), queryFn: () => unwrap(api.GET('/v1/usage', { params: { query } })) });
