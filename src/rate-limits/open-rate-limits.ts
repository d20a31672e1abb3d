import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../platform/clock.js';
import type { RateLimitConfig } from '../platform/config.js';
import type { Metrics } from '../observability/metrics.js';
import { MemoryBuckets } from './memory-buckets.js';
import { RateLimits, type KeyRateLimits } from './rate-limits.js';
import { RedisBuckets } from './redis-buckets.js';

/** How long startup waits for Redis; a Redis that is down then is the failure policy's business. */
const REDIS_CONNECT_WAIT_MS = 2_000;
/** Redis errors are counted each time but logged at most this often: an outage is one line, not a flood. */
const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

export interface RateLimitDeps {
  clock: Clock;
  log: FastifyBaseLogger;
  metrics: Metrics;
  keyRateLimits: (apiKeyId: string) => Promise<KeyRateLimits>;
}

/** Rate limits over memory, or over Redis when REDIS_URL is set; with their metrics. */
export async function openRateLimits(config: RateLimitConfig, deps: RateLimitDeps): Promise<RateLimits> {
  const checks = deps.metrics.counter('tollgate_rate_limit_checks_total', 'Rate limit checks by limit (api_key, failed_auth) and outcome (allowed, refused, store_failed: Redis did not answer)', ['limit', 'outcome']);
  const redisErrors = deps.metrics.counter('tollgate_rate_limit_redis_errors_total', 'Redis errors of the rate limiter: failed or timed-out checks and connection errors');
  let loggedAtMs = -Infinity;
  const onError = (err: Error) => {
    redisErrors.inc();
    const nowMs = Date.now();
    if (nowMs - loggedAtMs < REDIS_ERROR_LOG_INTERVAL_MS) return;
    loggedAtMs = nowMs;
    deps.log.warn({ err, failure: config.onRedisFailure }, `rate limit store (Redis) error: requests ${config.onRedisFailure === 'open' ? 'pass unlimited' : 'are refused (503)'} while it lasts`);
  };
  let store: MemoryBuckets | RedisBuckets;
  if (config.redis) {
    const redis = new RedisBuckets({ ...config.redis, onError });
    await redis.connect(REDIS_CONNECT_WAIT_MS);
    store = redis;
  } else {
    store = new MemoryBuckets(deps.clock);
  }
  return new RateLimits(store, config, deps.clock, deps.keyRateLimits, { checks });
}
