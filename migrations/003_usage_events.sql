-- Usage metering: raw events (exactly once per source and id, for good) and hourly rollups.

CREATE TABLE usage_events (
  id text PRIMARY KEY,                       -- evt_..., time-ordered: the list cursor
  source text NOT NULL,
  event_id text NOT NULL,                    -- the CloudEvent's own id
  type text NOT NULL,
  time timestamptz NOT NULL,                 -- when the usage happened (the CloudEvent time)
  received_at timestamptz NOT NULL,
  customer_id text NOT NULL,
  product_id text NOT NULL,
  api_key_id text,
  currency text NOT NULL,
  quantities jsonb NOT NULL,                 -- meter key -> decimal string (or the value, for unique_count meters)
  metadata jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL CHECK (status IN ('charged', 'unpriced', 'settled')),
  price_ids jsonb NOT NULL DEFAULT '[]',
  amount bigint,                             -- rated cost in ledger units; null when unpriced
  charged bigint NOT NULL DEFAULT 0,
  uncollected bigint NOT NULL DEFAULT 0,
  UNIQUE (source, event_id)
);
CREATE INDEX usage_events_customer ON usage_events (customer_id, id);
CREATE INDEX usage_events_unpriced ON usage_events (id) WHERE status = 'unpriced';

-- One row per customer, product, API key ('' for none), meter and UTC hour. Day and month
-- windows add hours up. Maintained in the same transaction as the events they count.
CREATE TABLE usage_rollups (
  customer_id text NOT NULL,
  product_id text NOT NULL,
  api_key_id text NOT NULL,
  meter_key text NOT NULL,
  bucket_start timestamptz NOT NULL,
  currency text NOT NULL,
  quantity_sum numeric NOT NULL,
  quantity_max numeric,
  event_count bigint NOT NULL,
  charged numeric(38, 0) NOT NULL,           -- the events' charges, split over their meters exactly
  PRIMARY KEY (customer_id, product_id, api_key_id, meter_key, bucket_start)
);
CREATE INDEX usage_rollups_bucket ON usage_rollups (bucket_start);

-- Distinct values seen by unique_count meters per hour: a window's unique_count counts them.
CREATE TABLE usage_rollup_values (
  customer_id text NOT NULL,
  product_id text NOT NULL,
  api_key_id text NOT NULL,
  meter_key text NOT NULL,
  bucket_start timestamptz NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (customer_id, product_id, api_key_id, meter_key, bucket_start, value)
);
