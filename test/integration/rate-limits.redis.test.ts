import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomer, type Fixture } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, startServer, type Api, type ApiResponse, type TestDatabase, type TestServer } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { parseMetrics, sampleValue } from '../support/prometheus.js';
import { testEngine } from '../support/test-db.js';

// Rate limits shared through Redis. The tests that need the real redis-server (127.0.0.1:6379,
// or TOLLGATE_TEST_REDIS_URL) are required in CI and skipped locally without it; the ones where
// Redis is unreachable or stuck need no Redis and always run. Each run uses its own key prefix.

const redisUrl = process.env.TOLLGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisAddress = new URL(redisUrl);
const ci = process.env.CI === 'true' || process.env.CI === '1';
const prefix = `tollgate:test:${process.pid}:${randomBytes(3).toString('hex')}:`;

async function redisReachable(): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

const redisUp = await redisReachable();
if (!redisUp) {
  if (ci) throw new Error(`CI=true: the Redis rate limit tests are required and Redis at ${redisUrl} is not reachable.`);
  console.warn(`Redis rate limit tests skipped: no Redis at ${redisUrl} (they are required in CI).`);
}

afterAll(async () => {
  killChildren();
  if (!redisUp) return;
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const statusesOf = (replies: ApiResponse[]) => replies.map((r) => r.status);
const count = (replies: ApiResponse[], status: number) => replies.filter((r) => r.status === status).length;

describe.runIf(testEngine === 'postgres' && redisUp)('two Tollgate processes share one limit through Redis', () => {
  let database: TestDatabase;
  let a: Api;
  let b: Api;
  let c: Fixture;

  beforeAll(async () => {
    database = await createTestDatabase();
    // 1 request per second per key with a burst of 10 (and 1 failed authentication per second, 10 at once).
    const env = {
      DATABASE_URL: database.url!, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: redisUrl, TOLLGATE_RATE_LIMIT_REDIS_PREFIX: `${prefix}shared:`,
      TOLLGATE_RATE_LIMIT_PER_KEY: '1', TOLLGATE_RATE_LIMIT_FAILED_AUTH: '1', TOLLGATE_RATE_LIMIT_BURST_SECONDS: '10', LOG_LEVEL: 'info',
    };
    const [portA, portB] = [await freePort(), await freePort()];
    const first = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(portA) });
    await first.waitFor(/Server listening/); // migrations run once, by the first
    const second = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(portB) });
    await second.waitFor(/Server listening/);
    a = apiClient(`http://127.0.0.1:${portA}`);
    b = apiClient(`http://127.0.0.1:${portB}`);
    c = await createCustomer(a, { credit: '1' });
  }, 60_000);
  afterAll(async () => {
    killChildren();
    await database?.drop();
  });

  it('a key gets one burst across both processes, not one each; the headers count down across them', async () => {
    const startedMs = Date.now();
    const replies: ApiResponse[] = [];
    for (let i = 0; i < 12; i++) replies.push(await (i % 2 === 0 ? a : b).get('/v1/me', { token: c.apiKey }));
    const elapsedSeconds = (Date.now() - startedMs) / 1000;
    // Alone, each process would allow 10 (20 in all); together they allow the burst of 10, plus
    // what refilled (1 a second) while the requests ran.
    expect(count(replies, 200)).toBeGreaterThanOrEqual(10);
    expect(count(replies, 200)).toBeLessThanOrEqual(10 + Math.ceil(elapsedSeconds));
    expect(count(replies, 200) + count(replies, 429)).toBe(12);
    expect(replies[0]!.headers.get('ratelimit-limit')).toBe('10');
    expect(replies.slice(0, 4).map((r) => r.headers.get('ratelimit-remaining'))).toEqual(['9', '8', '7', '6']);
    // Both processes now refuse the key.
    for (const api of [a, b]) {
      const refused = await api.get('/v1/me', { token: c.apiKey });
      expect(refused.status, JSON.stringify(statusesOf(replies))).toBe(429);
      expect(refused.body.code).toBe('rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
  });

  it('failed authentications from one address are counted across both processes', async () => {
    const bad = `tg_${'y'.repeat(40)}`;
    const startedMs = Date.now();
    const replies: ApiResponse[] = [];
    for (let i = 0; i < 14; i++) replies.push(await (i % 2 === 0 ? a : b).get('/v1/me', { token: bad }));
    const elapsedSeconds = (Date.now() - startedMs) / 1000;
    expect(count(replies, 401)).toBeGreaterThanOrEqual(10);
    expect(count(replies, 401)).toBeLessThanOrEqual(10 + Math.ceil(elapsedSeconds));
    expect(count(replies, 429)).toBeGreaterThan(0);
  });
});

