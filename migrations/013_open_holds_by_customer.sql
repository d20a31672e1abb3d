-- A ledger batch reads its customers' open holds: the overdue ones (expired before anything else
-- touches the customer) and, per key, how many are open and what they hold (max_concurrency,
-- spend limits). Both by customer now, through one partial index of the open holds, instead of
-- one by key and one by expiry time: the index by expiry made each batch walk past every
-- customer's overdue entries, a customer's holds found by key and by customer separately made a
-- busy customer's batch visit every hold it ever had, and with two indexes to choose from a plan
-- made while the table was empty could pick the one it then reads whole. The expiry sweeper and
-- the open-holds gauge read all open holds, which this index holds too.
CREATE INDEX reservations_open_by_customer ON reservations (customer_id, expires_at) WHERE status = 'pending';
DROP INDEX reservations_open_by_key;
DROP INDEX reservations_open_by_expiry;

-- Every settle leaves a dead version of its reservation behind, and its entry in the open-holds
-- index stays until a vacuum removes it. The default (a fifth of the table dead) lets a busy
-- ledger's lookups walk past hundreds of thousands of them; vacuum far sooner.
ALTER TABLE reservations SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
