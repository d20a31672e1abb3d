import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, createCustomer, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, startServer, type TestServer } from '../support/harness.js';
import { LogCapture, recordSecret } from '../support/log-capture.js';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ logLevel: 'trace' });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

describe('x-request-id', () => {
  it('echoes a sane x-request-id and puts it in problem+json bodies and log lines', async () => {
    const id = 'gw-7f3a9c2e.req:42';
    const ok = await server.api.get('/v1/customers?limit=1', { headers: { 'x-request-id': id } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-request-id')).toBe(id);
    const refused = await server.api.get('/v1/customers', { token: 'wrong_token_0123456789abcdef', headers: { 'x-request-id': `${id}-2` } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toBe(`${id}-2`);
    expect(refused.body).toMatchObject({ code: 'unauthorized', request_id: `${id}-2` });
    const lines = server.logs.parsed().filter((l) => l.request_id === id);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
  });

  it('replaces a missing, overlong or odd x-request-id with a generated one', async () => {
    for (const sent of [undefined, 'x'.repeat(129), 'has space', 'quote"d', '']) {
      const r = await server.api.get('/v1/nothing-here', { headers: sent === undefined ? {} : { 'x-request-id': sent } });
      expect(r.status).toBe(404);
      const id = r.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.body.request_id).toBe(id);
    }
    // A malformed URL fails before any hook runs, and still carries one.
    const bad = await server.api.get('/v1/customers/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body.request_id).toBe(bad.headers.get('x-request-id'));
  });
});

describe('log redaction', () => {
  it('writes no API key, admin token, Stripe key or webhook secret into any log line, at trace level', async () => {
    const before = server.logs.lines.length;
    const { api } = server;
    // Keys made by the operator and by the customer itself; authorize with them (api_key in the body).
    const c = await createCustomer(api, { credit: '5.00' });
    const own = await api.post('/v1/me/api_keys', { name: 'second' }, { token: c.apiKey });
    expect(own.status).toBe(201);
    for (const key of [c.apiKey, own.body.secret]) {
      const auth = await authorize(api, key, { megapixels: 1 });
      expect(auth.status).toBe(200);
      expect((await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: 1 } })).status).toBe(200);
      expect((await api.get('/v1/me/balance', { token: key })).status).toBe(200);
    }
    // A top-up through Stripe Checkout (the stand-in) and its signed webhook.
    const topUp = await api.post(`/v1/customers/${c.customerId}/top_ups`, { amount: '10.00' });
    expect(topUp.status).toBe(201);
    const sessionId = topUp.body.url.split('/').pop();
    const event = JSON.stringify({
      id: `evt_logs_${process.pid}`, object: 'event', type: 'checkout.session.completed', created: Math.floor(Date.now() / 1000),
      data: { object: { id: sessionId, object: 'checkout.session', payment_status: 'paid', payment_intent: 'pi_logs', amount_total: 1000, currency: 'usd', metadata: { tollgate_payment_id: topUp.body.id } } },
    });
    const signature = new Stripe('sk_test_signer_only').webhooks.generateTestHeaderString({ payload: event, secret: STRIPE_WEBHOOK_SECRET });
    expect((await api.post('/v1/stripe/webhook', undefined, { token: null, rawBody: event, headers: { 'stripe-signature': signature } })).status).toBe(200);
    // Failed authentication: a wrong admin token, a revoked key, a key secret sent to an admin route.
    const wrong = 'tga_wrong_admin_token_0123456789';
    recordSecret(wrong);
    expect((await api.get('/v1/customers', { token: wrong })).status).toBe(401);
    expect((await api.delete(`/v1/api_keys/${own.body.id}`)).status).toBe(200);
    expect((await authorize(api, own.body.secret, { megapixels: 1 })).status).toBe(401);
    expect((await api.get('/v1/customers', { token: c.apiKey })).status).toBe(403);

    const lines = server.logs.lines.slice(before);
    expect(lines.length).toBeGreaterThan(20); // request logging is on: the scan below has something to read
    const secrets = [c.apiKey, own.body.secret, ADMIN_TOKEN, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, wrong];
    for (const secret of secrets) expect(lines.filter((l) => l.includes(secret)), secret.slice(0, 6)).toEqual([]);
    expect(server.logs.leaks()).toEqual([]);
  });

  it('writes no portal link token, session cookie, CSRF token or admin token of a dashboard sign-in into any log line', async () => {
    const before = server.logs.lines.length;
    const { api } = server;
    const c = await createCustomer(api);
    const link = await api.post(`/v1/customers/${c.customerId}/portal_sessions`, {});
    const portalToken = link.body.url.split('#')[1];
    const signIns = [
      await api.post('/v1/dashboard/sessions', { portal_token: portalToken }, { token: null }),
      await api.post('/v1/dashboard/sessions', { admin_token: ADMIN_TOKEN }, { token: null }),
    ];
    const secrets = [portalToken, ADMIN_TOKEN];
    for (const signIn of signIns) {
      expect(signIn.status).toBe(201);
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const headers = { cookie, 'x-csrf-token': signIn.body.csrf_token };
      secrets.push(cookie.split('=')[1]!, signIn.body.csrf_token);
      recordSecret(cookie.split('=')[1]);
      expect((await api.get('/v1/dashboard/session', { token: null, headers })).status).toBe(200);
      expect((await api.post('/graphql', { query: '{ __typename }' }, { token: null, headers })).status).toBe(200);
      expect((await api.post('/graphql', { query: '{ __typename }' }, { token: null, headers: { cookie } })).status).toBe(403);
      expect((await api.delete('/v1/dashboard/session', { token: null, headers })).status).toBe(204);
      expect((await api.get('/v1/dashboard/session', { token: null, headers })).status).toBe(401);
    }
    expect((await api.post('/v1/dashboard/sessions', { portal_token: portalToken }, { token: null })).status).toBe(410);
    expect((await api.post('/v1/dashboard/sessions', { admin_token: 'tga_wrong_admin_token_0123456789' }, { token: null })).status).toBe(401);
    const lines = server.logs.lines.slice(before);
    expect(lines.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(lines.filter((l) => l.includes(secret)), secret.slice(0, 6)).toEqual([]);
  });

  it('redacts secrets in objects logged whole: headers, bodies, a configuration, an HTTP client error', () => {
    const log = server.app.http.log;
    const before = server.logs.lines.length;
    const key = 'tg_logged_by_mistake_0123456789abcdef';
    log.error({ request: { headers: { authorization: `Bearer ${key}`, 'stripe-signature': 't=1,v1=abc' } }, body: { api_key: key, product: 'x' } }, 'request failed');
    log.info({ config: { port: 8787, adminToken: ADMIN_TOKEN, metricsToken: 'metrics_0123456789abcdef', stripe: { secretKey: STRIPE_SECRET_KEY, webhookSecret: STRIPE_WEBHOOK_SECRET } } }, 'configuration');
    log.warn({ err: { message: 'Stripe call failed', headers: { authorization: `Bearer ${STRIPE_SECRET_KEY}` }, raw: { secret: STRIPE_WEBHOOK_SECRET } } }, 'stripe failed');
    const session = 'tgs_session_secret_logged_0123456789';
    const csrf = 'csrf_token_logged_by_mistake_0123';
    const portal = 'pst_portal_token_logged_0123456789';
    log.info({ req: { headers: { cookie: `tollgate_session=${session}`, 'x-csrf-token': csrf } }, headers: { 'set-cookie': `tollgate_session=${session}; HttpOnly` }, body: { portal_token: portal, admin_token: ADMIN_TOKEN, csrf_token: csrf } }, 'sign-in');
    const written = server.logs.lines.slice(before).map((l) => JSON.parse(l));
    expect(written).toHaveLength(4);
    const text = JSON.stringify(written);
    for (const secret of [key, ADMIN_TOKEN, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, 'metrics_0123456789abcdef', session, csrf, portal]) expect(text).not.toContain(secret);
    expect(written[0]).toMatchObject({ request: { headers: { authorization: '[redacted]', 'stripe-signature': '[redacted]' } }, body: { api_key: '[redacted]', product: 'x' } });
    expect(written[1].config).toMatchObject({ port: 8787, adminToken: '[redacted]', stripe: { secretKey: '[redacted]', webhookSecret: '[redacted]' } });
  });

  it('the harness check that guards every integration test finds a secret in a line', () => {
    const capture = new LogCapture();
    recordSecret('tg_a_secret_the_check_must_find_0123');
    capture.write('{"msg":"fine"}\n{"msg":"oops tg_a_secret_the_check_must_find_0123"}\n');
    expect(capture.leaks()).toHaveLength(1);
  });
});
