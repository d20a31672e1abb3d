/**
 * Group commit: callers submit items; items that arrive within `waitMs` of the first one (or until
 * `sizeMax` have gathered) are handed to `flush` together, which answers one result per item in
 * the same order. At most `inFlightMax` flushes run at once; further items wait for the next one.
 */
export interface BatcherOptions<I, R> {
  waitMs: number;
  /** The most a batch holds, in `sizeOf` units (items by default); an item larger than this goes alone. */
  sizeMax: number;
  /** How much of `sizeMax` an item takes (a request of many events: its event count); 1 by default. */
  sizeOf?: (item: I) => number;
  inFlightMax: number;
  flush: (items: I[]) => Promise<R[]>;
  /** Wraps each flush (metrics, a trace span); it must call `flush` once and return its results. */
  observe?: FlushObserver<I>;
}

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

  constructor(private readonly options: BatcherOptions<I, R>) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.queued += this.sizeOf(item);
      if (this.queued >= this.options.sizeMax) this.flushSoon(0);
      else this.flushSoon(this.options.waitMs);
    });
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  async drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return;
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

  private flushNow() {
    while (this.queue.length > 0 && this.inFlight < this.options.inFlightMax) {
      const batch = this.queue.splice(0, this.takeCount());
      this.inFlight++;
      void this.run(batch);
    }
  }

  private sizeOf(item: I): number {
    return this.options.sizeOf ? this.options.sizeOf(item) : 1;
  }

  /** How many queued items the next batch takes: as many as fit in sizeMax, at least one. */
  private takeCount(): number {
    let size = 0;
    let count = 0;
    for (const p of this.queue) {
      const next = this.sizeOf(p.item);
      if (count > 0 && size + next > this.options.sizeMax) break;
      size += next;
      count++;
    }
    this.queued -= size;
    return count;
  }

  private async run(batch: Pending<I, R>[]) {
    try {
      const items = batch.map((p) => p.item);
      const flush = () => this.options.flush(items);
      const results = await (this.options.observe ? this.options.observe(items, flush) : flush());
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.inFlight--;
      if (this.queue.length > 0) this.flushNow();
      else if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }
}
