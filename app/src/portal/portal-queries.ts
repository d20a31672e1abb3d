import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { UsageQuery } from './usage-math';

// The portal's reads, one query key per resource so a mutation can invalidate what it changed.
// Everything is /v1/me/...: the session cookie scopes it to the signed-in customer.

export const portalKeys = {
  me: ['me'] as const,
  balance: ['me', 'balance'] as const,
  transactions: ['me', 'transactions'] as const,
  usage: (query: UsageQuery) => ['me', 'usage', query] as const,
  keys: ['me', 'api_keys'] as const,
  invoices: ['me', 'invoices'] as const,
  payments: ['me', 'payments'] as const,
  autoTopUp: ['me', 'auto_top_up'] as const,
  endpoints: ['me', 'webhook_endpoints'] as const,
  deliveries: (endpointId: string) => ['me', 'webhook_deliveries', endpointId] as const,
  alerts: ['me', 'alert_settings'] as const,
  pricing: ['pricing'] as const,
};

export const useMe = () => useQuery({ queryKey: portalKeys.me, queryFn: () => unwrap(api.GET('/v1/me')) });

/** The balance refreshes on its own: holds and charges move it while the page is open. */
export const useBalance = () =>
  useQuery({ queryKey: portalKeys.balance, queryFn: () => unwrap(api.GET('/v1/me/balance')), refetchInterval: 30_000 });

export const useTransactions = (limit: number) =>
  useQuery({ queryKey: [...portalKeys.transactions, limit], queryFn: () => unwrap(api.GET('/v1/me/transactions', { params: { query: { limit } } })) });

export const useUsage = (query: UsageQuery) =>
  useQuery({ queryKey: portalKeys.usage(query), queryFn: () => unwrap(api.GET('/v1/me/usage', { params: { query } })) });

export const useApiKeys = () =>
  useQuery({ queryKey: portalKeys.keys, queryFn: () => unwrap(api.GET('/v1/me/api_keys', { params: { query: { limit: 100 } } })) });

/** What the customer can buy: the products and meters the usage filters offer. */
export const usePricing = () => useQuery({ queryKey: portalKeys.pricing, queryFn: () => unwrap(api.GET('/v1/pricing')), staleTime: 300_000 });