/** A TCP hop to Redis that can be frozen: connections stay open, nothing gets through (a stuck Redis). */
function freezableProxy(listenPort: number) {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(redisAddress.port || 6379), redisAddress.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (d) => frozen || upstream.write(d));
    upstream.on('data', (d) => frozen || client.write(d));
  });
  return {
    listen: () => new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve())),
    freeze: (on: boolean) => void (frozen = on),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function limitedServer(redisPort: number, onRedisFailure: 'open' | 'closed'): Promise<TestServer> {
  return startServer({
    rateLimits: {
      perKeyPerSecond: 1, burstSeconds: 2, failedAuthPerSecond: 1, onRedisFailure,
      redis: { url: `redis://127.0.0.1:${redisPort}`, prefix: `${prefix}${onRedisFailure}:${redisPort}:`, timeoutMs: 50 },
    },
  });
}

const metricValue = async (server: TestServer, name: string, labels: Record<string, string> = {}) =>
  sampleValue(parseMetrics((await server.api.get('/metrics')).body), name, labels) ?? 0;

describe('Redis unreachable: the failure policy decides, at once', () => {
  it('open: requests pass without RateLimit headers, and the errors are counted', async () => {
    const server = await limitedServer(await freePort(), 'open');
    try {
      const c = await createCustomer(server.api, { credit: '1' });
      const replies: ApiResponse[] = [];
      for (let i = 0; i < 5; i++) replies.push(await server.api.get('/v1/me', { token: c.apiKey }));
      expect(statusesOf(replies)).toEqual([200, 200, 200, 200, 200]);
      expect(replies[0]!.headers.get('ratelimit-limit')).toBeNull();
      expect(await metricValue(server, 'tollgate_rate_limit_redis_errors_total')).toBeGreaterThanOrEqual(5);
      expect(await metricValue(server, 'tollgate_rate_limit_checks_total', { limit: 'api_key', outcome: 'store_failed' })).toBe(5);
    } finally {
      await server.close();
    }
  });

  it('closed: requests that need a check are refused with 503 and Retry-After; the admin token is not limited', async () => {
    const server = await limitedServer(await freePort(), 'closed');
    try {
      const c = await createCustomer(server.api, { credit: '1' });
      const refused = await server.api.get('/v1/me', { token: c.apiKey });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body).toMatchObject({ code: 'service_unavailable' });
      const bad = await server.api.get('/v1/me', { token: `tg_${'z'.repeat(40)}` });
      expect(bad.status).toBe(503);
      expect((await server.api.get(`/v1/customers/${c.customerId}`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('a server that accepts connections and never answers does not hold a request up', async () => {
    const silent = createServer(() => {});
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', () => resolve()));
    const server = await limitedServer(port, 'open');
    try {
      const c = await createCustomer(server.api, { credit: '1' });
      const replies: ApiResponse[] = [];
      for (let i = 0; i < 3; i++) replies.push(await server.api.get('/v1/me', { token: c.apiKey }));
      expect(statusesOf(replies)).toEqual([200, 200, 200]);
    } finally {
      await server.close();
      silent.close();
    }
  }, 20_000);
});

describe.runIf(redisUp)('Redis going away and coming back (one process)', () => {
  it('limits through Redis; cut: fails open; stuck: the check times out and fails open; back: limits again', async () => {
    const port = await freePort();
    const proxy = freezableProxy(port);
    await proxy.listen();
    const server = await limitedServer(port, 'open');
    try {
      const c = await createCustomer(server.api, { credit: '1' });
      const burst: ApiResponse[] = [];
      for (let i = 0; i < 3; i++) burst.push(await server.api.get('/v1/me', { token: c.apiKey }));
      expect(statusesOf(burst)).toEqual([200, 200, 429]);

      proxy.freeze(true);
      const stuck: ApiResponse[] = [];
      for (let i = 0; i < 3; i++) stuck.push(await server.api.get('/v1/me', { token: c.apiKey }));
      expect(statusesOf(stuck)).toEqual([200, 200, 200]);
      expect(stuck[0]!.headers.get('ratelimit-limit')).toBeNull();
      expect(await metricValue(server, 'tollgate_rate_limit_checks_total', { limit: 'api_key', outcome: 'store_failed' })).toBe(3);
      proxy.freeze(false);
      await proxy.close();

      const cut = await server.api.get('/v1/me', { token: c.apiKey });
      expect(cut.status).toBe(200);
      expect(cut.headers.get('ratelimit-limit')).toBeNull();

      // Back: the client reconnects by itself (every 2 s at most) and limits again.
      const back = freezableProxy(port);
      await back.listen();
      try {
        let limited: ApiResponse | undefined;
        for (let i = 0; i < 100 && !limited; i++) {
          const r = await server.api.get('/v1/me', { token: c.apiKey });
          if (r.headers.get('ratelimit-limit') !== null) limited = r;
          else await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(limited?.headers.get('ratelimit-limit')).toBe('2');
      } finally {
        await back.close();
      }
    } finally {
      await server.close();
    }
  }, 30_000);
});
