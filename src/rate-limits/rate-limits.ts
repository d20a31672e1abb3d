import type { Counter } from 'prom-client';
import type { Clock } from '../platform/clock.js';
import type { RateLimitConfig } from '../platform/config.js';
import { AppError, unavailable } from '../platform/errors.js';
import type { AuthLimits } from '../platform/http.js';
import type { BucketStore } from './memory-buckets.js';
import { decisionOf, policyOf, type RateDecision } from './token-bucket.js';

/** A key's two rate limit columns (requests per second; null: not set). */
export interface KeyRateLimits {
  /** The key's own limit, set by the admin or the customer. */
  rateLimit: number | null;
  /** The operator's allowance for the key (admin only); null: the default per key. */
  rateLimitMax: number | null;
}

/** The operator's allowance for a key: its rate_limit_max, else the default; null: unlimited. */
export function keyAllowance(rateLimitMax: number | null, defaultPerSecond: number): number | null {
  return rateLimitMax ?? (defaultPerSecond > 0 ? defaultPerSecond : null);
}

/** The requests per second a key may make: its own limit within its allowance; null: unlimited. */
export function effectiveKeyRate(key: KeyRateLimits, defaultPerSecond: number): number | null {
  const allowance = keyAllowance(key.rateLimitMax, defaultPerSecond);
  if (key.rateLimit === null) return allowance;
  return allowance === null ? key.rateLimit : Math.min(key.rateLimit, allowance);
}

/** The headers of draft-ietf-httpapi-ratelimit-headers-06: limit, remaining and reset (delta seconds). */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  return {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(decision.resetSeconds),
  };
}

export interface RateLimitMetrics {
  /** Checks by limit (api_key, failed_auth) and outcome (allowed, refused, store_failed). */
  checks: Counter<'limit' | 'outcome'>;
}

/** Most addresses remembered as refused; they are refused without a round trip until their Retry-After. */
const BLOCKED_ADDRESSES_MAX = 100_000;
const STORE_FAILURE_RETRY_AFTER_SECONDS = 1;
const FAILED_AUTH_DETAIL = 'Too many failed authentications from this address; retry later';

/**
 * Rate limits per API key (authorize and requests made with a key) and per client address for
 * failed bearer authentication, over a bucket store (memory or Redis).
 */
export class RateLimits {
  /** address -> when (ms) its failed-authentication refusal ends: checked before a token is. */
  private readonly blockedUntil = new Map<string, number>();

  constructor(
    private readonly store: BucketStore,
    private readonly settings: RateLimitConfig,
    private readonly clock: Clock,
    private readonly keyRateLimits: (apiKeyId: string) => Promise<KeyRateLimits>,
    private readonly metrics: RateLimitMetrics,
  ) {}

  /** One request by a key: the RateLimit-* headers to send, or throws 429 rate_limited. */
  async checkKey(apiKeyId: string): Promise<Record<string, string>> {
    const perSecond = effectiveKeyRate(await this.keyRateLimits(apiKeyId), this.settings.perKeyPerSecond);
    if (perSecond === null) return {};
    const decision = await this.take('api_key', `key:${apiKeyId}`, perSecond);
    if (decision === null) return {};
    const headers = rateLimitHeaders(decision);
    if (!decision.allowed) throw rateLimited(`The API key is over its rate limit of ${perSecond} requests per second`, decision, headers);
    return headers;
  }

  /** What the HTTP layer calls around bearer authentication. */
  readonly auth: AuthLimits = {
    beforeAuthentication: (request) => {
      const until = this.blockedUntil.get(request.ip);
      if (until === undefined) return;
      const leftMs = until - this.clock.now().getTime();
      if (leftMs <= 0) {
        this.blockedUntil.delete(request.ip);
        return;
      }
      this.metrics.checks.inc({ limit: 'failed_auth', outcome: 'refused' });
      // The bucket reaches one token when the block ends: it holds 1 - left * rate now.
      const policy = policyOf(this.settings.failedAuthPerSecond, this.settings.burstSeconds);
      const decision = decisionOf(false, 1 - (leftMs / 1000) * policy.perSecond, policy);
      throw rateLimited(FAILED_AUTH_DETAIL, decision, rateLimitHeaders(decision));
    },
    authenticationFailed: async (request, reply) => {
      if (this.settings.failedAuthPerSecond === 0) return;
      const decision = await this.take('failed_auth', `auth:${request.ip}`, this.settings.failedAuthPerSecond);
      if (decision === null) return;
      const headers = rateLimitHeaders(decision);
      if (decision.allowed) return void reply.headers(headers);
      this.block(request.ip, decision.retryAfterSeconds);
      throw rateLimited(FAILED_AUTH_DETAIL, decision, headers);
    },
    // Per API key only: a dashboard session (no key) is one person's browser, not limited here.
    authenticated: async (_request, reply, principal) => {
      if (principal.kind === 'customer' && principal.apiKeyId !== null) reply.headers(await this.checkKey(principal.apiKeyId));
    },
  };

  close(): Promise<void> {
    return this.store.close();
  }

  /** A decision, or null when the store failed open; throws 503 when it failed closed. */
  private async take(limit: 'api_key' | 'failed_auth', key: string, perSecond: number): Promise<RateDecision | null> {
    const decision = await this.store.take(key, policyOf(perSecond, this.settings.burstSeconds));
    if (decision === null) {
      this.metrics.checks.inc({ limit, outcome: 'store_failed' });
      if (this.settings.onRedisFailure === 'open') return null;
      throw unavailable('Rate limits cannot be checked (their store is unavailable); retry shortly', STORE_FAILURE_RETRY_AFTER_SECONDS);
    }
    this.metrics.checks.inc({ limit, outcome: decision.allowed ? 'allowed' : 'refused' });
    return decision;
  }

  private block(address: string, seconds: number) {
    this.blockedUntil.delete(address);
    if (this.blockedUntil.size >= BLOCKED_ADDRESSES_MAX) this.blockedUntil.delete(this.blockedUntil.keys().next().value!);
    this.blockedUntil.set(address, this.clock.now().getTime() + seconds * 1000);
  }
}

function rateLimited(detail: string, decision: RateDecision, headers: Record<string, string>): AppError {
  const error = new AppError('rate_limited', detail);
  error.retryAfterSeconds = decision.retryAfterSeconds;
  error.headers = headers;
  return error;
}

