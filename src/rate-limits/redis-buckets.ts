import { Redis } from 'ioredis';
import type { BucketStore } from './memory-buckets.js';
import { decisionOf, type BucketPolicy, type RateDecision } from './token-bucket.js';

/**
 * token-bucket.ts's arithmetic in one Lua script: read, refill, take and write are atomic, one
 * round trip per check. Time is Redis's own clock (TIME), so processes whose clocks differ still
 * agree. Tokens come back as text: Redis would truncate a Lua number to an integer.
 */
const TAKE_TOKEN_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] and state[2] then
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate / 1000)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return { allowed, string.format('%.17g', tokens) }
`;

type TakeTokenCommand = (key: string, perSecond: number, burst: number) => Promise<[number, string]>;

export interface RedisBucketsOptions {
  url: string;
  /** Every bucket's key starts with it: several deployments (or test runs) share one Redis. */
  prefix: string;
  /** Most one check may wait for Redis; past it the check fails (and the failure policy decides). */
  timeoutMs: number;
  /** Called on every failed check and connection error (metrics, logs). */
  onError: (error: Error) => void;
}

/** Buckets in Redis, shared by every Tollgate process that uses the same URL and prefix. */
export class RedisBuckets implements BucketStore {
  private readonly redis: Redis;
  private readonly takeToken: TakeTokenCommand;

  constructor(private readonly options: RedisBucketsOptions) {
    this.redis = new Redis(options.url, {
      lazyConnect: true,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      // Never queue a check while disconnected, never retry one: an answer now or a failure now.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnects in the background, at most every 2 s.
      retryStrategy: (times) => Math.min(times * 100, 2_000),
    });
    this.redis.on('error', (error: Error) => options.onError(error));
    this.redis.defineCommand('tollgateTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });
    this.takeToken = (this.redis as unknown as { tollgateTakeToken: TakeTokenCommand }).tollgateTakeToken.bind(this.redis);
  }

  /** Connects, waiting at most `waitMs`; a Redis that is down does not stop Tollgate starting. */
  async connect(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    await Promise.race([this.redis.connect().catch(() => {}), deadline]);
    clearTimeout(timer);
  }

  async take(key: string, policy: BucketPolicy): Promise<RateDecision | null> {
    try {
      const [allowed, tokens] = await this.takeToken(this.options.prefix + key, policy.perSecond, policy.burst);
      return decisionOf(allowed === 1, Number(tokens), policy);
    } catch (error) {
      this.options.onError(error as Error);
      return null;
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
