import type { Queryable } from '../platform/db.js';
import { columns } from '../platform/columns.js';
import type { EventStatus, NormalizedEvent } from './model.js';

/** The metering module's tables: usage_events, usage_rollups, usage_rollup_values. */

/** A stored event: the normalized event plus how it was rated and charged. */
export interface EventRow extends NormalizedEvent {
  id: string;
  status: EventStatus;
  priceIds: string[];
  amount: bigint | null;
  charged: bigint;
  uncollected: bigint;
}

/** Inserts events that are new by (source, event_id); returns the ones inserted. */
export async function insertNewEvents(tx: Queryable, rows: EventRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const inserted = await tx.query<{ id: string }>(`${INSERT_EVENTS} ON CONFLICT (source, event_id) DO NOTHING RETURNING id`, eventColumns(rows));
  return new Set(inserted.map((r) => r.id));
}

/**
 * Events known to be new (a settle's usage: a reservation settles once, and clients may not use its
 * source): no conflict check and nothing returned, so it can join a write batch. A duplicate would be
 * a bug and fails the statement rather than counting the usage twice.
 */
export async function insertEventsOnce(tx: Queryable, rows: EventRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(INSERT_EVENTS, eventColumns(rows));
}

const INSERT_EVENTS = `INSERT INTO usage_events (id, source, event_id, type, time, received_at, customer_id, product_id, api_key_id, currency,
       quantities, metadata, status, price_ids, amount, charged, uncollected)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[],
       $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::text[], $14::jsonb[], $15::int8[], $16::int8[], $17::int8[])`;

function eventColumns(rows: EventRow[]) {
  return columns(rows, [
    (r) => r.id, (r) => r.source, (r) => r.eventId, (r) => r.type, (r) => r.time, (r) => r.receivedAt, (r) => r.customerId,
    (r) => r.productId, (r) => r.apiKeyId, (r) => r.currency, (r) => JSON.stringify(r.quantities), (r) => JSON.stringify(r.metadata),
    (r) => r.status, (r) => JSON.stringify(r.priceIds), (r) => r.amount, (r) => r.charged, (r) => r.uncollected,
  ]);
}

/** The stored ids of events already recorded, by `${source}\n${event_id}`. */
export async function existingEventIds(db: Queryable, keys: Array<{ source: string; eventId: string }>): Promise<Map<string, string>> {
  if (keys.length === 0) return new Map();
  const rows = await db.query<{ id: string; source: string; event_id: string }>(
    `SELECT id, source, event_id FROM usage_events WHERE (source, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [keys.map((k) => k.source), keys.map((k) => k.eventId)],
  );
  return new Map(rows.map((r) => [eventKey(r.source, r.event_id), r.id]));
}

export const eventKey = (source: string, eventId: string) => `${source}\n${eventId}`;

export async function setCharges(tx: Queryable, rows: Array<{ id: string; charged: bigint; uncollected: bigint }>): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE usage_events e SET charged = v.charged, uncollected = v.uncollected
     FROM unnest($1::text[], $2::int8[], $3::int8[]) AS v(id, charged, uncollected) WHERE e.id = v.id AND e.id = ANY($1::text[])`,
    columns(rows, [(r) => r.id, (r) => r.charged, (r) => r.uncollected]),
  );
}

export interface RollupDelta {
  customerId: string;
  productId: string;
  apiKeyId: string;
  meterKey: string;
  bucketStart: Date;
  currency: string;
  sum: string;
  max: string | null;
  count: number;
  charged: bigint;
}

/** Adds to the hourly rollups (one statement for the whole batch). */
export async function addToRollups(tx: Queryable, deltas: RollupDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  await tx.query(
    `INSERT INTO usage_rollups AS r (customer_id, product_id, api_key_id, meter_key, bucket_start, currency, quantity_sum, quantity_max, event_count, charged)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::numeric[], $8::numeric[], $9::int8[], $10::numeric[])
     ON CONFLICT (customer_id, product_id, api_key_id, meter_key, bucket_start) DO UPDATE SET
       quantity_sum = r.quantity_sum + excluded.quantity_sum,
       quantity_max = CASE WHEN r.quantity_max IS NULL THEN excluded.quantity_max
                           WHEN excluded.quantity_max IS NULL THEN r.quantity_max
                           ELSE GREATEST(r.quantity_max, excluded.quantity_max) END,
       event_count = r.event_count + excluded.event_count,
       charged = r.charged + excluded.charged`,
    columns(deltas, [
      (d) => d.customerId, (d) => d.productId, (d) => d.apiKeyId, (d) => d.meterKey, (d) => d.bucketStart, (d) => d.currency,
      (d) => d.sum, (d) => d.max, (d) => d.count, (d) => d.charged.toString(),
    ]),
  );
}

export interface RollupValue {
  customerId: string;
  productId: string;
  apiKeyId: string;
  meterKey: string;
  bucketStart: Date;
  value: string;
}

export async function addRollupValues(tx: Queryable, values: RollupValue[]): Promise<void> {
  if (values.length === 0) return;
  await tx.query(
    `INSERT INTO usage_rollup_values (customer_id, product_id, api_key_id, meter_key, bucket_start, value)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
     ON CONFLICT DO NOTHING`,
    columns(values, [(v) => v.customerId, (v) => v.productId, (v) => v.apiKeyId, (v) => v.meterKey, (v) => v.bucketStart, (v) => v.value]),
  );
}

export interface EventFilter {
  customer?: string;
  product?: string;
  source?: string;
  status?: string;
  from?: Date;
  to?: Date;
  limit: number;
  cursor?: string;
}

export async function listEvents(db: Queryable, f: EventFilter) {
  return db.query(
    `SELECT * FROM usage_events
     WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR product_id = $2) AND ($3::text IS NULL OR source = $3)
       AND ($4::text IS NULL OR status = $4) AND ($5::timestamptz IS NULL OR time >= $5) AND ($6::timestamptz IS NULL OR time < $6)
       AND ($7::text IS NULL OR id < $7)
     ORDER BY id DESC LIMIT $8`,
    [f.customer ?? null, f.product ?? null, f.source ?? null, f.status ?? null, f.from ?? null, f.to ?? null, f.cursor ?? null, f.limit + 1],
  );
}
