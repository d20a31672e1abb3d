import { useEffect, useState, type ReactNode } from 'react';
import { useNavigate } from 'react-router';
import { useSessionActions } from '../api/session';
import { Page } from '../components/page';
import { RequireSession } from '../components/require-session';
import { ErrorState, Loading } from '../components/states';

const TOKEN_FRAGMENT = /^#(pst_[A-Za-z0-9_-]+)$/;

/** Read once per page load: a portal token is single use, and StrictMode runs effects twice. */
let pendingToken: string | null = null;
const fragment = TOKEN_FRAGMENT.exec(window.location.hash);
if (fragment) {
  pendingToken = fragment[1];
  // Drop the token from the address bar and history at once: it must not be bookmarked or shared.
  history.replaceState(history.state, '', window.location.pathname + window.location.search);
}
let redeeming: Promise<void> | null = null;

/**
 * The portal's entry: redeems a portal link's token (POST /v1/dashboard/sessions) when the page
 * was opened with one, then shows the portal for a customer session, or how to get a new link.
 */
export function PortalGate({ children }: { children: ReactNode }) {
  const { redeemPortalToken } = useSessionActions();
  const navigate = useNavigate();
  const [state, setState] = useState<'idle' | 'redeeming' | { error: unknown }>(pendingToken ? 'redeeming' : 'idle');
  useEffect(() => {
    if (!pendingToken) return;
    const token = pendingToken;
    redeeming ??= redeemPortalToken(token).finally(() => {
      pendingToken = null;
    });
    redeeming.then(
      () => {
        setState('idle');
        navigate('/portal', { replace: true });
      },
      (error: unknown) => setState({ error }),
    );
  }, [redeemPortalToken, navigate]);
  if (state === 'redeeming') return <Loading label="Opening your portal…" />;
  if (typeof state === 'object') {
    return (
      <main id="main" className="centered">
        <Page title="This portal link cannot be used">
          <ErrorState error={state.error} />
          <p>Portal links work once and for a few minutes. Ask your provider for a new link.</p>
        </Page>
      </main>
    );
  }
  return (
    <RequireSession
      kind="customer"
      fallback={
        <main id="main" className="centered">
          <Page title="Signed out">
            <p>Your portal session has ended. Open the portal from your provider&apos;s site again to get a new link.</p>
          </Page>
        </main>
      }
    >
      {children}
    </RequireSession>
  );
}
