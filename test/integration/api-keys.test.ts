import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { startServer, type ApiResponse, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

let server: TestServer;
let clock: ManualClock;

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-01-20T10:00:00.000Z'));
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

const KEY_ID = /^key_[0-9a-z]{26}$/;
const DAY = 86_400;

function expectProblem(r: ApiResponse, status: number, code: string) {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.body).toMatchObject({ type: `urn:tollgate:error:${code}`, status, code });
}

/** The key never shows its secret again: no `secret` field and the secret nowhere in the body. */
function expectNoSecret(body: unknown, secret: string) {
  const text = JSON.stringify(body);
  expect(text).not.toContain(secret);
  expect(text).not.toContain('"secret"');
}

async function newKey(customerId: string, body: Record<string, unknown> = {}) {
  const r = await server.api.post(`/v1/customers/${customerId}/api_keys`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; secret: string; [k: string]: unknown };
}

// FLUX costs 0.025 per megapixel in the seeded catalog: 4 megapixels hold 0.10.
const mp = (megapixels: number | string, extra: Record<string, unknown> = {}) => (key: string) => authorize(server.api, key, { megapixels }, extra);

describe('creating and reading keys', () => {
  it('shows the secret once at creation, with the tg_ prefix, and never again', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '1.00' });
    const created = await api.post(`/v1/customers/${c.customerId}/api_keys`, {
      name: 'render farm',
      spend_limit: { amount: '50', period: 'month' },
      max_concurrency: 8,
      rate_limit: 20,
      expires_at: '2032-01-01T00:00:00Z',
    });
    expect(created.status).toBe(201);
    const secret: string = created.body.secret;
    expect(secret).toMatch(/^tg_[A-Za-z0-9_-]{40}$/);
    expect(created.body).toEqual({
      id: expect.stringMatching(KEY_ID),
      customer_id: c.customerId,
      name: 'render farm',
      prefix: secret.slice(0, 10),
      status: 'active',
      expires_at: '2032-01-01T00:00:00.000Z',
      spend_limit: { amount: '50.00', period: 'month' },
      max_concurrency: 8,
      rate_limit: 20,
      rate_limit_max: null,
      revoked_at: null,
      created_at: clock.now().toISOString(),
      secret,
    });
    const { secret: _shown, ...key } = created.body;

    const got = await api.get(`/v1/api_keys/${key.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(key);
    expectNoSecret(got.body, secret);

    const list = await api.get(`/v1/customers/${c.customerId}/api_keys`);
    expect(list.status).toBe(200);
    expect(list.body.data).toContainEqual(key);
    expectNoSecret(list.body, secret);

    const patched = await api.patch(`/v1/api_keys/${key.id}`, { name: 'renamed' });
    expectNoSecret(patched.body, secret);
    const me = await api.get('/v1/me/api_keys', { token: secret });
    expectNoSecret(me.body, secret);
    const revoked = await api.delete(`/v1/api_keys/${key.id}`);
    expectNoSecret(revoked.body, secret);

    // The secret works as a key until revoked.
    const other = await newKey(c.customerId);
    expect((await authorize(api, other.secret, { megapixels: 1 })).status).toBe(200);
  });

  it('fills defaults and gives every key its own secret', async () => {
    const c = await createCustomer(server.api);
    const a = await newKey(c.customerId);
    const b = await newKey(c.customerId);
    expect(a).toMatchObject({ name: 'API key', status: 'active', expires_at: null, spend_limit: null, max_concurrency: null, revoked_at: null });
    expect(a.secret).not.toBe(b.secret);
    expect(a.id).not.toBe(b.id);
  });

  it('refuses invalid keys with 400, and keys for an unknown customer with 404', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const past = new Date(clock.now().getTime() - 1000).toISOString();
    for (const body of [
      { name: '' },
      { expires_at: past },
      { expires_at: clock.now().toISOString() },
      { expires_at: 'tomorrow' },
      { spend_limit: { amount: '-1', period: 'day' } },
      { spend_limit: { amount: '1', period: 'week' } },
      { spend_limit: { amount: '1' } },
      { spend_limit: { amount: 1, period: 'day' } },
      { spend_limit: { amount: '0.0000000001', period: 'day' } },
      { max_concurrency: 0 },
      { max_concurrency: 1.5 },
      { max_concurrency: '2' },
      { secret: 'tg_chosen_by_me' },
      { prefix: 'tg_abc' },
    ]) {
      expectProblem(await api.post(`/v1/customers/${c.customerId}/api_keys`, body), 400, 'invalid_request');
    }
    expectProblem(await api.post('/v1/customers/cus_00000000000000000000000000/api_keys', {}), 404, 'not_found');
    expectProblem(await api.get('/v1/customers/cus_00000000000000000000000000/api_keys'), 404, 'not_found');
    expectProblem(await api.get('/v1/api_keys/key_00000000000000000000000000'), 404, 'not_found');
    expectProblem(await api.get('/v1/api_keys/cus_00000000000000000000000000'), 400, 'invalid_request');
    expect((await api.get(`/v1/customers/${c.customerId}/api_keys`)).body.data).toHaveLength(1);
  });

  it("lists a customer's keys newest first, page by page, and only that customer's", async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const stranger = await createCustomer(api);
    const ids = [c.apiKeyId];
    for (let i = 0; i < 4; i++) ids.push((await newKey(c.customerId, { name: `k${i}` })).id);
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse = await api.get(`/v1/customers/${c.customerId}/api_keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      sizes.push(page.body.data.length);
      seen.push(...page.body.data.map((k: { id: string }) => k.id));
      expect(page.body.next_cursor).toBe(page.body.has_more ? page.body.data[page.body.data.length - 1].id : null);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual([...ids].reverse());
    expect(seen).not.toContain(stranger.apiKeyId);
  });

  it('replays a key creation retried with the same Idempotency-Key instead of making a second key', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const first = await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'ci' }, { idempotencyKey: `ci-${c.customerId}` });
    const again = await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'ci' }, { idempotencyKey: `ci-${c.customerId}` });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect((await api.get(`/v1/customers/${c.customerId}/api_keys`)).body.data).toHaveLength(2);
    expectProblem(await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'other' }, { idempotencyKey: `ci-${c.customerId}` }), 409, 'idempotency_key_reused');
  });
});

