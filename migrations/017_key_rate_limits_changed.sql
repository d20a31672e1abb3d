-- When a key's rate limits last changed, stamped by the database on every UPDATE that changes
-- rate_limit or rate_limit_max (the API's, or an operator's own SQL). Each instance asks for the
-- keys changed since it last asked, every few seconds, instead of reading every cached key's limits
-- again (docs/operations.md, "Rate limits").
ALTER TABLE api_keys ADD COLUMN rate_limits_changed_at timestamptz;
CREATE INDEX api_keys_rate_limits_changed ON api_keys (rate_limits_changed_at) WHERE rate_limits_changed_at IS NOT NULL;
-- The function's body stays on one line: the migration runner splits statements at a ';' ending a line.
CREATE FUNCTION api_keys_stamp_rate_limits_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.rate_limits_changed_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER api_keys_rate_limits_changed BEFORE UPDATE OF rate_limit, rate_limit_max ON api_keys FOR EACH ROW
  WHEN (OLD.rate_limit IS DISTINCT FROM NEW.rate_limit OR OLD.rate_limit_max IS DISTINCT FROM NEW.rate_limit_max)
  EXECUTE FUNCTION api_keys_stamp_rate_limits_change();
