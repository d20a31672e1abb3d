import { normalizeQuantities } from '../catalog/price-book.js';
import { RESERVATION_SOURCE } from './model.js';

/** Pure rules of usage events: shape, time window, quantities; no I/O. See docs/metering.md. */

export type RejectionCode =
  | 'invalid_event'
  | 'customer_not_found'
  | 'product_not_found'
  | 'api_key_not_found'
  | 'unknown_meter'
  | 'too_old'
  | 'too_new'
  | 'reserved_source';

export type Checked<T> = { ok: true; value: T } | { ok: false; code: RejectionCode; message: string };

/** An event whose shape is right; its subject, product, key and meters are not resolved yet. */
export interface ParsedEvent {
  source: string;
  eventId: string;
  type: string;
  time: Date;
  subject: string;
  product: string;
  apiKeyId: string | null;
  /** meter key -> the value as sent (quantity or, for unique_count meters, the value to count). */
  values: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export interface EventWindow {
  now: Date;
  maxAgeMs: number;
  maxFutureMs: number;
}

const TEXT_MAX = 256;
const METER_KEY = /^[a-z][a-z0-9_]{0,63}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const RESERVED_DATA_KEYS = new Set(['product', 'api_key_id', 'metadata']);
const METADATA_KEYS_MAX = 50;

const reject = (code: RejectionCode, message: string): Checked<never> => ({ ok: false, code, message });
const isText = (v: unknown, max = TEXT_MAX): v is string => typeof v === 'string' && v.length >= 1 && v.length <= max;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks one event as a client sent it. The first problem found is the reason given. */
export function parseEvent(input: unknown, window: EventWindow): Checked<ParsedEvent> {
  if (!isPlainObject(input)) return reject('invalid_event', 'An event must be a JSON object');
  if (input.specversion !== '1.0') return reject('invalid_event', 'specversion must be "1.0"');
  if (!isText(input.id)) return reject('invalid_event', `id must be a string of 1 to ${TEXT_MAX} characters`);
  if (!isText(input.source)) return reject('invalid_event', `source must be a string of 1 to ${TEXT_MAX} characters`);
  if (input.source === RESERVATION_SOURCE) return reject('reserved_source', `source "${RESERVATION_SOURCE}" is reserved for settles`);
  if (input.type !== 'usage') return reject('invalid_event', 'type must be "usage"');
  if (!isText(input.subject)) return reject('invalid_event', 'subject must be the customer id or external_id');
  if (input.datacontenttype !== undefined && input.datacontenttype !== 'application/json') {
    return reject('invalid_event', 'datacontenttype must be application/json when given');
  }
  let time = window.now;
  if (input.time !== undefined) {
    if (typeof input.time !== 'string' || !RFC3339.test(input.time) || Number.isNaN(Date.parse(input.time))) {
      return reject('invalid_event', 'time must be an RFC 3339 timestamp');
    }
    time = new Date(input.time);
  }
  if (time.getTime() < window.now.getTime() - window.maxAgeMs) return reject('too_old', `time is more than ${window.maxAgeMs / 1000} s in the past`);
  if (time.getTime() > window.now.getTime() + window.maxFutureMs) return reject('too_new', `time is more than ${window.maxFutureMs / 1000} s in the future`);

  const data = input.data;
  if (!isPlainObject(data)) return reject('invalid_event', 'data must be an object');
  if (!isText(data.product)) return reject('invalid_event', 'data.product must be a product key or id');
  if (data.api_key_id !== undefined && data.api_key_id !== null && !isText(data.api_key_id)) return reject('invalid_event', 'data.api_key_id must be a key id');
  const metadata = data.metadata ?? {};
  if (!isPlainObject(metadata)) return reject('invalid_event', 'data.metadata must be an object');
  if (Object.keys(metadata).length > METADATA_KEYS_MAX) return reject('invalid_event', `data.metadata has more than ${METADATA_KEYS_MAX} keys`);
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (RESERVED_DATA_KEYS.has(key)) continue;
    if (!METER_KEY.test(key)) return reject('invalid_event', `data.${key.slice(0, 64)} is not a meter key`);
    values[key] = value;
  }
  if (Object.keys(values).length === 0) return reject('invalid_event', 'data carries no meter quantity');
  for (const key of Object.keys(input)) {
    if (!['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype', 'data'].includes(key)) {
      return reject('invalid_event', `unknown attribute "${key.slice(0, 64)}"`);
    }
  }
  return {
    ok: true,
    value: {
      source: input.source,
      eventId: input.id,
      type: input.type,
      time,
      subject: input.subject,
      product: data.product,
      apiKeyId: (data.api_key_id as string | null | undefined) ?? null,
      values,
      metadata,
    },
  };
}

/**
 * Quantities by meter: numeric meters get canonical decimal strings (>= 0, at most 12 decimals),
 * unique_count meters keep the value to count (a string).
 */
export function meterQuantities(
  values: Record<string, unknown>,
  aggregationOf: (meterKey: string) => string | null,
): Checked<{ quantities: Record<string, string>; rated: Record<string, string> }> {
  const quantities: Record<string, string> = {};
  const numeric: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(values)) {
    const aggregation = aggregationOf(key);
    if (aggregation === null) return reject('unknown_meter', `No meter "${key}"`);
    if (aggregation === 'unique_count') {
      if (!isText(value)) return reject('invalid_event', `data.${key} must be the value to count, a string of 1 to ${TEXT_MAX} characters`);
      quantities[key] = value;
    } else if (typeof value === 'string' || typeof value === 'number') {
      numeric[key] = value;
    } else {
      return reject('invalid_event', `data.${key} must be a quantity (a decimal string or number)`);
    }
  }
  const normalized = normalizeQuantities(numeric);
  if (!normalized.ok) return reject('invalid_event', normalized.detail);
  for (const [key, text] of Object.entries(normalized.value)) {
    if (text.startsWith('-')) return reject('invalid_event', `data.${key} must not be negative`);
    quantities[key] = text;
  }
  return { ok: true, value: { quantities, rated: normalized.value } };
}
