import type { FastifyBaseLogger } from 'fastify';
import type { AccountsService } from '../accounts/accounts-service.js';
import type { CatalogService, UsageCatalogView } from '../catalog/catalog-service.js';
import type { LedgerOp, LedgerOpResult } from '../ledger/batch-rules.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Reservation } from '../ledger/model.js';
import { Batcher, type FlushObserver } from '../platform/batcher.js';
import type { Clock } from '../platform/clock.js';
import { isRetryableDbError, type Db, type Queryable, type Tx } from '../platform/db.js';
import type { Decimal } from '../platform/decimal.js';
import { claimIdempotencyKeys, recordKey, saveClaimedReplies, storedOutcome, type IdempotencyRequest, type StoredOutcome, type StoredRecord, type StoredReply } from '../platform/idempotency.js';
import { newId } from '../platform/ids.js';
import { meterQuantities, parseEvent, type EventWindow, type ParsedEvent } from './event-rules.js';
import * as store from './event-store.js';
import { RESERVATION_SOURCE, type EventResult, type NormalizedEvent } from './model.js';
import { rollupsOf } from './rollups.js';
import { splitCharge } from './usage-rules.js';

/** An event ready to be written: resolved, and rated at its own time (amount null: unpriced). */
export interface RatedEvent extends NormalizedEvent {
  priceIds: string[];
  amount: bigint | null;
  meterCosts: Array<[string, Decimal]>;
}

type WriteOutcome = { status: 'accepted' | 'duplicate'; event: string | null };

/**
 * What the writer batches: one request's events, never split between transactions, so that with an
 * Idempotency-Key the request's reply commits in the same transaction as its events.
 */
interface WriteUnit {
  events: RatedEvent[];
  once?: { request: IdempotencyRequest; reply: (outcomes: WriteOutcome[]) => StoredReply };
}

type UnitOutcome = { kind: 'written'; outcomes: WriteOutcome[] } | { kind: 'stored'; outcome: StoredOutcome };

export type IngestReply = StoredReply & { replayed: boolean };

const WRITE_ATTEMPTS_MAX = 4;
/**
 * Events per write transaction: several requests' events commit together. Most of a batch's cost
 * is per customer (a transfer, grant, spend, account and rollup row each), so a customer seen in
 * four requests costs one set of rows instead of four. PGlite's is half: its batch is one statement
 * whose values and working memory grow with the batch, in a WebAssembly memory that never shrinks,
 * so the largest batch sets the server's memory for good; at 2,000 its peak under ingest of
 * 1,000-event requests is lower and the events/s the same (docs/performance.md).
 */
export const WRITE_BATCH_EVENTS_MAX = { postgres: 4_000, pglite: 2_000 } as const;
/**
 * Write transactions at once on PostgreSQL. Batches of many customers almost always share some,
 * and then wait on each other's account locks until the first commits: a second batch overlaps
 * its event insert (before the locks) with the first's ledger work, and requests arriving
 * meanwhile gather into the next batch instead of waiting in more transactions of their own.
 */
const WRITE_BATCHES_IN_FLIGHT_MAX = 2;

export interface IngestOptions {
  maxAgeMs: number;
  maxFutureMs: number;
  batchWaitMs: number;
  batchSizeMax: number;
  /** Metrics and a trace span around each write batch. */
  observeBatch?: FlushObserver<RatedEvent>;
}

/**
 * Usage events in, exactly once: validated and resolved per event (one bad event rejects only
 * itself), then written through a group commit in which new events, their ledger charges and the
 * rollups commit together; (source, id) decides for good what is new.
 */
