import { randomBytes } from 'node:crypto';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  port: number;
  adminToken: string | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
  /** The embedded database's buffer cache in MB; undefined, db.ts's default. */
  pgliteSharedBuffersMb: number | undefined;
  logLevel: LogLevel;
  /** How long the hot path gathers requests before committing them together. */
  batchWaitMs: number;
  batchSizeMax: number;
  /** How often overdue holds and grants are swept. */
  sweepIntervalMs: number;
  /** Usage events older than this (by their time) or further ahead are rejected. */
  eventMaxAgeMs: number;
  eventMaxFutureMs: number;
  /** NATS servers (comma-separated nats:// or tls:// URLs); set: events go through JetStream. */
  natsUrl: string | undefined;
  /** The JetStream stream of usage events; its subject is `<stream>.events`. */
  eventsStream: string;
  /** The JetStream stream and subject prefix outbound events are published to (with NATS_URL). */
  eventBus: { stream: string; subjectPrefix: string };
  /** How long a worker may hold a fetched event before JetStream redelivers it. */
  workerAckWaitMs: number;
  /** Set: `tollgate worker` listens on it for /healthz, /readyz and /metrics. */
  workerPort: number | undefined;
  /** Stripe: unset secret key means card payments (top-ups, the webhook) are off. */
  stripe: StripeConfig | undefined;
  /** The operator's name on invoices (PDF). */
  operatorName: string;
  /** How often the payment sweeps run (auto top-up checks, invoice collection): the safety net beside the immediate checks. */
  paymentsSweepMs: number;
  /** Set: GET /metrics wants `Authorization: Bearer <token>`; unset: it is open. */
  metricsToken: string | undefined;
  /** OpenTelemetry traces; unset: off. */
  tracing: TracingConfig | undefined;
  /** Webhooks may reach private, loopback and link-local addresses (tests, private networks). */
  webhooksAllowPrivate: boolean;
  /** Most one webhook delivery may take: connect, send, response. */
  webhooksTimeoutMs: number;
  rateLimits: RateLimitConfig;
  /** Proxy hops in front of Tollgate whose X-Forwarded-For is trusted for the client address; 0: the socket's. */
  trustProxyHops: number;
  dashboard: DashboardConfig;
}

/** Browser sign-in for the dashboard at /app (docs/dashboard.md). */
export interface DashboardConfig {
  /** Where browsers reach Tollgate (portal links, same-origin checks); unset: the request's protocol and Host. */
  publicUrl: URL | undefined;
  /** Absolute lifetime of a customer (portal) session and of an operator session. */
  customerSessionMs: number;
  operatorSessionMs: number;
  /** A session without a request for this long ends (sliding). */
  idleMs: number;
}

export interface RateLimitConfig {
  /** Requests per second per API key unless the key's rate_limit_max says otherwise; 0: no default limit. */
  perKeyPerSecond: number;
  /** Failed bearer authentications per second per client address; 0: not limited. */
  failedAuthPerSecond: number;
  /** A bucket holds this many seconds of traffic at its rate: the burst. */
  burstSeconds: number;
  /** Set: buckets live in Redis, shared by every Tollgate process using it; unset: in memory. */
  redis: { url: string; prefix: string; timeoutMs: number } | undefined;
  /** When Redis cannot answer in time: let the request through (open) or refuse it with 503 (closed). */
  onRedisFailure: 'open' | 'closed';
}

export interface TracingConfig {
  /** The OTLP/HTTP traces endpoint: OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  tracesUrl: string;
  serviceName: string;
}

export interface StripeConfig {
  secretKey: string;
  /** Unset: the webhook route answers 503 payments_not_configured. */
  webhookSecret: string | undefined;
  /** Another Stripe API host (tests point the SDK at a local stand-in). */
  apiBase: URL | undefined;
  /** Where Checkout sends the customer after paying or giving up. */
  checkoutSuccessUrl: string;
  checkoutCancelUrl: string;
}

export class ConfigError extends Error {}

