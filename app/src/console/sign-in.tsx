import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { useSessionActions } from '../api/session';
import { Field, FormStatus } from '../components/field';
import { Page } from '../components/page';

/**
 * Operator sign-in with the admin token. The token is exchanged once for an HttpOnly session
 * cookie and is not kept anywhere in the browser.
 */
export function OperatorSignIn() {
  const { signInOperator } = useSessionActions();
  const navigate = useNavigate();
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signInOperator(token);
      setToken('');
      navigate('/console', { replace: true });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="centered">
      <Page title="Operator sign-in">
        <form className="card form" onSubmit={(e) => void submit(e)}>
          <Field
            label="Admin token"
            type="password"
            autoComplete="current-password"
            required
            minLength={16}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            hint="TOLLGATE_ADMIN_TOKEN (tollgate dev prints it). Customers open the portal from a link instead."
          />
          <FormStatus error={error} />
          <button type="submit" className="primary" disabled={busy}>
            Sign in
          </button>
        </form>
      </Page>
    </main>
  );
}
