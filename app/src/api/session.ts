import { useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, currentCsrfToken, setCsrfToken } from './client';

// TODO(h-sessions): take this type and these calls from the generated client once the session routes
// are in openapi.json (the contract in /work/prompts/dashboard-contract.md).
export interface DashboardSession {
  object: 'dashboard_session';
  kind: 'customer' | 'operator';
  customer_id: string | null;
  csrf_token: string;
  expires_at: string;
}

export const SESSION_KEY = ['dashboard-session'] as const;

async function sessionCall(method: 'GET' | 'POST' | 'DELETE', body?: unknown): Promise<DashboardSession | null> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = currentCsrfToken();
  if (method === 'DELETE' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(method === 'POST' ? '/v1/dashboard/sessions' : '/v1/dashboard/session', {
    method,
    credentials: 'same-origin',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (method === 'GET' && response.status === 401) return null;
  if (response.status === 204) return null;
  const json = (await response.json().catch(() => null)) as (DashboardSession & { code?: string; detail?: string }) | null;
  if (!response.ok) throw new ApiError(response.status, json?.code ?? 'http_error', json?.detail ?? `The server answered ${response.status}`, null);
  return json;
}

/** The signed-in session (null: signed out). Its CSRF token goes on every unsafe request. */
export function useSession() {
  return useQuery({
    queryKey: SESSION_KEY,
    queryFn: async () => {
      const session = await sessionCall('GET');
      setCsrfToken(session?.csrf_token ?? null);
      return session;
    },
    staleTime: 60_000,
    retry: false,
  });
}

export function useSessionActions() {
  const client = useQueryClient();
  const adopt = (session: DashboardSession | null) => {
    setCsrfToken(session?.csrf_token ?? null);
    // A new principal: nothing cached under the previous one may show.
    client.removeQueries({ predicate: (q) => q.queryKey[0] !== SESSION_KEY[0] });
    client.setQueryData(SESSION_KEY, session);
  };
  return {
    redeemPortalToken: async (portalToken: string) => adopt(await sessionCall('POST', { portal_token: portalToken })),
    signInOperator: async (adminToken: string) => adopt(await sessionCall('POST', { admin_token: adminToken })),
    signOut: async () => {
      await sessionCall('DELETE');
      adopt(null);
    },
  };
}

/** A one-time portal link for a customer (operator only), valid for `expiresInMinutes`. */
export async function createPortalLink(customerId: string, expiresInMinutes = 15): Promise<{ url: string; expires_at: string }> {
  const response = await fetch(`/v1/customers/${encodeURIComponent(customerId)}/portal_sessions`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': currentCsrfToken() ?? '', 'idempotency-key': crypto.randomUUID() },
    body: JSON.stringify({ expires_in_minutes: expiresInMinutes }),
  });
  const json = (await response.json().catch(() => null)) as { url: string; expires_at: string; code?: string; detail?: string } | null;
  if (!response.ok || !json) throw new ApiError(response.status, json?.code ?? 'http_error', json?.detail ?? `The server answered ${response.status}`, null);
  return json;
}