const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The only place that reads process.env; everything else receives a Config. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const port = integer(env.TOLLGATE_PORT, 8787, 0, 65535, 'TOLLGATE_PORT', problems);
  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const adminToken = env.TOLLGATE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) problems.push('TOLLGATE_ADMIN_TOKEN must be at least 16 characters');
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const natsUrl = env.NATS_URL || undefined;
  if (natsUrl !== undefined && !natsUrl.split(',').every((url) => /^(nats|tls):\/\/[^\s/]+\/?$/.test(url.trim()))) {
    problems.push('NATS_URL must be nats:// or tls:// URLs, comma-separated (e.g. nats://127.0.0.1:4222)');
  }
  const eventsStream = env.TOLLGATE_EVENTS_STREAM || 'tollgate_events';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(eventsStream)) problems.push(`TOLLGATE_EVENTS_STREAM must be 1-64 letters, digits, _ or - (got "${eventsStream}")`);
  const eventBus = { stream: env.TOLLGATE_EVENT_BUS_STREAM || 'tollgate_outbound', subjectPrefix: env.TOLLGATE_EVENT_BUS_SUBJECT || 'tollgate.events' };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(eventBus.stream)) problems.push(`TOLLGATE_EVENT_BUS_STREAM must be 1-64 letters, digits, _ or - (got "${eventBus.stream}")`);
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(eventBus.subjectPrefix)) problems.push(`TOLLGATE_EVENT_BUS_SUBJECT must be NATS subject tokens separated by dots, no wildcards (got "${eventBus.subjectPrefix}")`);
  const stripe = stripeConfig(env, problems);
  const metricsToken = env.TOLLGATE_METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('TOLLGATE_METRICS_TOKEN must be at least 16 characters');
  const tracing = tracingConfig(env, problems);
  const rateLimits = rateLimitConfig(env, problems);
  const dashboard = dashboardConfig(env, problems);
  const config: Config = {
    host: env.TOLLGATE_HOST || '127.0.0.1',
    port,
    adminToken,
    databaseUrl,
    dataDir: env.TOLLGATE_DATA_DIR || './.tollgate/data',
    pgliteSharedBuffersMb: env.TOLLGATE_PGLITE_SHARED_BUFFERS_MB
      ? integer(env.TOLLGATE_PGLITE_SHARED_BUFFERS_MB, 0, 1, 1024, 'TOLLGATE_PGLITE_SHARED_BUFFERS_MB', problems)
      : undefined,
    logLevel,
    batchWaitMs: integer(env.TOLLGATE_BATCH_WAIT_MS, 1, 0, 100, 'TOLLGATE_BATCH_WAIT_MS', problems),
    batchSizeMax: integer(env.TOLLGATE_BATCH_SIZE_MAX, 512, 1, 10_000, 'TOLLGATE_BATCH_SIZE_MAX', problems),
    sweepIntervalMs: integer(env.TOLLGATE_SWEEP_INTERVAL_MS, 1000, 50, 3_600_000, 'TOLLGATE_SWEEP_INTERVAL_MS', problems),
    eventMaxAgeMs: duration(env.TOLLGATE_EVENT_MAX_AGE, '35d', 'TOLLGATE_EVENT_MAX_AGE', problems),
    eventMaxFutureMs: duration(env.TOLLGATE_EVENT_MAX_FUTURE, '5m', 'TOLLGATE_EVENT_MAX_FUTURE', problems),
    natsUrl,
    eventsStream,
    eventBus,
    workerAckWaitMs: duration(env.TOLLGATE_WORKER_ACK_WAIT, '30s', 'TOLLGATE_WORKER_ACK_WAIT', problems),
    workerPort: env.TOLLGATE_WORKER_PORT ? integer(env.TOLLGATE_WORKER_PORT, 0, 1, 65535, 'TOLLGATE_WORKER_PORT', problems) : undefined,
    stripe,
    operatorName: env.TOLLGATE_OPERATOR_NAME || 'Tollgate',
    paymentsSweepMs: duration(env.TOLLGATE_PAYMENTS_SWEEP_INTERVAL, '1m', 'TOLLGATE_PAYMENTS_SWEEP_INTERVAL', problems),
    metricsToken,
    tracing,
    webhooksAllowPrivate: boolean(env.TOLLGATE_WEBHOOKS_ALLOW_PRIVATE, false, 'TOLLGATE_WEBHOOKS_ALLOW_PRIVATE', problems),
    webhooksTimeoutMs: duration(env.TOLLGATE_WEBHOOKS_TIMEOUT, '10s', 'TOLLGATE_WEBHOOKS_TIMEOUT', problems),
    rateLimits,
    trustProxyHops: integer(env.TOLLGATE_TRUST_PROXY_HOPS, 0, 0, 10, 'TOLLGATE_TRUST_PROXY_HOPS', problems),
    dashboard,
  };
  if (config.operatorName.length > 200) problems.push('TOLLGATE_OPERATOR_NAME must be at most 200 characters');
  if (config.workerAckWaitMs < 1_000) problems.push('TOLLGATE_WORKER_ACK_WAIT must be at least 1s');
  if (config.paymentsSweepMs < 1_000) problems.push('TOLLGATE_PAYMENTS_SWEEP_INTERVAL must be at least 1s');
  if (config.webhooksTimeoutMs < 1_000 || config.webhooksTimeoutMs > 60_000) problems.push('TOLLGATE_WEBHOOKS_TIMEOUT must be from 1s to 60s');
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}

