-- Rate limits per API key (requests per second). rate_limit_max is the operator's allowance for the
-- key (admin only; NULL: TOLLGATE_RATE_LIMIT_PER_KEY); rate_limit is the key's own limit, set by the
-- admin or by the customer within the allowance (NULL: the allowance).
ALTER TABLE api_keys ADD COLUMN rate_limit integer;
ALTER TABLE api_keys ADD COLUMN rate_limit_max integer;
