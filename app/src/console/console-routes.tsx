import type { RouteObject } from 'react-router';
import { AppShell } from '../components/layout';
import { RequireSession } from '../components/require-session';
import { CustomerPage } from './customer-page';
import { CustomersPage } from './customers-page';

const nav = [{ to: '/console', label: 'Customers', end: true }];

/** The operator console under /app/console (operator session only). */
export const consoleRoutes: RouteObject = {
  path: '/console',
  element: (
    <RequireSession kind="operator">
      <AppShell section="Operator console" nav={nav} />
    </RequireSession>
  ),
  children: [
    { index: true, element: <CustomersPage /> },
    { path: 'customers/:id', element: <CustomerPage /> },
  ],
};
