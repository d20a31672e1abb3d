import { createBrowserRouter, Navigate, type RouteObject } from 'react-router';
import { useSession } from './api/session';
import { Loading } from './components/states';
import { consoleRoutes } from './console/console-routes';
import { OperatorSignIn } from './console/sign-in';
import { portalRoutes } from './portal/portal-routes';
import { NotFound } from './not-found';

/** `/app/`: the operator sign-in without a session; otherwise the signed-in side's home. */
function Home() {
  const session = useSession();
  if (session.isPending) return <Loading label="Checking your session…" />;
  if (session.data?.kind === 'customer') return <Navigate to="/portal" replace />;
  if (session.data?.kind === 'operator') return <Navigate to="/console" replace />;
  return <OperatorSignIn />;
}

const routes: RouteObject[] = [{ path: '/', element: <Home /> }, portalRoutes, consoleRoutes, { path: '*', element: <NotFound /> }];

export const router = createBrowserRouter(routes, { basename: '/app' });
