import { csvRow } from './csv.js';
import { CliFatal, type EventsPage } from './events-api.js';

/**
 * `tollgate events export`: pages through GET /v1/events and writes every event, newest first
 * (the API's order: the export streams in constant memory and starts at once), as NDJSON (each
 * line exactly the API's item) or CSV. Events recorded while it runs may or may not be included.
 */

export type ExportFormat = 'ndjson' | 'csv';

export const EXPORT_PAGE_LIMIT = 100;

export const CSV_COLUMNS = [
  'id', 'source', 'event_id', 'type', 'time', 'received_at', 'customer_id', 'product_id', 'product', 'api_key_id',
  'currency', 'status', 'amount', 'charged', 'uncollected', 'quantities', 'metadata',
] as const;

/** Passed through as query parameters; the server validates them. */
export interface ExportFilters {
  customer?: string;
  product?: string;
  source?: string;
  status?: string;
  from?: string;
  to?: string;
}

export function exportQuery(filters: ExportFilters, cursor: string | null): URLSearchParams {
  const query = new URLSearchParams({ limit: String(EXPORT_PAGE_LIMIT) });
  for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, value);
  if (cursor !== null) query.set('cursor', cursor);
  return query;
}

/** Objects (quantities, metadata) as JSON, null as an empty field, everything else as its text. */
export function eventCsvRow(item: Record<string, unknown>): string {
  return csvRow(CSV_COLUMNS.map((column) => csvValue(item[column])));
}

function csvValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function formatPage(items: Record<string, unknown>[], format: ExportFormat): string {
  return format === 'csv' ? items.map(eventCsvRow).join('') : items.map((item) => `${JSON.stringify(item)}\n`).join('');
}

/** Writes every page through `write` as it arrives; returns the number of events written. */
export async function exportEvents(
  page: (query: URLSearchParams) => Promise<EventsPage>,
  filters: ExportFilters,
  format: ExportFormat,
  write: (chunk: string) => Promise<void>,
): Promise<number> {
  if (format === 'csv') await write(csvRow([...CSV_COLUMNS]));
  let cursor: string | null = null;
  let written = 0;
  for (;;) {
    const reply = await page(exportQuery(filters, cursor));
    if (reply.data.length > 0) await write(formatPage(reply.data, format));
    written += reply.data.length;
    if (!reply.has_more) return written;
    // A cursor that does not move would page forever.
    if (typeof reply.next_cursor !== 'string' || reply.next_cursor === cursor) {
      throw new CliFatal(`GET /v1/events: has_more without a new next_cursor (after ${written} events)`);
    }
    cursor = reply.next_cursor;
  }
}
