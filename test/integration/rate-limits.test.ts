import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';
import { parseMetrics, sampleValue } from '../support/prometheus.js';
import { ManualClock } from '../../src/platform/clock.js';
import { testEngine } from '../support/test-db.js';

// Rate limits in memory, on a clock the tests move: 2 requests per second per key with a burst
// of 2 seconds (4 at once); 1 failed authentication per second per address (2 at once).

let server: TestServer;
const clock = new ManualClock();

beforeAll(async () => {
  server = await startServer({ clock, rateLimits: { perKeyPerSecond: 2, burstSeconds: 2, failedAuthPerSecond: 1 }, trustProxyHops: 1 });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const headersOf = (r: ApiResponse) => ({
  limit: r.headers.get('ratelimit-limit'),
  remaining: r.headers.get('ratelimit-remaining'),
  reset: r.headers.get('ratelimit-reset'),
  retryAfter: r.headers.get('retry-after'),
});

const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });

describe('per API key on the hot path (authorize)', () => {
  let c: Fixture;
  beforeAll(async () => {
    c = await createCustomer(server.api, { credit: '100' });
  });

  it('allows the burst with RateLimit headers counting down, then answers 429 rate_limited with Retry-After', async () => {
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await authorize(server.api, c.apiKey, { megapixels: 1 }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 429]);
    expect(replies.slice(0, 4).map(headersOf)).toEqual([
      { limit: '4', remaining: '3', reset: '1', retryAfter: null },
      { limit: '4', remaining: '2', reset: '1', retryAfter: null },
      { limit: '4', remaining: '1', reset: '2', retryAfter: null },
      { limit: '4', remaining: '0', reset: '2', retryAfter: null },
    ]);
    const refused = replies[4]!;
    expect(headersOf(refused)).toEqual({ limit: '4', remaining: '0', reset: '2', retryAfter: '1' });
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited', type: 'urn:tollgate:error:rate_limited' });
    // The refused request held nothing: four holds of 0.025 each.
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ held: '0.10' });
  });

  it('refills over time: one request after half a second, the whole burst after two', async () => {
    clock.advance(500);
    expect((await authorize(server.api, c.apiKey, { megapixels: 1 })).status).toBe(200);
    expect((await authorize(server.api, c.apiKey, { megapixels: 1 })).status).toBe(429);
    clock.advance(2_000);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await authorize(server.api, c.apiKey, { megapixels: 1 })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
  });

  it('counts requests made with the key as a bearer token in the same bucket', async () => {
    clock.advance(2_000);
    expect((await authorize(server.api, c.apiKey, { megapixels: 1 })).status).toBe(200);
    const me = [];
    for (let i = 0; i < 4; i++) me.push(await server.api.get('/v1/me', { token: c.apiKey }));
    expect(me.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(headersOf(me[2]!)).toMatchObject({ limit: '4', remaining: '0' });
    expect(me[3]!.body.code).toBe('rate_limited');
  });

  it('leaves other keys and the admin token alone', async () => {
    const other = await createCustomer(server.api, { credit: '1' });
    expect((await authorize(server.api, other.apiKey, { megapixels: 1 })).status).toBe(200);
    for (let i = 0; i < 10; i++) expect((await server.api.get(`/v1/customers/${c.customerId}`)).status).toBe(200);
  });
});

