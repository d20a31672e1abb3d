-- Payments module: prepaid top-ups paid through a provider (Stripe Checkout), the provider's
-- customer per Tollgate customer, and every provider event seen, once.

-- The provider's customer for a Tollgate customer, created on first need.
CREATE TABLE payment_customers (
  customer_id text NOT NULL REFERENCES customers (id),
  provider text NOT NULL,
  provider_customer_id text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (customer_id, provider),
  UNIQUE (provider, provider_customer_id)
);

-- A top-up: pending until the provider reports it paid; then one purchased credit grant.
CREATE TABLE payments (
  id text PRIMARY KEY,                          -- pay_..., time-ordered: the list cursor
  customer_id text NOT NULL REFERENCES customers (id),
  kind text NOT NULL CHECK (kind IN ('top_up')),
  provider text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'paid', 'partially_refunded', 'refunded')),
  currency text NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),    -- ledger units (scale 9)
  amount_minor bigint NOT NULL,                 -- what the provider charges, in minor units
  checkout_session_id text UNIQUE,
  checkout_url text,
  payment_intent_id text UNIQUE,
  reference text,                               -- manual payments: the operator's reference (bank transfer id)
  grant_id text,                                -- the purchased grant, once paid
  refunded bigint NOT NULL DEFAULT 0,           -- ledger units refunded by the provider and applied
  refund_taken bigint NOT NULL DEFAULT 0,       -- of which taken back from the customer's credit
  refund_uncollected bigint NOT NULL DEFAULT 0, -- of which already spent: not taken back
  created_at timestamptz NOT NULL,
  paid_at timestamptz
);
CREATE INDEX payments_customer ON payments (customer_id, id);

-- Refunds as the provider reports them (cumulative per payment intent), kept even when the
-- payment is not known yet: applied when it is.
CREATE TABLE payment_refund_totals (
  provider text NOT NULL,
  payment_intent_id text NOT NULL,
  amount_refunded_minor bigint NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (provider, payment_intent_id)
);

-- Every provider event processed, exactly once (its effect commits in the same transaction).
CREATE TABLE payment_events (
  provider text NOT NULL,
  event_id text NOT NULL,
  type text NOT NULL,
  outcome text NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (provider, event_id)
);
