/**
 * Group commit: callers submit items; items that arrive within `waitMs` of the first one (or until
 * `sizeMax` have gathered) are handed to `flush` together, which answers one result per item in
 * the same order. When items arrive sparsely (on average SPARSE_GAP_WAITS waits apart or more),
 * one that finds nothing queued or in flight is flushed at once with whatever arrived in the same
 * turn of the event loop: waiting would most likely gather nothing and only add the wait. At most
 * `inFlightMax` flushes run at once; further items wait for the next one.
 * With `keyOf`, an item whose key is in a flush still running waits for the next flush after it:
 * flushes in flight never share a key, and items of one key are flushed in the order submitted.
 */
export interface BatcherOptions<I, R> {
  waitMs: number;
  /** The most a batch holds, in `sizeOf` units (items by default); an item larger than this goes alone. */
  sizeMax: number;
  /** How much of `sizeMax` an item takes (a request of many events: its event count); 1 by default. */
  sizeOf?: (item: I) => number;
  inFlightMax: number;
  /**
   * While a flush runs, another starts only once this much (in `sizeOf` units) is queued; until then
   * the items wait to join the flush after it. 1 by default: any item starts one. A flush has a
   * fixed cost whatever its size, so at a moderate rate, flushes of one or two items each would
   * spend more on that cost than a short wait saves.
   */
  extraFlushMin?: number;
  flush: (items: I[]) => Promise<R[]>;
  /** What an item must not share with the flushes in flight (the ledger: its customer); null, nothing. */
  keyOf?: (item: I) => string | null;
  /** Wraps each flush (metrics, a trace span); it must call `flush` once and return its results. */
  observe?: FlushObserver<I>;
  /** Milliseconds on a monotonic clock, for the arrival rate (tests pass their own). */
  now?: () => number;
}

/**
 * Arrivals this many waits apart on average, or more, count as sparse: fewer than one item in four
 * would join during a wait. (At 50 holds/s on PostgreSQL, not waiting took the median request from
 * 5.5-6.9 ms to 3.9-5.5: docs/performance.md.)
 */
const SPARSE_GAP_WAITS = 4;
/** One long pause counts as this many waits in the average, so that a burst after it is seen as one within a few items. */
const GAP_SAMPLE_MAX_WAITS = 4 * SPARSE_GAP_WAITS;
/** Weight of the newest gap in the moving average of the gaps between arrivals. */
const GAP_WEIGHT = 0.25;

export type FlushObserver<I> = <R>(items: readonly I[], flush: () => Promise<R>) => Promise<R>;

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class Batcher<I, R> {
  private queue: Pending<I, R>[] = [];
  /** The queued items' total size (`sizeOf`). */
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  /** The keys of the flushes in flight. */
  private readonly busyKeys = new Set<string>();
  /** Moving average of the milliseconds between submits (null until two have arrived), and the last submit. */
  private meanGapMs: number | null = null;
  private lastSubmitAt: number | null = null;
  private readonly now: () => number;

  constructor(private readonly options: BatcherOptions<I, R>) {
    this.now = options.now ?? (() => performance.now());
  }

  submit(item: I): Promise<R> {
    this.noteArrival();
    return new Promise<R>((resolve, reject) => {
      const idle = this.pending === 0;
      this.queue.push({ item, resolve, reject });
      const before = this.queued;
      this.queued += this.sizeOf(item);
      // Full, or (a flush running) this item brings the queue up to what starts another one.
      const extraFlushDue = this.inFlight > 0 && before < this.extraFlushMin && this.queued >= this.extraFlushMin;
      if (this.queued >= this.options.sizeMax || extraFlushDue || (idle && this.sparse())) this.flushSoon(0);
      else this.flushSoon(this.options.waitMs);
    });
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  async drain(): Promise<void> {
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private flushSoon(delayMs: number) {
    if (delayMs === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      setImmediate(() => this.flushNow());
      return;
    }
    if (!this.timer) this.timer = setTimeout(() => ((this.timer = null), this.flushNow()), delayMs);
  }

  private noteArrival() {
    const now = this.now();
    if (this.lastSubmitAt !== null) {
      const gap = Math.min(now - this.lastSubmitAt, GAP_SAMPLE_MAX_WAITS * this.options.waitMs);
      this.meanGapMs = this.meanGapMs === null ? gap : this.meanGapMs + GAP_WEIGHT * (gap - this.meanGapMs);
    }
    this.lastSubmitAt = now;
  }

  /** Arrivals sparse enough that a wait would most likely gather nothing (the first item counts as sparse). */
  private sparse(): boolean {
    return this.meanGapMs === null || this.meanGapMs >= SPARSE_GAP_WAITS * this.options.waitMs;
  }

  private get extraFlushMin(): number {
    return this.options.extraFlushMin ?? 1;
  }

  private flushNow() {
    while (this.queue.length > 0 && this.inFlight < this.options.inFlightMax && (this.inFlight === 0 || this.queued >= this.extraFlushMin)) {
      const { batch, keys } = this.take();
      if (batch.length === 0) return; // every queued item waits for a key in flight
      this.inFlight++;
      void this.run(batch, keys);
    }
  }

  private sizeOf(item: I): number {
    return this.options.sizeOf ? this.options.sizeOf(item) : 1;
  }

  /**
   * The next batch: the oldest queued items whose keys no flush in flight holds, as many as fit in
   * sizeMax (at least one). Once one does not fit, the rest wait, so each key keeps its order.
   */
  private take(): { batch: Pending<I, R>[]; keys: string[] } {
    const { keyOf, sizeMax } = this.options;
    const batch: Pending<I, R>[] = [];
    const waiting: Pending<I, R>[] = [];
    const keys = new Set<string>();
    let size = 0;
    let full = false;
    for (const pending of this.queue) {
      if (!full) {
        const next = this.sizeOf(pending.item);
        const key = keyOf ? keyOf(pending.item) : null;
        if (batch.length > 0 && size + next > sizeMax) {
          full = true;
        } else if (key === null || !this.busyKeys.has(key)) {
          batch.push(pending);
          size += next;
          if (key !== null) keys.add(key);
          continue;
        }
      }
      waiting.push(pending);
    }
    this.queue = waiting;
    this.queued -= size;
    for (const key of keys) this.busyKeys.add(key);
    return { batch, keys: [...keys] };
  }

  private async run(batch: Pending<I, R>[], keys: string[]) {
    try {
      const items = batch.map((p) => p.item);
      const flush = () => this.options.flush(items);
      const results = await (this.options.observe ? this.options.observe(items, flush) : flush());
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.inFlight--;
      for (const key of keys) this.busyKeys.delete(key);
      if (this.queue.length > 0) this.flushNow();
      else if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }
}
