-- Account running totals grow for the life of the platform: the operator's revenue account sums
-- every charge ever made. At 9 decimals a bigint holds only about 9.2 billion currency units
-- (and KRW or JPY reach that quickly), so the totals become numeric(38,0): 10^29 units.
-- A single transfer's amount stays bigint (a request moves at most 10^9 units).
ALTER TABLE ledger_accounts
  ALTER COLUMN debits_posted TYPE numeric(38, 0),
  ALTER COLUMN credits_posted TYPE numeric(38, 0),
  ALTER COLUMN debits_pending TYPE numeric(38, 0),
  ALTER COLUMN credits_pending TYPE numeric(38, 0);
