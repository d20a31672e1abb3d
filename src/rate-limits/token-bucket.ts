/**
 * The token bucket, as a pure function: a bucket holds at most `burst` tokens and gains
 * `perSecond` tokens a second; a request takes one token or is refused. The same arithmetic runs
 * in Redis (redis-limiter.ts) so every Tollgate process enforces one limit.
 */

export interface BucketPolicy {
  /** Tokens added per second: the sustained requests per second. */
  perSecond: number;
  /** Most tokens the bucket holds: how many requests may arrive at once after a quiet spell. */
  burst: number;
}

export interface BucketState {
  tokens: number;
  atMs: number;
}

/** What a check answers; it becomes the RateLimit-* headers (and Retry-After on a refusal). */
export interface RateDecision {
  allowed: boolean;
  /** The burst: the most requests the bucket allows at once. */
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the bucket is full again (remaining back to limit). */
  resetSeconds: number;
  /** Seconds until a refused request may succeed (0 when allowed). */
  retryAfterSeconds: number;
}

/** Takes one token from a bucket (a missing bucket is full) at `nowMs`. */
export function takeToken(state: BucketState | undefined, policy: BucketPolicy, nowMs: number): { state: BucketState; decision: RateDecision } {
  // A clock that steps back never takes tokens away.
  const elapsedMs = state ? Math.max(0, nowMs - state.atMs) : 0;
  const before = state ? Math.min(policy.burst, state.tokens + (elapsedMs * policy.perSecond) / 1000) : policy.burst;
  const allowed = before >= 1;
  const tokens = allowed ? before - 1 : before;
  return { state: { tokens, atMs: nowMs }, decision: decisionOf(allowed, tokens, policy) };
}

export function decisionOf(allowed: boolean, tokens: number, policy: BucketPolicy): RateDecision {
  return {
    allowed,
    limit: policy.burst,
    remaining: Math.floor(tokens),
    resetSeconds: Math.ceil((policy.burst - tokens) / policy.perSecond),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / policy.perSecond)),
  };
}

/** A policy from a rate and the configured burst (seconds of traffic at that rate, at least one request). */
export function policyOf(perSecond: number, burstSeconds: number): BucketPolicy {
  return { perSecond, burst: Math.max(1, Math.ceil(perSecond * burstSeconds)) };
}

/** The milliseconds after which an untouched bucket is full again: it may then be forgotten. */
export function msToFull(tokens: number, policy: BucketPolicy): number {
  return Math.ceil(((policy.burst - tokens) * 1000) / policy.perSecond);
}
