import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, startServer, type Api, type ApiResponse, type TestDatabase, type TestServer } from '../support/harness.js';
import { toNano } from '../support/ledger-model.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';

// Concurrency through the public API: the balance check lives inside the ledger transaction,
// so parallel requests (in one process or several) can never hold more than there is.

const PARALLEL = 500;
const HOLD = 100_000_000n; // 4 megapixels of fal-ai/flux/dev at 0.025 = 0.10
const ESTIMATE = { megapixels: 4 };

const nano = (n: bigint) => {
  const whole = n / 1_000_000_000n;
  const frac = (n % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${whole}.${frac.padEnd(2, '0')}`;
};
const count = (replies: ApiResponse[], status: number) => replies.filter((r) => r.status === status).length;

/** 500 parallel authorizes against credit for exactly `holds` of them, spread over `apis`. */
async function authorizeStorm(apis: Api[], holds: number) {
  const admin = apis[0]!;
  const c = await createCustomer(admin, { credit: nano(HOLD * BigInt(holds)) });
  const replies = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => authorize(apis[i % apis.length]!, c.apiKey, ESTIMATE)));
  expect(replies.filter((r) => r.status !== 200 && r.status !== 402)).toEqual([]);
  expect(count(replies, 200)).toBe(holds);
  expect(count(replies, 402)).toBe(PARALLEL - holds);
  for (const r of replies.filter((r) => r.status === 402)) expect(r.body.code).toBe('insufficient_funds');
  expect(await balanceOf(admin, c.customerId)).toMatchObject({ available: '0.00', held: nano(HOLD * BigInt(holds)) });
  return { customer: c, reservations: replies.filter((r) => r.status === 200).map((r) => r.body.reservation.id as string) };
}

/**
 * Jobs in parallel over many customers: authorize, then settle (sometimes above the estimate)
 * or release, each step possibly on another process. Afterwards every balance is exactly what
 * the replies say was charged, to the last decimal.
 */
async function settleStorm(apis: Api[], customers: number, jobs: number) {
  const admin = apis[0]!;
  const credit = 4_000_000_000n; // 4.00 each: the last jobs of some customers run out
  const fixtures = await Promise.all(Array.from({ length: customers }, () => createCustomer(admin, { credit: nano(credit) })));
  const charged = new Map<string, bigint>(fixtures.map((f) => [f.customerId, 0n]));
  const outcomes = await Promise.all(
    Array.from({ length: jobs }, async (_, i) => {
      const f = fixtures[i % customers]!;
      const api = apis[i % apis.length]!;
      const estimateMilli = 1_000 + ((i * 7_919) % 9_000); // 1 to 10 megapixels
      const auth = await api.post('/v1/authorize', { api_key: f.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: (estimateMilli / 1000).toFixed(3) } });
      if (auth.status === 402) return 'refused';
      expect(auth.status, JSON.stringify(auth.body)).toBe(200);
      const id = auth.body.reservation.id;
      const other = apis[(i + 1) % apis.length]!;
      if (i % 5 === 0) {
        const release = await other.post(`/v1/reservations/${id}/release`);
        expect(release.status).toBe(200);
        expect(release.body.reservation.released).toBe(auth.body.reservation.amount);
        return 'released';
      }
      const usageMilli = (estimateMilli * (50 + ((i * 31) % 100))) / 100; // 50% to 149% of the estimate
      const settle = await other.post(`/v1/reservations/${id}/settle`, { usage: { megapixels: (usageMilli / 1000).toFixed(5) } });
      expect(settle.status, JSON.stringify(settle.body)).toBe(200);
      const cost = (BigInt(Math.round(usageMilli * 100)) * 25_000n) / 100n;
      const hold = toNano(auth.body.reservation.amount);
      const captured = cost < hold ? cost : hold;
      expect(toNano(settle.body.released)).toBe(hold - captured);
      expect(toNano(settle.body.charged) + toNano(settle.body.uncollected)).toBe(cost);
      charged.set(f.customerId, charged.get(f.customerId)! + toNano(settle.body.charged));
      return 'settled';
    }),
  );
  expect(outcomes.filter((o) => o === 'settled').length).toBeGreaterThan(jobs / 2);
  for (const f of fixtures) {
    const balance = await balanceOf(admin, f.customerId);
    const posted = credit - charged.get(f.customerId)!;
    expect({ available: toNano(balance.available), held: toNano(balance.held), posted: toNano(balance.posted) }).toEqual({ available: posted, held: 0n, posted });
    expect(posted).toBeGreaterThanOrEqual(0n);
  }
  return outcomes;
}

describe('one process', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
    await seedCatalog(server.api);
  });
  afterAll(() => server?.close());

  it(`${PARALLEL} parallel authorizes against credit for exactly 137 holds: exactly 137 succeed`, async () => {
    await authorizeStorm([server.api], 137);
    await expectDoubleEntry(server.database.db);
  });

  it('max_concurrency holds under a parallel burst, and a release makes room', async () => {
    const c = await createCustomer(server.api, { credit: '100.00', key: { max_concurrency: 7 } });
    const replies = await Promise.all(Array.from({ length: 100 }, () => authorize(server.api, c.apiKey, ESTIMATE)));
    expect(count(replies, 200)).toBe(7);
    expect(count(replies, 429)).toBe(93);
    expect(new Set(replies.filter((r) => r.status === 429).map((r) => r.body.code))).toEqual(new Set(['concurrency_limit_exceeded']));
    const first = replies.find((r) => r.status === 200)!;
    expect((await server.api.post(`/v1/reservations/${first.body.reservation.id}/release`)).status).toBe(200);
    expect((await authorize(server.api, c.apiKey, ESTIMATE)).status).toBe(200);
    expect((await authorize(server.api, c.apiKey, ESTIMATE)).status).toBe(429);
  });

  it("a key's spend limit holds under a parallel burst", async () => {
    const c = await createCustomer(server.api, { credit: '100.00', key: { spend_limit: { amount: '1.00', period: 'day' } } });
    const replies = await Promise.all(Array.from({ length: 100 }, () => authorize(server.api, c.apiKey, ESTIMATE)));
    expect(count(replies, 200)).toBe(10);
    expect(count(replies, 402)).toBe(90);
    expect(new Set(replies.filter((r) => r.status === 402).map((r) => r.body.code))).toEqual(new Set(['spend_limit_exceeded']));
    expect(await balanceOf(server.api, c.customerId)).toMatchObject({ available: '99.00', held: '1.00' });
  });

  it('a storm of authorize/settle/release leaves every balance exact and the ledger balanced', async () => {
    await settleStorm([server.api], 12, 400);
    await expectDoubleEntry(server.database.db);
  });

  it('parallel settles and releases of the same reservation resolve it exactly once', async () => {
    const c = await createCustomer(server.api, { credit: '10.00' });
    const auth = await authorize(server.api, c.apiKey, ESTIMATE);
    const id = auth.body.reservation.id;
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0 ? server.api.post(`/v1/reservations/${id}/settle`, { usage: { megapixels: 2 } }) : server.api.post(`/v1/reservations/${id}/release`),
      ),
    );
    expect(replies.filter((r) => r.status !== 200 && r.status !== 409)).toEqual([]);
    const balance = await balanceOf(server.api, c.customerId);
    const reservation = (await server.api.get(`/v1/reservations/${id}`)).body;
    if (reservation.status === 'settled') {
      expect(balance).toMatchObject({ posted: '9.95', held: '0.00', available: '9.95' });
      for (const r of replies.filter((r) => r.status === 200 && r.body.charged !== undefined)) expect(r.body.charged).toBe('0.05');
    } else {
      expect(reservation.status).toBe('released');
      expect(balance).toMatchObject({ posted: '10.00', held: '0.00', available: '10.00' });
    }
    const transactions = (await server.api.get(`/v1/customers/${c.customerId}/transactions`)).body.data;
    expect(transactions.filter((t: { reservation_id: string; kind: string }) => t.reservation_id === id && t.kind !== 'hold').length).toBeLessThanOrEqual(2);
    await expectDoubleEntry(server.database.db);
  });
});

// Two `tollgate serve` processes on one PostgreSQL: the row locks, not the process, keep the
// balance. PGlite is an embedded single-process database, so this only applies to PostgreSQL.
describe.runIf(testEngine === 'postgres')('two server processes on one PostgreSQL', () => {
  let database: TestDatabase;
  let apis: Api[];

  beforeAll(async () => {
    database = await createTestDatabase();
    const processes = await Promise.all(
      [0, 1].map(async () => {
        const port = await freePort();
        const run = tollgate(['serve'], { DATABASE_URL: database.url!, TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'info' });
        await run.waitFor(/Server listening/);
        return apiClient(`http://127.0.0.1:${port}`);
      }),
    );
    apis = processes;
    await seedCatalog(apis[0]!);
  }, 60_000);
  afterAll(async () => {
    killChildren();
    await database?.drop();
  });

  it(`${PARALLEL} parallel authorizes split over both processes: exactly 137 succeed`, async () => {
    await authorizeStorm(apis, 137);
    await expectDoubleEntry(database.db);
  });

  it('a storm with each settle or release sent to the other process leaves every balance exact', async () => {
    await settleStorm(apis, 12, 400);
    await expectDoubleEntry(database.db);
  });
});
