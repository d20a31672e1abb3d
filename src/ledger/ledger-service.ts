import type { FastifyBaseLogger } from 'fastify';
import { Batcher, type FlushObserver } from '../platform/batcher.js';
import type { Clock } from '../platform/clock.js';
import { isRetryableDbError, queryEach, type Db, type Queryable, type Statement, type Tx } from '../platform/db.js';
import { AppError, notFound, type Outcome } from '../platform/errors.js';
import { recordKey, replayOrRefuse, saveIdempotencyRecords, type IdempotencyRequest, type StoredReply } from '../platform/idempotency.js';
import { newId } from '../platform/ids.js';
import { WriteBatch } from '../platform/write-batch.js';
import { LedgerBatch, type BatchEffects, type BatchState, type LedgerOp, type LedgerOpResult } from './batch-rules.js';
import { loadBatch, type BatchReadSql, type KeyLimitsSql } from './batch-load.js';
import { applyAccountDeltas, OPERATOR_SHARDS, writeBatchRows } from './batch-store.js';
import { lockCustomerAccount, periodSpend } from './ledger-queries.js';
import { availableBalance, postedBalance, type Account, type Quantities, type Reservation, type SpendPeriod } from './model.js';

export interface LedgerItem {
  op: LedgerOp;
  idempotency?: IdempotencyRequest;
  /** Renders a successful result as the HTTP reply stored for idempotent replays. */
  render?: (result: LedgerOpResult) => StoredReply;
}

/** `reply`: what the item's render made of an applied result, stored for replays (the caller need not render it again). */
export type LedgerItemResult = { kind: 'applied'; result: LedgerOpResult; reply?: StoredReply } | { kind: 'replay'; reply: StoredReply } | { kind: 'error'; error: AppError };

export interface LedgerServiceDeps {
  db: Db;
  clock: Clock;
  log: FastifyBaseLogger;
  keyLimitsSql: KeyLimitsSql;
  /** Exact cost of usage at a reservation's prices, in ledger units (the catalog provides it). */
  rate: (reservation: Reservation, usage: Quantities) => Outcome<bigint>;
  batchWaitMs: number;
  batchSizeMax: number;
  /** Metrics and a trace span around each batch commit. */
  observeBatch?: FlushObserver<LedgerItem>;
}

const BATCH_ATTEMPTS_MAX = 4;
/** Open reservations whose customer the batcher remembers (about 100 bytes each). */
const RESERVATIONS_REMEMBERED_MAX = 100_000;
/** The name of onCommitted's `watched` among the batch's reads. */
const WATCHED_READ = 'committed_watched';
/**
 * PGlite runs one transaction at a time; PostgreSQL overlaps two batches on separate connections,
 * one gathering its locks and reads while the other writes. More is not better: each batch costs
 * PostgreSQL a fixed part (planning its three statements, the commit) whatever its size, so more
 * batches in flight, each smaller, cost more CPU per hold on a machine that has none to spare
 * (measured at 10,000 customers: 1.1 to 1.5 ms of PostgreSQL CPU per hold with 2 in flight, 1.4 to
 * 1.9 with 4, and fewer holds/s; docs/performance.md).
 */
const POSTGRES_BATCHES_IN_FLIGHT_MAX = 2;

/**
 * The second batch starts only once this many operations wait; fewer wait for the running batch
 * and go in the one after it. A batch costs PostgreSQL and this process a fixed part whatever its
 * size (its statements' execution, the commit), so second batches of one or two operations, as
 * a moderate load made them, cost more than the few milliseconds' wait they save. Measured at
 * 10,000 customers (8 s, alternated; docs/performance.md): full load 723/811 holds/s with any
 * operation starting a batch, 753/904 with 16, 672/786 with 32; at 350 holds/s open loop,
 * PostgreSQL's CPU per hold 2.0 ms against 1.6, p99 66 ms against 44 to 58.
 */
const SECOND_BATCH_MIN = 16;

function batchesInFlightMax(db: Db): number {
  return db.kind === 'pglite' ? 1 : POSTGRES_BATCHES_IN_FLIGHT_MAX;
}

