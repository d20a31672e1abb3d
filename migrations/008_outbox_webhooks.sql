-- Outbound events: the transactional outbox, webhook endpoints and their deliveries, and the
-- per-customer alert thresholds with their armed/fired state.

-- One row per event, written in the same transaction as the change it reports. The dispatcher
-- fans each one out to webhook deliveries (dispatched_at) and the NATS bus (published_at).
CREATE TABLE outbox_events (
  id text PRIMARY KEY,                          -- msg_..., time-ordered; the webhook-id receivers dedupe on
  type text NOT NULL,
  customer_id text,                             -- null: an operator-wide event
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  dispatched_at timestamptz,                    -- fanned out to webhook deliveries
  published_at timestamptz                      -- published to the NATS bus (with NATS_URL)
);
CREATE INDEX outbox_events_undispatched ON outbox_events (id) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_unpublished ON outbox_events (id) WHERE published_at IS NULL;
CREATE INDEX outbox_events_customer ON outbox_events (customer_id, created_at);
CREATE INDEX outbox_events_created ON outbox_events (created_at);

CREATE TABLE webhook_endpoints (
  id text PRIMARY KEY,                          -- whe_...
  customer_id text REFERENCES customers (id),   -- null: the operator's endpoint (every customer's events)
  url text NOT NULL,
  event_types text[] NOT NULL,                  -- empty: every type
  description text,
  enabled boolean NOT NULL,
  disabled_reason text,                         -- set when Tollgate disabled it (kept failing)
  secret_sealed text NOT NULL,                  -- whsec_..., encrypted at rest (secret-box)
  previous_secret_sealed text,                  -- after a rotation: still signs until previous_secret_expires_at
  previous_secret_expires_at timestamptz,
  failing_since timestamptz,                    -- first failed attempt since the last success
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_customer ON webhook_endpoints (customer_id, id);

-- One delivery per (endpoint, event); a replay puts it back to pending.
CREATE TABLE webhook_deliveries (
  id text PRIMARY KEY,                          -- whd_...
  endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id text NOT NULL REFERENCES outbox_events (id),
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,                  -- pending: when it is due (or when a claim's lease ends)
  last_attempt_at timestamptz,
  last_status_code integer,
  created_at timestamptz NOT NULL,
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- The delivery log: every HTTP attempt.
CREATE TABLE webhook_attempts (
  delivery_id text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  attempted_at timestamptz NOT NULL,
  status_code integer,                          -- null: no HTTP answer (timeout, refused, ...)
  latency_ms integer NOT NULL,
  response_excerpt text,
  error text,
  PRIMARY KEY (delivery_id, attempt)
);

-- Per customer: alert thresholds (ledger units) and whether each alert has fired since it was
-- last re-armed. Read and written in the ledger's batch transaction, under the customer's lock.
CREATE TABLE customer_alerts (
  customer_id text PRIMARY KEY REFERENCES customers (id),
  balance_low bigint,                           -- balance.low below this available balance
  spend_day bigint,                             -- spend_limit.reached at this spend in a UTC day
  spend_month bigint,                           -- ... in a UTC month
  balance_low_fired boolean NOT NULL DEFAULT false,
  balance_depleted_fired boolean NOT NULL DEFAULT false,
  spend_day_fired_for timestamptz,              -- the period start it fired for
  spend_month_fired_for timestamptz
);

-- Spend per customer and UTC period (captured and charged), for the spend alerts.
CREATE TABLE customer_spend (
  customer_id text NOT NULL,
  period text NOT NULL CHECK (period IN ('day', 'month')),
  period_start timestamptz NOT NULL,
  amount bigint NOT NULL,
  PRIMARY KEY (customer_id, period, period_start)
);
