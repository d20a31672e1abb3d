import { columns } from '../platform/columns.js';
import type { Queryable } from '../platform/db.js';
import { pagesPerParentSql } from '../platform/lists.js';

export interface EndpointRow {
  id: string;
  customer_id: string | null;
  url: string;
  event_types: string[];
  description: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  created_at: Date;
}

export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  attempted_at: Date;
  status_code: number | null;
  latency_ms: number;
  response_excerpt: string | null;
  error: string | null;
}

/** Who is asking: the operator (every endpoint) or one customer (its own). */
export type Owner = { customerId: string } | null;

export async function insertEndpoint(tx: Queryable, r: EndpointRow): Promise<void> {
  await tx.query(
    `INSERT INTO webhook_endpoints (id, customer_id, url, event_types, description, enabled, disabled_reason, secret_sealed,
       previous_secret_sealed, previous_secret_expires_at, failing_since, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [r.id, r.customer_id, r.url, r.event_types, r.description, r.enabled, r.disabled_reason, r.secret_sealed, r.previous_secret_sealed,
      r.previous_secret_expires_at, r.failing_since, r.created_at, r.updated_at],
  );
}

export async function updateEndpoint(tx: Queryable, r: EndpointRow): Promise<void> {
  await tx.query(
    `UPDATE webhook_endpoints SET url = $2, event_types = $3, description = $4, enabled = $5, disabled_reason = $6, secret_sealed = $7,
       previous_secret_sealed = $8, previous_secret_expires_at = $9, failing_since = $10, updated_at = $11 WHERE id = $1`,
    [r.id, r.url, r.event_types, r.description, r.enabled, r.disabled_reason, r.secret_sealed, r.previous_secret_sealed,
      r.previous_secret_expires_at, r.failing_since, r.updated_at],
  );
}

export async function findEndpoint(db: Queryable, id: string, owner: Owner, forUpdate = false): Promise<EndpointRow | null> {
  const [row] = await db.query<EndpointRow>(
    `SELECT * FROM webhook_endpoints WHERE id = $1 AND ($2::text IS NULL OR customer_id = $2)${forUpdate ? ' FOR UPDATE' : ''}`,
    [id, owner?.customerId ?? null],
  );
  return row ?? null;
}

export async function listEndpoints(db: Queryable, owner: Owner, filter: { limit: number; cursor?: string; customer?: string; failing?: boolean }): Promise<EndpointRow[]> {
  return db.query<EndpointRow>(
    `SELECT * FROM webhook_endpoints WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR customer_id = $2)
       AND ($3::text IS NULL OR id < $3) AND (NOT $5::boolean OR failing_since IS NOT NULL OR NOT enabled) ORDER BY id DESC LIMIT $4`,
    [owner?.customerId ?? null, filter.customer ?? null, filter.cursor ?? null, filter.limit + 1, filter.failing === true],
  );
}

/** A page of the endpoints of each of several customers, in one query. */
export async function listEndpointsOf(db: Queryable, customerIds: string[], limit: number, cursor?: string): Promise<EndpointRow[]> {
  return db.query<EndpointRow>(pagesPerParentSql('webhook_endpoints', 'customer_id'), [customerIds, cursor ?? null, limit + 1]);
}

export async function deleteEndpoint(tx: Queryable, id: string): Promise<void> {
  await tx.query('DELETE FROM webhook_endpoints WHERE id = $1', [id]);
}

/** Enabled endpoints that may want events of these customers: the operator's and theirs. */
export async function endpointsFor(db: Queryable, customerIds: string[]): Promise<EndpointRow[]> {
  return db.query<EndpointRow>('SELECT * FROM webhook_endpoints WHERE enabled AND (customer_id IS NULL OR customer_id = ANY($1))', [customerIds]);
}

export async function endpointsByIds(db: Queryable, ids: string[]): Promise<Map<string, EndpointRow>> {
  const rows = await db.query<EndpointRow>('SELECT * FROM webhook_endpoints WHERE id = ANY($1)', [ids]);
  return new Map(rows.map((r) => [r.id, r]));
}

/** New deliveries; one that exists already (same endpoint and event) is put back to pending when `reset`. */
export async function upsertDeliveries(tx: Queryable, rows: Array<Pick<DeliveryRow, 'id' | 'endpoint_id' | 'event_id'>>, now: Date, reset: boolean): Promise<number> {
  if (rows.length === 0) return 0;
  const conflict = reset ? "DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at" : 'DO NOTHING';
  const written = await tx.query(
    `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, next_attempt_at, created_at)
     SELECT id, endpoint_id, event_id, 'pending', $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS d(id, endpoint_id, event_id)
     ON CONFLICT (endpoint_id, event_id) ${conflict} RETURNING 1`,
    [...columns(rows, [(r) => r.id, (r) => r.endpoint_id, (r) => r.event_id]), now],
  );
  return written.length;
}

/**
 * Whether a delivery is due ($1: now), the claim's cheap first question. In due order, so the
 * partial index of pending deliveries is the only cheap plan whatever the statistics say (see
 * outbox.ts, pendingSql: without it, a plan read the whole table for its first match).
 */
export const ANY_DUE_SQL = "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 1";

/**
 * Claims due deliveries of enabled endpoints by moving their next attempt to the end of a lease:
 * if this process dies mid-delivery, another (or this one, restarted) retries once it ends.
 * SKIP LOCKED lets several processes claim at once without taking the same delivery.
 */
export async function claimDue(db: Queryable, now: Date, leaseUntil: Date, limit: number): Promise<DeliveryRow[]> {
  const [due] = await db.query(ANY_DUE_SQL, [now]);
  if (!due) return [];
  return db.query<DeliveryRow>(
    `UPDATE webhook_deliveries d SET next_attempt_at = $2 FROM (
       SELECT w.id FROM webhook_deliveries w JOIN webhook_endpoints e ON e.id = w.endpoint_id AND e.enabled
       WHERE w.status = 'pending' AND w.next_attempt_at <= $1 ORDER BY w.next_attempt_at, w.id LIMIT $3 FOR UPDATE OF w SKIP LOCKED
     ) due WHERE d.id = due.id RETURNING d.*`,
    [now, leaseUntil, limit],
  );
}

export async function recordAttempt(tx: Queryable, attempt: AttemptRow, next: { status: DeliveryRow['status']; nextAttemptAt: Date | null }): Promise<void> {
  await tx.query(
    `INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, latency_ms, response_excerpt, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO NOTHING`,
    [attempt.delivery_id, attempt.attempt, attempt.attempted_at, attempt.status_code, attempt.latency_ms, attempt.response_excerpt, attempt.error],
  );
  await tx.query(
    `UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_attempt_at = $5, last_status_code = $6 WHERE id = $1`,
    [attempt.delivery_id, next.status, attempt.attempt, next.nextAttemptAt, attempt.attempted_at, attempt.status_code],
  );
}

export async function findDelivery(db: Queryable, id: string, owner: Owner): Promise<(DeliveryRow & { event_type: string }) | null> {
  const [row] = await db.query<DeliveryRow & { event_type: string }>(
    `SELECT d.*, ev.type AS event_type FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
     JOIN outbox_events ev ON ev.id = d.event_id WHERE d.id = $1 AND ($2::text IS NULL OR e.customer_id = $2)`,
    [id, owner?.customerId ?? null],
  );
  return row ?? null;
}

export async function listDeliveries(db: Queryable, endpointId: string, limit: number, cursor?: string): Promise<Array<DeliveryRow & { event_type: string }>> {
  return db.query(
    `SELECT d.*, ev.type AS event_type FROM webhook_deliveries d JOIN outbox_events ev ON ev.id = d.event_id
     WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3`,
    [endpointId, cursor ?? null, limit + 1],
  );
}

/** A page of deliveries of each of several endpoints, with their event types, in one query. */
export async function listDeliveriesOf(db: Queryable, endpointIds: string[], limit: number, cursor?: string): Promise<Array<DeliveryRow & { event_type: string }>> {
  return db.query(
    `SELECT d.*, ev.type AS event_type FROM (${pagesPerParentSql('webhook_deliveries', 'endpoint_id')}) d
     JOIN outbox_events ev ON ev.id = d.event_id ORDER BY d.endpoint_id, d.id DESC`,
    [endpointIds, cursor ?? null, limit + 1],
  );
}

export async function attemptsOf(db: Queryable, deliveryIds: string[]): Promise<AttemptRow[]> {
  return db.query<AttemptRow>('SELECT * FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt', [deliveryIds]);
}

/** A success clears the endpoint's failing streak; a failure starts one (if none). Returns the endpoint after. */
export async function noteEndpointOutcome(tx: Queryable, endpointId: string, ok: boolean, at: Date): Promise<EndpointRow | null> {
  const [row] = await tx.query<EndpointRow>(
    ok
      ? 'UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 RETURNING *'
      : 'UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2) WHERE id = $1 RETURNING *',
    ok ? [endpointId] : [endpointId, at],
  );
  return row ?? null;
}

export async function disableEndpoint(tx: Queryable, endpointId: string, reason: string, at: Date): Promise<void> {
  await tx.query('UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = $3 WHERE id = $1', [endpointId, reason, at]);
}

/** The background queues' depth and the age of their oldest item (seconds), for the metrics. */
export async function queueStats(db: Queryable, now: Date): Promise<Array<{ queue: string; depth: number; oldest_seconds: number }>> {
  const rows = await db.query<{ queue: string; depth: string; oldest: Date | null }>(
    `SELECT 'outbox_undispatched' AS queue, count(*)::text AS depth, min(created_at) AS oldest FROM outbox_events WHERE dispatched_at IS NULL
     UNION ALL
     SELECT 'webhook_deliveries_due', count(*)::text, min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1`,
    [now],
  );
  return rows.map((r) => ({ queue: r.queue, depth: Number(r.depth), oldest_seconds: r.oldest ? Math.max(0, (now.getTime() - new Date(r.oldest).getTime()) / 1000) : 0 }));
}