/**
 * The one way ledger state changes: operations are gathered into batches (group commit) and each
 * batch runs in one transaction: lock and load, apply the pure rules in arrival order, write.
 */
export class LedgerService {
  private readonly batcher: Batcher<LedgerItem, LedgerItemResult>;

  constructor(private readonly deps: LedgerServiceDeps) {
    this.batcher = new Batcher({
      waitMs: deps.batchWaitMs,
      sizeMax: deps.batchSizeMax,
      inFlightMax: batchesInFlightMax(deps.db),
      extraFlushMin: SECOND_BATCH_MIN,
      flush: (items) => this.executeWithRetry(items),
      observe: deps.observeBatch,
      // One customer's operations wait for its batch in flight and join the next one together,
      // rather than queue on its account lock in batches of their own (a hot customer).
      keyOf: (item) => this.customerOf(item.op),
    });
  }

  /** Customers of the reservations authorized here and still open, so their settles know whose they are. */
  private readonly reservationCustomers = new Map<string, string>();

  private customerOf(op: LedgerOp): string | null {
    if ('customerId' in op) return op.customerId;
    return 'reservationId' in op ? (this.reservationCustomers.get(op.reservationId) ?? null) : null;
  }

  private rememberReservations(applied: AppliedOp[]): void {
    for (const { op, result } of applied) {
      if (!result.ok) continue;
      if (op.type === 'authorize') {
        this.reservationCustomers.set(op.reservationId, op.customerId);
        // Oldest first out: a reservation forgotten is only settled without the batcher's help.
        if (this.reservationCustomers.size > RESERVATIONS_REMEMBERED_MAX) this.reservationCustomers.delete(this.reservationCustomers.keys().next().value!);
      } else if ('reservationId' in op) {
        this.reservationCustomers.delete(op.reservationId);
      }
    }
  }

  submit(item: LedgerItem): Promise<LedgerItemResult> {
    return this.batcher.submit(item);
  }

  /** Submits an operation without idempotency and returns its outcome. */
  async apply(op: LedgerOp): Promise<LedgerOpResult> {
    const result = await this.submit({ op });
    if (result.kind === 'applied') return result.result;
    throw result.kind === 'error' ? result.error : new Error('unexpected replay');
  }

  drain(): Promise<void> {
    return this.batcher.drain();
  }

  get queued(): number {
    return this.batcher.pending;
  }

  /**
   * Listens for committed ledger changes: called after each commit with the customers whose
   * balances it changed (auto top-up watches for a balance falling below its threshold). The
   * listener runs after the reply is decided and must not throw. With `watched` (SQL yielding a
   * JSON array of customer ids among the batch's, read in the batch's read statement), only the
   * changed customers it names are announced: a batch of customers nobody watches costs nothing.
   */
  onCommitted(listener: CommittedListener, watched?: BatchReadSql): void {
    this.committedListeners.push(listener);
    if (watched) this.watchedRead = watched;
  }

  private watchedRead: BatchReadSql | null = null;

  /**
   * Runs `fn` in a database transaction in which the caller's own writes and applyInTransaction's
   * commit together; once committed, the customers they changed are announced to onCommitted.
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const changed = new Set<string>();
    const result = await this.deps.db.transaction(async (tx) => {
      this.changedIn.set(tx, changed);
      return fn(tx);
    });
    this.announce(changed);
    return result;
  }

  private readonly committedListeners: CommittedListener[] = [];
  /** The customers changed so far by each open transaction of transaction() (weak: gone with the transaction). */
  private readonly changedIn = new WeakMap<Queryable, Set<string>>();

  private announce(customerIds: Set<string>): void {
    if (customerIds.size === 0) return;
    const ids = [...customerIds];
    for (const listener of this.committedListeners) listener(ids);
  }

