import type { FastifyBaseLogger } from 'fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type Consumer, type JsMsg } from '@nats-io/jetstream';
import type { IngestService, RatedEvent } from './ingest-service.js';
import type { EventResult } from './model.js';
import { connectWhenReachable, decodeMessage, ensureEventsStream, eventsSubject } from './nats-stream.js';

/** One durable consumer shared by every worker: JetStream hands each message to one of them. */
export const WORKER_CONSUMER = 'tollgate_worker';
const FETCH_MESSAGES_MAX = 1_000;
/** The longest a fetch waits for a batch to fill (JetStream's minimum is 1 s). */
const FETCH_WAIT_MS = 1_000;
/** Room for many workers' batches in flight at once. */
const ACK_PENDING_MAX = 50_000;
const RETRY_DELAY_MS_MAX = 30_000;

export interface EventWorkerOptions {
  natsUrl: string;
  stream: string;
  /** How long a fetched message may stay unacked before JetStream redelivers it (a crashed worker). */
  ackWaitMs: number;
  ingest: IngestService;
  /** Drops the cached catalog: a product or price newer than the cache must not reject an event. */
  refreshCatalog: () => void;
  log: FastifyBaseLogger;
}

/**
 * `tollgate worker`: pulls usage events from JetStream in batches, writes each batch in one
 * group commit and acks its messages only after that commit. A database error naks the batch
 * with a delay (redelivery is harmless: the database keeps one event per source and id).
 */
export class EventWorker {
  private stopping = false;
  private nc: NatsConnection | null = null;

  constructor(private readonly options: EventWorkerOptions) {}

  /** Runs until stop(): the batch in hand is finished and acked, then the connection closes. */
  async run(): Promise<void> {
    const { log } = this.options;
    const nc = await connectWhenReachable(this.options.natsUrl, 'tollgate-worker', () => this.stopping, (err) => log.error({ err }, 'NATS unreachable; retrying'));
    if (!nc) return;
    this.nc = nc;
    try {
      const consumer = await this.untilStopped(() => this.openConsumer(nc), 'cannot open the JetStream consumer');
      log.info({ stream: this.options.stream, consumer: WORKER_CONSUMER }, 'worker started');
      while (consumer && !this.stopping) {
        const batch = await this.fetch(consumer);
        if (batch.length > 0) await this.process(batch);
      }
    } finally {
      await nc.drain().catch(() => nc.close());
    }
  }

  stop(): void {
    this.stopping = true;
  }

  /**
   * The shared consumer's backlog as JetStream counts it: messages not yet delivered to any worker
   * and messages delivered but not acked. Null while not connected.
   */
  async backlog(): Promise<{ pending: number; ackPending: number } | null> {
    if (!this.nc || this.nc.isClosed()) return null;
    const info = await (await jetstreamManager(this.nc)).consumers.info(this.options.stream, WORKER_CONSUMER);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  }

