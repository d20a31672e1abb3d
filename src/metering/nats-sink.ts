import type { FastifyBaseLogger } from 'fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { unavailable } from '../platform/errors.js';
import type { EventSink } from './events-routes.js';
import * as store from './event-store.js';
import type { IngestService } from './ingest-service.js';
import type { EventResult } from './model.js';
import { connectWhenReachable, encodeMessage, ensureEventsStream, eventsSubject, messageId } from './nats-stream.js';

const PUBLISH_TIMEOUT_MS = 5_000;
const RETRY_AFTER_SECONDS = 2;

export interface NatsSinkOptions {
  natsUrl: string;
  stream: string;
  db: Db;
  clock: Clock;
  ingest: IngestService;
  log: FastifyBaseLogger;
}

/**
 * `POST /v1/events` in NATS mode: events are checked, resolved and rated here (rejections are
 * answered at once), then the accepted ones are published to JetStream and answered `accepted`
 * only once the stream acknowledged them; `tollgate worker` writes them to the database.
 * While NATS is unreachable the answer is 503 with Retry-After; the client reconnects by itself.
 */
export class NatsSink implements EventSink {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private connected = false;
  private streamReady = false;
  private closed = false;
  private readonly connecting: Promise<void>;

  constructor(private readonly options: NatsSinkOptions) {
    this.connecting = this.connect();
  }

  async ingest(inputs: unknown[]): Promise<EventResult[]> {
    const js = this.js;
    if (!js || !this.connected || !this.streamReady) throw unavailable('The event bus (NATS) is unreachable; retry later', RETRY_AFTER_SECONDS);
    const receivedAt = this.options.clock.now();
    const { results, ready } = await this.options.ingest.prepare(inputs, receivedAt);
    // Events the database already holds are duplicates for good, whatever JetStream's window says.
    const stored = await store.existingEventIds(this.options.db, ready.map(({ event }) => event));
    const subject = eventsSubject(this.options.stream);
    const published = ready.map(({ index, event }) => {
      const known = stored.get(store.eventKey(event.source, event.eventId));
      if (known) return Promise.resolve({ duplicate: true, event: known });
      const payload = encodeMessage(inputs[index], receivedAt);
      return js.publish(subject, payload, { msgID: messageId(event.source, event.eventId), timeout: PUBLISH_TIMEOUT_MS }).then((ack) => ({ duplicate: ack.duplicate, event: null }));
    });
    const acks = await Promise.allSettled(published);
    const failed = acks.find((a) => a.status === 'rejected');
    if (failed) {
      this.options.log.warn({ err: failed.reason }, 'publishing usage events to NATS failed');
      throw unavailable('The event bus (NATS) did not acknowledge the events; retry later (already recorded ones come back as duplicates)', RETRY_AFTER_SECONDS);
    }
    ready.forEach(({ index, event }, i) => {
      const ack = (acks[i] as PromiseFulfilledResult<{ duplicate: boolean; event: string | null }>).value;
      results[index] = { id: event.eventId, source: event.source, status: ack.duplicate ? 'duplicate' : 'accepted', event: ack.event };
    });
    return results as EventResult[];
  }

  /** Stops connecting; waits for publishes in flight (the HTTP server closed first), then closes. */
  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }

  private async connect(): Promise<void> {
    const { log } = this.options;
    const nc = await connectWhenReachable(this.options.natsUrl, 'tollgate-api', () => this.closed, (err) => log.error({ err }, 'NATS unreachable; events are refused with 503 until it answers'));
    if (!nc) return;
    this.nc = nc;
    this.js = jetstream(nc);
    this.connected = true;
    log.info({ server: nc.getServer() }, 'connected to NATS');
    await this.ensureStream();
    void this.watch(nc);
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.options.log.warn('NATS connection lost; events are refused with 503 until it is back');
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.options.log.info('NATS connection back');
        await this.ensureStream();
      }
    }
  }

  /** The stream survives reconnects; checking again covers a NATS that came back empty. */
  private async ensureStream(): Promise<void> {
    try {
      await ensureEventsStream(await jetstreamManager(this.nc!), this.options.stream);
      this.streamReady = true;
    } catch (err) {
      this.streamReady = false;
      this.options.log.error({ err, stream: this.options.stream }, 'cannot create or update the JetStream stream; events are refused with 503');
      if (!this.closed) setTimeout(() => void this.ensureStream(), 2_000).unref();
    }
  }
}
