import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, type TestDatabase } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';

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
  it('exports spans for HTTP requests by route, each hot-path batch and the database, and puts the trace id in log lines', async () => {
    const receiver = await startReceiver();
    const port = await freePort();
    const server = tollgate(['serve'], {
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
      // SIGTERM: the buffered spans are sent before the process exits.
      server.child.kill('SIGTERM');
      expect(await server.closed).toBe(0);
    } finally {
      await receiver.close();
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
    const logged = server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const authorizeLog = logged.find((l) => l.msg === 'request completed' && l.trace_id === authorizeSpan!.traceId);
    expect(authorizeLog, 'a log line of the authorize request carries its trace id').toBeDefined();
    expect(authorizeLog.span_id).toMatch(/^[0-9a-f]{16}$/);
  }, 150_000);
});
