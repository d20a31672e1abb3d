import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceOf, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, listEvery, type Api, type TestDatabase } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { testEngine } from '../support/test-db.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';
import { metricNames, parseMetrics, sampleValue } from '../support/prometheus.js';

// NATS mode end to end: a `tollgate serve` publishing to JetStream and `tollgate worker`
// processes writing to one PostgreSQL (PGlite cannot be shared between processes, so this runs
// on the PostgreSQL run only). Exactly once is counted in the database: events and balances.

const natsUrl = process.env.TOLLGATE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const ci = process.env.CI === 'true' || process.env.CI === '1';

async function natsReachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: natsUrl, timeout: 2_000, maxReconnectAttempts: 0 });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

const natsUp = testEngine === 'postgres' ? await natsReachable() : false;
if (testEngine === 'postgres' && !natsUp) {
  if (ci) throw new Error(`CI=true: the NATS JetStream tests are required and NATS at ${natsUrl} is not reachable.`);
  console.warn(`NATS JetStream tests skipped: no NATS at ${natsUrl} (they are required in CI).`);
}

const stream = `tollgate_t_${process.pid}_${randomBytes(3).toString('hex')}`;
// The outbound event bus of this run: its own stream and subjects, so runs never share them.
const busStream = `${stream}_bus`;
const busSubjects = `${stream}.events`;
let seq = 0;
const usage = (c: Fixture, data: Record<string, unknown> = { megapixels: '0.4' }) => ({
  specversion: '1.0',
  id: `nats-${++seq}`,
  source: 'test/nats',
  type: 'usage',
  subject: c.customerId,
  data: { product: 'fal-ai/flux/dev', ...data },
});

/** Every stored event of a customer (all pages). */
function storedEvents(api: Api, customerId: string): Promise<Array<{ source: string; event_id: string; amount: string }>> {
  return listEvery(api, `/v1/events?customer=${customerId}`);
}

