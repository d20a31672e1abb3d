import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, type Api, type TestDatabase } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { adminUrl, testEngine } from '../support/test-db.js';

// PostgreSQL going away and coming back, seen from a `tollgate serve` reaching it through a TCP
// hop the test cuts: requests answer 503 with Retry-After (never a hang, never a 500), nothing
// acknowledged is lost, and the service recovers by itself. (PGlite is in-process: it cannot go away.)

describe.runIf(testEngine === 'postgres')('the database goes away and comes back', () => {
  let database: TestDatabase;
  let proxy: ReturnType<typeof tcpProxy>;
  let api: Api;

  beforeAll(async () => {
    database = await createTestDatabase();
    const proxyPort = await freePort();
    const target = new URL(adminUrl);
    proxy = tcpProxy(proxyPort, { host: target.hostname, port: Number(target.port || 5432) });
    await proxy.up();
    const url = new URL(database.url!);
    url.host = `127.0.0.1:${proxyPort}`;
    const port = await freePort();
    const server = tollgate(['serve'], { DATABASE_URL: url.toString(), TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'info' });
    await server.waitFor(/Server listening/);
    api = apiClient(`http://127.0.0.1:${port}`);
    await seedCatalog(api);
  }, 60_000);

  afterAll(async () => {
    killChildren();
    await proxy?.down();
    await database?.drop();
  });

  it('answers 503 with Retry-After while it is gone, and recovers with nothing acknowledged lost', async () => {
    const c = await createCustomer(api, { credit: '10.00' });
    const event = (id: string) => ({ specversion: '1.0', id, source: 'test/db-down', type: 'usage', subject: c.customerId, data: { product: 'fal-ai/flux/dev', megapixels: 4 } });
    expect((await api.post('/v1/events', [event('before')])).body.data[0].status).toBe('accepted');

    await proxy.down();
    for (const reply of [
      await api.post('/v1/events', [event('during')]),
      await api.post('/v1/authorize', { api_key: c.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 1 } }),
      await api.get(`/v1/customers/${c.customerId}/balance`),
    ]) {
      expect(reply.status).toBe(503);
      expect(reply.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(reply.body.code).toBe('service_unavailable');
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await api.get('/readyz', { token: null })).status).toBe(503);
    expect((await api.get('/healthz', { token: null })).status).toBe(200);

    await proxy.up();
    let recovered = null;
    for (const started = Date.now(); Date.now() - started < 20_000; await new Promise((r) => setTimeout(r, 200))) {
      const reply = await api.post('/v1/events', [event('during')]);
      if (reply.status === 200) {
        recovered = reply;
        break;
      }
      expect(reply.status).toBe(503);
    }
    expect(recovered?.body.data[0].status).toBe('accepted');
    const stored = (await api.get(`/v1/events?customer=${c.customerId}`)).body.data.map((e: { event_id: string }) => e.event_id).sort();
    expect(stored).toEqual(['before', 'during']);
    expect(await balanceOf(api, c.customerId)).toMatchObject({ posted: '9.80' });
  }, 60_000);
});
