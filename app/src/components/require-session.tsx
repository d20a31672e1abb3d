import type { ReactNode } from 'react';
import { Navigate } from 'react-router';
import { useSession, type DashboardSession } from '../api/session';
import { ErrorState, Loading } from './states';

/**
 * Renders its children only for a live session of the given kind. Without one: `fallback` when
 * given (the portal explains how to get a new link), else the operator sign-in at /.
 */
export function RequireSession({ kind, fallback, children }: { kind: DashboardSession['kind']; fallback?: ReactNode; children: ReactNode }) {
  const session = useSession();
  if (session.isPending) return <Loading label="Checking your session…" />;
  if (session.isError) return <ErrorState error={session.error} retry={() => void session.refetch()} />;
  if (session.data?.kind === kind) return <>{children}</>;
  return fallback ? <>{fallback}</> : <Navigate to="/" replace />;
}
