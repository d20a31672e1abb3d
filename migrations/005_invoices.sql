-- Billing module: postpaid invoices, their lines, numbering, per-customer billing settings, runs.

-- Per customer: exclusive tax rate (a percentage, e.g. 20 or 8.875) and the billing anchor day.
CREATE TABLE billing_settings (
  customer_id text PRIMARY KEY,
  tax_rate text NOT NULL DEFAULT '0',
  anchor_day integer NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 28),
  updated_at timestamptz NOT NULL
);

-- One row per operator (a single 'default' operator today): the next number to give at
-- finalization. Taken under the row lock in the finalizing transaction, so numbers are
-- sequential and gapless (a rolled-back finalization gives its number back).
CREATE TABLE invoice_numbering (
  operator text PRIMARY KEY,
  last_number bigint NOT NULL DEFAULT 0
);
INSERT INTO invoice_numbering (operator, last_number) VALUES ('default', 0);

CREATE TABLE invoices (
  id text PRIMARY KEY,                         -- inv_..., time-ordered: the list cursor
  customer_id text NOT NULL,
  currency text NOT NULL,
  period text NOT NULL,                        -- 'YYYY-MM'
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,             -- exclusive
  status text NOT NULL CHECK (status IN ('draft', 'finalized', 'paid', 'void', 'uncollectible')),
  number bigint UNIQUE,                        -- set at finalization
  tax_rate text NOT NULL,
  subtotal bigint NOT NULL,                    -- ledger units (scale 9), rounded to minor units
  tax bigint NOT NULL,
  total bigint NOT NULL,
  accrued bigint NOT NULL,                     -- what the ledger charged per event during the period
  adjustment bigint NOT NULL,                  -- subtotal - accrued
  created_at timestamptz NOT NULL,
  finalized_at timestamptz,
  paid_at timestamptz,
  voided_at timestamptz,
  uncollectible_at timestamptz,
  payment_reference text,
  UNIQUE (customer_id, period)                 -- a billing run never invoices a period twice
);
CREATE INDEX invoices_customer ON invoices (customer_id, id);
CREATE INDEX invoices_status ON invoices (status, id);

CREATE TABLE invoice_lines (
  invoice_id text NOT NULL REFERENCES invoices (id),
  position integer NOT NULL,
  product_id text NOT NULL,
  product_key text NOT NULL,
  meter_key text NOT NULL,
  quantity text NOT NULL,                      -- exact decimal
  price_id text,
  scheme text,
  amount bigint NOT NULL,                      -- ledger units, rounded to minor units
  accrued bigint NOT NULL,
  PRIMARY KEY (invoice_id, position)
);

-- One row per `tollgate billing run`: what it did, for operators and for resuming.
CREATE TABLE billing_runs (
  id text PRIMARY KEY,
  period text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  customers integer NOT NULL DEFAULT 0,
  invoices_created integer NOT NULL DEFAULT 0
);
