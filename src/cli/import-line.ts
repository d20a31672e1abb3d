import type { CloudEventInput } from '../metering/model.js';

/**
 * One line of an import file, read as the event to send. A line is a CloudEvent, or an event item
 * as `tollgate events export` writes it (converted back to the CloudEvent it came from, so an
 * export imports again as is). Only what the server cannot judge per event is refused here:
 * malformed JSON, and a line that is not a JSON object.
 */

export type ImportLine =
  | { kind: 'blank' }
  | { kind: 'event'; event: Record<string, unknown> }
  | { kind: 'rejected'; code: 'invalid_json' | 'invalid_event'; message: string };

/** Renames for moving events to another Tollgate, where customers and API keys have other ids. */
export interface ImportMaps {
  customers: ReadonlyMap<string, string>;
  apiKeys: ReadonlyMap<string, string>;
}

export const NO_MAPS: ImportMaps = { customers: new Map(), apiKeys: new Map() };

/** A line longer than the server's body limit could never be accepted. */
export const LINE_LENGTH_MAX = 1_048_576;

export function parseImportLine(text: string, maps: ImportMaps = NO_MAPS): ImportLine {
  if (text.trim() === '') return { kind: 'blank' };
  if (text.length > LINE_LENGTH_MAX) return { kind: 'rejected', code: 'invalid_event', message: `line longer than ${LINE_LENGTH_MAX} characters` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { kind: 'rejected', code: 'invalid_json', message: (error as Error).message };
  }
  if (!isObject(value)) return { kind: 'rejected', code: 'invalid_event', message: 'a line must be one JSON object (a CloudEvent)' };
  const event: Record<string, unknown> = isExportedItem(value) ? { ...exportedItemToCloudEvent(value) } : value;
  return { kind: 'event', event: applyMaps(event, maps) };
}

/** An item of GET /v1/events (as exported) rather than a CloudEvent. */
export function isExportedItem(value: Record<string, unknown>): boolean {
  return !('specversion' in value) && 'event_id' in value && isObject(value.quantities);
}

/** The CloudEvent an exported item was recorded from. */
export function exportedItemToCloudEvent(item: Record<string, unknown>): CloudEventInput {
  const quantities = item.quantities as Record<string, unknown>;
  const metadata = isObject(item.metadata) && Object.keys(item.metadata).length > 0 ? item.metadata : undefined;
  const data: Record<string, unknown> = { product: item.product ?? item.product_id };
  if (item.api_key_id !== null && item.api_key_id !== undefined) data.api_key_id = item.api_key_id;
  Object.assign(data, quantities);
  if (metadata) data.metadata = metadata;
  const event: CloudEventInput = {
    specversion: '1.0',
    id: item.event_id as string,
    source: item.source as string,
    type: item.type as string,
    subject: item.customer_id as string,
    data,
  };
  if (item.time !== null && item.time !== undefined) event.time = item.time as string;
  return event;
}

function applyMaps(event: Record<string, unknown>, maps: ImportMaps): Record<string, unknown> {
  const subject = typeof event.subject === 'string' ? maps.customers.get(event.subject) : undefined;
  const data = isObject(event.data) ? event.data : undefined;
  const apiKey = data && typeof data.api_key_id === 'string' && maps.apiKeys.has(data.api_key_id) ? maps.apiKeys.get(data.api_key_id)! : undefined;
  if (subject === undefined && apiKey === undefined) return event;
  const mapped: Record<string, unknown> = { ...event };
  if (subject !== undefined) mapped.subject = subject;
  if (apiKey !== undefined) {
    const { api_key_id: _old, ...rest } = data!;
    // Mapping a key to "" drops it: the event is then recorded without an API key.
    mapped.data = apiKey === '' ? rest : { ...rest, api_key_id: apiKey };
  }
  return mapped;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** "FROM=TO" pairs of --map-customer / --map-api-key. */
export function parseMapPairs(pairs: string[], flag: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`${flag} takes FROM=TO (got "${pair}")`);
    map.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return map;
}