export class IngestService {
  private readonly writer: Batcher<WriteUnit, UnitOutcome>;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly log: FastifyBaseLogger,
    private readonly options: IngestOptions,
  ) {
    this.writer = new Batcher({
      waitMs: options.batchWaitMs,
      sizeMax: Math.max(options.batchSizeMax, WRITE_BATCH_EVENTS_MAX[db.kind]),
      sizeOf: (unit) => Math.max(1, unit.events.length),
      inFlightMax: db.kind === 'pglite' ? 1 : WRITE_BATCHES_IN_FLIGHT_MAX,
      flush: (units) => this.writeWithRetry(units),
      observe: options.observeBatch && ((units, flush) => options.observeBatch!(units.flatMap((u) => u.events), flush)),
    });
  }

  /** The whole path of `POST /v1/events` without a bus: check, rate, write; a result per event. */
  async ingest(inputs: unknown[]): Promise<EventResult[]> {
    const { results, ready } = await this.prepare(inputs);
    return resultsOf(results, ready, await this.write(ready.map(({ event }) => event)));
  }

  /**
   * `ingest` with an Idempotency-Key: the key is claimed, and the reply stored, in the write
   * transaction of the request's events (see claimIdempotencyKeys), so a retry gets the very reply
   * of the first call and costs no commits of its own. A refusal (the key used for another request)
   * throws.
   */
  async ingestOnce(inputs: unknown[], request: IdempotencyRequest): Promise<IngestReply> {
    const { results, ready } = await this.prepare(inputs);
    const reply = (outcomes: WriteOutcome[]): StoredReply => ({ status: 200, body: { data: resultsOf(results, ready, outcomes) } });
    const outcome = await this.writer.submit({ events: ready.map(({ event }) => event), once: { request, reply } });
    if (outcome.kind === 'written') return { ...reply(outcome.outcomes), replayed: false };
    if ('refusal' in outcome.outcome) throw outcome.outcome.refusal;
    return { ...outcome.outcome.reply, replayed: true };
  }

  /**
   * Checks and resolves events; `ready` are the ones to write. A bus worker passes the time the
   * API received them (one for all, or one per input: a fetched batch mixes several requests), so
   * the accepted window and the id order stay those of the receipt.
   */
  async prepare(inputs: unknown[], receivedAt: Date | Date[] = this.clock.now()): Promise<{ results: Array<EventResult | null>; ready: Array<{ index: number; event: RatedEvent }> }> {
    const receiptOf = (index: number) => (Array.isArray(receivedAt) ? receivedAt[index]! : receivedAt);
    const windowOf = (index: number): EventWindow => ({ now: receiptOf(index), maxAgeMs: this.options.maxAgeMs, maxFutureMs: this.options.maxFutureMs });
    const parsed = inputs.map((input, index) => parseEvent(input, windowOf(index)));
    const ok = parsed.flatMap((p) => (p.ok ? [p.value] : []));
    const { customersByRef, keyOwners } = await this.accounts.resolveUsageSubjects(
      [...new Set(ok.map((e) => e.subject))],
      [...new Set(ok.flatMap((e) => (e.apiKeyId ? [e.apiKeyId] : [])))],
    );
    const catalog = await this.catalog.usageView();
    const results: Array<EventResult | null> = [];
    const ready: Array<{ index: number; event: RatedEvent }> = [];
    parsed.forEach((p, index) => {
      if (!p.ok) return void (results[index] = { ...sentIdOf(inputs[index]), status: 'rejected', code: p.code, message: p.message });
      const resolved = resolve(p.value, receiptOf(index), customersByRef, keyOwners, catalog);
      if (!resolved.ok) return void (results[index] = { id: p.value.eventId, source: p.value.source, status: 'rejected', code: resolved.code, message: resolved.message });
      results[index] = null;
      ready.push({ index, event: resolved.value });
    });
    return { results, ready };
  }

  /** Writes already prepared events (the NATS worker's path); a result per event, in order. */
  async write(events: RatedEvent[]): Promise<WriteOutcome[]> {
    const outcome = await this.writer.submit({ events });
    if (outcome.kind !== 'written') throw new Error('a write without an Idempotency-Key was answered from one');
    return outcome.outcomes;
  }

  drain(): Promise<void> {
    return this.writer.drain();
  }

  /**
   * The usage of settles, recorded in the settle's own transaction (charged by the settle): written
   * through `writes`, the batch's write batch, which it sends as its last statement.
   */
  async recordSettled(writes: Queryable, settled: Reservation[], now: Date): Promise<void> {
    // Inside the settle's transaction: no catalog I/O (the snapshot that rated the settle has its prices).
    const catalog = this.catalog.cachedUsageView();
    if (!catalog) throw new Error('the catalog is not loaded, yet a settle was rated');
    const rows: store.EventRow[] = [];
    const rated: RatedEvent[] = [];
    for (const r of settled) {
      const usage = r.usage ?? {};
      const costs = catalog.rateWith(r.priceIds, usage);
      const event: RatedEvent = {
        source: RESERVATION_SOURCE,
        eventId: r.id,
        type: 'usage',
        time: now,
        receivedAt: now,
        customerId: r.customerId,
        productId: r.productId,
        apiKeyId: r.apiKeyId,
        currency: r.currency,
        quantities: usage,
        metadata: r.metadata,
        priceIds: r.priceIds,
        amount: (r.charged ?? 0n) + (r.uncollected ?? 0n),
        meterCosts: Object.entries(costs?.meterCosts ?? {}),
      };
      rated.push(event);
      rows.push(toRow(event, 'settled', r.charged ?? 0n, r.uncollected ?? 0n));
    }
    await store.insertEventsOnce(writes, rows);
    await this.addRollups(writes, rows.map((row, i) => ({ row, event: rated[i]! })), catalog);
  }

  private async writeWithRetry(units: WriteUnit[]): Promise<UnitOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Read before the transaction: on PGlite's one connection, I/O inside it would wait on itself.
        const catalog = await this.catalog.usageView();
        // Through the ledger: once committed, the customers its usage charges changed are announced.
        return await this.ledger.transaction((tx) => this.writeUnits(tx, units, catalog));
      } catch (error) {
        if (!isRetryableDbError(error) || attempt >= WRITE_ATTEMPTS_MAX) throw error;
        this.log.warn({ err: error, attempt }, 'usage batch retried');
      }
    }
  }

  /**
   * One transaction for several requests: claims their Idempotency-Keys (a request whose key is
   * already stored gets that reply and writes nothing), writes the others' events, and stores the
   * claimed requests' replies before the ledger work, which does not change them.
   */
  private async writeUnits(tx: Tx, units: WriteUnit[], catalog: UsageCatalogView): Promise<UnitOutcome[]> {
    const { claims, firstOfKey } = await claimUnits(tx, units);
    const runs = (u: WriteUnit, i: number) => !u.once || (firstOfKey.get(onceKey(u.once.request)) === i && claims.get(onceKey(u.once.request)) === null);
    const running = units.filter(runs);
    const written = new Map<WriteUnit, WriteOutcome[]>();
    await this.writeBatch(tx, running.flatMap((u) => u.events), catalog, async (outcomes) => {
      let next = 0;
      for (const unit of running) written.set(unit, outcomes.slice(next, (next += unit.events.length)));
      await saveClaimedReplies(tx, running.flatMap((u) => (u.once ? [{ ...u.once.request, ...u.once.reply(written.get(u)!) }] : [])));
    });
    return units.map((unit, i): UnitOutcome => {
      if (runs(unit, i)) return { kind: 'written', outcomes: written.get(unit)! };
      const request = unit.once!.request;
      return { kind: 'stored', outcome: storedOutcome(request, claims.get(onceKey(request)) ?? replyOf(units[firstOfKey.get(onceKey(request))!]!)) };
    });

    /** The same key twice in one batch: the later request is answered from the first's reply, as it would be in a later batch. */
    function replyOf(first: WriteUnit): Pick<StoredRecord, 'request_hash' | 'status_code' | 'response_body'> {
      const reply = first.once!.reply(written.get(first)!);
      return { request_hash: first.once!.request.requestHash, status_code: reply.status, response_body: reply.body };
    }
  }

  /**
   * One transaction: insert what is new (in (source, id) order, so concurrent batches never wait
   * on each other in a cycle), charge it to the ledger per customer and key, attribute the charges
   * to events in order, and add everything to the rollups.
   */
  private async writeBatch(tx: Tx, events: RatedEvent[], catalog: UsageCatalogView, decided: (outcomes: WriteOutcome[]) => Promise<void>): Promise<WriteOutcome[]> {
    const firstOfKey = new Map<string, number>();
    const candidates: Array<{ row: store.EventRow; event: RatedEvent }> = [];
    events.forEach((event, i) => {
      const key = store.eventKey(event.source, event.eventId);
      if (firstOfKey.has(key)) return;
      firstOfKey.set(key, i);
      // Written as fully charged: the ledger nearly always collects all of it, and charge() corrects
      // only the events it could not (a balance run dry), so a batch writes each event row once.
      candidates.push({ row: toRow(event, event.amount === null ? 'unpriced' : 'charged', event.amount ?? 0n, 0n), event });
    });
    candidates.sort((a, b) => (a.row.source === b.row.source ? cmpText(a.row.eventId, b.row.eventId) : cmpText(a.row.source, b.row.source)));
    const inserted = await store.insertNewEvents(tx, candidates.map((c) => c.row));
    const fresh = candidates.filter((c) => inserted.has(c.row.id)).sort((a, b) => cmpText(a.row.id, b.row.id));
    const existing = await store.existingEventIds(tx, candidates.filter((c) => !inserted.has(c.row.id)).map((c) => c.event));
    const newIds = new Map(fresh.map((c) => [store.eventKey(c.row.source, c.row.eventId), c.row.id]));
    const outcomes = events.map((event, i): WriteOutcome => {
      const key = store.eventKey(event.source, event.eventId);
      const id = newIds.get(key);
      if (id && firstOfKey.get(key) === i) return { status: 'accepted', event: id };
      return { status: 'duplicate', event: id ?? existing.get(key) ?? null };
    });
    // What each event became is decided here; the charges below only set amounts, which replies do not show.
    await decided(outcomes);

    await this.chargeAndCommit(tx, fresh, catalog);
    return outcomes;
  }

  /**
   * One ledger charge per customer and key for the batch; each event gets its share in order, and
   * the events written as fully charged that were not are corrected in one statement.
   */
  private async chargeAndCommit(tx: Tx, fresh: Array<{ row: store.EventRow; event: RatedEvent }>, catalog: UsageCatalogView): Promise<void> {
    const groups = new Map<string, Array<{ row: store.EventRow; event: RatedEvent }>>();
    for (const c of fresh) {
      if (!c.row.amount) continue;
      const key = `${c.row.customerId}\n${c.row.apiKeyId ?? ''}`;
      const group = groups.get(key);
      if (group) group.push(c);
      else groups.set(key, [c]);
    }
    const entries = [...groups.values()];
    const ops: LedgerOp[] = entries.map((g) => ({
      type: 'usage_charge',
      customerId: g[0]!.row.customerId,
      apiKeyId: g[0]!.row.apiKeyId,
      amount: g.reduce((sum, c) => sum + c.row.amount!, 0n),
    }));
    // The corrections and rollups depend on the charges: they go in the ledger's write statement, with the COMMIT.
    await this.ledger.applyAndCommit(tx, ops, async (results, writes) => {
      await store.setCharges(writes, this.attribute(entries, results));
      await this.addRollups(writes, fresh, catalog);
    });
  }

  /** Each event's share of its group's charge, in order; answers the events not charged in full. */
  private attribute(entries: Array<Array<{ row: store.EventRow; event: RatedEvent }>>, results: LedgerOpResult[]) {
    const corrections: Array<{ id: string; charged: bigint; uncollected: bigint }> = [];
    entries.forEach((group, i) => {
      const result = results[i]!;
      if (!result.ok || result.value.type !== 'usage_charge') throw new Error(`usage charge refused: ${result.ok ? 'unexpected result' : result.detail}`);
      let left = result.value.charged;
      for (const c of group) {
        const amount = c.row.amount!;
        c.row.charged = amount < left ? amount : left;
        c.row.uncollected = amount - c.row.charged;
        left -= c.row.charged;
        if (c.row.uncollected > 0n) corrections.push({ id: c.row.id, charged: c.row.charged, uncollected: c.row.uncollected });
      }
    });
    return corrections;
  }

  private async addRollups(tx: Queryable, fresh: Array<{ row: store.EventRow; event: RatedEvent }>, catalog: UsageCatalogView): Promise<void> {
    const { deltas, values } = rollupsOf(
      fresh.map(({ row, event }) => ({
        customerId: row.customerId, productId: row.productId, apiKeyId: row.apiKeyId, currency: row.currency, time: row.time, quantities: row.quantities,
        split: splitCharge(row.charged, event.meterCosts.map(([meter, exact]) => ({ meter, exact }))),
      })),
      (meterKey) => catalog.meter(meterKey)?.aggregation ?? 'sum',
    );
    await store.addToRollups(tx, deltas);
    await store.addRollupValues(tx, values);
  }
}

