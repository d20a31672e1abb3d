import type { FastifyBaseLogger } from 'fastify';
import { JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectWhenReachable } from '../metering/nats-stream.js';
import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { envelope, processOutbox } from './outbox.js';
import { Poller } from './poller.js';

/** The operator's data platform reads every event here: subject `<prefix>.<type>` (default `tollgate.events.<type>`). */
export const busSubject = (prefix: string, type: string) => `${prefix}.${type}`;
const BUS_RETENTION_MS = 7 * 86_400_000;
const DUPLICATE_WINDOW_MS = 600_000;
const NANOS_PER_MS = 1_000_000;
const PUBLISH_BATCH = 200;
const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * With NATS_URL: publishes every outbox event to JetStream, at least once, with the event id as
 * message id (JetStream drops a re-publish inside its duplicate window; consumers dedupe on the
 * id beyond it). An event is marked published only after the stream acknowledged it.
 */
export class EventBus {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private closed = false;
  private readonly poller: Poller;
  private connecting: Promise<void> | null = null;

  constructor(private readonly options: { natsUrl: string; stream: string; subjectPrefix: string; db: Db; clock: Clock; log: FastifyBaseLogger; intervalMs: number }) {
    this.poller = new Poller('event bus publish', options.intervalMs, options.log, () => this.publishPending());
  }

  start(): void {
    this.connecting = this.connect().catch((err) => this.options.log.error({ err }, 'cannot set up the outbound JetStream stream; events are not published'));
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.connecting;
    await this.poller.stop();
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }

  private async connect(): Promise<void> {
    const { log } = this.options;
    const nc = await connectWhenReachable(this.options.natsUrl, 'tollgate-outbox', () => this.closed, (err) => log.error({ err }, 'NATS unreachable; events are published once it answers'));
    if (!nc) return;
    this.nc = nc;
    this.js = jetstream(nc);
    await this.ensureStream(nc);
    this.poller.start();
  }

  private async ensureStream(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc);
    const { stream, subjectPrefix } = this.options;
    const config = { subjects: [busSubject(subjectPrefix, '>')], storage: StorageType.File, retention: RetentionPolicy.Limits, max_age: BUS_RETENTION_MS * NANOS_PER_MS, duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS };
    try {
      await jsm.streams.info(stream);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.status !== 404) throw error;
      await jsm.streams.add({ name: stream, ...config });
    }
  }

  /** One batch: publish, wait for every ack, then mark published (all in the claiming transaction). */
  private publishPending(): Promise<number> {
    const js = this.js;
    if (!js) return Promise.resolve(0);
    return processOutbox(this.options.db, 'published_at', PUBLISH_BATCH, this.options.clock.now(), async (_tx, events) => {
      await Promise.all(events.map((e) => js.publish(busSubject(this.options.subjectPrefix, e.type), JSON.stringify(envelope(e)), { msgID: e.id, timeout: PUBLISH_TIMEOUT_MS })));
    });
  }
}