describe('changing keys', () => {
  it('changes the name, the spend limit and max_concurrency, each on its own', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const created = await newKey(c.customerId, { name: 'a', expires_at: '2033-06-01T00:00:00Z' });
    const { secret: _s, ...key } = created;
    const steps: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ name: 'b' }, { name: 'b' }],
      [{ spend_limit: { amount: '12.5', period: 'day' } }, { spend_limit: { amount: '12.50', period: 'day' } }],
      [{ spend_limit: { amount: '0.000000001', period: 'month' } }, { spend_limit: { amount: '0.000000001', period: 'month' } }],
      [{ max_concurrency: 3 }, { max_concurrency: 3 }],
      [{ spend_limit: null }, { spend_limit: null }],
      [{ max_concurrency: null }, { max_concurrency: null }],
      [{ name: 'c', max_concurrency: 100000, spend_limit: { amount: '1', period: 'day' } }, { name: 'c', max_concurrency: 100000, spend_limit: { amount: '1.00', period: 'day' } }],
    ];
    let expected: Record<string, unknown> = key;
    for (const [patch, change] of steps) {
      const r = await api.patch(`/v1/api_keys/${key.id}`, patch);
      expect(r.status, JSON.stringify(patch)).toBe(200);
      expected = { ...expected, ...change };
      expect(r.body).toEqual(expected);
      expect((await api.get(`/v1/api_keys/${key.id}`)).body).toEqual(expected);
    }
  });

  it('refuses to change what is fixed for a key (customer, expiry, secret, status) and bad values', async () => {
    const { api } = server;
    const c = await createCustomer(api);
    const other = await createCustomer(api);
    const before = (await api.get(`/v1/api_keys/${c.apiKeyId}`)).body;
    for (const patch of [
      {},
      { customer_id: other.customerId },
      { expires_at: '2040-01-01T00:00:00Z' },
      { secret: 'tg_x' },
      { prefix: 'tg_x' },
      { status: 'active' },
      { revoked_at: null },
      { max_concurrency: 0 },
      { spend_limit: { amount: '5', period: 'year' } },
      { name: '' },
    ]) {
      expectProblem(await api.patch(`/v1/api_keys/${c.apiKeyId}`, patch), 400, 'invalid_request');
    }
    expect((await api.get(`/v1/api_keys/${c.apiKeyId}`)).body).toEqual(before);
    expectProblem(await api.patch('/v1/api_keys/key_00000000000000000000000000', { name: 'x' }), 404, 'not_found');
    expectProblem(await api.delete('/v1/api_keys/key_00000000000000000000000000'), 404, 'not_found');
  });
});

