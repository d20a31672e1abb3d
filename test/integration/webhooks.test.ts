import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { RETRY_DELAYS_MS } from '../../src/webhooks/webhook-rules.js';
import { listEvery, startServer, type Api, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

/**
 * Webhooks as a receiver sees them (docs/webhooks.md): signed per Standard Webhooks and verified
 * with the `standardwebhooks` library, retried through failures, timeouts and a receiver that is
 * down, each event delivered with one webhook-id whatever the number of tries.
 */

let server: TestServer;
let api: Api;
let clock: ManualClock;
const receivers: Receiver[] = [];

beforeAll(async () => {
  clock = new ManualClock(new Date('2031-03-01T10:00:00Z'));
  server = await startServer({ clock, webhooksTimeoutMs: 1_000 });
  api = server.api;
  await seedCatalog(api);
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await server?.close();
});

/** Runs the dispatcher until it finds nothing to do (the background loop does this on its own). */
async function dispatch(): Promise<void> {
  for (let i = 0; i < 100 && (await server.app.services.webhookDispatcher.runOnce()) > 0; i++);
}

/** Dispatches, moving the clock past the first retry delays, until `done` (at most a few rounds). */
async function dispatchUntil(done: () => boolean): Promise<void> {
  for (let round = 0; round < 5 && (await dispatch(), !done()); round++) clock.advance(RETRY_DELAYS_MS[0]! * 1.2 + 1);
}

/** A receiver and an endpoint pointing at it, created through the API with the secret it returns. */
async function endpoint(body: Record<string, unknown> = {}, token?: string, path = '/v1/webhook_endpoints') {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const r = await api.post(path, { url: receiver.url, ...body }, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  receiver.secrets.push(r.body.secret);
  return { receiver, endpoint: r.body };
}

const typesOf = (r: Receiver) => r.received.map((x) => x.body.type);

/** tollgate_webhook_deliveries_total by outcome, as GET /metrics shows it. */
async function deliveryAttempts(): Promise<Record<'delivered' | 'rejected' | 'error', number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const count = (outcome: string) => Number(new RegExp(`^tollgate_webhook_deliveries_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { delivered: count('delivered'), rejected: count('rejected'), error: count('error') };
}

describe('event types', () => {
  it('GET /v1/events/types lists every type with its payload schema; the OpenAPI document has each as a webhook', async () => {
    const types = await api.get('/v1/events/types');
    expect(types.status).toBe(200);
    const names = types.body.data.map((t: { type: string }) => t.type);
    for (const t of ['customer.created', 'api_key.created', 'api_key.revoked', 'credit_grant.created', 'credit_grant.expired', 'balance.low', 'balance.depleted',
      'spend_limit.reached', 'reservation.expired', 'usage.uncollected', 'invoice.finalized', 'invoice.paid', 'invoice.payment_failed', 'payment.succeeded',
      'payment.refunded', 'top_up.failed', 'auto_top_up.disabled', 'webhook_endpoint.disabled']) expect(names).toContain(t);
    expect(types.body.data.find((t: any) => t.type === 'balance.low').data_schema.properties).toHaveProperty('threshold');
    const customer = await createCustomer(api);
    expect((await api.get('/v1/events/types', { token: customer.apiKey })).status).toBe(200);
    const doc = (await api.get('/openapi.json', { token: null })).body;
    expect(Object.keys(doc.webhooks).sort()).toEqual([...names].sort());
    expect(doc.webhooks['customer.created'].post.requestBody.content['application/json'].schema.properties.data.properties).toHaveProperty('billing_mode');
  });
});

describe('delivery', () => {
  it("an operator endpoint gets every customer's events in the order they happened, signed, with the event id as webhook-id", async () => {
    const { receiver } = await endpoint({ description: 'ops' });
    const c = await createCustomer(api, { credit: '5.00' });
    await api.delete(`/v1/api_keys/${c.apiKeyId}`);
    await api.delete(`/v1/api_keys/${c.apiKeyId}`); // a second revocation reports nothing
    await dispatch();
    const mine = receiver.received.filter((x) => x.body.customer_id === c.customerId);
    expect(mine.map((x) => x.body.type)).toEqual(['customer.created', 'credit_grant.created', 'api_key.created', 'api_key.revoked']);
    for (const x of mine) {
      expect(x.verified).toBe(true);
      expect(x.headers['webhook-id']).toBe(x.body.id);
      expect(x.body.id).toMatch(/^msg_/);
    }
    expect(mine[0]!.body.data).toMatchObject({ id: c.customerId, currency: 'USD' });
    expect(mine[1]!.body.data).toMatchObject({ customer_id: c.customerId, amount: '5.00', category: 'purchased' });
    expect(mine[2]!.body.data).not.toHaveProperty('secret');
    expect(mine[3]!.body.data).toMatchObject({ id: c.apiKeyId, status: 'revoked' });
  });

  it('failing, slow and down receivers: retried on the schedule until they recover; every event arrives, duplicates only with the same webhook-id', async () => {
    const attemptsBefore = await deliveryAttempts();
    const { receiver, endpoint: ep } = await endpoint({ event_types: ['customer.created'] });
    // Down first: every request fails; then slow (beyond the 1 s timeout); then fine.
    receiver.behave(() => ({ status: 503, body: 'down for maintenance' }));
    const customers = [];
    for (let i = 0; i < 5; i++) customers.push((await createCustomer(api)).customerId);
    await dispatch();
    expect(receiver.received).toEqual([]);
    let log = await listEvery(api, `/v1/webhook_endpoints/${ep.id}/deliveries`);
    expect(log).toHaveLength(5);
    for (const d of log) {
      expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 503 });
      expect(d.log[0]).toMatchObject({ attempt: 1, status_code: 503, response_excerpt: 'down for maintenance', error: null });
      // Next try after 5 s +-20%.
      const wait = Date.parse(d.next_attempt_at) - clock.now().getTime();
      expect(wait).toBeGreaterThanOrEqual(4_000);
      expect(wait).toBeLessThanOrEqual(6_000);
    }
    receiver.behave(() => ({ status: 200, delayMs: 1_500 }));
    clock.advance(6_001);
    await dispatch();
    log = await listEvery(api, `/v1/webhook_endpoints/${ep.id}/deliveries`);
    for (const d of log) expect(d.log[1]).toMatchObject({ attempt: 2, status_code: null, error: 'timed out after 1000 ms' });
    receiver.behave(() => ({ status: 204 }));
    clock.advance(RETRY_DELAYS_MS[1]! * 1.2 + 1);
    await dispatch();
    log = await listEvery(api, `/v1/webhook_endpoints/${ep.id}/deliveries`);
    for (const d of log) expect(d).toMatchObject({ status: 'succeeded', attempts: 3, last_status_code: 204, next_attempt_at: null });
    // The slow receiver did get (and keep) the timed-out requests: those are the duplicates, same ids.
    const ids = receiver.received.map((x) => x.id);
    const wanted = new Set(log.map((d) => d.event_id));
    expect(new Set(ids)).toEqual(wanted);
    expect(receiver.received.every((x) => x.verified && wanted.has(x.body.id) && x.body.type === 'customer.created')).toBe(true);
    expect(new Set(receiver.received.map((x) => x.body.data.id))).toEqual(new Set(customers));
    const endpointNow = await api.get(`/v1/webhook_endpoints/${ep.id}`);
    expect(endpointNow.body).toMatchObject({ enabled: true, disabled_reason: null });
    // The metrics count each attempt by outcome: 5 answered 503, 5 timed out, 5 delivered here
    // (the endpoints of earlier tests, which answer 200, got these customers' events too).
    const attempts = await deliveryAttempts();
    expect({ rejected: attempts.rejected - attemptsBefore.rejected, error: attempts.error - attemptsBefore.error }).toEqual({ rejected: 5, error: 5 });
    expect(attempts.delivered - attemptsBefore.delivered).toBeGreaterThanOrEqual(5);
  });

  it('a receiver that never answers 2xx: 8 attempts over more than 24 hours, then the endpoint is disabled and an event says so', async () => {
    const ops = await endpoint({ event_types: ['webhook_endpoint.disabled'] });
    const { receiver, endpoint: ep } = await endpoint({ event_types: ['api_key.created'] });
    receiver.behave(() => ({ status: 500 }));
    const start = clock.now().getTime();
    await createCustomer(api);
    await dispatch();
    for (const delay of RETRY_DELAYS_MS) {
      clock.advance(delay * 1.2 + 1);
      await dispatch();
    }
    const [delivery] = await listEvery(api, `/v1/webhook_endpoints/${ep.id}/deliveries`);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 8 });
    const times = delivery.log.map((a: any) => Date.parse(a.attempted_at));
    expect(times[times.length - 1] - times[0]).toBeGreaterThan(24 * 3_600_000);
    expect(times[times.length - 1] - start).toBeLessThan(34 * 3_600_000);
    const after = await api.get(`/v1/webhook_endpoints/${ep.id}`);
    expect(after.body).toMatchObject({ enabled: false });
    expect(after.body.disabled_reason).toMatch(/failed since/);
    expect(ops.receiver.received.map((x) => x.body.data)).toEqual([expect.objectContaining({ id: ep.id, url: ep.url })]);
    // Enabled again by hand, a replay delivers it with the same webhook-id.
    receiver.behave(() => ({ status: 200 }));
    expect((await api.patch(`/v1/webhook_endpoints/${ep.id}`, { enabled: true })).body).toMatchObject({ enabled: true, disabled_reason: null });
    const replay = await api.post(`/v1/webhook_deliveries/${delivery.id}/replay`, {});
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ id: delivery.id, status: 'pending' });
    await dispatch();
    expect(receiver.received.map((x) => x.id)).toEqual([delivery.event_id]);
  });

  it('replaying a time range delivers every wanted event of it again, with the same ids', async () => {
    const { receiver, endpoint: ep } = await endpoint({ event_types: ['customer.created'] });
    const from = clock.now().toISOString();
    for (let i = 0; i < 3; i++) await createCustomer(api);
    clock.advance(1_000);
    const to = clock.now().toISOString();
    await createCustomer(api);
    await dispatch();
    expect(receiver.received).toHaveLength(4);
    const first3 = receiver.received.slice(0, 3).map((x) => x.id);
    const r = await api.post(`/v1/webhook_endpoints/${ep.id}/replay`, { from, to });
    expect(r.body).toEqual({ replayed: 3, next_from: null });
    await dispatch();
    expect(receiver.received.slice(4).map((x) => x.id).sort()).toEqual([...first3].sort());
    expect((await api.post(`/v1/webhook_endpoints/${ep.id}/replay`, { from: to, to: from })).status).toBe(400);
  });

  it('secret rotation: both secrets sign for 24 hours, then only the new one', async () => {
    const { receiver, endpoint: ep } = await endpoint({ event_types: ['customer.created'] });
    const oldSecret = receiver.secrets[0]!;
    const rotated = await api.post(`/v1/webhook_endpoints/${ep.id}/rotate_secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(oldSecret);
    const onlyOld = await startReceiver([oldSecret]);
    const onlyNew = await startReceiver([rotated.body.secret]);
    receivers.push(onlyOld, onlyNew);
    for (const [url, r] of [[onlyOld.url, onlyOld], [onlyNew.url, onlyNew]] as const) {
      expect((await api.patch(`/v1/webhook_endpoints/${ep.id}`, { url })).status).toBe(200);
      await createCustomer(api);
      await dispatch();
      expect(r.received.map((x) => x.verified)).toEqual([true]);
      expect(String(r.received[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    }
    clock.advance(24 * 3_600_000 + 1);
    await createCustomer(api);
    await api.patch(`/v1/webhook_endpoints/${ep.id}`, { url: onlyOld.url });
    await dispatch();
    expect(onlyOld.received.map((x) => x.verified)).toEqual([true, false]);
  });

  it('a response body is read only up to a cap; the log keeps an excerpt', async () => {
    const { receiver, endpoint: ep } = await endpoint({ event_types: ['customer.created'] });
    receiver.behave(() => ({ status: 200, body: 'x'.repeat(5_000_000) }));
    await createCustomer(api);
    await dispatch();
    const [d] = await listEvery(api, `/v1/webhook_endpoints/${ep.id}/deliveries`);
    expect(d.status).toBe('succeeded');
    expect(d.log[0].response_excerpt).toBe('x'.repeat(1_000));
  });
});

describe('per-customer endpoints', () => {
  it("a customer's endpoint (through /v1/me) gets its own customer's events only, including usage", async () => {
    const a = await createCustomer(api, { credit: '0.10' });
    const b = await createCustomer(api, { credit: '10.00' });
    const { receiver, endpoint: ep } = await endpoint({}, a.apiKey, '/v1/me/webhook_endpoints');
    expect(ep.customer_id).toBe(a.customerId);
    for (const c of [a, b]) {
      const r = await authorize(api, c.apiKey, { megapixels: 2 });
      expect((await api.post(`/v1/reservations/${r.body.reservation.id}/settle`, { usage: { megapixels: 8 } })).status).toBe(200);
      await api.post(`/v1/customers/${c.customerId}/api_keys`, { name: 'more' });
    }
    // On a loaded machine an attempt can pass the 1 s timeout: its retry (5 s later) is delivery too.
    await dispatchUntil(() => ['api_key.created', 'usage.uncollected', 'balance.depleted'].every((t) => typesOf(receiver).includes(t)));
    expect(receiver.received.length).toBeGreaterThan(0);
    expect(receiver.received.every((x) => x.body.customer_id === a.customerId && x.verified)).toBe(true);
    expect(typesOf(receiver)).toEqual(expect.arrayContaining(['api_key.created', 'usage.uncollected', 'balance.depleted']));
    const uncollected = receiver.received.find((x) => x.body.type === 'usage.uncollected')!.body.data;
    expect(uncollected).toMatchObject({ customer_id: a.customerId, currency: 'USD', uncollected: '0.10', api_key_id: a.apiKeyId });
    // B cannot see, change or replay A's endpoint; A's own list is just its endpoint.
    for (const r of [
      await api.get(`/v1/me/webhook_endpoints/${ep.id}`, { token: b.apiKey }),
      await api.patch(`/v1/me/webhook_endpoints/${ep.id}`, { enabled: false }, { token: b.apiKey }),
      await api.get(`/v1/me/webhook_endpoints/${ep.id}/deliveries`, { token: b.apiKey }),
      await api.post(`/v1/me/webhook_endpoints/${ep.id}/rotate_secret`, {}, { token: b.apiKey }),
      await api.delete(`/v1/me/webhook_endpoints/${ep.id}`, { token: b.apiKey }),
    ]) expect(r.status).toBe(404);
    expect((await listEvery(api, '/v1/me/webhook_endpoints', a.apiKey)).map((e) => e.id)).toEqual([ep.id]);
    expect(await listEvery(api, '/v1/me/webhook_endpoints', b.apiKey)).toEqual([]);
    expect((await api.get(`/v1/webhook_endpoints?customer=${a.customerId}`)).body.data.map((e: any) => e.id)).toEqual([ep.id]);
  });
});

describe('SSRF guard', () => {
  it('refuses private, loopback and link-local URLs unless TOLLGATE_WEBHOOKS_ALLOW_PRIVATE', async () => {
    const strict = await startServer({ clock, webhooksAllowPrivate: false });
    try {
      for (const url of ['http://127.0.0.1:8080/x', 'http://10.1.2.3/x', 'http://192.168.1.1/x', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x',
        'http://[fe80::1]/x', 'http://[::ffff:127.0.0.1]/x', 'http://localhost/x', 'http://0.0.0.0/x', 'ftp://203.0.113.10/x', 'http://user:pw@203.0.113.10/x']) {
        const r = await strict.api.post('/v1/webhook_endpoints', { url });
        expect(r.status, url).toBe(400);
        expect(r.body.errors[0].path).toBe('url');
      }
      expect((await strict.api.post('/v1/webhook_endpoints', { url: 'https://203.0.113.10/hooks' })).status).toBe(201);
    } finally {
      await strict.close();
    }
  });
});
