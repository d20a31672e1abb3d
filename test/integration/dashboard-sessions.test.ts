import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomer, type Fixture } from '../support/fixtures.js';
import { ADMIN_TOKEN, startServer, type ApiResponse, type RequestOptions, type TestServer } from '../support/harness.js';
import { recordSecret } from '../support/log-capture.js';
import { ManualClock } from '../../src/platform/clock.js';

// Browser sign-in (docs/dashboard.md): portal links, operator sign-in, the session cookie as a
// credential on REST and GraphQL, CSRF, sign-out and both expiries. Failed sign-ins are limited
// to 1 per second per address (2 at once); each test plays its own address (X-Forwarded-For).

let server: TestServer;
const clock = new ManualClock();
let alice: Fixture;
let bob: Fixture;
let bobInvoiceId: string;
let address = 0;
/** A fresh client address, so one test's failed sign-ins never limit another's. */
const nextAddress = () => `203.0.113.${++address}`;

beforeAll(async () => {
  server = await startServer({ clock, rateLimits: { failedAuthPerSecond: 1, burstSeconds: 2 }, trustProxyHops: 1 });
  alice = await createCustomer(server.api, { credit: '25.00' });
  bob = await createCustomer(server.api, { credit: '5.00' });
  bobInvoiceId = (await server.app.services.invoices.draft(bob.customerId, '2020-01')).invoice.id;
});
afterAll(() => server?.close());

/** A browser: keeps the session cookie and sends it, never an Authorization header unless told. */
class Browser {
  cookie: string | null = null;
  csrf: string | null = null;
  readonly from = nextAddress();

  async request(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { 'x-forwarded-for': this.from, ...(this.cookie ? { cookie: `tollgate_session=${this.cookie}` } : {}), ...options.headers };
    const r = await server.api.request(method, path, body, { token: null, ...options, headers });
    const set = r.headers.get('set-cookie');
    if (set) this.cookie = /^tollgate_session=([^;]*)/.exec(set)![1] || null;
    recordSecret(this.cookie);
    return r;
  }

  async signIn(body: Record<string, string>, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const r = await this.request('POST', '/v1/dashboard/sessions', body, { headers });
    if (r.status === 201) this.csrf = r.body.csrf_token;
    return r;
  }

  /** An unsafe request with the session's CSRF token. */
  send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return this.request(method, path, body, { headers: { 'x-csrf-token': this.csrf ?? '', ...headers } });
  }
}

async function portalLink(customerId: string, body: Record<string, unknown> = {}): Promise<{ id: string; url: string; token: string; expires_at: string }> {
  const r = await server.api.post(`/v1/customers/${customerId}/portal_sessions`, body);
  expect(r.status).toBe(201);
  return { ...r.body, token: r.body.url.split('#')[1] };
}

async function customerBrowser(f: Fixture): Promise<Browser> {
  const browser = new Browser();
  expect((await browser.signIn({ portal_token: (await portalLink(f.customerId)).token })).status).toBe(201);
  return browser;
}

async function operatorBrowser(): Promise<Browser> {
  const browser = new Browser();
  expect((await browser.signIn({ admin_token: ADMIN_TOKEN })).status).toBe(201);
  return browser;
}

