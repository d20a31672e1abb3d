import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/platform/batcher.js';

// The usage writer batches whole requests by their event count (sizeOf): a request is never split
// between transactions, and a transaction holds at most sizeMax events unless one request is larger.

describe('Batcher with sized items', () => {
  it('answers every item with its own result, in order, in batches within sizeMax (a larger item alone), never more in flight than allowed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ size: fc.integer({ min: 1, max: 12 }), gapTurns: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 3 }),
        async (items, sizeMax, inFlightMax) => {
          const batches: number[][] = [];
          let inFlight = 0;
          let inFlightPeak = 0;
          const batcher = new Batcher<number, string>({
            waitMs: 1,
            sizeMax,
            sizeOf: (i) => items[i]!.size,
            inFlightMax,
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
