-- Invoices move money through the ledger (docs/billing.md, "The invoice and the ledger").

-- Ledger: two more operator accounts per currency: `tax` (tax invoiced, owed to the authorities)
-- and `payments` (where money received for invoices comes from). New currencies get them when
-- their first customer opens an account; existing currencies get them here.
INSERT INTO ledger_accounts (id, currency, code, customer_id, created_at)
SELECT 'acc_' || substr(md5(c.code || ':' || cur.currency), 1, 26), cur.currency, c.code, NULL, now()
FROM (SELECT DISTINCT currency FROM ledger_accounts WHERE customer_id IS NULL) AS cur
CROSS JOIN (VALUES ('tax'), ('payments')) AS c (code)
ON CONFLICT (code, currency) WHERE customer_id IS NULL DO NOTHING;

-- A billing transfer names its invoice.
ALTER TABLE ledger_transfers ADD COLUMN invoice_id text;
CREATE INDEX ledger_transfers_invoice ON ledger_transfers (invoice_id) WHERE invoice_id IS NOT NULL;

-- Billing: what the customer owes on an invoice and how it was settled (ledger units, scale 9).
-- amount_due = total - credits_applied, set at finalization;
-- amount_remaining = amount_due - amount_paid - (credit notes that reduced what was owed).
ALTER TABLE invoices
  ADD COLUMN credits_applied bigint NOT NULL DEFAULT 0,
  ADD COLUMN amount_due bigint NOT NULL DEFAULT 0,
  ADD COLUMN amount_paid bigint NOT NULL DEFAULT 0,
  ADD COLUMN amount_credited bigint NOT NULL DEFAULT 0,
  ADD COLUMN amount_remaining bigint NOT NULL DEFAULT 0,
  ADD COLUMN payment_provider text;

-- Late usage: a line billing what the ledger charged for an earlier invoice's period after that
-- invoice was finalized. It names that invoice; a late line has no product or meter.
ALTER TABLE invoice_lines
  ADD COLUMN late_invoice_id text REFERENCES invoices (id),
  ADD COLUMN late_period text,
  ALTER COLUMN product_id DROP NOT NULL,
  ALTER COLUMN product_key DROP NOT NULL,
  ALTER COLUMN meter_key DROP NOT NULL,
  ALTER COLUMN quantity DROP NOT NULL;
CREATE INDEX invoice_lines_late ON invoice_lines (late_invoice_id) WHERE late_invoice_id IS NOT NULL;

CREATE TABLE credit_notes (
  id text PRIMARY KEY,                          -- cn_..., time-ordered: the list cursor
  invoice_id text NOT NULL REFERENCES invoices (id),
  customer_id text NOT NULL,
  currency text NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),    -- ledger units, a multiple of a minor unit
  tax bigint NOT NULL CHECK (tax >= 0),         -- the part of amount credited from the tax account
  reason text NOT NULL CHECK (reason IN ('duplicate', 'product_unsatisfactory', 'order_change', 'other')),
  memo text,
  created_at timestamptz NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id, id);

-- Invoices finalized before this version posted nothing to the ledger: they owe their total.
UPDATE invoices SET
  amount_due = total,
  amount_paid = CASE WHEN status = 'paid' THEN total ELSE 0 END,
  amount_remaining = CASE WHEN status IN ('draft', 'finalized', 'uncollectible') THEN total ELSE 0 END;
