import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';

/**
 * The JetStream side of usage events, shared by the API's sink and the worker: the stream, its
 * subject, the message format and the connection. See docs/metering.md ("Scale-out with NATS").
 */

/** Re-publishes of the same (source, id) inside this window are dropped by JetStream itself. */
export const DUPLICATE_WINDOW_MS = 120_000;
const NANOS_PER_MS = 1_000_000;

export const eventsSubject = (stream: string) => `${stream}.events`;

/**
 * JetStream's message id for an event. A NATS header cannot hold "\n" (nor arbitrary text), so
 * the id is the SHA-256 of `source + "\n" + id`, the same key the database enforces.
 */
export function messageId(source: string, id: string): string {
  return createHash('sha256').update(`${source}\n${id}`).digest('base64url');
}

/** What the API publishes: the event as the client sent it, and when the API received it. */
export interface EventMessage {
  received_at: string;
  event: unknown;
}

export function encodeMessage(event: unknown, receivedAt: Date): string {
  return JSON.stringify({ received_at: receivedAt.toISOString(), event } satisfies EventMessage);
}

export function decodeMessage(text: string): { event: unknown; receivedAt: Date } | null {
  try {
    const parsed = JSON.parse(text) as Partial<EventMessage>;
    const receivedAt = new Date(String(parsed?.received_at));
    if (parsed === null || typeof parsed !== 'object' || !('event' in parsed) || Number.isNaN(receivedAt.getTime())) return null;
    return { event: parsed.event, receivedAt };
  } catch {
    return null;
  }
}

/**
 * Creates the stream, or brings an existing one to this config. A work queue: a message leaves
 * the stream once a worker acked it (after its commit). No age or size limit drops anything
 * unprocessed; with server limits set, `discard: new` refuses new publishes (503) instead.
 */
export async function ensureEventsStream(jsm: JetStreamManager, stream: string): Promise<void> {
  const config = {
    subjects: [eventsSubject(stream)],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
  } satisfies Partial<StreamConfig>;
  try {
    await jsm.streams.info(stream);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.status !== 404) throw error;
    await jsm.streams.add({ name: stream, ...config });
    return;
  }
  await jsm.streams.update(stream, { subjects: config.subjects, discard: config.discard, duplicate_window: config.duplicate_window });
}

/**
 * Connects once NATS answers (retrying every `retryMs` until `stopped()`), then lets the client
 * reconnect by itself forever. Null when stopped first.
 */
export async function connectWhenReachable(
  servers: string,
  name: string,
  stopped: () => boolean,
  onRetry: (error: unknown) => void,
  retryMs = 1_000,
): Promise<NatsConnection | null> {
  for (let attempt = 1; !stopped(); attempt++) {
    try {
      return await connect({ servers: servers.split(',').map((s) => s.trim()), name, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    } catch (error) {
      if (attempt === 1 || attempt % 30 === 0) onRetry(error);
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
  return null;
}
