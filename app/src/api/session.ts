import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, setCsrfToken, unwrap } from './client';
import type { paths } from './schema';

export type DashboardSession = paths['/v1/dashboard/session']['get']['responses'][200]['content']['application/json'];

export const SESSION_KEY = ['dashboard-session'] as const;

/** The live session, or null without one (401). */
async function currentSession(): Promise<DashboardSession | null> {
  try {
    return await unwrap(api.GET('/v1/dashboard/session'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/** The signed-in session (null: signed out). Its CSRF token goes on every unsafe request. */
export function useSession() {
  return useQuery({
    queryKey: SESSION_KEY,
    queryFn: async () => {
      const session = await currentSession();
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
  const signIn = async (body: { portal_token: string } | { admin_token: string }) => adopt(await unwrap(api.POST('/v1/dashboard/sessions', { body })));
  return {
    redeemPortalToken: (portalToken: string) => signIn({ portal_token: portalToken }),
    signInOperator: (adminToken: string) => signIn({ admin_token: adminToken }),
    signOut: async () => {
      await unwrap(api.DELETE('/v1/dashboard/session'));
      adopt(null);
    },
  };
}

/** A one-time portal link for a customer (operator only), valid for `expiresInMinutes`. */
export function createPortalLink(customerId: string, expiresInMinutes = 15) {
  return unwrap(api.POST('/v1/customers/{id}/portal_sessions', { params: { path: { id: customerId } }, body: { expires_in_minutes: expiresInMinutes } }));
}