describe('revocation', () => {
  it('refuses authorize with 401 invalid_api_key at once, right after the key was used', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '5.00' });
    const ok = await authorize(api, c.apiKey, { megapixels: 4 });
    expect(ok.status).toBe(200);
    expect((await api.get('/v1/me', { token: c.apiKey })).status).toBe(200);

    clock.advance(1000);
    const revoked = await api.delete(`/v1/api_keys/${c.apiKeyId}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: c.apiKeyId, status: 'revoked', revoked_at: clock.now().toISOString() });

    expectProblem(await authorize(api, c.apiKey, { megapixels: 4 }), 401, 'invalid_api_key');
    expectProblem(await api.get('/v1/me', { token: c.apiKey }), 401, 'unauthorized');
    expectProblem(await api.get('/v1/pricing', { token: c.apiKey }), 401, 'unauthorized');
    // Nothing was held by the refused call; the job already running may still be settled.
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.10', available: '4.90' });
    const settle = await api.post(`/v1/reservations/${ok.body.reservation.id}/settle`, { usage: { megapixels: 2 } });
    expect(settle.status).toBe(200);
    expect(settle.body).toMatchObject({ charged: '0.05', released: '0.05' });

    // Revoking again changes nothing (the first revocation time stays); the key stays revoked.
    clock.advance(1000);
    const again = await api.delete(`/v1/api_keys/${c.apiKeyId}`);
    expect(again.body).toEqual(revoked.body);
    expect((await api.get(`/v1/api_keys/${c.apiKeyId}`)).body).toMatchObject({ status: 'revoked', revoked_at: revoked.body.revoked_at });
    expect((await api.patch(`/v1/api_keys/${c.apiKeyId}`, { name: 'still revoked' })).body).toMatchObject({ status: 'revoked' });
    expectProblem(await authorize(api, c.apiKey, { megapixels: 4 }), 401, 'invalid_api_key');
  });

  it('takes effect at once on another instance that has the key cached', async () => {
    const { api } = server;
    const other = await startServer({ database: server.database, clock });
    try {
      const c = await createCustomer(api, { credit: '5.00' });
      // Both instances have seen (and cached) the key.
      expect((await authorize(api, c.apiKey, { megapixels: 1 })).status).toBe(200);
      expect((await authorize(other.api, c.apiKey, { megapixels: 1 })).status).toBe(200);
      expect((await api.delete(`/v1/api_keys/${c.apiKeyId}`)).status).toBe(200);
      expectProblem(await authorize(other.api, c.apiKey, { megapixels: 1 }), 401, 'invalid_api_key');
      expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 401, 'invalid_api_key');
      expectProblem(await other.api.get('/v1/me/balance', { token: c.apiKey }), 401, 'unauthorized');
      expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.05' });
    } finally {
      await other.close();
    }
  });

  it('revokes one key and leaves the customer\'s other keys working', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '5.00' });
    const second = await newKey(c.customerId, { name: 'second' });
    expect((await authorize(api, c.apiKey, { megapixels: 1 })).status).toBe(200);
    expect((await authorize(api, second.secret, { megapixels: 1 })).status).toBe(200);
    await api.delete(`/v1/api_keys/${c.apiKeyId}`);
    expectProblem(await authorize(api, c.apiKey, { megapixels: 1 }), 401, 'invalid_api_key');
    const still = await authorize(api, second.secret, { megapixels: 1 });
    expect(still.status).toBe(200);
    expect(still.body.api_key_id).toBe(second.id);
    const list = await api.get(`/v1/customers/${c.customerId}/api_keys`);
    expect(list.body.data.map((k: { id: string; status: string }) => [k.id, k.status])).toEqual([
      [second.id, 'active'],
      [c.apiKeyId, 'revoked'],
    ]);
  });
});

describe('expiry', () => {
  it('stops a key at its expires_at, even right after it was used', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '5.00' });
    const expiresAt = new Date(clock.now().getTime() + 3_600_000);
    const key = await newKey(c.customerId, { name: 'one hour', expires_at: expiresAt.toISOString() });
    expect(key).toMatchObject({ status: 'active', expires_at: expiresAt.toISOString() });

    clock.advance(3_600_000 - 1);
    const last = await authorize(api, key.secret, { megapixels: 4 });
    expect(last.status).toBe(200);
    expect((await api.get('/v1/me', { token: key.secret })).status).toBe(200);

    clock.advance(1);
    expectProblem(await authorize(api, key.secret, { megapixels: 4 }), 401, 'invalid_api_key');
    expectProblem(await api.get('/v1/me', { token: key.secret }), 401, 'unauthorized');
    expect((await api.get(`/v1/api_keys/${key.id}`)).body).toMatchObject({ status: 'expired', revoked_at: null, expires_at: expiresAt.toISOString() });
    const list = await api.get(`/v1/customers/${c.customerId}/api_keys`);
    expect(list.body.data.find((k: { id: string }) => k.id === key.id).status).toBe('expired');
    // The job authorized before expiry is still settled; the key that never expires still works.
    const settle = await api.post(`/v1/reservations/${last.body.reservation.id}/settle`, { usage: { megapixels: 4 } });
    expect(settle.body).toMatchObject({ charged: '0.10' });
    expect((await authorize(api, c.apiKey, { megapixels: 4 })).status).toBe(200);
  });
});

describe('spend limits', () => {
  const atUtc = (iso: string) => {
    const target = new Date(iso);
    expect(target.getTime()).toBeGreaterThan(clock.now().getTime());
    clock.set(target);
  };
  const hold = { hold_seconds: DAY };

  it('per day: counts open holds and settled spend, refuses what would exceed, resets the next UTC day', async () => {
    const { api } = server;
    atUtc('2031-02-10T10:00:00Z');
    const c: Fixture = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '0.25', period: 'day' } } });
    const a1 = await mp(4, hold)(c.apiKey); // 0.10
    const a2 = await mp(4, hold)(c.apiKey); // 0.10
    expect([a1.status, a2.status]).toEqual([200, 200]);

    const over = await mp(4, hold)(c.apiKey); // 0.30 > 0.25
    expectProblem(over, 402, 'spend_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.20', available: '9.80' });

    // Exactly up to the limit is allowed.
    const a3 = await mp(2, hold)(c.apiKey); // 0.05 -> 0.25
    expect(a3.status).toBe(200);
    expectProblem(await mp('0.0000004')(c.apiKey), 402, 'spend_limit_exceeded'); // 0.00000001 more

    // Release gives the whole hold back to the limit.
    await api.post(`/v1/reservations/${a3.body.reservation.id}/release`);
    const a4 = await mp(2, hold)(c.apiKey);
    expect(a4.status).toBe(200);
    await api.post(`/v1/reservations/${a4.body.reservation.id}/release`);

    // Settle counts what was charged and gives back the rest of the hold: 0.025 spent + 0.10 held.
    const settled = await api.post(`/v1/reservations/${a1.body.reservation.id}/settle`, { usage: { megapixels: 1 } });
    expect(settled.body).toMatchObject({ charged: '0.025', released: '0.075' });
    expectProblem(await mp('5.0000004')(c.apiKey), 402, 'spend_limit_exceeded'); // 0.12500001
    const a5 = await mp(5, hold)(c.apiKey); // 0.125 -> exactly 0.25
    expect(a5.status).toBe(200);
    expectProblem(await mp('0.04')(c.apiKey), 402, 'spend_limit_exceeded');

    // The next UTC day, settled spend counts from zero; open holds still count (0.10 + 0.125).
    atUtc('2031-02-11T00:00:00Z');
    expectProblem(await mp('1.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
    const a6 = await mp(1, hold)(c.apiKey); // 0.025 -> 0.25
    expect(a6.status).toBe(200);
    // The spend limit is the key's, the money the customer's: nothing else was touched.
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.975', held: '0.25', available: '9.725' });
  });

  it('per month: a day later in the same month still counts, the first of the next month resets', async () => {
    const { api } = server;
    atUtc('2031-03-30T12:00:00Z');
    const c = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '1.00', period: 'month' } } });
    const a = await mp(24)(c.apiKey); // 0.60
    await api.post(`/v1/reservations/${a.body.reservation.id}/settle`, { usage: { megapixels: 24 } });

    atUtc('2031-03-31T23:59:59Z');
    expectProblem(await mp(20)(c.apiKey), 402, 'spend_limit_exceeded'); // 0.60 + 0.50
    const b = await mp(16, hold)(c.apiKey); // 0.40 -> exactly 1.00
    expect(b.status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 402, 'spend_limit_exceeded');

    atUtc('2031-04-01T00:00:00Z');
    // March's 0.60 no longer counts; the 0.40 hold still does.
    const d = await mp(24)(c.apiKey); // 0.60 -> 1.00
    expect(d.status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 402, 'spend_limit_exceeded');
  });

  it('a settle above the hold counts in full; the key is then refused until the period ends', async () => {
    const { api } = server;
    atUtc('2031-04-02T08:00:00Z');
    const c = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '0.25', period: 'day' } } });
    const a = await mp(4)(c.apiKey); // 0.10
    const s = await api.post(`/v1/reservations/${a.body.reservation.id}/settle`, { usage: { megapixels: 12 } });
    // The job ran: its actual cost is charged even though it is above the key's limit.
    expect(s.body).toMatchObject({ charged: '0.30', released: '0.00', uncollected: '0.00' });
    expectProblem(await mp('0.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
    atUtc('2031-04-03T00:00:00Z');
    expect((await mp(10)(c.apiKey)).status).toBe(200); // exactly 0.25
  });

  it('applies a changed spend limit on the next authorize, and no limit after it is removed', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00' });
    expect((await mp(4)(c.apiKey)).status).toBe(200); // 0.10 held, no limit yet
    await api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '0.15', period: 'day' } });
    expectProblem(await mp(4)(c.apiKey), 402, 'spend_limit_exceeded');
    expect((await mp(2)(c.apiKey)).status).toBe(200); // 0.05 -> 0.15
    await api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: null });
    expect((await mp(100)(c.apiKey)).status).toBe(200);
  });

  it('is per key: another key of the same customer has its own limit', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { spend_limit: { amount: '0.10', period: 'day' } } });
    const free = await newKey(c.customerId, { name: 'no limit' });
    expect((await mp(4)(c.apiKey)).status).toBe(200);
    expectProblem(await mp(4)(c.apiKey), 402, 'spend_limit_exceeded');
    expect((await mp(40)(free.secret)).status).toBe(200);
  });

  it('is checked before the balance: a key over its limit gets spend_limit_exceeded, not insufficient_funds', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.05', key: { spend_limit: { amount: '0.01', period: 'day' } } });
    expectProblem(await mp(4)(c.apiKey), 402, 'spend_limit_exceeded');
    const poor = await newKey(c.customerId);
    const r = await mp(4)(poor.secret);
    expectProblem(r, 402, 'insufficient_funds');
    expect(r.body.available).toBe('0.05');
  });

  /** A usage event charged to `customerId` and sent with `apiKeyId` (none: null): 0.025 per megapixel. */
  const usage = async (customerId: string, apiKeyId: string | null, megapixels: number) => {
    const data = { product: 'fal-ai/flux/dev', megapixels, ...(apiKeyId ? { api_key_id: apiKeyId } : {}) };
    const r = await server.api.post('/v1/events', { specversion: '1.0', id: `usage-${Math.random()}`, source: 'api-keys/test', type: 'usage', subject: customerId, time: clock.now().toISOString(), data });
    expect(r.body.data?.[0]?.status, JSON.stringify(r.body)).toBe('accepted');
  };
  const spend = async (apiKey: string, held: number, used: number) => {
    const a = await mp(held)(apiKey);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect((await server.api.post(`/v1/reservations/${a.body.reservation.id}/settle`, { usage: { megapixels: used } })).status).toBe(200);
  };

  it("a limit set later counts the key's spend so far in its period: settles and usage events sent with it, nothing else", async () => {
    const { api } = server;
    atUtc('2031-05-10T10:00:00Z');
    const c = await createCustomer(api, { credit: '100.00' });
    const other = await newKey(c.customerId, { name: 'other' });
    await spend(c.apiKey, 4, 12); // 0.30: 0.10 captured, 0.20 charged above the hold
    await usage(c.customerId, c.apiKeyId, 8); // 0.20
    await spend(other.secret, 4, 4); // another key's 0.10
    await usage(c.customerId, other.id, 40); // another key's 1.00
    await usage(c.customerId, null, 20); // the customer's 0.50, no key

    atUtc('2031-05-11T09:00:00Z');
    await spend(c.apiKey, 2, 2); // 0.05
    const open = await mp(4, hold)(c.apiKey); // 0.10 held
    expect(open.status).toBe(200);

    // This month: 0.55 spent and 0.10 held leave 0.35 of 1.00.
    expect((await api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '1.00', period: 'month' } })).status).toBe(200);
    expectProblem(await mp('14.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
    const rest = await mp(14)(c.apiKey); // 0.35
    expect(rest.status).toBe(200);
    await api.post(`/v1/reservations/${rest.body.reservation.id}/release`);

    // This day: 0.05 spent and 0.10 held leave 0.05 of 0.20.
    expect((await api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '0.20', period: 'day' } })).status).toBe(200);
    expectProblem(await mp('2.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
    expect((await mp(2)(c.apiKey)).status).toBe(200);
  });

  it('a limit set while the key spends counts every settle and usage event once', async () => {
    const { api } = server;
    atUtc('2031-05-12T10:00:00Z');
    // For each customer the limit is set at another moment of 60 settles of 0.025 and 12 usage
    // events of 0.10 (2.70 in all); then exactly 2.30 more reaches the limit of 5.00.
    const keys = await Promise.all([0, 5, 10, 20, 40, 80].map(async (delayMs) => {
      const c = await createCustomer(api, { credit: '20.00' });
      const spending = Promise.all([
        ...Array.from({ length: 60 }, () => spend(c.apiKey, 1, 1)),
        ...Array.from({ length: 12 }, () => usage(c.customerId, c.apiKeyId, 4)),
      ]);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      expect((await api.patch(`/v1/api_keys/${c.apiKeyId}`, { spend_limit: { amount: '5.00', period: 'day' } })).status).toBe(200);
      await spending;
      return c;
    }));
    for (const c of keys) {
      expectProblem(await mp('92.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
      expect((await mp(92)(c.apiKey)).status).toBe(200); // 2.30
      expectProblem(await mp('0.0000004')(c.apiKey), 402, 'spend_limit_exceeded');
    }
  });
});

describe('max_concurrency', () => {
  it('allows N open reservations, refuses the next with 429, and frees a slot on release or settle', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { max_concurrency: 2 } });
    const a1 = await mp(1)(c.apiKey);
    const a2 = await mp(1)(c.apiKey);
    expect([a1.status, a2.status]).toEqual([200, 200]);
    const refused = await mp(1)(c.apiKey);
    expectProblem(refused, 429, 'concurrency_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.05' });

    await api.post(`/v1/reservations/${a1.body.reservation.id}/release`);
    const a3 = await mp(1)(c.apiKey);
    expect(a3.status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 429, 'concurrency_limit_exceeded');

    await api.post(`/v1/reservations/${a2.body.reservation.id}/settle`, { usage: { megapixels: 1 } });
    expect((await mp(1)(c.apiKey)).status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 429, 'concurrency_limit_exceeded');
  });

  it('lets exactly N of many simultaneous authorizes through', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { max_concurrency: 3 } });
    const results = await Promise.all(Array.from({ length: 8 }, () => mp(4)(c.apiKey)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    for (const r of results.filter((x) => x.status === 429)) expect(r.body.code).toBe('concurrency_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.30', available: '9.70' });
  });

  it('frees the slot of a hold that expired', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { max_concurrency: 1 } });
    const first = await mp(4, { hold_seconds: 30 })(c.apiKey);
    expect(first.status).toBe(200);
    expectProblem(await mp(4)(c.apiKey), 429, 'concurrency_limit_exceeded');
    clock.advance(30_000);
    const next = await mp(4)(c.apiKey);
    expect(next.status).toBe(200);
    expect((await api.get(`/v1/reservations/${first.body.reservation.id}`)).body.status).toBe('expired');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.10', available: '9.90' });
  });

  it('applies a changed max_concurrency at once and counts per key', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '10.00', key: { max_concurrency: 1 } });
    expect((await mp(1)(c.apiKey)).status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 429, 'concurrency_limit_exceeded');
    const sibling = await newKey(c.customerId, { max_concurrency: 1 });
    expect((await mp(1)(sibling.secret)).status).toBe(200);

    await api.patch(`/v1/api_keys/${c.apiKeyId}`, { max_concurrency: 2 });
    expect((await mp(1)(c.apiKey)).status).toBe(200);
    expectProblem(await mp(1)(c.apiKey), 429, 'concurrency_limit_exceeded');
    await api.patch(`/v1/api_keys/${c.apiKeyId}`, { max_concurrency: null });
    for (let i = 0; i < 3; i++) expect((await mp(1)(c.apiKey)).status).toBe(200);
    // Lowering below what is open refuses new work; the open reservations stay.
    await api.patch(`/v1/api_keys/${c.apiKeyId}`, { max_concurrency: 1 });
    expectProblem(await mp(1)(c.apiKey), 429, 'concurrency_limit_exceeded');
    expect(await balanceOf(api, c.customerId)).toMatchObject({ held: '0.15' });
  });

  it('is checked before the spend limit and the balance', async () => {
    const { api } = server;
    const c = await createCustomer(api, { credit: '0.10', key: { max_concurrency: 1, spend_limit: { amount: '0.10', period: 'day' } } });
    expect((await mp(4)(c.apiKey)).status).toBe(200); // uses the whole limit and the whole balance
    expectProblem(await mp(4)(c.apiKey), 429, 'concurrency_limit_exceeded');
  });
});

describe('self-service keys on /v1/me/api_keys', () => {
  let c: Fixture;
  let stranger: Fixture;
  beforeAll(async () => {
    c = await createCustomer(server.api, { credit: '5.00' });
    stranger = await createCustomer(server.api, { credit: '5.00' });
  });

  it('lists only my own keys, without secrets', async () => {
    const { api } = server;
    const mine = await api.get('/v1/me/api_keys', { token: c.apiKey });
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual({ data: [(await api.get(`/v1/api_keys/${c.apiKeyId}`)).body], has_more: false, next_cursor: null });
    expectNoSecret(mine.body, c.apiKey);
    expect(JSON.stringify(mine.body)).not.toContain(stranger.apiKeyId);
  });

  it('creates a key for myself that works at once, and shows its secret once', async () => {
    const { api } = server;
    const created = await api.post('/v1/me/api_keys', { name: 'laptop', max_concurrency: 2 }, { token: c.apiKey });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ customer_id: c.customerId, name: 'laptop', status: 'active', max_concurrency: 2, secret: expect.stringMatching(/^tg_/) });
    const secret = created.body.secret;
    const me = await api.get('/v1/me', { token: secret });
    expect(me.body.id).toBe(c.customerId);
    const auth = await authorize(api, secret, { megapixels: 4 });
    expect(auth.body).toMatchObject({ customer: c.customerId, api_key_id: created.body.id });

    const list = await api.get('/v1/me/api_keys', { token: secret });
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([created.body.id, c.apiKeyId]);
    expectNoSecret(list.body, secret);
    const one = await api.get(`/v1/me/api_keys/${created.body.id}`, { token: c.apiKey });
    expect(one.status).toBe(200);
    expectNoSecret(one.body, secret);
    const { secret: _s, ...withoutSecret } = created.body;
    expect(one.body).toEqual(withoutSecret);

    // Retried with the same Idempotency-Key: the same key, not a second one.
    const body = { name: 'ci' };
    const k1 = await api.post('/v1/me/api_keys', body, { token: c.apiKey, idempotencyKey: 'me-ci' });
    const k2 = await api.post('/v1/me/api_keys', body, { token: c.apiKey, idempotencyKey: 'me-ci' });
    expect(k2.body.id).toBe(k1.body.id);
    // Idempotency keys are scoped to the caller: the same key from another customer is another request.
    const k3 = await api.post('/v1/me/api_keys', body, { token: stranger.apiKey, idempotencyKey: 'me-ci' });
    expect(k3.status).toBe(201);
    expect(k3.body).toMatchObject({ customer_id: stranger.customerId });
    expect(k3.body.id).not.toBe(k1.body.id);
  });

  it('changes and revokes my own keys; revoking takes effect at once', async () => {
    const { api } = server;
    const spare = (await api.post('/v1/me/api_keys', { name: 'spare' }, { token: c.apiKey })).body;
    expect((await authorize(api, spare.secret, { megapixels: 1 })).status).toBe(200);
    const patched = await api.patch(`/v1/me/api_keys/${spare.id}`, { name: 'spare 2', spend_limit: { amount: '1', period: 'day' } }, { token: c.apiKey });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: 'spare 2', spend_limit: { amount: '1.00', period: 'day' } });
    expectProblem(await authorize(api, spare.secret, { megapixels: 40 }), 402, 'spend_limit_exceeded');

    const revoked = await api.delete(`/v1/me/api_keys/${spare.id}`, { token: c.apiKey });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: spare.id, status: 'revoked' });
    expectProblem(await authorize(api, spare.secret, { megapixels: 1 }), 401, 'invalid_api_key');
    expectProblem(await api.get('/v1/me', { token: spare.secret }), 401, 'unauthorized');
    expect((await api.get(`/v1/api_keys/${spare.id}`)).body.status).toBe('revoked');
  });

  it("cannot see, change or revoke another customer's keys (404, nothing leaks)", async () => {
    const { api } = server;
    const target = stranger.apiKeyId;
    expectProblem(await api.get(`/v1/me/api_keys/${target}`, { token: c.apiKey }), 404, 'not_found');
    expectProblem(await api.patch(`/v1/me/api_keys/${target}`, { name: 'mine now' }, { token: c.apiKey }), 404, 'not_found');
    expectProblem(await api.delete(`/v1/me/api_keys/${target}`, { token: c.apiKey }), 404, 'not_found');
    expect((await api.get(`/v1/api_keys/${target}`)).body).toMatchObject({ status: 'active', name: 'test' });
    expect((await authorize(api, stranger.apiKey, { megapixels: 1 })).status).toBe(200);
  });

  it('keeps customer keys and the operator on their own routes', async () => {
    const { api } = server;
    expectProblem(await api.get('/v1/me/api_keys'), 403, 'forbidden');
    expectProblem(await api.post('/v1/me/api_keys', { name: 'x' }), 403, 'forbidden');
    expectProblem(await api.get(`/v1/api_keys/${c.apiKeyId}`, { token: c.apiKey }), 403, 'forbidden');
    expectProblem(await api.get(`/v1/customers/${c.customerId}/api_keys`, { token: c.apiKey }), 403, 'forbidden');
    expectProblem(await api.post(`/v1/customers/${stranger.customerId}/api_keys`, {}, { token: c.apiKey }), 403, 'forbidden');
    expectProblem(await api.delete(`/v1/api_keys/${stranger.apiKeyId}`, { token: c.apiKey }), 403, 'forbidden');
    expectProblem(await api.get('/v1/me/api_keys', { token: null }), 401, 'unauthorized');
  });

  it('a key may revoke itself; it stops working at once', async () => {
    const { api } = server;
    const self = (await api.post('/v1/me/api_keys', { name: 'self' }, { token: c.apiKey })).body;
    const r = await api.delete(`/v1/me/api_keys/${self.id}`, { token: self.secret });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('revoked');
    expectProblem(await api.get('/v1/me/api_keys', { token: self.secret }), 401, 'unauthorized');
    expectProblem(await authorize(api, self.secret, { megapixels: 1 }), 401, 'invalid_api_key');
  });
});