/** The id and source a rejected event was sent with, echoed only when they are strings (never stringified objects). */
function sentIdOf(input: unknown): { id: string; source: string } {
  const field = (name: 'id' | 'source') => {
    const value = (input as Record<string, unknown> | null)?.[name];
    return typeof value === 'string' ? value.slice(0, 256) : '';
  };
  return { id: field('id'), source: field('source') };
}

/** The per-event results of a request: its rejections, and what the write made of the others. */
function resultsOf(results: Array<EventResult | null>, ready: Array<{ index: number; event: RatedEvent }>, written: WriteOutcome[]): EventResult[] {
  const all = [...results];
  ready.forEach(({ index, event }, i) => {
    all[index] = { id: event.eventId, source: event.source, ...written[i]! } as EventResult;
  });
  return all as EventResult[];
}

const onceKey = (request: IdempotencyRequest) => recordKey(request.principal, request.key);

/** Claims the distinct keys of a batch's requests; the first request of each key is the one that may run. */
async function claimUnits(tx: Queryable, units: WriteUnit[]): Promise<{ claims: Map<string, StoredRecord | null>; firstOfKey: Map<string, number> }> {
  const firstOfKey = new Map<string, number>();
  units.forEach((u, i) => {
    if (u.once && !firstOfKey.has(onceKey(u.once.request))) firstOfKey.set(onceKey(u.once.request), i);
  });
  const claims = await claimIdempotencyKeys(tx, [...firstOfKey.values()].map((i) => units[i]!.once!.request));
  return { claims, firstOfKey };
}

