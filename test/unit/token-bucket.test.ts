import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { MemoryBuckets } from '../../src/rate-limits/memory-buckets.js';
import { effectiveKeyRate } from '../../src/rate-limits/rate-limits.js';
import { policyOf, takeToken, type BucketState } from '../../src/rate-limits/token-bucket.js';

describe('token bucket', () => {
  it('allows the burst at once, then refuses with the wait until the next token', () => {
    const policy = policyOf(2, 2); // 2 per second, 4 at once
    let state: BucketState | undefined;
    const decisions = [];
    for (let i = 0; i < 5; i++) {
      const taken = takeToken(state, policy, 1_000);
      state = taken.state;
      decisions.push(taken.decision);
    }
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([3, 2, 1, 0, 0]);
    expect(decisions[0]).toEqual({ allowed: true, limit: 4, remaining: 3, resetSeconds: 1, retryAfterSeconds: 0 });
    expect(decisions[4]).toEqual({ allowed: false, limit: 4, remaining: 0, resetSeconds: 2, retryAfterSeconds: 1 });
  });

  it('refills at the rate, never past the burst, and a clock stepping back takes nothing away', () => {
    const policy = policyOf(1, 3);
    let state = takeToken(undefined, policy, 0).state;
    state = takeToken(state, policy, 0).state;
    state = takeToken(state, policy, 0).state;
    expect(state.tokens).toBe(0);
    expect(takeToken(state, policy, 999).decision.allowed).toBe(false);
    expect(takeToken(state, policy, 1_000).decision).toMatchObject({ allowed: true, remaining: 0 });
    expect(takeToken(state, policy, 60_000).decision).toMatchObject({ allowed: true, remaining: 2 });
    expect(takeToken(state, policy, -5_000).decision).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
  });

  it('never allows more than burst + rate x elapsed requests, whatever the arrival times', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 10 }), fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 300 }), (perSecond, burstSeconds, gapsMs) => {
        const policy = policyOf(perSecond, burstSeconds);
        let state: BucketState | undefined;
        let nowMs = 0;
        let allowed = 0;
        for (const gap of gapsMs) {
          nowMs += gap;
          const taken = takeToken(state, policy, nowMs);
          state = taken.state;
          if (taken.decision.allowed) allowed++;
          expect(taken.decision.remaining).toBeGreaterThanOrEqual(0);
          expect(taken.decision.remaining).toBeLessThanOrEqual(policy.burst);
        }
        expect(allowed).toBeLessThanOrEqual(policy.burst + Math.floor((nowMs * perSecond) / 1000));
      }),
    );
  });
});

describe("a key's effective rate", () => {
  it('is its own limit within its allowance (rate_limit_max, else the default); no allowance and no limit is unlimited', () => {
    expect(effectiveKeyRate({ rateLimit: null, rateLimitMax: null }, 100)).toBe(100);
    expect(effectiveKeyRate({ rateLimit: 10, rateLimitMax: null }, 100)).toBe(10);
    expect(effectiveKeyRate({ rateLimit: 500, rateLimitMax: null }, 100)).toBe(100);
    expect(effectiveKeyRate({ rateLimit: 500, rateLimitMax: 1_000 }, 100)).toBe(500);
    expect(effectiveKeyRate({ rateLimit: null, rateLimitMax: 5 }, 100)).toBe(5);
    expect(effectiveKeyRate({ rateLimit: null, rateLimitMax: null }, 0)).toBeNull();
    expect(effectiveKeyRate({ rateLimit: 7, rateLimitMax: null }, 0)).toBe(7);
  });
});

describe('buckets in memory', () => {
  it('keeps one bucket per key and forgets the least recently used past its bound (a forgotten bucket is full)', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
    const buckets = new MemoryBuckets(clock, 2);
    const policy = policyOf(1, 1);
    expect((await buckets.take('a', policy)).allowed).toBe(true);
    expect((await buckets.take('b', policy)).allowed).toBe(true);
    expect((await buckets.take('a', policy)).allowed).toBe(false);
    expect((await buckets.take('c', policy)).allowed).toBe(true);
    expect(buckets.size).toBe(2);
    // b was the least recently used: forgotten, so full again.
    expect((await buckets.take('b', policy)).allowed).toBe(true);
    expect((await buckets.take('c', policy)).allowed).toBe(false);
    clock.advance(1_000);
    expect((await buckets.take('c', policy)).allowed).toBe(true);
  });
});
