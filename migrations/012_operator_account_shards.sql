-- Operator accounts (revenue, ...) are touched by every ledger batch. Their totals used to be
-- updated in place, so concurrent batches queued on those rows' locks until the holder committed:
-- one commit at a time. A batch now adds its operator deltas to one of a few shard rows per account
-- (chosen per batch), so batches on different shards never wait on each other. An operator
-- account's totals are its ledger_accounts row plus the sum of its shards. A shard may hold a
-- negative pending total (a hold added in one shard, released in another); only the sum is
-- non-negative. Customer accounts are locked per batch anyway and keep their totals in place.
CREATE TABLE ledger_account_shards (
  account_id text NOT NULL,
  shard integer NOT NULL,
  currency text NOT NULL,
  debits_posted numeric(38, 0) NOT NULL DEFAULT 0,
  credits_posted numeric(38, 0) NOT NULL DEFAULT 0,
  debits_pending numeric(38, 0) NOT NULL DEFAULT 0,
  credits_pending numeric(38, 0) NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, shard)
);