/** Waits until the workers stored `count` events of the customer (never more). */
async function waitForStored(api: Api, customerId: string, count: number, timeoutMs = 30_000) {
  const start = Date.now();
  for (;;) {
    const events = await storedEvents(api, customerId);
    if (events.length >= count || Date.now() - start > timeoutMs) return events;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.runIf(testEngine === 'postgres' && natsUp)('usage events through NATS JetStream', () => {
  let database: TestDatabase;
  let api: Api;
  let env: Record<string, string>;
  const startWorker = async (extra: Record<string, string> = {}) => {
    const run = tollgate(['worker'], { ...env, LOG_LEVEL: 'info', ...extra });
    await run.waitFor(/worker started/);
    return run;
  };
  let workers: Array<ReturnType<typeof tollgate>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    const port = await freePort();
    env = { DATABASE_URL: database.url!, NATS_URL: natsUrl, TOLLGATE_EVENTS_STREAM: stream, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_WORKER_ACK_WAIT: '3s', TOLLGATE_EVENT_BUS_STREAM: busStream, TOLLGATE_EVENT_BUS_SUBJECT: busSubjects };
    const server = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(port), LOG_LEVEL: 'info' });
    [, ...workers] = await Promise.all([server.waitFor(/Server listening/), startWorker(), startWorker()]);
    api = apiClient(`http://127.0.0.1:${port}`);
    await seedCatalog(api);
  }, 60_000);

  afterAll(async () => {
    killChildren();
    const nc = await connect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const name of [stream, busStream]) await jsm.streams.delete(name).catch(() => {});
    await nc.close();
    await database?.drop();
  });

  it('answers accepted, duplicate and rejected at once; the workers store each accepted event exactly once', async () => {
    const c = await createCustomer(api, { credit: '100.00' });
    const first = Array.from({ length: 100 }, () => usage(c));
    const bad = [{ ...usage(c), specversion: '0.3' }, { ...usage(c), subject: 'nobody' }, usage(c, { no_such_meter: 1 })];
    const r1 = await api.post('/v1/events', [...first, ...bad]);
    expect(r1.status).toBe(200);
    expect(r1.body.data.map((x: { status: string; code?: string }) => x.code ?? x.status)).toEqual([
      ...first.map(() => 'accepted'),
      'invalid_event',
      'customer_not_found',
      'unknown_meter',
    ]);

    // Two new batches (one repeating an event inside itself) and the first batch again, concurrently.
    const second = Array.from({ length: 100 }, () => usage(c));
    const third = Array.from({ length: 100 }, () => usage(c));
    const [r2, r3, again] = await Promise.all([api.post('/v1/events', [...second, second[0]]), api.post('/v1/events', third), api.post('/v1/events', first)]);
    expect(r2.body.data.map((x: { status: string }) => x.status)).toEqual([...second.map(() => 'accepted'), 'duplicate']);
    expect(r3.body.data.every((x: { status: string }) => x.status === 'accepted')).toBe(true);
    expect(again.body.data.every((x: { status: string }) => x.status === 'duplicate')).toBe(true);

    const stored = await waitForStored(api, c.customerId, 300);
    expect(stored).toHaveLength(300);
    expect(new Set(stored.map((e) => e.event_id))).toEqual(new Set([...first, ...second, ...third].map((e) => e.id)));
    expect(stored.every((e) => e.amount === '0.01')).toBe(true);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '97.00', available: '97.00' });

    // Long after JetStream's window would matter: the database answers duplicate, with the stored id.
    const late = await api.post('/v1/events', [first[0]]);
    expect(late.body.data[0]).toMatchObject({ status: 'duplicate', event: expect.stringMatching(/^evt_/) });
  });

  it('a worker killed with SIGKILL mid-stream loses nothing: its batch is redelivered, still exactly once', async () => {
    const c = await createCustomer(api, { credit: '100.00' });
    const batches = Array.from({ length: 20 }, () => Array.from({ length: 100 }, () => usage(c)));
    let replacement: ReturnType<typeof tollgate> | null = null;
    for (const [i, batch] of batches.entries()) {
      const r = await api.post('/v1/events', batch);
      expect(r.body.data.every((x: { status: string }) => x.status === 'accepted')).toBe(true);
      if (i === 5) workers[0]!.child.kill('SIGKILL');
      if (i === 10) replacement = await startWorker();
    }
    const stored = await waitForStored(api, c.customerId, 2_000);
    expect(stored).toHaveLength(2_000);
    expect(new Set(stored.map((e) => e.event_id)).size).toBe(2_000);
    // The killed worker held fetched, unacked messages: another worker got them again.
    expect(workers[1]!.output() + replacement!.output()).toMatch(/batch has redelivered messages/);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '80.00', available: '80.00' });
    await expectDoubleEntry(database.db);

    // A graceful stop: the batch in hand is finished and acked, then the worker exits 0.
    replacement!.child.kill('SIGTERM');
    expect(await replacement!.exited).toBe(0);
  });

  it('publishes every outbound event to the bus: subject <prefix>.<type>, the event id as message id', async () => {
    const c = await createCustomer(api);
    const nc = await connect({ servers: natsUrl });
    try {
      const js = jetstream(nc);
      const wanted = new Map<string, { subject: string; msgId: string | undefined; body: any }>();
      for (const started = Date.now(); wanted.size < 2 && Date.now() - started < 30_000; ) {
        const consumer = await js.consumers.get(busStream);
        const messages = await consumer.fetch({ max_messages: 1_000, expires: 1_000 });
        for await (const m of messages) {
          const body = m.json<any>();
          if (body.customer_id === c.customerId) wanted.set(body.type, { subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), body });
        }
      }
      const created = wanted.get('customer.created');
      expect(created).toMatchObject({ subject: `${busSubjects}.customer.created`, body: { type: 'customer.created', data: { id: c.customerId } } });
      expect(created!.msgId).toBe(created!.body.id);
      expect(created!.body.id).toMatch(/^msg_/);
      expect(wanted.get('api_key.created')).toMatchObject({ subject: `${busSubjects}.api_key.created`, body: { data: { customer_id: c.customerId } } });
    } finally {
      await nc.close();
    }
  });

  it('a worker with TOLLGATE_WORKER_PORT answers probes and serves its metrics while it writes', async () => {
    const port = await freePort();
    const worker = await startWorker({ TOLLGATE_WORKER_PORT: String(port) });
    const own = apiClient(`http://127.0.0.1:${port}`);
    expect((await own.get('/healthz')).status).toBe(200);
    expect((await own.get('/readyz')).body).toEqual({ status: 'ready' });
    const c = await createCustomer(api, { credit: '10.00' });
    expect((await api.post('/v1/events', Array.from({ length: 50 }, () => usage(c)))).status).toBe(200);
    expect(await waitForStored(api, c.customerId, 50)).toHaveLength(50);
    const metrics = await own.get('/metrics');
    expect(metrics.status).toBe(200);
    // Which worker fetched the events is JetStream's choice: the families are there, the ledger balances.
    expect([...metricNames(metrics.body)]).toEqual(expect.arrayContaining(['tollgate_batch_size', 'tollgate_ingest_lag_seconds', 'tollgate_ledger_imbalance', 'tollgate_nats_consumer_pending']));
    // Everything sent has been written and acked: the shared consumer has no backlog.
    expect(sampleValue(parseMetrics(metrics.body), 'tollgate_nats_consumer_pending', { state: 'pending' })).toBe(0);
    expect(sampleValue(parseMetrics(metrics.body), 'tollgate_ledger_imbalance', { currency: 'USD', state: 'posted' })).toBe(0);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('with NATS unreachable, POST /v1/events answers 503 with Retry-After and the process stays up', async () => {
    const port = await freePort();
    const closed = await freePort();
    const server = tollgate(['serve'], { ...env, NATS_URL: `nats://127.0.0.1:${closed}`, TOLLGATE_PORT: String(port), LOG_LEVEL: 'info' });
    await server.waitFor(/Server listening/);
    const down = apiClient(`http://127.0.0.1:${port}`);
    const c = await createCustomer(down, { credit: '1.00' });
    for (let i = 0; i < 2; i++) {
      const r = await down.post('/v1/events', [usage(c)]);
      expect(r.status).toBe(503);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.body.code).toBe('service_unavailable');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await down.get('/healthz')).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });

  it('when NATS goes away the API answers 503; API and worker reconnect by themselves when it is back; nothing is lost', async () => {
    const proxyPort = await freePort();
    const proxy = tcpProxy(proxyPort, { host: new URL(natsUrl).hostname, port: Number(new URL(natsUrl).port || 4222) });
    await proxy.up();
    const port = await freePort();
    const server = tollgate(['serve'], { ...env, NATS_URL: `nats://127.0.0.1:${proxyPort}`, TOLLGATE_PORT: String(port), LOG_LEVEL: 'info' });
    // From here on the only worker is one behind the same cut.
    const [, cutWorker] = await Promise.all([server.waitFor(/Server listening/), startWorker({ NATS_URL: `nats://127.0.0.1:${proxyPort}` })]);
    workers[1]!.child.kill('SIGTERM');
    expect(await workers[1]!.exited).toBe(0);
    await server.waitFor(/connected to NATS/);
    const viaProxy = apiClient(`http://127.0.0.1:${port}`);
    const c = await createCustomer(viaProxy, { credit: '10.00' });
    const before = [usage(c), usage(c)];
    expect((await viaProxy.post('/v1/events', before)).body.data.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);

    await proxy.down();
    const during = await viaProxy.post('/v1/events', [usage(c)]);
    expect(during.status).toBe(503);
    expect(during.headers.get('retry-after')).toBeTruthy();

    await proxy.up();
    const after = [usage(c), usage(c)];
    let status = 0;
    for (const start = Date.now(); status !== 200 && Date.now() - start < 15_000; ) {
      const r = await viaProxy.post('/v1/events', after);
      status = r.status;
      if (status === 200) expect(r.body.data.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status).toBe(200);
    const stored = await waitForStored(viaProxy, c.customerId, 4);
    expect(stored.map((e) => e.event_id).sort()).toEqual([...before, ...after].map((e) => e.id).sort());
    expect(await balanceOf(viaProxy, c.customerId)).toMatchObject({ posted: '9.96' });
    expect(cutWorker.child.exitCode).toBeNull();
    await proxy.down();
  });
});
