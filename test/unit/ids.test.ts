import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { looksLikeId, newId } from '../../src/platform/ids.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const timeOf = (id: string) => [...id.slice(id.indexOf('_') + 1, id.indexOf('_') + 11)].reduce((t, c) => t * 32 + ALPHABET.indexOf(c), 0);

describe('newId', () => {
  // Each run starts well past the last one: newId remembers the latest time it was given.
  let runStart = Date.now() + 10_000_000;

  it('makes well-formed ids, strictly increasing in one process, carrying the latest time seen, whatever the clock does (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 }), fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1 }), (repeats, steps) => {
        runStart += 1_000_000;
        let now = runStart;
        let latest = 0;
        let previous = '';
        repeats.forEach((times, i) => {
          now += steps[i % steps.length]!;
          for (let n = 0; n <= times; n++) {
            const id = newId('trf', now);
            latest = Math.max(latest, now);
            expect(looksLikeId(id, 'trf')).toBe(true);
            expect(id > previous, `${id} after ${previous}`).toBe(true);
            expect(timeOf(id)).toBe(latest);
            previous = id;
          }
        });
      }),
      { numRuns: 200 },
    );
  });

  it('draws fresh random bits for each new millisecond', () => {
    const base = runStart + 10_000_000;
    const tails = new Set(Array.from({ length: 200 }, (_, i) => newId('res', base + i).slice(-16)));
    expect(tails.size).toBe(200);
  });
});
