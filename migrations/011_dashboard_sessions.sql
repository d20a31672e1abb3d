-- Browser sign-in for the dashboard (src/dashboard, docs/dashboard.md): one-time portal links the
-- operator hands to a customer, and the sessions a browser holds as an HttpOnly cookie. Secrets are
-- stored only as SHA-256 hashes; a database dump signs nobody in.

-- A portal link: redeemed at most once (used_at), before expires_at.
CREATE TABLE portal_sessions (
  id text PRIMARY KEY,                          -- ps_...
  customer_id text NOT NULL REFERENCES customers (id),
  token_hash text NOT NULL UNIQUE,              -- sha256 of pst_...
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  created_at timestamptz NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);

-- A browser session: a customer's (from a portal link) or the operator's (admin token sign-in).
CREATE TABLE dashboard_sessions (
  id text PRIMARY KEY,                          -- dss_...
  kind text NOT NULL CHECK (kind IN ('customer', 'operator')),
  customer_id text REFERENCES customers (id),
  portal_session_id text REFERENCES portal_sessions (id),
  secret_hash text NOT NULL UNIQUE,             -- sha256 of the cookie's tgs_...
  expires_at timestamptz NOT NULL,              -- absolute end
  last_seen_at timestamptz NOT NULL,            -- idle end = last_seen_at + idle timeout (written about once a minute)
  revoked_at timestamptz,                       -- signed out
  created_at timestamptz NOT NULL,
  CHECK ((kind = 'customer') = (customer_id IS NOT NULL))
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
