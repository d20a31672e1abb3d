/**
 * Usage metering: the shapes shared by ingestion (HTTP or NATS), the database writer, usage
 * queries and the CLI. See docs/metering.md.
 */

/** A CloudEvents 1.0 structured event as a client sends it (validated by event-rules.ts). */
export interface CloudEventInput {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time?: string;
  subject: string;
  datacontenttype?: string;
  data: Record<string, unknown>;
}

/** An event that passed validation and resolution, ready to be written (and rated) exactly once. */
export interface NormalizedEvent {
  source: string;
  eventId: string;
  type: string;
  time: Date;
  receivedAt: Date;
  customerId: string;
  productId: string;
  apiKeyId: string | null;
  currency: string;
  /** meter key -> canonical decimal string (or the raw value for a unique_count meter). */
  quantities: Record<string, string>;
  metadata: Record<string, unknown>;
}

export type EventStatus = 'charged' | 'unpriced' | 'settled';

export type EventResult =
  // In NATS mode `event` is null: the evt_ id is assigned when a worker writes the event.
  | { id: string; source: string; status: 'accepted'; event: string | null }
  | { id: string; source: string; status: 'duplicate'; event: string | null }
  | { id: string; source: string; status: 'rejected'; code: string; message: string };

/** Source of the usage settle records: reserved, clients may not send it. */
export const RESERVATION_SOURCE = 'tollgate/reservations';