describe('per-key limits', () => {
  /** n authorizes in a row with the key: their statuses. */
  const burstOf = (apiKey: string) => async (n: number) => {
    const statuses = [];
    for (let i = 0; i < n; i++) statuses.push((await authorize(server.api, apiKey, { megapixels: 0.1 })).status);
    return statuses;
  };
  /**
   * A key at 1 per second (a burst of 2) within an allowance of 5, its limits cached here and the
   * ask for changed limits its first authorize started answered.
   */
  const keyCachedAtOnePerSecond = async () => {
    const c = await createCustomer(server.api, { credit: '10', key: { rate_limit_max: 5, rate_limit: 1 } });
    const burst = burstOf(c.apiKey);
    expect(await burst(3)).toEqual([200, 200, 429]);
    await server.app.services.accounts.rateLimitChangesChecked();
    return { c, burst };
  };
  /** Once the limit 5 per second applies: 2 s refill the bucket to its burst of 10. */
  const expectFivePerSecond = async (burst: (n: number) => Promise<number[]>) => {
    clock.advance(2_000);
    expect((await burst(11)).filter((status) => status === 200)).toHaveLength(10);
  };

  it('the admin sets rate_limit_max (the allowance) and rate_limit; a customer sets rate_limit within the allowance only', async () => {
    const c = await createCustomer(server.api, { credit: '10', key: { rate_limit_max: 5, rate_limit: 1 } });
    expect((await server.api.get(`/v1/api_keys/${c.apiKeyId}`)).body).toMatchObject({ rate_limit: 1, rate_limit_max: 5 });
    // rate_limit 1 per second: a burst of 2.
    expect([await authorize(server.api, c.apiKey, { megapixels: 1 }), await authorize(server.api, c.apiKey, { megapixels: 1 }), await authorize(server.api, c.apiKey, { megapixels: 1 })].map((r) => r.status)).toEqual([200, 200, 429]);

    clock.advance(10_000);
    const over = await server.api.patch(`/v1/me/api_keys/${c.apiKeyId}`, { rate_limit: 6 }, { token: c.apiKey });
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([{ path: 'rate_limit', message: "must be at most 5 (the key's allowance)" }]);
    const raise = await server.api.patch(`/v1/me/api_keys/${c.apiKeyId}`, { rate_limit_max: 50 }, { token: c.apiKey });
    expect(raise.status).toBe(403);
    // The two PATCHes used the key's burst of 2 (requests with the key count too).
    expect((await server.api.patch(`/v1/me/api_keys/${c.apiKeyId}`, { rate_limit: 5 }, { token: c.apiKey })).status).toBe(429);
    clock.advance(1_000);
    const within = await server.api.patch(`/v1/me/api_keys/${c.apiKeyId}`, { rate_limit: 5 }, { token: c.apiKey });
    expect(within.status).toBe(200);
    expect(within.body).toMatchObject({ rate_limit: 5, rate_limit_max: 5 });

    // 5 per second: a burst of 10.
    clock.advance(10_000);
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await authorize(server.api, c.apiKey, { megapixels: 0.1 })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses[10]).toBe(429);
  });

  it('a limit another instance changed applies within 5 s: each instance asks the database for changed keys that often, while the cached limits answer', async () => {
    const { c, burst } = await keyCachedAtOnePerSecond();
    const accounts = server.app.services.accounts;
    // Another instance took the change: straight into the database, this instance's cache knows nothing of it.
    await server.database.db.query('UPDATE api_keys SET rate_limit = 5 WHERE id = $1', [c.apiKeyId]);
    clock.advance(4_000);
    expect(await burst(3)).toEqual([200, 200, 429]);
    clock.advance(1_000);
    // 5 s since the last ask: this request still goes by 1 per second, and starts the next ask.
    expect(await burst(1)).toEqual([200]);
    await accounts.rateLimitChangesChecked();
    await expectFivePerSecond(burst);
  });

  it.skipIf(testEngine !== 'postgres')('a change stamped before an ask and committed after it is found by the next ask', async () => {
    const { c, burst } = await keyCachedAtOnePerSecond();
    const accounts = server.app.services.accounts;
    // Another instance's change, stamped now and committed only after this instance's next ask.
    let commit!: () => void;
    let stamped!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    const updated = new Promise<void>((resolve) => (stamped = resolve));
    const change = server.database.db.transaction(async (tx) => {
      await tx.query('UPDATE api_keys SET rate_limit = 5 WHERE id = $1', [c.apiKeyId]);
      stamped();
      await committed;
    });
    await updated;
    clock.advance(5_000);
    expect(await burst(1)).toEqual([200]);
    await accounts.rateLimitChangesChecked();
    commit();
    await change;
    clock.advance(2_000);
    expect(await burst(3)).toEqual([200, 200, 429]);
    clock.advance(3_000);
    expect(await burst(1)).toEqual([200]);
    await accounts.rateLimitChangesChecked();
    await expectFivePerSecond(burst);
  });

  it('only a change of the rate limits is stamped for other instances to ask for; this instance applies its own PATCH at once', async () => {
    const c = await createCustomer(server.api, { credit: '10', key: { rate_limit_max: 5, rate_limit: 1 } });
    await authorize(server.api, c.apiKey, { megapixels: 0.1 });
    const stamp = async () => (await server.database.db.query<{ at: Date | null }>('SELECT rate_limits_changed_at AS at FROM api_keys WHERE id = $1', [c.apiKeyId]))[0]!.at;
    expect(await stamp()).toBeNull();
    expect((await server.api.patch(`/v1/api_keys/${c.apiKeyId}`, { name: 'renamed', rate_limit: 1 })).status).toBe(200);
    expect(await stamp()).toBeNull();
    expect((await server.api.patch(`/v1/api_keys/${c.apiKeyId}`, { rate_limit_max: 6 })).status).toBe(200);
    const stamped = await stamp();
    expect(stamped).toBeInstanceOf(Date);
    // The limit applied at once on this instance: rate_limit 1 within the new allowance.
    clock.advance(60_000);
    expect(await burstOf(c.apiKey)(3)).toEqual([200, 200, 429]);
  });

  it('a customer cannot create a key above the default allowance; the admin can raise a key above the default', async () => {
    const c = await createCustomer(server.api, { credit: '10' });
    const mine = await server.api.post('/v1/me/api_keys', { name: 'too fast', rate_limit: 3 }, { token: c.apiKey, idempotencyKey: `rl-${c.customerId}` });
    expect(mine.status).toBe(400);
    expect(mine.body.errors).toEqual([{ path: 'rate_limit', message: "must be at most 2 (the key's allowance)" }]);
    const fast = await server.api.patch(`/v1/api_keys/${c.apiKeyId}`, { rate_limit_max: 10 });
    expect(fast.body).toMatchObject({ rate_limit: null, rate_limit_max: 10 });
    // A bigger bucket fills at the new rate: 10 per second, up to 20.
    clock.advance(2_000);
    const statuses = [];
    for (let i = 0; i < 21; i++) statuses.push((await authorize(server.api, c.apiKey, { megapixels: 0.1 })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
  });
});

describe('failed authentication per client address', () => {
  const bad = 'tg_' + 'x'.repeat(40);

  it('answers 401 within the burst, then 429 for every bearer token from that address (even a valid one) until Retry-After has passed', async () => {
    const c = await createCustomer(server.api, { credit: '1' });
    const first = await server.api.get('/v1/me', { token: bad, ...from('203.0.113.7') });
    const second = await server.api.get('/v1/me', { token: bad, ...from('203.0.113.7') });
    const third = await server.api.get('/v1/me', { token: bad, ...from('203.0.113.7') });
    expect([first.status, second.status, third.status]).toEqual([401, 401, 429]);
    expect(headersOf(first)).toEqual({ limit: '2', remaining: '1', reset: '1', retryAfter: null });
    expect(headersOf(third)).toEqual({ limit: '2', remaining: '0', reset: '2', retryAfter: '1' });
    expect(third.body.code).toBe('rate_limited');

    const valid = await server.api.get('/v1/me', { token: c.apiKey, ...from('203.0.113.7') });
    expect(valid.status).toBe(429);
    const admin = await server.api.get(`/v1/customers/${c.customerId}`, from('203.0.113.7'));
    expect(admin.status).toBe(429);
    // Another address is not affected.
    expect((await server.api.get('/v1/me', { token: c.apiKey, ...from('198.51.100.2') })).status).toBe(200);
    expect((await server.api.get('/v1/me', { token: bad, ...from('198.51.100.2') })).status).toBe(401);

    clock.advance(1_000);
    expect((await server.api.get('/v1/me', { token: c.apiKey, ...from('203.0.113.7') })).status).toBe(200);
    expect((await server.api.get('/v1/me', { token: bad, ...from('203.0.113.7') })).status).toBe(401);
    expect((await server.api.get('/v1/me', { token: bad, ...from('203.0.113.7') })).status).toBe(429);
  });

  it('does not count requests without a bearer token, or routes that need none', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await server.api.get('/v1/me', { token: null, ...from('192.0.2.9') })).status).toBe(401);
      expect((await server.api.get('/healthz', { token: null, ...from('192.0.2.9') })).status).toBe(200);
    }
  });
});

describe('metrics', () => {
  it('counts checks by limit and outcome', async () => {
    const text = (await server.api.get('/metrics')).body as string;
    const samples = parseMetrics(text);
    for (const [limit, outcome] of [['api_key', 'allowed'], ['api_key', 'refused'], ['failed_auth', 'allowed'], ['failed_auth', 'refused']]) {
      expect(sampleValue(samples, 'tollgate_rate_limit_checks_total', { limit: limit!, outcome: outcome! }), `${limit} ${outcome}`).toBeGreaterThan(0);
    }
    expect(sampleValue(samples, 'tollgate_rate_limit_redis_errors_total', {})).toBe(0);
  });
});
