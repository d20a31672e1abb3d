import type { RouteObject } from 'react-router';
import { AppShell } from '../components/layout';
import { RequireSession } from '../components/require-session';
import { AttentionPage } from './attention-page';
import { CatalogPage } from './catalog-page';
import { CustomerPage } from './customer-page';
import { CustomersPage } from './customers-page';
import { RevenuePage } from './revenue-page';

const nav = [
  { to: '/console', label: 'Customers', end: true },
  { to: '/console/catalog', label: 'Catalog and prices' },
  { to: '/console/revenue', label: 'Revenue' },
  { to: '/console/attention', label: 'Needs attention' },
];

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
    { path: 'catalog', element: <CatalogPage /> },
    { path: 'revenue', element: <RevenuePage /> },
    { path: 'attention', element: <AttentionPage /> },
  ],
};
