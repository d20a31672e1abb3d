import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/platform/batcher.js';

interface Item {
  n: number;
  key: string | null;
}

/** Runs `items` through a keyed batcher whose flushes take a few turns; records what ran together. */
async function runThrough(items: Item[], options: { sizeMax: number; inFlightMax: number; delays: number[] }) {
  const running = new Set<Item[]>();
  const overlaps: string[] = [];
  const flushed: Item[][] = [];
  let turn = 0;
  const batcher = new Batcher<Item, number>({
    waitMs: 0,
    sizeMax: options.sizeMax,
    inFlightMax: options.inFlightMax,
    keyOf: (item) => item.key,
    flush: async (batch) => {
      for (const other of running) {
        for (const item of batch) if (item.key !== null && other.some((o) => o.key === item.key)) overlaps.push(item.key);
      }
      running.add(batch);
      flushed.push(batch);
      await new Promise((resolve) => setTimeout(resolve, options.delays[turn++ % options.delays.length]));
      running.delete(batch);
      return batch.map((item) => item.n * 10);
    },
  });
  const results = await Promise.all(items.map((item) => batcher.submit(item)));
  await batcher.drain();
  return { results, overlaps, flushed, inFlightAtEnd: batcher.pending };
}

describe('Batcher with keys', () => {
  it('never runs two flushes sharing a key at once, keeps each key in order, and answers every item its own result (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: null }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 5 }),
        async (keys, sizeMax, inFlightMax, delays) => {
          const items = keys.map((key, n) => ({ n, key }));
          const { results, overlaps, flushed, inFlightAtEnd } = await runThrough(items, { sizeMax, inFlightMax, delays });
          expect(results).toEqual(items.map((item) => item.n * 10));
          expect(overlaps).toEqual([]);
          expect(flushed.every((batch) => batch.length >= 1 && batch.length <= sizeMax)).toBe(true);
          expect(flushed.flat().map((item) => item.n).sort((a, b) => a - b)).toEqual(items.map((item) => item.n));
          for (const key of ['a', 'b', 'c', 'd']) {
            const order = flushed.flat().filter((item) => item.key === key).map((item) => item.n);
            expect(order).toEqual([...order].sort((a, b) => a - b));
          }
          expect(inFlightAtEnd).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("gathers one hot key's items that arrive while its flush runs into the next flush, not into flushes of their own", async () => {
    const items = Array.from({ length: 40 }, (_, n) => ({ n, key: 'hot' }));
    const { flushed } = await runThrough(items, { sizeMax: 512, inFlightMax: 4, delays: [5] });
    expect(flushed.length).toBe(1);
    const late = await (async () => {
      const batches: number[] = [];
      const batcher = new Batcher<Item, number>({
        waitMs: 0,
        sizeMax: 512,
        inFlightMax: 4,
        keyOf: (item) => item.key,
        flush: async (batch) => {
          batches.push(batch.length);
          await new Promise((resolve) => setTimeout(resolve, 20));
          return batch.map(() => 0);
        },
      });
      const first = batcher.submit({ n: 0, key: 'hot' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      // Arriving one by one while the first flush runs: without keys each would start a flush of its own.
      const rest: Promise<number>[] = [];
      for (let n = 1; n <= 12; n++) {
        rest.push(batcher.submit({ n, key: 'hot' }));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all([first, ...rest]);
      return batches;
    })();
    expect(late).toEqual([1, 12]);
  });
});

// The usage writer batches whole requests by their event count (sizeOf): a request is never split
// between transactions, and a transaction holds at most sizeMax events unless one request is larger.

describe('Batcher with sized items', () => {
  it('answers every item with its own result, in order, in batches within sizeMax (a larger item alone), never more in flight than allowed, whatever extraFlushMin', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ size: fc.integer({ min: 1, max: 12 }), gapTurns: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 12 }),
        async (items, sizeMax, inFlightMax, extraFlushMin) => {
          const batches: number[][] = [];
          let inFlight = 0;
          let inFlightPeak = 0;
          const batcher = new Batcher<number, string>({
            waitMs: 1,
            sizeMax,
            sizeOf: (i) => items[i]!.size,
            inFlightMax,
            extraFlushMin,
            flush: async (batch) => {
              inFlightPeak = Math.max(inFlightPeak, ++inFlight);
              batches.push(batch);
              await new Promise((resolve) => setImmediate(resolve));
              inFlight--;
              return batch.map((i) => `r${i}`);
            },
          });
          const replies: Array<Promise<string>> = [];
          for (const [i, item] of items.entries()) {
            replies.push(batcher.submit(i));
            for (let t = 0; t < item.gapTurns; t++) await new Promise((resolve) => setImmediate(resolve));
          }
          expect(await Promise.all(replies)).toEqual(items.map((_, i) => `r${i}`));
          await batcher.drain();
          expect(batches.flat()).toEqual(items.map((_, i) => i));
          for (const batch of batches) {
            const size = batch.reduce((sum, i) => sum + items[i]!.size, 0);
            if (batch.length > 1) expect(size).toBeLessThanOrEqual(sizeMax);
          }
          expect(inFlightPeak).toBeLessThanOrEqual(inFlightMax);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Batcher with a minimum for a second flush', () => {
  it('starts a second flush only once extraFlushMin items wait; fewer wait for the running flush and go right after it', async () => {
    const flushed: number[][] = [];
    let finishFirst!: () => void;
    const firstMayEnd = new Promise<void>((resolve) => (finishFirst = resolve));
    const batcher = new Batcher<number, number>({
      waitMs: 0,
      sizeMax: 100,
      inFlightMax: 2,
      extraFlushMin: 3,
      flush: async (batch) => {
        flushed.push(batch);
        if (batch[0] === 0) await firstMayEnd;
        return batch;
      },
    });
    const turn = () => new Promise((resolve) => setTimeout(resolve, 5));
    const first = batcher.submit(0);
    await turn();
    const early = [batcher.submit(1), batcher.submit(2)];
    await turn();
    // Two waiting, one flush running: no second flush yet.
    expect(flushed).toEqual([[0]]);
    const third = batcher.submit(3);
    await turn();
    // The third waiting item reached the minimum: the second flush takes everything waiting.
    expect(flushed).toEqual([[0], [1, 2, 3]]);
    const more = [third, batcher.submit(4), batcher.submit(5)];
    await turn();
    // Two flushes running, the most allowed: these wait for one of them to end.
    expect(flushed).toEqual([[0], [1, 2, 3]]);
    finishFirst();
    expect(await Promise.all([first, ...early, ...more])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(flushed).toEqual([[0], [1, 2, 3], [4, 5]]);
  });
});

describe('Batcher with sparse arrivals', () => {
  /** A batcher whose wait is long (a flush that waited for it would be seen to) and whose arrival clock the test moves. */
  function sparseBatcher() {
    let now = 0;
    const flushed: number[][] = [];
    const batcher = new Batcher<number, number>({
      waitMs: 40,
      sizeMax: 100,
      inFlightMax: 1,
      now: () => now,
      flush: async (batch) => {
        flushed.push(batch);
        return batch;
      },
    });
    return { batcher, flushed, advance: (ms: number) => void (now += ms) };
  }
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const waitPassed = () => new Promise((resolve) => setTimeout(resolve, 60));

  it('flushes an item that finds the batcher idle at once when items arrive far apart, with whatever arrived in the same turn', async () => {
    const { batcher, flushed, advance } = sparseBatcher();
    for (let n = 0; n < 5; n++) {
      advance(1_000);
      const replies = [batcher.submit(n * 10), batcher.submit(n * 10 + 1)];
      await turn();
      await turn();
      expect(flushed.at(-1)).toEqual([n * 10, n * 10 + 1]);
      expect(await Promise.all(replies)).toEqual([n * 10, n * 10 + 1]);
    }
    expect(flushed.length).toBe(5);
  });

  it('waits for more when items arrive close together, and does so within a few items of a burst after a long quiet spell', async () => {
    const { batcher, flushed, advance } = sparseBatcher();
    for (let n = 0; n < 5; n++) {
      advance(60_000);
      await batcher.submit(-1);
    }
    expect(flushed.length).toBe(5);
    // A burst: one item every 2 ms (twenty per wait). The average gap falls below four waits within a few items.
    const burst: Array<Promise<number>> = [];
    let waited = -1;
    for (let n = 1; n <= 12 && waited < 0; n++) {
      advance(2);
      const before = flushed.length;
      burst.push(batcher.submit(n));
      await turn();
      await turn();
      if (flushed.length === before) waited = n;
    }
    expect(waited).toBeGreaterThan(1);
    expect(waited).toBeLessThanOrEqual(6);
    // The item that found arrivals dense waits the whole wait, gathering what comes meanwhile.
    advance(2);
    const late = batcher.submit(100);
    await turn();
    expect(flushed.length).toBe(5 + waited - 1);
    await waitPassed();
    expect(flushed.at(-1)).toEqual([waited, 100]);
    expect(await Promise.all([...burst, late])).toEqual([...burst.map((_, i) => i + 1), 100]);
  });
});
