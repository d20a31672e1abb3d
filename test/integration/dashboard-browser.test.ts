import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustomer } from '../support/fixtures.js';
import { startServer, type TestServer } from '../support/harness.js';
import { recordSecret } from '../support/log-capture.js';

// A real browser (headless Chromium) opens a portal link against a stand-in app: the fragment
// token signs in, the cookie is HttpOnly and SameSite=Strict, requests with it work, CSRF and the
// app's CSP hold. The real app (app/) has its own browser tests; this one checks the server side.

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** What the portal page of an app does: redeem the fragment, drop it, then use the API with the cookie. */
const PORTAL_SCRIPT = `
const token = location.hash.slice(1);
history.replaceState(null, '', location.pathname);
const json = { 'content-type': 'application/json' };
const signIn = await fetch('/v1/dashboard/sessions', { method: 'POST', credentials: 'same-origin', headers: json, body: JSON.stringify({ portal_token: token }) });
const session = await signIn.json();
const balance = await (await fetch('/v1/me/balance', { credentials: 'same-origin' })).json();
const withoutCsrf = await fetch('/v1/me/api_keys', { method: 'POST', credentials: 'same-origin', headers: json, body: JSON.stringify({ name: 'x' }) });
const created = await fetch('/v1/me/api_keys', { method: 'POST', credentials: 'same-origin', headers: { ...json, 'x-csrf-token': session.csrf_token }, body: JSON.stringify({ name: 'browser' }) });
document.getElementById('root').textContent = JSON.stringify({
  signIn: signIn.status, kind: session.kind, available: balance.available, cookieSeenByScript: document.cookie,
  withoutCsrf: withoutCsrf.status, created: created.status, address: location.href,
});
`;
const INDEX = `<!doctype html><html><head><title>app</title><script type="module" src="/app/assets/portal-1a2b3c.js"></script>
<script>document.title = 'inline script ran';</script></head><body><div id="root"></div></body></html>`;

let server: TestServer;
let appDir: string;
let browser: Browser;

describe.skipIf(!existsSync(CHROMIUM))('a browser opening a portal link', () => {
  beforeAll(async () => {
    appDir = mkdtempSync(join(tmpdir(), 'tollgate-app-'));
    mkdirSync(join(appDir, 'assets'));
    writeFileSync(join(appDir, 'index.html'), INDEX);
    writeFileSync(join(appDir, 'assets', 'portal-1a2b3c.js'), PORTAL_SCRIPT);
    server = await startServer({ appDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(appDir, { recursive: true, force: true });
  });

  it('signs in from the fragment, holds an HttpOnly SameSite=Strict cookie, and the CSP blocks inline script', async () => {
    const customer = await createCustomer(server.api, { credit: '12.50' });
    const link = await server.api.post(`/v1/customers/${customer.customerId}/portal_sessions`, {});
    expect(link.status).toBe(201);
    const context = await browser.newContext();
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });
    await page.goto(link.body.url);
    await page.waitForFunction(() => document.getElementById('root')?.textContent !== '', undefined, { timeout: 15_000 });
    const seen = JSON.parse((await page.textContent('#root'))!);
    expect(seen).toEqual({
      signIn: 201, kind: 'customer', available: '12.50', cookieSeenByScript: '', withoutCsrf: 403, created: 201, address: `${server.url}/app/portal`,
    });
    expect(await page.title()).toBe('app');
    expect(blocked.length).toBeGreaterThan(0);
    const cookies = await context.cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'tollgate_session', httpOnly: true, sameSite: 'Strict', path: '/', secure: false })]);
    recordSecret(cookies[0]!.value);
    // The link was used up by the browser.
    expect((await server.api.post('/v1/dashboard/sessions', { portal_token: link.body.url.split('#')[1] }, { token: null })).body.code).toBe('portal_link_used');
    await context.close();
  });
});
