import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/platform/db.js';
import { seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, type Api, type TestDatabase } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';

// Exactly once under failure: a client sends usage events in batches, retrying whatever did not
// get a 2xx, while the server is killed with SIGKILL at random moments and restarted. At the end
// every event is stored once and the ledger charged exactly the rated sum.
// TOLLGATE_CRASH_EVENTS sets the size (default 6,000 here; the 100,000 behind the flag).

const EVENTS = Number(process.env.TOLLGATE_CRASH_EVENTS ?? 6_000);
const BATCH = 500;
const NANO_PER_MILLI_MEGAPIXEL = 25_000n; // 0.025 USD per megapixel

afterAll(killChildren);

interface Target {
  env: Record<string, string>;
  /** Opens the database once the server is gone (PGlite allows one process at a time). */
  open(): Promise<Db>;
  cleanup(): Promise<void>;
}

async function target(): Promise<Target> {
  if (testEngine === 'postgres') {
    const database: TestDatabase = await createTestDatabase();
    return { env: { DATABASE_URL: database.url! }, open: async () => database.db, cleanup: () => database.drop() };
  }
  const dataDir = join(mkdtempSync(join(tmpdir(), 'tollgate-crash-')), 'data');
  return { env: { TOLLGATE_DATA_DIR: dataDir }, open: () => openDb({ dataDir }), cleanup: async () => {} };
}

async function startServe(env: Record<string, string>, port: number) {
  const run = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN });
  const api = apiClient(`http://127.0.0.1:${port}`);
  for (const started = Date.now(); Date.now() - started < 60_000; await sleep(50)) {
    if (run.child.exitCode !== null) throw new Error(`serve exited: ${run.output()}`);
    const ready = await api.get('/readyz', { token: null }).catch(() => null);
    if (ready?.status === 200) return run;
  }
  throw new Error(`serve did not become ready: ${run.output()}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends one batch until the server answers 2xx; a connection error or 5xx is retried. */
async function sendUntilCommitted(api: Api, batch: unknown[]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const reply = await api.post('/v1/events', batch).catch(() => null);
    if (reply && reply.status === 200) {
      expect(reply.body.data.every((r: { status: string }) => r.status === 'accepted' || r.status === 'duplicate')).toBe(true);
      return attempt;
    }
    if (reply && reply.status < 500) throw new Error(`refused: ${reply.status} ${JSON.stringify(reply.body)}`);
    await sleep(Math.min(50 * attempt, 500));
  }
}

describe(`exactly once while the server is killed (${testEngine})`, () => {
  it(`${EVENTS} events in batches of ${BATCH}, SIGKILL at random moments: each stored once, charged exactly`, async () => {
    const t = await target();
    const port = await freePort();
    let server = await startServe(t.env, port);
    const api = apiClient(`http://127.0.0.1:${port}`);
    await seedCatalog(api);
    const customer = await api.post('/v1/customers', { name: 'Crash test', external_id: `crash-${process.pid}`, currency: 'USD' });
    await api.post(`/v1/customers/${customer.body.id}/credit_grants`, { amount: '1000000', category: 'purchased' });

    const events = Array.from({ length: EVENTS }, (_, i) => ({
      specversion: '1.0',
      id: `job-${i}`,
      source: 'crash/gateway',
      type: 'usage',
      subject: customer.body.id,
      data: { product: 'fal-ai/flux/dev', megapixels: ((1 + (i % 977)) / 1000).toFixed(3) },
    }));
    const expected = events.reduce((sum, _e, i) => sum + BigInt(1 + (i % 977)) * NANO_PER_MILLI_MEGAPIXEL, 0n);

    // Before about a third of the batches a kill is armed to land a few milliseconds later, while
    // the batch is being received, written or answered; the server is restarted at once.
    let kills = 0;
    let restarting: Promise<void> = Promise.resolve();
    const crashSoon = () => {
      restarting = (async () => {
        await sleep(Math.floor(Math.random() * 25));
        server.child.kill('SIGKILL');
        await server.exited;
        kills += 1;
        server = await startServe(t.env, port);
      })();
    };
    let retries = 0;
    for (let i = 0; i < events.length; i += BATCH) {
      if (Math.random() < 0.35 || i === BATCH) crashSoon();
      retries += (await sendUntilCommitted(api, events.slice(i, i + BATCH))) - 1;
      await restarting;
    }
    // Send everything once more: all duplicates, nothing changes.
    for (let i = 0; i < events.length; i += BATCH) {
      const again = await api.post('/v1/events', events.slice(i, i + BATCH));
      expect(again.body.data.every((r: { status: string }) => r.status === 'duplicate')).toBe(true);
    }
    server.child.kill('SIGTERM');
    await server.exited;

    const db = await t.open();
    try {
      const [stored] = await db.query<{ n: string; amount: string; charged: string; uncollected: string }>(
        `SELECT count(*)::text AS n, sum(amount)::text AS amount, sum(charged)::text AS charged, sum(uncollected)::text AS uncollected
         FROM usage_events WHERE source = 'crash/gateway'`,
      );
      expect(Number(stored!.n)).toBe(EVENTS);
      expect(BigInt(stored!.amount)).toBe(expected);
      expect(BigInt(stored!.charged)).toBe(expected);
      expect(stored!.uncollected).toBe('0');
      const [account] = await db.query<{ posted: string }>(
        `SELECT (credits_posted - debits_posted)::text AS posted FROM ledger_accounts WHERE customer_id = $1`,
        [customer.body.id],
      );
      expect(BigInt(account!.posted)).toBe(1_000_000n * 1_000_000_000n - expected);
      const [rollup] = await db.query<{ charged: string; n: string }>(
        `SELECT sum(charged)::text AS charged, sum(event_count)::text AS n FROM usage_rollups WHERE customer_id = $1`,
        [customer.body.id],
      );
      expect(BigInt(rollup!.charged)).toBe(expected);
      expect(Number(rollup!.n)).toBe(EVENTS);
      const [totals] = await db.query<{ d: string; c: string }>(`SELECT sum(debits_posted)::text AS d, sum(credits_posted)::text AS c FROM ledger_accounts`);
      expect(totals!.d).toBe(totals!.c);
    } finally {
      if (testEngine === 'pglite') await db.close();
      await t.cleanup();
    }
    console.log(`crash test (${testEngine}): ${EVENTS} events, ${kills} kills, ${retries} retried batches`);
    expect(kills).toBeGreaterThan(0);
  }, 600_000);
});
