import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/platform/db.js';
import { seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, type Api } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';
import { sleep, startServe, target, type Target } from '../support/crash-targets.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';

// Exactly once under failure: a client sends usage events in batches, retrying whatever did not
// get a 2xx, while the server is killed with SIGKILL at random moments and restarted. At the end
// every event is stored once and the ledger charged exactly the rated sum. On PGlite and on
// PostgreSQL; and in NATS mode (PostgreSQL run), where the API process and a worker are killed.
// TOLLGATE_CRASH_EVENTS sets the size (default 6,000 here; the 100,000 behind the flag).

const EVENTS = Number(process.env.TOLLGATE_CRASH_EVENTS ?? 6_000);
const BATCH = 500;
const NANO_PER_MILLI_MEGAPIXEL = 25_000n; // 0.025 USD per megapixel

afterAll(killChildren);

const natsUrl = process.env.TOLLGATE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** The same database plus a JetStream stream of its own, deleted after. */
async function natsTarget(): Promise<Target> {
  const base = await target();
  const stream = `tollgate_crash_${process.pid}_${randomBytes(3).toString('hex')}`;
  return {
    env: { ...base.env, NATS_URL: natsUrl, TOLLGATE_EVENTS_STREAM: stream, TOLLGATE_WORKER_ACK_WAIT: '3s' },
    open: base.open,
    cleanup: async () => {
      const nc = await connect({ servers: natsUrl });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {});
      await nc.close();
      await base.cleanup();
    },
  };
}

async function startWorker(env: Record<string, string>) {
  const run = tollgate(['worker'], { ...env, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'info' });
  await run.waitFor(/worker started/, 60_000);
  return run;
}


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

type Process = Awaited<ReturnType<typeof startServe>>;

/**
 * Sends every event in batches, retrying until each batch gets a 2xx, while before about a third
 * of the batches a kill of the API process or one of `others` is armed to land a few milliseconds later (while the
 * batch is being received, written or answered); the victim is restarted at once.
 */
async function crashRun(t: Target, others: Array<{ name: string; start: () => Promise<Process> }> = []) {
  const port = await freePort();
  const api = apiClient(`http://127.0.0.1:${port}`);
  const roles = [{ name: 'api', start: () => startServe(t.env, port) }, ...others];
  const running = await Promise.all(roles.map((r) => r.start()));
  await seedCatalog(api);
  const customer = await api.post('/v1/customers', { name: 'Crash test', external_id: `crash-${process.pid}-${randomBytes(2).toString('hex')}`, currency: 'USD' });
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

  const kills: Record<string, number> = {};
  let restarting: Promise<void> = Promise.resolve();
  const crashSoon = () => {
    const i = Math.floor(Math.random() * roles.length);
    restarting = (async () => {
      await sleep(Math.floor(Math.random() * 25));
      running[i]!.child.kill('SIGKILL');
      await running[i]!.exited;
      kills[roles[i]!.name] = (kills[roles[i]!.name] ?? 0) + 1;
      running[i] = await roles[i]!.start();
    })();
  };
  let retries = 0;
  for (let i = 0; i < events.length; i += BATCH) {
    if (Math.random() < 0.35 || i === BATCH) crashSoon();
    retries += (await sendUntilCommitted(api, events.slice(i, i + BATCH))) - 1;
    await restarting;
  }
  // Send everything once more: nothing is accepted a second time.
  for (let i = 0; i < events.length; i += BATCH) {
    const again = await api.post('/v1/events', events.slice(i, i + BATCH));
    expect(again.body.data.every((r: { status: string }) => r.status === 'duplicate')).toBe(true);
  }
  return { running, customerId: customer.body.id as string, expected, kills, retries };
}

async function expectExactlyOnce(db: Db, customerId: string, expected: bigint) {
  const [stored] = await db.query<{ n: string; amount: string; charged: string; uncollected: string }>(
    `SELECT count(*)::text AS n, sum(amount)::text AS amount, sum(charged)::text AS charged, sum(uncollected)::text AS uncollected
     FROM usage_events WHERE customer_id = $1`,
    [customerId],
  );
  expect(Number(stored!.n)).toBe(EVENTS);
  expect(BigInt(stored!.amount)).toBe(expected);
  expect(BigInt(stored!.charged)).toBe(expected);
  expect(stored!.uncollected).toBe('0');
  const [account] = await db.query<{ posted: string }>(
    `SELECT (credits_posted - debits_posted)::text AS posted FROM ledger_accounts WHERE customer_id = $1`,
    [customerId],
  );
  expect(BigInt(account!.posted)).toBe(1_000_000n * 1_000_000_000n - expected);
  const [rollup] = await db.query<{ charged: string; n: string }>(
    `SELECT sum(charged)::text AS charged, sum(event_count)::text AS n FROM usage_rollups WHERE customer_id = $1`,
    [customerId],
  );
  expect(BigInt(rollup!.charged)).toBe(expected);
  expect(Number(rollup!.n)).toBe(EVENTS);
  await expectDoubleEntry(db);
}

describe(`exactly once while processes are killed (${testEngine})`, () => {
  it(`${EVENTS} events in batches of ${BATCH}, the server SIGKILLed at random moments: each stored once, charged exactly`, async () => {
    const t = await target();
    const run = await crashRun(t);
    run.running[0]!.child.kill('SIGTERM');
    await run.running[0]!.exited;
    const db = await t.open();
    try {
      await expectExactlyOnce(db, run.customerId, run.expected);
    } finally {
      if (testEngine === 'pglite') await db.close();
      await t.cleanup();
    }
    console.log(`crash test (${testEngine}): ${EVENTS} events, kills ${JSON.stringify(run.kills)}, ${run.retries} retried sends`);
    expect(run.kills.api).toBeGreaterThan(0);
  }, 600_000);

  // NATS mode needs a database shared by processes: the PostgreSQL run (required there in CI).
  it.runIf(testEngine === 'postgres')(`NATS mode: ${EVENTS} events while the API process and a worker are SIGKILLed: each stored once`, async () => {
    const t = await natsTarget();
    try {
      const run = await crashRun(t, [{ name: 'worker', start: () => startWorker(t.env) }]);
      const db = await t.open();
      // Acknowledged by the stream is not yet written: wait for the workers to catch up.
      for (const started = Date.now(); Date.now() - started < 120_000; await sleep(250)) {
        const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM usage_events WHERE customer_id = $1', [run.customerId]);
        if (Number(row!.n) >= EVENTS) break;
      }
      await expectExactlyOnce(db, run.customerId, run.expected);
      console.log(`crash test (NATS): ${EVENTS} events, kills ${JSON.stringify(run.kills)}, ${run.retries} retried sends`);
      expect((run.kills.api ?? 0) + (run.kills.worker ?? 0)).toBeGreaterThan(0);
      for (const p of run.running) p.child.kill('SIGTERM');
    } finally {
      await t.cleanup();
    }
  }, 600_000);
});
