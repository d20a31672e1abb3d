-- Platform: idempotency records for POST requests (kept at least 24 hours).
CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status_code integer NOT NULL,
  response_body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- Accounts module: customers and API keys.
CREATE TABLE customers (
  id text PRIMARY KEY,
  name text NOT NULL,
  external_id text UNIQUE,
  email text,
  currency text NOT NULL,
  billing_mode text NOT NULL CHECK (billing_mode IN ('prepaid', 'postpaid')),
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
  id text PRIMARY KEY,
  customer_id text NOT NULL REFERENCES customers (id),
  name text NOT NULL,
  secret_hash text NOT NULL UNIQUE,
  secret_prefix text NOT NULL,
  expires_at timestamptz,
  spend_limit_amount bigint,
  spend_limit_period text CHECK (spend_limit_period IN ('day', 'month')),
  max_concurrency integer,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL
);
CREATE INDEX api_keys_customer ON api_keys (customer_id, id);

-- Catalog module: meters, products, immutable versioned prices.
CREATE TABLE meters (
  id text PRIMARY KEY,
  key text NOT NULL UNIQUE,
  name text NOT NULL,
  unit text NOT NULL,
  aggregation text NOT NULL CHECK (aggregation IN ('sum', 'count', 'max', 'unique_count')),
  created_at timestamptz NOT NULL
);

CREATE TABLE products (
  id text PRIMARY KEY,
  key text NOT NULL UNIQUE,
  name text NOT NULL,
  description text,
  created_at timestamptz NOT NULL
);

CREATE TABLE prices (
  id text PRIMARY KEY,
  product_id text NOT NULL REFERENCES products (id),
  meter_id text NOT NULL REFERENCES meters (id),
  currency text NOT NULL,
  customer_id text,
  scheme text NOT NULL CHECK (scheme IN ('per_unit', 'graduated', 'volume', 'package')),
  unit_amount text,
  tiers jsonb,
  package_size text,
  effective_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX prices_lookup ON prices (product_id, meter_id, currency, effective_at);

-- Ledger module: double-entry accounts and immutable transfers (TigerBeetle's model).
CREATE TABLE ledger_accounts (
  id text PRIMARY KEY,
  currency text NOT NULL,
  code text NOT NULL,
  customer_id text UNIQUE,
  credit_limit bigint NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
  debits_posted bigint NOT NULL DEFAULT 0,
  credits_posted bigint NOT NULL DEFAULT 0,
  debits_pending bigint NOT NULL DEFAULT 0,
  credits_pending bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
);
CREATE UNIQUE INDEX ledger_accounts_operator ON ledger_accounts (code, currency) WHERE customer_id IS NULL;

CREATE TABLE ledger_transfers (
  id text PRIMARY KEY,
  debit_account_id text NOT NULL REFERENCES ledger_accounts (id),
  credit_account_id text NOT NULL REFERENCES ledger_accounts (id),
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('grant', 'hold', 'capture', 'release', 'charge', 'expiry', 'adjustment')),
  pending boolean NOT NULL DEFAULT false,
  pending_id text REFERENCES ledger_transfers (id),
  customer_id text NOT NULL,
  reservation_id text,
  grant_id text,
  reason text,
  created_at timestamptz NOT NULL
);
CREATE INDEX ledger_transfers_customer ON ledger_transfers (customer_id, id);

CREATE TABLE credit_grants (
  id text PRIMARY KEY,
  customer_id text NOT NULL,
  currency text NOT NULL,
  category text NOT NULL CHECK (category IN ('purchased', 'promotional')),
  priority integer NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  remaining bigint NOT NULL CHECK (remaining >= 0),
  expires_at timestamptz,
  expired_at timestamptz,
  description text,
  created_at timestamptz NOT NULL
);
CREATE INDEX credit_grants_customer ON credit_grants (customer_id, id);
CREATE INDEX credit_grants_expiring ON credit_grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE reservations (
  id text PRIMARY KEY,
  customer_id text NOT NULL,
  api_key_id text NOT NULL,
  product_id text NOT NULL,
  currency text NOT NULL,
  amount bigint NOT NULL CHECK (amount >= 0),
  price_ids jsonb NOT NULL,
  estimate jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL CHECK (status IN ('pending', 'settled', 'released', 'expired')),
  hold_transfer_id text,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  resolved_at timestamptz,
  usage jsonb,
  captured bigint,
  charged bigint,
  released bigint,
  uncollected bigint
);
CREATE INDEX reservations_customer ON reservations (customer_id, id);
CREATE INDEX reservations_open_by_key ON reservations (api_key_id) WHERE status = 'pending';
CREATE INDEX reservations_open_by_expiry ON reservations (expires_at) WHERE status = 'pending';

-- Spend per key and calendar period (UTC), for spend limits.
CREATE TABLE ledger_key_spend (
  api_key_id text NOT NULL,
  period text NOT NULL,
  period_start timestamptz NOT NULL,
  amount bigint NOT NULL,
  PRIMARY KEY (api_key_id, period, period_start)
);
