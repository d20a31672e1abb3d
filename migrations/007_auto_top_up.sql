-- Payments, continued: off-session payments (auto top-up now, postpaid invoices later), their
-- failures, disputes, the saved payment method, and per-customer auto top-up settings.

ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('top_up', 'auto_top_up', 'invoice'));
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('pending', 'paid', 'partially_refunded', 'refunded', 'failed'));
-- kind invoice: the invoice it collects
ALTER TABLE payments ADD COLUMN invoice_id text;
-- off-session: when the provider was last called
ALTER TABLE payments ADD COLUMN attempted_at timestamptz;
-- failed: the provider's decline code
ALTER TABLE payments ADD COLUMN failure_code text;
ALTER TABLE payments ADD COLUMN failure_message text;
ALTER TABLE payments ADD COLUMN failed_at timestamptz;
-- the provider's dispute status, if any
ALTER TABLE payments ADD COLUMN dispute_status text;
-- ledger units the dispute holds back (0 once won)
ALTER TABLE payments ADD COLUMN disputed bigint NOT NULL DEFAULT 0;
-- of which taken from the customer's credit
ALTER TABLE payments ADD COLUMN dispute_taken bigint NOT NULL DEFAULT 0;
-- of which already spent: not taken
ALTER TABLE payments ADD COLUMN dispute_uncollected bigint NOT NULL DEFAULT 0;
-- given back when the dispute was won
ALTER TABLE payments ADD COLUMN dispute_reinstated bigint NOT NULL DEFAULT 0;

-- At most one auto top-up in flight per customer, whatever the number of Tollgate processes.
CREATE UNIQUE INDEX payments_one_pending_auto_top_up ON payments (customer_id) WHERE kind = 'auto_top_up' AND status = 'pending';
-- The sweep's look-up of auto top-ups whose provider call has to be made again.
CREATE INDEX payments_pending_off_session ON payments (attempted_at) WHERE status = 'pending' AND payment_intent_id IS NULL AND attempted_at IS NOT NULL;

-- The card saved by a paid Checkout top-up (setup_future_usage): the later payment that saved one wins.
ALTER TABLE payment_customers ADD COLUMN payment_method_id text;
ALTER TABLE payment_customers ADD COLUMN payment_method_payment_id text;

-- A dispute as the provider reports it, per payment intent (a charge is disputed at most once),
-- kept even when the payment is not known yet. A closed status is final.
CREATE TABLE payment_disputes (
  provider text NOT NULL,
  payment_intent_id text NOT NULL,
  dispute_id text NOT NULL,
  amount_minor bigint NOT NULL,
  status text NOT NULL,
  closed boolean NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (provider, payment_intent_id)
);

CREATE TABLE auto_top_up_settings (
  customer_id text PRIMARY KEY REFERENCES customers (id),
  enabled boolean NOT NULL,
  threshold bigint NOT NULL,                -- ledger units: top up when available falls below
  amount_minor bigint NOT NULL,             -- what one top-up charges, in minor units
  consecutive_failures integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,              -- after a failure: no attempt before this
  disabled_reason text,
  disabled_at timestamptz,
  updated_at timestamptz NOT NULL
);
CREATE INDEX auto_top_up_enabled ON auto_top_up_settings (customer_id) WHERE enabled;
