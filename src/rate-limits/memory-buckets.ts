import type { Clock } from '../platform/clock.js';
import { takeToken, type BucketPolicy, type BucketState, type RateDecision } from './token-bucket.js';

/** Where buckets live: this process's memory, or Redis shared by every process. */
export interface BucketStore {
  /** Takes a token; null when the store could not answer (Redis down), for the caller's failure policy. */
  take(key: string, policy: BucketPolicy): Promise<RateDecision | null>;
  close(): Promise<void>;
}

/** Most buckets kept; past it the least recently used goes (a forgotten bucket is a full one). */
const BUCKETS_MAX = 100_000;

/** Buckets in a Map kept in least-recently-used order: one lookup and one insert per check. */
export class MemoryBuckets implements BucketStore {
  private readonly buckets = new Map<string, BucketState>();

  constructor(
    private readonly clock: Clock,
    private readonly bucketsMax = BUCKETS_MAX,
  ) {}

  async take(key: string, policy: BucketPolicy): Promise<RateDecision> {
    const { state, decision } = takeToken(this.buckets.get(key), policy, this.clock.now().getTime());
    this.buckets.delete(key);
    if (this.buckets.size >= this.bucketsMax) this.evictOldest();
    this.buckets.set(key, state);
    return decision;
  }

  get size(): number {
    return this.buckets.size;
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }

  /** Drops the least recently used bucket: the first in the Map's insertion order. */
  private evictOldest() {
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}