  private async executeWithRetry(items: LedgerItem[]): Promise<LedgerItemResult[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction((tx) => this.execute(tx, items));
      } catch (error) {
        if (!isRetryableDbError(error) || attempt >= BATCH_ATTEMPTS_MAX) throw error;
        this.deps.log.warn({ err: error, attempt }, 'ledger batch retried');
      }
    }
  }

  private async execute(tx: Tx, items: LedgerItem[]): Promise<LedgerItemResult[]> {
    const now = this.deps.clock.now();
    const idempotency = items.flatMap((i) => (i.idempotency ? [i.idempotency] : []));
    const { state, stored, reads } = await loadBatch(tx, items.map((i) => i.op), now, this.sources(), idempotency);
    const batch = this.newBatch(state, now);
    const toSave: Array<IdempotencyRequest & StoredReply> = [];
    const applied: AppliedOp[] = [];
    const results = items.map((item): LedgerItemResult => {
      const idem = item.idempotency;
      const previous = idem ? stored.get(recordKey(idem.principal, idem.key)) : undefined;
      if (idem && previous) {
        try {
          return { kind: 'replay', reply: replayOrRefuse(idem, previous) };
        } catch (error) {
          return { kind: 'error', error: error as AppError };
        }
      }
      const result = batch.apply(item.op);
      applied.push({ op: item.op, result });
      if (idem && result.ok && item.render) {
        const reply = item.render(result);
        toSave.push({ ...idem, ...reply });
        // A second request with the same key later in this batch replays this one.
        stored.set(recordKey(idem.principal, idem.key), { principal: idem.principal, key: idem.key, request_hash: idem.requestHash, status_code: reply.status, response_body: reply.body });
        return { kind: 'applied', result, reply };
      }
      return { kind: 'applied', result };
    });
    const writes = await this.writes(tx, batch, state, { accounts: state.customerAccounts, applied, now, reads }, toSave);
    await tx.commitWith(writes);
    this.rememberReservations(applied);
    return results;
  }

  /**
   * Applies operations inside a caller's transaction, for a module whose own writes must commit
   * together with the ledger's (metering: an event and its charge). Same locks, rules and writes
   * as a batch; the caller commits. Writes of the caller's that depend on the results go through
   * `alsoWrite` into the ledger's one write statement (they must not touch the ledger's rows).
   */
  async applyInTransaction(tx: Queryable, ops: LedgerOp[], alsoWrite?: AlsoWrite): Promise<LedgerOpResult[]> {
    const { results, writes } = await this.applyWithin(tx, ops, alsoWrite);
    await queryEach(tx, writes);
    return results;
  }

  /** applyInTransaction as the transaction's last call: the write statement carries the COMMIT. */
  async applyAndCommit(tx: Tx, ops: LedgerOp[], alsoWrite?: AlsoWrite): Promise<LedgerOpResult[]> {
    const { results, writes } = await this.applyWithin(tx, ops, alsoWrite);
    await tx.commitWith(writes);
    return results;
  }

  private async applyWithin(tx: Queryable, ops: LedgerOp[], alsoWrite: AlsoWrite | undefined): Promise<{ results: LedgerOpResult[]; writes: Statement[] }> {
    if (ops.length === 0) {
      const writes = new WriteBatch();
      await alsoWrite?.([], writes);
      return { results: [], writes: writes.statements(this.deps.db.kind) };
    }
    const now = this.deps.clock.now();
    const { state, reads } = await loadBatch(tx, ops, now, this.sources());
    const batch = this.newBatch(state, now);
    const results = ops.map((op) => batch.apply(op));
    const applied = ops.map((op, i) => ({ op, result: results[i]! }));
    const writes = await this.writes(tx, batch, state, { accounts: state.customerAccounts, applied, now, reads }, [], alsoWrite && ((w) => alsoWrite(results, w)));
    return { results, writes };
  }

  /**
   * Locks a customer's account inside a caller's transaction (the same lock a batch takes) and
   * reads its balances: billing locks it before reading usage, so no charge for the customer
   * commits in between, and reads the posted balance its postings left.
   */
  async lockAccount(tx: Queryable, customerId: string): Promise<{ posted: bigint; available: bigint }> {
    const account = await lockCustomerAccount(tx, customerId);
    if (!account) throw notFound('customer', customerId);
    return { posted: postedBalance(account), available: availableBalance(account) };
  }

  /** A customer's captures and charges in the UTC day and month holding `at`, inside the caller's transaction (after lockAccount). */
  periodSpend(tx: Queryable, customerId: string, at: Date): Promise<Record<SpendPeriod, bigint>> {
    return periodSpend(tx, customerId, at);
  }

  /** Metering records the usage of each settle in the settle's own transaction. */
  onSettled(recorder: SettledUsageRecorder): void {
    this.settledRecorder = recorder;
  }

  private settledRecorder: SettledUsageRecorder | null = null;

  /**
   * The outbox records what a batch changed (events, alerts) in the batch's own transaction: the
   * listener writes through `writes`, sent with the batch's last statement. What it needs to read
   * it declares as `reads`, folded into the batch's read statement (WrittenBatch.reads).
   */
  onWritten(listener: BatchWriteListener, reads: Record<string, BatchReadSql> = {}): void {
    this.writeListener = listener;
    this.listenerReads = reads;
  }

  private writeListener: BatchWriteListener | null = null;
  private listenerReads: Record<string, BatchReadSql> = {};

  private sources() {
    const reads = this.watchedRead ? { ...this.listenerReads, [WATCHED_READ]: this.watchedRead } : this.listenerReads;
    return { keyLimitsSql: this.deps.keyLimitsSql, reads };
  }

  private shardTurn = Math.floor(Math.random() * OPERATOR_SHARDS);

  /** Batches take the operator-account shards in turn: the batches in flight here use different ones. */
  private nextShard(): number {
    this.shardTurn = (this.shardTurn + 1) % OPERATOR_SHARDS;
    return this.shardTurn;
  }

  private newBatch(state: BatchState, now: Date): LedgerBatch {
    return new LedgerBatch(state, { now, newId: (prefix) => newId(prefix, now.getTime()), rate: this.deps.rate });
  }

  /**
   * Everything a batch writes, as statements to send just before the commit (a batch in its own
   * transaction sends it with the COMMIT): its rows, the usage of the settles it made, what the
   * listener records, the idempotency replies and the account totals.
   */
  private async writes(
    tx: Queryable,
    batch: LedgerBatch,
    state: BatchState,
    written: Omit<WrittenBatch, 'effects'>,
    replies: Array<IdempotencyRequest & StoredReply> = [],
    callerWrites?: (writes: Queryable) => Promise<void>,
  ): Promise<Statement[]> {
    const writes = new WriteBatch();
    await callerWrites?.(writes);
    await writeBatchRows(writes, batch.effects);
    const changed = this.changedIn.get(tx);
    const watched = this.watchedRead ? new Set((written.reads[WATCHED_READ] ?? []) as string[]) : null;
    if (changed) for (const t of batch.effects.transfers) if (!watched || watched.has(t.customerId)) changed.add(t.customerId);
    const settled = batch.effects.settled;
    if (settled.length > 0 && this.settledRecorder) await this.settledRecorder(writes, settled, written.now);
    if (this.writeListener) await this.writeListener({ ...written, effects: batch.effects }, writes);
    await saveIdempotencyRecords(writes, replies);
    await applyAccountDeltas(writes, batch.effects, operatorsById(state), this.nextShard());
    return writes.statements(this.deps.db.kind);
  }
}

export type CommittedListener = (customerIds: string[]) => void;

/** A caller's writes that depend on the results of its operations, through a write batch (writes only). */
export type AlsoWrite = (results: LedgerOpResult[], writes: Queryable) => Promise<void>;

function operatorsById(state: BatchState): Map<string, Account> {
  return new Map([...state.operatorAccounts.values()].map((a) => [a.id, a]));
}

type AppliedOp = { op: LedgerOp; result: LedgerOpResult };

/**
 * What one batch wrote: its effects, the customer accounts after it, each operation applied (not
 * replays), and what the listener's reads returned (by name, see onWritten).
 */
export interface WrittenBatch {
  effects: BatchEffects;
  accounts: Map<string, Account>;
  applied: AppliedOp[];
  now: Date;
  reads: Record<string, unknown>;
}

export type BatchWriteListener = (written: WrittenBatch, writes: Queryable) => Promise<void>;

/** Writes the usage of settles through `writes`, the batch's write batch (it cannot read). */
export type SettledUsageRecorder = (writes: Queryable, settled: Reservation[], now: Date) => Promise<void>;