/**
 * Tracing settings alone: the CLI starts tracing before anything else is loaded (see
 * src/observability/tracing.ts), before the whole configuration is checked.
 */
export function tracingConfig(env: NodeJS.ProcessEnv = process.env, problems: string[] = []): TracingConfig | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  if (endpoint === undefined) return undefined;
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(endpoint)) {
    problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL (got "${endpoint}")`);
    return undefined;
  }
  return { tracesUrl: `${endpoint.replace(/\/+$/, '')}/v1/traces`, serviceName: env.OTEL_SERVICE_NAME || 'tollgate' };
}

function rateLimitConfig(env: NodeJS.ProcessEnv, problems: string[]): RateLimitConfig {
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\/\S+$/.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)');
  const onRedisFailure = env.TOLLGATE_RATE_LIMIT_REDIS_FAILURE || 'open';
  if (onRedisFailure !== 'open' && onRedisFailure !== 'closed') problems.push(`TOLLGATE_RATE_LIMIT_REDIS_FAILURE must be open or closed (got "${onRedisFailure}")`);
  const prefix = env.TOLLGATE_RATE_LIMIT_REDIS_PREFIX || 'tollgate:rate:';
  if (!/^[A-Za-z0-9:_.-]{1,100}$/.test(prefix)) problems.push('TOLLGATE_RATE_LIMIT_REDIS_PREFIX must be 1-100 letters, digits, :, _, . or -');
  const timeoutMs = integer(env.TOLLGATE_RATE_LIMIT_REDIS_TIMEOUT_MS, 100, 5, 5_000, 'TOLLGATE_RATE_LIMIT_REDIS_TIMEOUT_MS', problems);
  return {
    perKeyPerSecond: integer(env.TOLLGATE_RATE_LIMIT_PER_KEY, 100, 0, 1_000_000, 'TOLLGATE_RATE_LIMIT_PER_KEY', problems),
    failedAuthPerSecond: integer(env.TOLLGATE_RATE_LIMIT_FAILED_AUTH, 2, 0, 1_000_000, 'TOLLGATE_RATE_LIMIT_FAILED_AUTH', problems),
    burstSeconds: integer(env.TOLLGATE_RATE_LIMIT_BURST_SECONDS, 2, 1, 60, 'TOLLGATE_RATE_LIMIT_BURST_SECONDS', problems),
    redis: redisUrl ? { url: redisUrl, prefix, timeoutMs } : undefined,
    onRedisFailure: onRedisFailure === 'closed' ? 'closed' : 'open',
  };
}

function dashboardConfig(env: NodeJS.ProcessEnv, problems: string[]): DashboardConfig {
  let publicUrl: URL | undefined;
  const raw = env.TOLLGATE_PUBLIC_URL || undefined;
  if (raw !== undefined) {
    try {
      publicUrl = new URL(raw);
    } catch {
      // reported below
    }
    // An origin only: links are built as <origin>/app/portal#token.
    if (!publicUrl || !/^https?:$/.test(publicUrl.protocol) || !/^\/?$/.test(publicUrl.pathname) || publicUrl.search || publicUrl.hash || publicUrl.username) {
      problems.push(`TOLLGATE_PUBLIC_URL must be an http:// or https:// origin without a path, e.g. https://billing.example.com (got "${raw}")`);
      publicUrl = undefined;
    }
  }
  const dashboard = {
    publicUrl,
    customerSessionMs: duration(env.TOLLGATE_CUSTOMER_SESSION_TTL, '12h', 'TOLLGATE_CUSTOMER_SESSION_TTL', problems),
    operatorSessionMs: duration(env.TOLLGATE_OPERATOR_SESSION_TTL, '8h', 'TOLLGATE_OPERATOR_SESSION_TTL', problems),
    idleMs: duration(env.TOLLGATE_SESSION_IDLE_TIMEOUT, '60m', 'TOLLGATE_SESSION_IDLE_TIMEOUT', problems),
  };
  const DAY_MS = 86_400_000;
  if (dashboard.customerSessionMs < 60_000 || dashboard.customerSessionMs > 30 * DAY_MS) problems.push('TOLLGATE_CUSTOMER_SESSION_TTL must be from 1m to 30d');
  if (dashboard.operatorSessionMs < 60_000 || dashboard.operatorSessionMs > 30 * DAY_MS) problems.push('TOLLGATE_OPERATOR_SESSION_TTL must be from 1m to 30d');
  if (dashboard.idleMs < 60_000 || dashboard.idleMs > 30 * DAY_MS) problems.push('TOLLGATE_SESSION_IDLE_TIMEOUT must be from 1m to 30d');
  return dashboard;
}

