import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { buildApp, type App } from '../../src/main.js';
import { ManualClock, type Clock } from '../../src/platform/clock.js';
import { loadConfig, type DashboardConfig, type LogLevel, type RateLimitConfig } from '../../src/platform/config.js';
import { openDb, type Db } from '../../src/platform/db.js';
import { LISTEN_BACKLOG } from '../../src/platform/http.js';
import { databaseUrl, testEngine, withAdmin } from './test-db.js';
import { startStripeStandIn, type StripeStandIn } from './stripe-stand-in.js';
import { LogCapture, recordSecret, recordSecretsIn } from './log-capture.js';

export const STRIPE_WEBHOOK_SECRET = 'whsec_test_tollgate_0123456789';

export const ADMIN_TOKEN = 'tga_test_admin_token_0123456789';

export const STRIPE_SECRET_KEY = 'sk_test_tollgate_0123456789';

export interface TestDatabase {
  db: Db;
  url: string | undefined;
  drop(): Promise<void>;
}

let counter = 0;

/** A fresh database for one test file: in-memory PGlite, or a clone of the run's PostgreSQL template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (testEngine === 'pglite') {
    const db = await openDb({});
    return { db, url: undefined, drop: () => db.close() };
  }
  const name = `tollgate_t_${inject('runId')}_${process.pid}_${++counter}_${randomBytes(2).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${inject('pgTemplate')}`));
  const url = databaseUrl(name);
  const db = await openDb({ databaseUrl: url, poolSize: 8 });
  return {
    db,
    url,
    drop: async () => {
      await db.close();
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

export interface TestServer {
  url: string;
  app: App;
  clock: Clock;
  database: TestDatabase;
  /** The local Stripe stand-in Tollgate's Stripe SDK talks to (null with `stripe: false`). */
  stripe: StripeStandIn | null;
  /** Calls the API as the admin (default) or with a given bearer token. */
  api: Api;
  /** The server's log lines (at debug level unless TEST_LOG_LEVEL says otherwise). */
  logs: LogCapture;
  close(): Promise<void>;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  token?: string | null;
  idempotencyKey?: string;
  rawBody?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export type Api = {
  get<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  post<T = any>(path: string, body?: unknown, options?: RequestOptions): Promise<ApiResponse<T>>;
  patch<T = any>(path: string, body?: unknown, options?: RequestOptions): Promise<ApiResponse<T>>;
  delete<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  request<T = any>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<ApiResponse<T>>;
};

export interface StartOptions {
  clock?: ManualClock;
  backgroundJobs?: boolean;
  sweepIntervalMs?: number;
  database?: TestDatabase;
  /** Point the Stripe SDK at a local stand-in (default); false: no Stripe configured. */
  stripe?: boolean;
  logLevel?: LogLevel;
  metricsToken?: string;
  /** TOLLGATE_WEBHOOKS_ALLOW_PRIVATE (default true: test receivers listen on 127.0.0.1). */
  webhooksAllowPrivate?: boolean;
  webhooksTimeoutMs?: number;
  /** Serve GraphiQL at GET /graphql, as `tollgate dev` does (default false, as `tollgate serve`). */
  graphiql?: boolean;
  /** Rate limits; off unless a test asks (the other tests send requests far faster than a default). */
  rateLimits?: Partial<RateLimitConfig>;
  /** TOLLGATE_TRUST_PROXY_HOPS: tests play several client addresses with X-Forwarded-For. */
  trustProxyHops?: number;
  /** Dashboard sign-in settings (TOLLGATE_PUBLIC_URL, session lifetimes). */
  dashboard?: Partial<DashboardConfig>;
  /** The built browser app served at /app (default dist/app). */
  appDir?: string;
}

const NO_RATE_LIMITS = { perKeyPerSecond: 0, failedAuthPerSecond: 0 };

/** Starts Tollgate on a random port over real HTTP, on the engine this run tests. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  // Logged at debug level (every request) into memory: close() fails on any secret in them.
  const config = {
    ...loadConfig({ LOG_LEVEL: options.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'debug' }),
    adminToken: ADMIN_TOKEN,
    port: 0,
    sweepIntervalMs: options.sweepIntervalMs ?? 200,
    metricsToken: options.metricsToken,
    webhooksAllowPrivate: options.webhooksAllowPrivate ?? true,
    webhooksTimeoutMs: options.webhooksTimeoutMs ?? 2_000,
  };
  config.rateLimits = { ...config.rateLimits, ...NO_RATE_LIMITS, ...options.rateLimits };
  config.trustProxyHops = options.trustProxyHops ?? 0;
  config.dashboard = { ...config.dashboard, ...options.dashboard };
  const logs = new LogCapture(process.env.TEST_LOG_LEVEL !== undefined);
  for (const secret of [ADMIN_TOKEN, STRIPE_WEBHOOK_SECRET, STRIPE_SECRET_KEY, options.metricsToken]) recordSecret(secret);
  const stripe = options.stripe === false ? null : await startStripeStandIn();
  if (stripe) {
    config.stripe = {
      secretKey: STRIPE_SECRET_KEY,
      webhookSecret: STRIPE_WEBHOOK_SECRET,
      apiBase: new URL(stripe.url),
      checkoutSuccessUrl: 'https://platform.example/billing?top_up=success&session={CHECKOUT_SESSION_ID}',
      checkoutCancelUrl: 'https://platform.example/billing?top_up=cancelled',
    };
  }
  const clock = options.clock ?? new ManualClock();
  const app = await buildApp(config, { db: database.db, clock: options.clock, backgroundJobs: options.backgroundJobs ?? false, logStream: logs, graphiql: options.graphiql, appDir: options.appDir });
  // As the production server listens: tests open hundreds of connections at once (1,200 in alerts.test.ts).
  const address = await app.http.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG });
  return {
    url: address,
    app,
    clock,
    database,
    stripe,
    api: apiClient(address),
    logs,
    close: async () => {
      await app.close();
      await stripe?.close();
      if (!options.database) await database.drop();
      const leaks = logs.leaks();
      if (leaks.length > 0) throw new Error(`secrets in the server's logs:\n${leaks.slice(0, 5).map((l) => `${l.secret} in ${l.line.slice(0, 500)}`).join('\n')}`);
    },
  };
}

export function apiClient(baseUrl: string, defaultToken: string = ADMIN_TOKEN): Api {
  const request = async (method: string, path: string, body?: unknown, options: RequestOptions = {}) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    const token = options.token === undefined ? defaultToken : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    recordSecret(token);
    recordSecretsIn(body);
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    let payload: string | undefined;
    if (options.rawBody !== undefined) payload = options.rawBody;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await fetch(baseUrl + path, { method, headers, body: payload });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON (the /docs page): keep the text
    }
    recordSecretsIn(parsed);
    return { status: response.status, body: parsed as any, headers: response.headers };
  };
  return {
    request,
    get: (path, options) => request('GET', path, undefined, options),
    post: (path, body, options) => request('POST', path, body, options),
    patch: (path, body, options) => request('PATCH', path, body, options),
    delete: (path, options) => request('DELETE', path, undefined, options),
  };
}

/** Every item of a list route, following `next_cursor` (100 per page); a non-200 page throws. */
export async function listEvery<T = any>(api: Api, path: string, token?: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r: ApiResponse = await api.get(`${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ''}`, { token });
    if (r.status !== 200) throw new Error(`list ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    items.push(...r.body.data);
    cursor = r.body.next_cursor;
  } while (cursor);
  return items;
}