describe('portal links', () => {
  it('are created by the admin: a one-time URL with the token in the fragment, valid 15 minutes by default', async () => {
    const r = await server.api.post(`/v1/customers/${alice.customerId}/portal_sessions`, {});
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ id: expect.stringMatching(/^ps_[0-9a-z]{26}$/), object: 'portal_session', customer_id: alice.customerId, url: expect.any(String), expires_at: expect.any(String), created_at: expect.any(String) });
    expect(r.body.url).toMatch(new RegExp(`^${server.url}/app/portal#pst_[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(r.body.expires_at) - Date.parse(r.body.created_at)).toBe(15 * 60_000);
    const short = await portalLink(alice.customerId, { expires_in_minutes: 5 });
    expect(Date.parse(short.expires_at) - clock.now().getTime()).toBe(5 * 60_000);
  });

  it('are refused to a customer key (403), for an unknown customer (404) and beyond 60 minutes (400)', async () => {
    const byKey = await server.api.post(`/v1/customers/${alice.customerId}/portal_sessions`, {}, { token: alice.apiKey });
    expect(byKey.status).toBe(403);
    expect(byKey.body.code).toBe('forbidden');
    expect((await server.api.post('/v1/customers/cus_00000000000000000000000000/portal_sessions', {})).body.code).toBe('not_found');
    const tooLong = await server.api.post(`/v1/customers/${alice.customerId}/portal_sessions`, { expires_in_minutes: 61 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.code).toBe('invalid_request');
  });

  it('replay the same link for the same Idempotency-Key', async () => {
    const first = await server.api.post(`/v1/customers/${alice.customerId}/portal_sessions`, {}, { idempotencyKey: 'portal-link-1' });
    const again = await server.api.post(`/v1/customers/${alice.customerId}/portal_sessions`, {}, { idempotencyKey: 'portal-link-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
  });

  it('redeem once into a customer session; a second redeem is 410 portal_link_used', async () => {
    const link = await portalLink(alice.customerId);
    const browser = new Browser();
    const r = await browser.signIn({ portal_token: link.token });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ object: 'dashboard_session', kind: 'customer', customer_id: alice.customerId, csrf_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), expires_at: new Date(clock.now().getTime() + 12 * 3_600_000).toISOString() });
    const again = await new Browser().signIn({ portal_token: link.token });
    expect(again.status).toBe(410);
    expect(again.body.code).toBe('portal_link_used');
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('redeemed twice at once: exactly one 201', async () => {
    const link = await portalLink(alice.customerId);
    const replies = await Promise.all([1, 2, 3].map(() => new Browser().signIn({ portal_token: link.token })));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 410, 410]);
  });

  it('expire: 410 portal_link_expired after expires_at', async () => {
    const link = await portalLink(alice.customerId, { expires_in_minutes: 1 });
    clock.advance(60_000);
    const r = await new Browser().signIn({ portal_token: link.token });
    expect(r.status).toBe(410);
    expect(r.body.code).toBe('portal_link_expired');
  });

  it('unknown tokens are 401 and bad bodies 400', async () => {
    const browser = new Browser();
    expect((await browser.signIn({ portal_token: 'pst_nothing_of_the_sort_0123456789abcdef' })).body.code).toBe('unauthorized');
    const both = await browser.request('POST', '/v1/dashboard/sessions', { portal_token: 'pst_x', admin_token: ADMIN_TOKEN });
    expect(both.status).toBe(400);
    expect((await browser.request('POST', '/v1/dashboard/sessions', {})).status).toBe(400);
  });
});

describe('the session cookie', () => {
  it('is HttpOnly, SameSite=Strict, Path=/, lives as long as the session, and is Secure over https', async () => {
    const link = await portalLink(alice.customerId);
    const plain = await new Browser().signIn({ portal_token: link.token });
    const cookie = plain.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^tollgate_session=tgs_[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    const https = await new Browser().signIn({ admin_token: ADMIN_TOKEN }, { 'x-forwarded-proto': 'https' });
    expect(https.headers.get('set-cookie')).toMatch(/^tollgate_session=tgs_[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    expect(https.body).toMatchObject({ kind: 'operator', customer_id: null });
  });

  it('GET /v1/dashboard/session answers the session (401 without one)', async () => {
    const browser = await customerBrowser(alice);
    const r = await browser.request('GET', '/v1/dashboard/session');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'dashboard_session', kind: 'customer', customer_id: alice.customerId, csrf_token: browser.csrf });
    const none = await new Browser().request('GET', '/v1/dashboard/session');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
  });

  it("a customer's cookie reads its own customer on REST and GraphQL, and nobody else's", async () => {
    const browser = await customerBrowser(alice);
    const balance = await browser.request('GET', '/v1/me/balance');
    expect(balance.status).toBe(200);
    expect(balance.body).toMatchObject({ customer_id: alice.customerId, available: '25.00' });
    expect((await browser.request('GET', `/v1/me/invoices/${bobInvoiceId}`)).status).toBe(404);
    expect((await browser.request('GET', `/v1/customers/${bob.customerId}`)).status).toBe(403);
    const graphql = await browser.send('POST', '/graphql', { query: '{ me { id } }' });
    expect(graphql.status).toBe(200);
    expect(graphql.body).toEqual({ data: { me: { id: alice.customerId } } });
    // Exactly what alice's API key sees.
    const query = { query: `{ customer(id: "${bob.customerId}") { id } }` };
    const byKey = await server.api.post('/graphql', query, { token: alice.apiKey });
    expect(byKey.body.errors[0].extensions.code).toBe('not_found');
    expect((await browser.send('POST', '/graphql', query)).body).toEqual(byKey.body);
  });

  it("the operator's cookie is the admin's authority", async () => {
    const browser = await operatorBrowser();
    const r = await browser.request('GET', '/v1/customers?limit=1');
    expect(r.status).toBe(200);
    expect((await browser.request('GET', `/v1/customers/${bob.customerId}`)).body.id).toBe(bob.customerId);
    expect((await browser.request('GET', '/v1/me')).status).toBe(403);
  });

  it('an Authorization header wins over the cookie', async () => {
    const browser = await customerBrowser(alice);
    const asAdmin = await browser.request('GET', `/v1/customers/${bob.customerId}`, undefined, { token: ADMIN_TOKEN });
    expect(asAdmin.status).toBe(200);
    const badBearer = await browser.request('GET', '/v1/me', undefined, { token: 'tg_not_a_key_at_all_0123456789' });
    expect(badBearer.status).toBe(401);
    // A bearer request is not a browser's: no CSRF token needed.
    const created = await browser.request('POST', '/v1/me/api_keys', { name: 'ci' }, { token: alice.apiKey });
    expect(created.status).toBe(201);
  });
});

describe('CSRF', () => {
  it('unsafe requests with the cookie need the X-CSRF-Token of the session: 403 csrf_failed without or with a wrong one', async () => {
    const browser = await customerBrowser(alice);
    const without = await browser.request('POST', '/v1/me/api_keys', { name: 'x' });
    expect(without.status).toBe(403);
    expect(without.body.code).toBe('csrf_failed');
    const other = await customerBrowser(alice);
    const wrong = await browser.request('POST', '/v1/me/api_keys', { name: 'x' }, { headers: { 'x-csrf-token': other.csrf! } });
    expect(wrong.body.code).toBe('csrf_failed');
    const graphql = await browser.request('POST', '/graphql', { query: '{ me { id } }' });
    expect(graphql.status).toBe(403);
    expect(graphql.body.code).toBe('csrf_failed');
    expect((await browser.request('DELETE', '/v1/dashboard/session')).body.code).toBe('csrf_failed');
    expect((await browser.request('GET', '/v1/me/api_keys?limit=100')).body.data.map((k: { name: string }) => k.name)).not.toContain('x');
  });

  it('refuses another Origin (403 csrf_failed) and accepts the same origin with the token', async () => {
    const browser = await customerBrowser(alice);
    const cross = await browser.send('POST', '/v1/me/api_keys', { name: 'x' }, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(cross.body.code).toBe('csrf_failed');
    const same = await browser.send('POST', '/v1/me/api_keys', { name: 'dashboard' }, { origin: server.url });
    expect(same.status).toBe(201);
    expect(same.body.customer_id).toBe(alice.customerId);
    expect((await new Browser().signIn({ admin_token: ADMIN_TOKEN }, { origin: 'https://evil.example' })).body.code).toBe('csrf_failed');
  });

  it('GET needs no token (the invoice PDF link)', async () => {
    const browser = await customerBrowser(bob);
    const pdf = await browser.request('GET', `/v1/me/invoices/${bobInvoiceId}/pdf`);
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toMatch(/^application\/pdf/);
  });
});

describe('sign-out and expiry', () => {
  it('sign-out revokes the session server-side and clears the cookie', async () => {
    const browser = await customerBrowser(alice);
    const oldCookie = browser.cookie;
    const out = await browser.send('DELETE', '/v1/dashboard/session');
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^tollgate_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict$/);
    browser.cookie = oldCookie;
    const after = await browser.request('GET', '/v1/me');
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('unauthorized');
    expect((await browser.request('GET', '/v1/dashboard/session')).status).toBe(401);
  });

  it('signing in again in the same browser ends the session it had: one session, not two', async () => {
    const browser = await customerBrowser(alice);
    const first = browser.cookie;
    expect((await browser.signIn({ portal_token: (await portalLink(alice.customerId)).token })).status).toBe(201);
    const second = browser.cookie;
    expect(second).not.toBe(first);
    expect((await browser.request('GET', '/v1/me')).status).toBe(200);
    browser.cookie = first;
    expect((await browser.request('GET', '/v1/me')).status).toBe(401);
    // A failed sign-in ends nothing.
    browser.cookie = second;
    expect((await browser.signIn({ admin_token: 'tga_wrong_0123456789abcdef' })).status).toBe(401);
    expect((await browser.request('GET', '/v1/me')).status).toBe(200);
  });

  it('ends after 60 idle minutes; each request slides the idle end', async () => {
    const browser = await customerBrowser(alice);
    for (let i = 0; i < 3; i++) {
      clock.advance(59 * 60_000);
      expect((await browser.request('GET', '/v1/me')).status).toBe(200);
    }
    clock.advance(60 * 60_000);
    expect((await browser.request('GET', '/v1/me')).status).toBe(401);
  });

  it('writes the last-seen time at most about once a minute, not on every request', async () => {
    const browser = await customerBrowser(alice);
    const lastSeen = async () => ((await server.database.db.query<{ last_seen_at: Date }>('SELECT last_seen_at FROM dashboard_sessions ORDER BY created_at DESC, id DESC LIMIT 1'))[0]!.last_seen_at).getTime();
    const signedInAt = await lastSeen();
    clock.advance(30_000);
    await browser.request('GET', '/v1/me');
    expect(await lastSeen()).toBe(signedInAt);
    clock.advance(30_000);
    await browser.request('GET', '/v1/me');
    expect(await lastSeen()).toBe(clock.now().getTime());
  });

  it('ends at its absolute end however busy: customer 12 h, operator 8 h', async () => {
    const customer = await customerBrowser(alice);
    const operator = await operatorBrowser();
    for (let minutes = 0; minutes < 8 * 60 - 30; minutes += 30) {
      clock.advance(30 * 60_000);
      expect((await operator.request('GET', '/v1/customers?limit=1')).status).toBe(200);
      expect((await customer.request('GET', '/v1/me')).status).toBe(200);
    }
    clock.advance(30 * 60_000);
    expect((await operator.request('GET', '/v1/customers?limit=1')).status).toBe(401);
    expect((await customer.request('GET', '/v1/me')).status).toBe(200);
    for (let minutes = 8 * 60; minutes < 12 * 60 - 30; minutes += 30) {
      clock.advance(30 * 60_000);
      expect((await customer.request('GET', '/v1/me')).status).toBe(200);
    }
    clock.advance(30 * 60_000);
    expect((await customer.request('GET', '/v1/me')).status).toBe(401);
  });
});

describe('clean-up', () => {
  it('deletes sessions and links a day after they ended, keeping live ones', async () => {
    const count = async (table: string) => Number((await server.database.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    const ended = await customerBrowser(alice);
    await portalLink(alice.customerId);
    expect(await ended.send('DELETE', '/v1/dashboard/session')).toMatchObject({ status: 204 });
    clock.advance(25 * 3_600_000);
    const live = await customerBrowser(bob);
    const before = { sessions: await count('dashboard_sessions'), links: await count('portal_sessions') };
    expect(await server.app.services.dashboard.purge()).toBeGreaterThan(0);
    // Only the live session and its link stay.
    expect(await count('dashboard_sessions')).toBe(1);
    expect(await count('portal_sessions')).toBe(1);
    expect(before.sessions).toBeGreaterThan(1);
    expect((await live.request('GET', '/v1/me')).body.id).toBe(bob.customerId);
  });
});

describe('operator sign-in', () => {
  it('a wrong admin token is 401 and counted by the failed-authentication limit', async () => {
    const browser = new Browser();
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await browser.signIn({ admin_token: 'tga_wrong_wrong_wrong_wrong_0123' }));
    expect(replies.map((r) => r.status)).toEqual([401, 401, 429]);
    expect(replies[0]!.body.code).toBe('unauthorized');
    expect(replies[2]!.body.code).toBe('rate_limited');
    // Refused before the token is looked at, even the right one, until the limit ends.
    expect((await browser.signIn({ admin_token: ADMIN_TOKEN })).status).toBe(429);
    clock.advance(2_000);
    expect((await browser.signIn({ admin_token: ADMIN_TOKEN })).status).toBe(201);
  });
});

describe('with TOLLGATE_PUBLIC_URL', () => {
  let proxied: TestServer;
  beforeAll(async () => {
    proxied = await startServer({ dashboard: { publicUrl: new URL('https://billing.example.com') } });
  });
  afterAll(() => proxied?.close());

  it('links, the Secure cookie and the same-origin rule use the public URL', async () => {
    const customer = await createCustomer(proxied.api);
    const link = await proxied.api.post(`/v1/customers/${customer.customerId}/portal_sessions`, {});
    expect(link.body.url).toMatch(/^https:\/\/billing\.example\.com\/app\/portal#pst_/);
    const signIn = await proxied.api.post('/v1/dashboard/sessions', { portal_token: link.body.url.split('#')[1] }, { token: null, headers: { origin: 'https://billing.example.com' } });
    expect(signIn.status).toBe(201);
    expect(signIn.headers.get('set-cookie')).toContain('; Secure;');
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    recordSecret(cookie.split('=')[1]);
    const headers = { cookie, 'x-csrf-token': signIn.body.csrf_token };
    expect((await proxied.api.post('/v1/me/api_keys', { name: 'x' }, { token: null, headers: { ...headers, origin: proxied.url } })).body.code).toBe('csrf_failed');
    expect((await proxied.api.post('/v1/me/api_keys', { name: 'x' }, { token: null, headers: { ...headers, origin: 'https://billing.example.com' } })).status).toBe(201);
  });
});
