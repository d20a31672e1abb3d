-- A key's spend per period (ledger_key_spend) is kept only for keys with a spend limit, the one
-- thing that reads it: a ledger batch no longer writes two rows for every key it charges. Setting
-- a limit fills the current day and month in from the ledger, whose captures and charges now name
-- the key whose request made them.
ALTER TABLE ledger_transfers ADD COLUMN api_key_id text;

-- Transfers made before this migration name no key. What each key had spent with them is what its
-- spend rows held at this point: a fill-in adds it for the periods it covers.
CREATE TABLE ledger_key_spend_carried AS SELECT api_key_id, period, period_start, amount FROM ledger_key_spend;
ALTER TABLE ledger_key_spend_carried ADD PRIMARY KEY (api_key_id, period, period_start);