  private async openConsumer(nc: NatsConnection): Promise<Consumer> {
    const jsm = await jetstreamManager(nc);
    await ensureEventsStream(jsm, this.options.stream);
    const config = {
      durable_name: WORKER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: eventsSubject(this.options.stream),
      ack_wait: this.options.ackWaitMs * 1_000_000,
      max_ack_pending: ACK_PENDING_MAX,
      max_deliver: -1,
    };
    await jsm.consumers.add(this.options.stream, config);
    await jsm.consumers.update(this.options.stream, WORKER_CONSUMER, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    return jetstream(nc).consumers.get(this.options.stream, WORKER_CONSUMER);
  }

  private async fetch(consumer: Consumer): Promise<JsMsg[]> {
    const batch: JsMsg[] = [];
    try {
      const messages = await consumer.fetch({ max_messages: FETCH_MESSAGES_MAX, expires: FETCH_WAIT_MS });
      for await (const m of messages) batch.push(m);
    } catch (err) {
      // NATS is away (the client reconnects by itself): what was fetched is still processed.
      this.options.log.warn({ err }, 'fetching usage events failed; retrying');
      if (batch.length === 0) await sleep(1_000);
    }
    return batch;
  }

  /** Decode, check, one commit, then ack; on a database error, nak everything for a later retry. */
  private async process(batch: JsMsg[]): Promise<void> {
    const { log } = this.options;
    const redelivered = batch.filter((m) => m.info.deliveryCount > 1).length;
    // A worker that crashed, or a database error earlier: worth seeing, harmless to write again.
    if (redelivered > 0) log.info({ redelivered, messages: batch.length }, 'batch has redelivered messages');
    const decoded = batch.map((m) => ({ msg: m, body: decodeMessage(m.string()) }));
    for (const { msg } of decoded.filter((d) => d.body === null)) {
      log.error({ seq: msg.seq, data: msg.string().slice(0, 2_000) }, 'usage event message is not readable; terminated');
      msg.term('not a Tollgate event message');
    }
    const items = decoded.flatMap((d) => (d.body ? [{ msg: d.msg, ...d.body }] : []));
    const termed = new Set<JsMsg>();
    try {
      const ready = await this.prepare(items, termed);
      const outcomes = await this.options.ingest.write(ready.map((r) => r.event));
      for (const r of ready) r.msg.ack();
      // An ack lost on the way only means a harmless redelivery.
      await this.nc?.flush().catch((err) => log.warn({ err }, 'acks not confirmed; the events may be redelivered'));
      const accepted = outcomes.filter((o) => o.status === 'accepted').length;
      log.debug({ messages: batch.length, accepted, duplicates: outcomes.length - accepted }, 'usage events written');
    } catch (err) {
      log.error({ err, messages: items.length }, 'writing usage events failed; they will be redelivered');
      for (const { msg } of items) if (!termed.has(msg)) msg.nak(retryDelayMs(msg.info.deliveryCount));
    }
  }

  /**
   * The API already accepted these, so a rejection here means the world changed in between
   * (or the catalog cache is behind): retried once on a fresh catalog, then logged in full and
   * terminated, never dropped silently.
   */
  private async prepare(items: Array<{ msg: JsMsg; event: unknown; receivedAt: Date }>, termed: Set<JsMsg>): Promise<Array<{ msg: JsMsg; event: RatedEvent }>> {
    const check = (subset: typeof items) => this.options.ingest.prepare(subset.map((i) => i.event), subset.map((i) => i.receivedAt));
    const first = await check(items);
    const firstReady = first.ready.map((r) => ({ msg: items[r.index]!.msg, event: r.event }));
    const retried = items.filter((_, i) => first.results[i] !== null);
    if (retried.length === 0) return firstReady;
    this.options.refreshCatalog();
    const { results, ready } = await check(retried);
    for (const [i, item] of retried.entries()) {
      const result = results[i] as Extract<EventResult, { status: 'rejected' }> | null;
      if (!result) continue;
      this.options.log.error({ seq: item.msg.seq, code: result.code, message: result.message, event: item.event, received_at: item.receivedAt }, 'usage event accepted by the API is rejected now; terminated');
      item.msg.term(result.code);
      termed.add(item.msg);
    }
    return [...firstReady, ...ready.map((r) => ({ msg: retried[r.index]!.msg, event: r.event }))];
  }

  private async untilStopped<T>(attempt: () => Promise<T>, message: string): Promise<T | null> {
    for (let n = 1; !this.stopping; n++) {
      try {
        return await attempt();
      } catch (err) {
        this.options.log.error({ err, attempt: n }, message);
        await sleep(1_000);
      }
    }
    return null;
  }
}

/** 1 s, 2 s, 4 s ... up to 30 s: a database that is down is not hammered. */
function retryDelayMs(deliveryCount: number): number {
  return Math.min(1_000 * 2 ** Math.max(0, deliveryCount - 1), RETRY_DELAY_MS_MAX);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
