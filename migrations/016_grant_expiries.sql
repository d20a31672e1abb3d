-- The expiry sweep's list of grants with an expiry and something left, in a table of its own.
-- It was a partial index of credit_grants whose condition named `remaining`: PostgreSQL cannot
-- update a row in place on its page (a HOT update) when a column an index or its condition names
-- changes, so every charge that used a grant wrote new entries into each of the table's indexes,
-- and a customer's grant lookups walked past the dead ones. Now `remaining` is in no index.
-- A grant with an expiry gets a row when it is written; the sweep deletes the rows of grants
-- past their expiry with nothing left (spent before it, or expired), once each.
CREATE TABLE credit_grant_expiries (
  grant_id text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX credit_grant_expiries_due ON credit_grant_expiries (expires_at);
INSERT INTO credit_grant_expiries (grant_id, expires_at)
  SELECT id, expires_at FROM credit_grants WHERE remaining > 0 AND expires_at IS NOT NULL;
DROP INDEX credit_grants_expiring;

-- Room on each page for the next versions of its grants, so their updates stay on it.
ALTER TABLE credit_grants SET (fillfactor = 80);