export function generateAdminToken(): string {
  return `tga_${randomBytes(24).toString('base64url')}`;
}

function stripeConfig(env: NodeJS.ProcessEnv, problems: string[]): StripeConfig | undefined {
  const secretKey = env.STRIPE_SECRET_KEY || undefined;
  if (!secretKey) {
    if (env.STRIPE_WEBHOOK_SECRET) problems.push('STRIPE_WEBHOOK_SECRET needs STRIPE_SECRET_KEY');
    return undefined;
  }
  const url = (name: string, fallback?: string): URL | undefined => {
    const raw = env[name] || fallback;
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed;
    } catch {
      // reported below
    }
    problems.push(`${name} must be an http:// or https:// URL (got "${raw}")`);
    return undefined;
  };
  const success = url('STRIPE_CHECKOUT_SUCCESS_URL');
  const cancel = url('STRIPE_CHECKOUT_CANCEL_URL');
  if (!success || !cancel) problems.push('STRIPE_SECRET_KEY needs STRIPE_CHECKOUT_SUCCESS_URL and STRIPE_CHECKOUT_CANCEL_URL (where Checkout returns the customer)');
  return {
    secretKey,
    webhookSecret: env.STRIPE_WEBHOOK_SECRET || undefined,
    apiBase: url('STRIPE_API_BASE'),
    // The raw text: Stripe fills in {CHECKOUT_SESSION_ID}, which URL parsing would percent-encode.
    checkoutSuccessUrl: env.STRIPE_CHECKOUT_SUCCESS_URL ?? '',
    checkoutCancelUrl: env.STRIPE_CHECKOUT_CANCEL_URL ?? '',
  };
}

const DURATION_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "5m", "12h", "35d". */
function duration(raw: string | undefined, fallback: string, name: string, problems: string[]): number {
  const text = raw === undefined || raw === '' ? fallback : raw;
  const match = /^(\d{1,7})([smhd])$/.exec(text);
  if (!match) {
    problems.push(`${name} must be a duration like 90s, 5m, 12h or 35d (got "${text}")`);
    return 0;
  }
  return Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
}

function boolean(raw: string | undefined, fallback: boolean, name: string, problems: string[]): boolean {
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  problems.push(`${name} must be true or false (got "${raw}")`);
  return fallback;
}

function integer(raw: string | undefined, fallback: number, min: number, max: number, name: string, problems: string[]) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return value;
}
