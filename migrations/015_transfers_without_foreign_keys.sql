-- A transfer's foreign keys made PostgreSQL lock rows on every write: the operator's revenue
-- account, which every concurrent batch names (FOR KEY SHARE from several transactions at once
-- makes a new multixact each time), and, for every capture and release, the hold it resolves (a
-- write to an older transfer's page, with its own WAL record). Without them a hold costs about a
-- tenth less database CPU (docs/performance.md). The ledger is the only writer of transfers, takes
-- every id in them from rows it read in the same transaction (accounts and reservations under the
-- customer's lock), and deletes neither transfers nor accounts. `tollgate ledger verify` checks
-- what the keys checked, and more (src/ledger/ledger-verify.ts); the test suite runs it after its
-- ledger scenarios.
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_debit_account_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_credit_account_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_pending_id_fkey;
