import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, type TestDatabase } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';
import { startStripeStandIn } from '../support/stripe-stand-in.js';
import { startReceiver as startWebhookReceiver } from '../support/webhook-receiver.js';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** A local OTLP/HTTP receiver: keeps every span POSTed to /v1/traces (JSON encoding). */
async function startReceiver() {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method === 'POST' && req.url === '/v1/traces') {
      contentTypes.add(req.headers['content-type'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const attributes = Object.fromEntries((s.attributes ?? []).map((a: any) => [a.key, Object.values(a.value)[0]]));
            spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, attributes });
          }
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let database: TestDatabase | null = null;
let dataDir: string | null = null;

beforeAll(async () => {
  if (testEngine === 'postgres') database = await createTestDatabase();
  else dataDir = mkdtempSync(join(tmpdir(), 'tollgate-tracing-'));
});
afterAll(async () => {
  killChildren();
  await database?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  it('exports spans for HTTP requests by route, each hot-path batch, the database, Stripe calls and webhook deliveries, and puts the trace id in log lines', async () => {
    const receiver = await startReceiver();
    const stripe = await startStripeStandIn();
    const hooks = await startWebhookReceiver();
    const port = await freePort();
    const server = tollgate(['serve'], {
      STRIPE_SECRET_KEY: 'sk_test_tracing_0123456789',
      STRIPE_API_BASE: stripe.url,
      STRIPE_CHECKOUT_SUCCESS_URL: 'https://platform.example/ok',
      STRIPE_CHECKOUT_CANCEL_URL: 'https://platform.example/cancel',
      TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: 'true',
      ...(database ? { DATABASE_URL: database.url! } : { TOLLGATE_DATA_DIR: dataDir! }),
      TOLLGATE_PORT: String(port),
      TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'debug',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'tollgate-test',
    });
    try {
      // A fresh embedded database migrates first: slow on a loaded machine.
      await server.waitFor(/Server listening/, 90_000);
      const api = apiClient(`http://127.0.0.1:${port}`);
      await seedCatalog(api);
      const c = await createCustomer(api, { credit: '5.00' });
      const auth = await authorize(api, c.apiKey, { megapixels: 2 });
      expect(auth.status).toBe(200);
      expect((await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: 1 } })).status).toBe(200);
      expect((await api.get('/healthz')).status).toBe(200);
      expect((await api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '10.00' })).status).toBe(201);
      expect((await api.post('/v1/webhook_endpoints', { url: hooks.url, event_types: ['customer.created'] })).status).toBe(201);
      await createCustomer(api);
      for (const started = Date.now(); hooks.requests() === 0 && Date.now() - started < 30_000; ) await new Promise((r) => setTimeout(r, 50));
      expect(hooks.requests()).toBeGreaterThan(0);
      // SIGTERM: the buffered spans are sent before the process exits.
      server.child.kill('SIGTERM');
      expect(await server.closed).toBe(0);
    } finally {
      await receiver.close();
      await stripe.close();
      await hooks.close();
    }

    const { spans } = receiver;
    expect([...receiver.contentTypes]).toEqual(['application/json']);
    const authorizeSpan = spans.find((s) => s.name === 'POST /v1/authorize');
    expect(authorizeSpan, spans.map((s) => s.name).join(', ')).toBeDefined();
    expect(authorizeSpan!.attributes['http.route']).toBe('/v1/authorize');
    expect(spans.some((s) => s.name === 'POST /v1/reservations/:id/settle')).toBe(true);
    // Probes are not traced.
    expect(spans.some((s) => s.name.includes('healthz'))).toBe(false);
    const batches = spans.filter((s) => s.name === 'ledger.batch');
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.every((b) => Number(b.attributes['tollgate.batch.size']) >= 1 && b.parentSpanId === undefined)).toBe(true);
    if (testEngine === 'postgres') {
      // Queries are children of the request or batch that made them.
      const queries = spans.filter((s) => s.name.startsWith('pg.query'));
      expect(queries.some((q) => q.traceId === authorizeSpan!.traceId)).toBe(true);
      expect(queries.some((q) => batches.some((b) => b.spanId === q.parentSpanId))).toBe(true);
    }
    // A Stripe call is a child of the request that made it; a webhook delivery is a root of its own.
    const topUp = spans.find((s) => s.name === 'POST /v1/customers/:id/top_ups')!;
    const checkout = spans.find((s) => s.name === 'stripe checkout.sessions.create');
    expect(checkout, spans.map((s) => s.name).join(', ')).toMatchObject({ traceId: topUp.traceId, attributes: { 'rpc.system': 'stripe', 'rpc.method': 'checkout.sessions.create' } });
    expect(checkout!.parentSpanId).toBeDefined();
    const delivery = spans.find((s) => s.name === 'webhook delivery');
    expect(delivery).toMatchObject({ parentSpanId: undefined, attributes: { 'tollgate.event.type': 'customer.created', 'http.response.status_code': 200 } });
    const logged = server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const authorizeLog = logged.find((l) => l.msg === 'request completed' && l.trace_id === authorizeSpan!.traceId);
    expect(authorizeLog, 'a log line of the authorize request carries its trace id').toBeDefined();
    expect(authorizeLog.span_id).toMatch(/^[0-9a-f]{16}$/);
  }, 150_000);
});