function resolve(
  e: ParsedEvent,
  receivedAt: Date,
  customersByRef: Map<string, { id: string; currency: string }>,
  keyOwners: Map<string, string>,
  catalog: UsageCatalogView,
): { ok: true; value: RatedEvent } | { ok: false; code: string; message: string } {
  const customer = customersByRef.get(e.subject);
  if (!customer) return { ok: false, code: 'customer_not_found', message: `No customer with id or external_id "${e.subject}"` };
  const product = catalog.product(e.product);
  if (!product) return { ok: false, code: 'product_not_found', message: `No product "${e.product}"` };
  if (e.apiKeyId && keyOwners.get(e.apiKeyId) !== customer.id) {
    return { ok: false, code: 'api_key_not_found', message: `No API key ${e.apiKeyId} for this customer` };
  }
  const q = meterQuantities(e.values, (key) => catalog.meter(key)?.aggregation ?? null);
  if (!q.ok) return q;
  const rated = catalog.rate({ productId: product.id, currency: customer.currency, customerId: customer.id, at: e.time, quantities: q.value.rated });
  if (rated && 'ok' in rated) return { ok: false, code: 'invalid_event', message: rated.detail };
  return {
    ok: true,
    value: {
      source: e.source,
      eventId: e.eventId,
      type: e.type,
      time: e.time,
      receivedAt,
      customerId: customer.id,
      productId: product.id,
      apiKeyId: e.apiKeyId,
      currency: customer.currency,
      quantities: q.value.quantities,
      metadata: e.metadata,
      priceIds: rated?.priceIds ?? [],
      amount: rated ? rated.amount : null,
      meterCosts: rated ? Object.entries(rated.meterCosts) : [],
    },
  };
}

function toRow(e: RatedEvent, status: store.EventRow['status'], charged: bigint, uncollected: bigint): store.EventRow {
  return {
    id: newId('evt', e.receivedAt.getTime()),
    source: e.source,
    eventId: e.eventId,
    type: e.type,
    time: e.time,
    receivedAt: e.receivedAt,
    customerId: e.customerId,
    productId: e.productId,
    apiKeyId: e.apiKeyId,
    currency: e.currency,
    quantities: e.quantities,
    metadata: e.metadata,
    status,
    priceIds: e.priceIds,
    amount: e.amount,
    charged,
    uncollected,
  };
}

const cmpText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
