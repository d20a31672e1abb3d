import { afterAll, describe, expect, it } from 'vitest';
import { sleep, startServe, target } from '../support/crash-targets.js';
import { apiClient } from '../support/harness.js';
import { freePort, killChildren } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';
import { startReceiver } from '../support/webhook-receiver.js';

// Nothing lost when the server dies mid-delivery (docs/webhooks.md, "Delivery"): `tollgate serve`
// is killed with SIGKILL while its dispatcher waits on a slow receiver, then restarted; every event
// still arrives, signed, and a repeat carries the same webhook-id. On PGlite and on PostgreSQL.

const CUSTOMERS = 12;
const TIMEOUT = '2s';

afterAll(killChildren);

describe(`webhook delivery across a crash (${testEngine})`, () => {
  it('every event is delivered after a SIGKILL during delivery and a restart', async () => {
    const db = await target();
    const receiver = await startReceiver();
    try {
      const env = { ...db.env, TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: 'true', TOLLGATE_WEBHOOKS_TIMEOUT: TIMEOUT, LOG_LEVEL: 'warn' };
      const port = await freePort();
      const api = apiClient(`http://127.0.0.1:${port}`);
      let server = await startServe(env, port);

      const created = await api.post('/v1/webhook_endpoints', { url: receiver.url, event_types: ['customer.created'] });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      receiver.secrets.push(created.body.secret);
      // The receiver holds every request longer than the process will live (and than its 2 s timeout).
      receiver.behave(() => ({ status: 200, delayMs: 10_000 }));
      const customers: string[] = [];
      for (let i = 0; i < CUSTOMERS; i++) {
        const r = await api.post('/v1/customers', { name: `crash ${i}`, currency: 'USD' });
        expect(r.status).toBe(201);
        customers.push(r.body.id);
      }
      // Wait until deliveries are in flight, then kill the server in the middle of them.
      for (const started = Date.now(); receiver.requests() === 0 && Date.now() - started < 30_000; ) await sleep(20);
      expect(receiver.requests()).toBeGreaterThan(0);
      server.child.kill('SIGKILL');
      await new Promise((resolve) => server.child.once('exit', resolve));

      const inFlight = receiver.requests();
      receiver.behave(() => ({ status: 204 }));
      server = await startServe(env, port);
      const delivered = () => new Set(receiver.received.filter((x) => x.verified).map((x) => x.body.data.id));
      // Claimed deliveries are leased for the timeout plus 5 s: those are sent again after the lease.
      for (const started = Date.now(); customers.some((c) => !delivered().has(c)) && Date.now() - started < 60_000; ) await sleep(100);
      expect([...delivered()].sort()).toEqual([...customers].sort());
      expect(receiver.requests()).toBeGreaterThanOrEqual(CUSTOMERS + inFlight);

      // Repeats only of the same events, with the same webhook-id each time.
      const idsByCustomer = new Map<string, Set<string>>();
      for (const x of receiver.received) {
        expect(x.verified).toBe(true);
        idsByCustomer.set(x.body.data.id, (idsByCustomer.get(x.body.data.id) ?? new Set()).add(x.id));
      }
      for (const ids of idsByCustomer.values()) expect(ids.size).toBe(1);
      // The receiver has each event before the server reads its answer: the log catches up a moment later.
      const statuses = async () => (await api.get(`/v1/webhook_endpoints/${created.body.id}/deliveries?limit=100`)).body.data.map((d: { status: string }) => d.status);
      for (const started = Date.now(); (await statuses()).some((s: string) => s !== 'succeeded') && Date.now() - started < 30_000; ) await sleep(100);
      expect(await statuses()).toEqual(Array(CUSTOMERS).fill('succeeded'));
      server.child.kill('SIGTERM');
      await new Promise((resolve) => server.child.once('exit', resolve));
    } finally {
      await receiver.close();
      await db.cleanup();
    }
  }, 180_000);
});
