import type { RouteObject } from 'react-router';
import { AppShell } from '../components/layout';
import { ApiKeysPage } from './api-keys-page';
import { BillingPage } from './billing-page';
import { OverviewPage } from './overview-page';
import { PortalGate } from './portal-gate';
import { UsagePage } from './usage-page';
import { WebhooksPage } from './webhooks-page';

const nav = [
  { to: '/portal', label: 'Overview', end: true },
  { to: '/portal/usage', label: 'Usage' },
  { to: '/portal/keys', label: 'API keys' },
  { to: '/portal/billing', label: 'Billing' },
  { to: '/portal/webhooks', label: 'Webhooks' },
];

/** The customer portal under /app/portal; /app/portal#pst_... redeems a portal link first. */
export const portalRoutes: RouteObject = {
  path: '/portal',
  element: (
    <PortalGate>
      <AppShell section="Customer portal" nav={nav} />
    </PortalGate>
  ),
  children: [
    { index: true, element: <OverviewPage /> },
    { path: 'usage', element: <UsagePage /> },
    { path: 'keys', element: <ApiKeysPage /> },
    { path: 'billing', element: <BillingPage /> },
    { path: 'webhooks', element: <WebhooksPage /> },
  ],
};

