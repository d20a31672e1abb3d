import { useState } from 'react';
import { NavLink, Outlet, useNavigate } from 'react-router';
import { useSessionActions } from '../api/session';

export interface NavItem {
  to: string;
  label: string;
  /** Active only on this exact path (an index page). */
  end?: boolean;
}

/**
 * The frame of every signed-in page: a skip link, the brand, the section's navigation (a row that
 * wraps on a phone), sign-out, and the page in <main>.
 */
export function AppShell({ section, nav }: { section: string; nav: NavItem[] }) {
  const { signOut } = useSessionActions();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const onSignOut = async () => {
    try {
      await signOut();
      navigate('/', { replace: true });
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Sign-out failed.');
    }
  };
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">
          Tollgate <span className="muted">{section}</span>
        </span>
        <nav aria-label={section}>
          <ul>
            {nav.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.end}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="sign-out" onClick={() => void onSignOut()}>
          Sign out
        </button>
      </header>
      {error ? (
        <p role="alert" className="error-text">
          {error}
        </p>
      ) : null}
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
