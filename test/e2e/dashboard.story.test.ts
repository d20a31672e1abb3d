import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPresent, launchChromium, newPerson, screenshotBothWidths, unlabelledControls } from '../support/browser.js';
import { ensureDashboardBuilt } from '../support/dashboard-build.js';
import { authorize, seedCatalog } from '../support/fixtures.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../support/harness.js';

/*
 * The dashboard's story in a real browser (Debian's Chromium through playwright-core), against the
 * built app served by Tollgate at /app: the operator signs in and gives a new customer a portal
 * link; the customer opens it, sees the balance, creates a key and copies its secret; the gateway
 * spends with that key; the customer sees the balance and usage move and downloads an invoice; a
 * second customer never sees any of it. Every portal page is screenshotted at 1280 and 375 px
 * into test-artifacts/screenshots/.
 */

let server: TestServer;
let browser: Browser;
const people: BrowserContext[] = [];
const problems: string[][] = [];
const overflowing: string[] = [];
const unlabelled: string[] = [];

/** Screenshots at both widths, and the page's layout and labelling checked on the way. */
async function capture(page: Page, name: string) {
  overflowing.push(...(await screenshotBothWidths(page, name)));
  unlabelled.push(...(await unlabelledControls(page)));
}

async function person() {
  const p = await newPerson(browser, server.url);
  people.push(p.context);
  problems.push(p.problems);
  return p;
}

/** The page's main heading, once the page has rendered it. */
async function heading(page: Page, name: string) {
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

/** A figure of the overview or billing page (dt/dd pair) as the user reads it. */
const stat = (page: Page, label: string) => page.locator('.stat', { has: page.locator('dt', { hasText: label }) }).locator('.stat-value');

async function openPortalPage(page: Page, link: string, title: string) {
  await page.getByRole('navigation').getByRole('link', { name: link, exact: true }).click();
  await heading(page, title);
  await page.waitForLoadState('networkidle');
}

// Shared by the steps of the story, in order.
let operator: Page;
let customerId: string;
let portalUrl: string;
let customer: { page: Page; context: BrowserContext };
let secret: string;
let keyId: string;
let invoiceId: string;

const browserHere = chromiumPresent();

beforeAll(async () => {
  if (!browserHere) return;
  await ensureDashboardBuilt();
  server = await startServer();
  await seedCatalog(server.api);
  browser = await launchChromium();
});

afterAll(async () => {
  for (const context of people) await context.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

describe.skipIf(!browserHere)('dashboard in a real browser', () => {
  it('the operator signs in with the admin token, creates a customer and a portal link', async () => {
    ({ page: operator } = await person());
    await operator.goto('/app/');
    await heading(operator, 'Operator sign-in');
    await operator.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await operator.getByRole('button', { name: 'Sign in' }).click();
    await heading(operator, 'Customers');
    await capture(operator, 'console-customers');

    await operator.getByLabel('Name').fill('Ada Labs');
    await operator.getByLabel('Email').fill('ada@example.com');
    await operator.getByRole('button', { name: 'Create customer' }).click();
    await heading(operator, 'Ada Labs');
    customerId = /\/console\/customers\/(cus_[0-9a-z]{26})$/.exec(operator.url())![1];
    // Credit the customer bought (granting from the console is the console's own page).
    expect((await server.api.post(`/v1/customers/${customerId}/credit_grants`, { amount: '20.00', category: 'purchased' })).status).toBe(201);

    // The search finds the customer by email.
    await operator.getByRole('navigation').getByRole('link', { name: 'Customers' }).click();
    await operator.getByLabel('Search customers').fill('ada@example.com');
    await operator.getByRole('button', { name: 'Search' }).click();
    await operator.getByRole('link', { name: 'Ada Labs' }).click();
    await heading(operator, 'Ada Labs');

    await operator.getByRole('button', { name: 'Create portal link' }).click();
    portalUrl = await operator.getByLabel(/^Portal link/).inputValue();
    expect(portalUrl).toMatch(new RegExp(`^${server.url}/app/portal#pst_[A-Za-z0-9_-]{40,}$`));
    await capture(operator, 'console-customer');
  });

  it('the customer opens the link: signed in by cookie, the token gone from the address bar, the balance shown', async () => {
    customer = await person();
    const { page, context } = customer;
    await page.goto(portalUrl);
    await heading(page, 'Overview');
    expect(page.url()).toBe(`${server.url}/app/portal`);
    await expect.poll(() => stat(page, 'Available').textContent()).toBe('$20.00');
    await page.getByText('No usage in the last 30 days.').waitFor();

    const cookie = (await context.cookies()).find((c) => c.name === 'tollgate_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('tollgate_session');

    // The link worked once: opened again (another browser), it is refused.
    const { page: again } = await person();
    await again.goto(portalUrl);
    await heading(again, 'This portal link cannot be used');
  });

  it('the customer creates a key and copies its secret, shown once', async () => {
    const { page } = customer;
    await openPortalPage(page, 'API keys', 'API keys');
    await page.getByText('No API keys yet').waitFor();
    await page.getByLabel('Key name').fill('production');
    await page.getByLabel('Max concurrency').fill('4');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = await page.getByLabel(/^Secret of production/).inputValue();
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByText('Copied').waitFor();
    secret = await page.evaluate(() => navigator.clipboard.readText());
    expect(secret).toBe(shown);
    expect(secret).toMatch(/^tg_/);
    const row = page.getByRole('row', { name: /production/ });
    await expect.poll(() => row.textContent()).toContain('active');
    expect(await row.textContent()).toContain(secret.slice(0, 8));
    await capture(page, 'portal-keys');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.getByText(secret).count()).toBe(0);
    keyId = (await server.api.get(`/v1/customers/${customerId}/api_keys`)).body.data.find((k: { name: string }) => k.name === 'production').id;
  });

  it('the customer sets a key spend limit, and revokes a key with the keyboard after confirming', async () => {
    const { page } = customer;
    await page.getByRole('button', { name: 'Edit limits of production' }).click();
    await page.getByLabel('Spend limit', { exact: true }).last().fill('5.00');
    await page.getByLabel('Spend limit period').last().selectOption('day');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await expect.poll(async () => page.getByRole('row', { name: /production/ }).textContent()).toContain('$5.00 per day');
    expect((await server.api.get(`/v1/api_keys/${keyId}`)).body).toMatchObject({ spend_limit: { amount: '5.00', period: 'day' }, max_concurrency: 4 });

    await page.getByLabel('Key name').fill('temporary');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.getByRole('row', { name: /temporary/ });
    await row.getByRole('button', { name: 'Revoke' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Revoke temporary?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape'); // changed their mind: nothing happens
    await dialog.waitFor({ state: 'hidden' });
    expect(await row.textContent()).toContain('active');
    await row.getByRole('button', { name: 'Revoke' }).focus();
    await page.keyboard.press('Enter');
    await dialog.getByRole('button', { name: 'Revoke key' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => row.textContent()).toContain('revoked');
    expect((await server.api.get(`/v1/customers/${customerId}/api_keys`)).body.data.find((k: { name: string }) => k.name === 'temporary').status).toBe('revoked');
  });

  it('the gateway spends with that key; the balance and the usage chart move', async () => {
    const auth = await authorize(server.api, secret, { megapixels: 8 });
    expect(auth.status).toBe(200);
    const settle = await server.api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: '8' } });
    expect(settle.body).toMatchObject({ charged: '0.20' });

    const { page } = customer;
    await openPortalPage(page, 'Overview', 'Overview');
    await page.reload();
    await heading(page, 'Overview');
    await expect.poll(() => stat(page, 'Available').textContent()).toBe('$19.80');
    await page.locator('.recharts-legend-item-text', { hasText: 'fal-ai/flux/dev' }).waitFor();
    expect(await page.locator('.recharts-bar-rectangle').count()).toBeGreaterThan(0);
    await page.getByRole('cell', { name: '-$0.20' }).waitFor();
    await capture(page, 'portal-overview');

    await openPortalPage(page, 'Usage', 'Usage');
    const row = page.getByRole('row', { name: /fal-ai\/flux\/dev/ });
    // The key's name replaces its id once the keys list has loaded.
    await expect.poll(() => row.textContent()).toMatch(/megapixels.*production.*\$0\.20/);
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const csv = readFileSync((await (await download).path())!, 'utf8');
    expect(csv).toMatch(new RegExp(`^window_start,product,.*\\r\\n.*,fal-ai/flux/dev,megapixels,${keyId},USD,1,8,8,,0\\.20?\\r\\n$`));
    await capture(page, 'portal-usage');
  });

  it('the customer downloads an invoice PDF and starts a top-up on Stripe Checkout', async () => {
    invoiceId = await finalizedInvoice(customerId);
    const { page } = customer;
    await openPortalPage(page, 'Billing', 'Billing');
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: /Download PDF/ }).click();
    const pdf = readFileSync((await (await download).path())!);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');

    // Top up: the browser goes to Stripe Checkout (the local Stripe stand-in's page, answered here).
    await page.context().route('https://checkout.stripe.test/**', (route) => route.fulfill({ contentType: 'text/html', body: '<title>Checkout</title><h1>Stripe Checkout</h1>' }));
    await page.getByLabel('Amount (USD)').fill('30.00');
    await page.getByRole('button', { name: 'Top up', exact: true }).click();
    await page.waitForURL(/^https:\/\/checkout\.stripe\.test\/c\/pay\//);
    const payments = (await server.api.get(`/v1/payments?customer=${customerId}`)).body.data;
    expect(payments).toMatchObject([{ kind: 'top_up', status: 'pending', amount: '30.00' }]);
    await page.goBack();
    await heading(page, 'Billing');
    await page.getByRole('cell', { name: 'pending', exact: true }).waitFor();
    await capture(page, 'portal-billing');
  });

  it('the customer adds a webhook endpoint (signing secret shown once) and sets alert thresholds', async () => {
    const { page } = customer;
    await openPortalPage(page, 'Webhooks', 'Webhooks');
    await page.getByLabel('Endpoint URL').fill('http://127.0.0.1:9/hooks');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    expect(await page.getByLabel(/^Signing secret/).inputValue()).toMatch(/^whsec_/);
    await page.getByRole('cell', { name: 'http://127.0.0.1:9/hooks', exact: true }).waitFor();
    await page.getByLabel('Balance below (USD)').fill('5.00');
    await page.getByRole('button', { name: 'Save thresholds' }).click();
    await page.getByText('Saved.').waitFor();
    expect((await server.api.get(`/v1/customers/${customerId}/alert_settings`)).body).toMatchObject({ balance_low: '5.00' });
    await capture(page, 'portal-webhooks');
  });

  it("a second customer's portal never shows the first one's keys or invoices, and its cookie gets 404 for them", async () => {
    const other = await server.api.post('/v1/customers', { name: 'Grace Inc', currency: 'USD' });
    const link = await server.api.post(`/v1/customers/${other.body.id}/portal_sessions`, {});
    expect(link.status).toBe(201);
    const { page, context } = await person();
    await page.goto(link.body.url);
    await heading(page, 'Overview');
    await openPortalPage(page, 'API keys', 'API keys');
    await page.getByText('No API keys yet').waitFor();
    await openPortalPage(page, 'Billing', 'Billing');
    await page.getByText('No invoices yet.').waitFor();
    expect(await page.content()).not.toContain(invoiceId);

    const csrf = (await (await context.request.get('/v1/dashboard/session')).json()).csrf_token;
    for (const path of [`/v1/me/invoices/${invoiceId}`, `/v1/me/invoices/${invoiceId}/pdf`, `/v1/me/api_keys/${keyId}`]) {
      expect((await context.request.get(path)).status(), path).toBe(404);
    }
    expect((await context.request.delete(`/v1/me/api_keys/${keyId}`, { headers: { 'x-csrf-token': csrf } })).status()).toBe(404);
    expect((await context.request.get(`/v1/customers/${customerId}/balance`)).status()).toBe(403);
    // The first customer's key still works.
    expect((await authorize(server.api, secret, { megapixels: 1 })).status).toBe(200);

    // The session revoked on the server (as expiry would): the next call is a 401 and the portal says so.
    expect((await context.request.delete('/v1/dashboard/session', { headers: { 'x-csrf-token': csrf } })).status()).toBe(204);
    await page.getByRole('navigation').getByRole('link', { name: 'Usage', exact: true }).click();
    await heading(page, 'Signed out');
  });

  it('signing out ends the session on the server', async () => {
    const { page, context } = customer;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Operator sign-in');
    expect((await context.request.get('/v1/me/balance')).status()).toBe(401);
  });

  it('rendered every page without a script error or CSP violation, nothing wider than a phone, every control labelled', () => {
    expect(problems.flat()).toEqual([]);
    expect(overflowing).toEqual([]);
    expect(unlabelled).toEqual([]);
  });
});

/** An invoice for last month's usage (a back-dated event), drafted as a billing run does and finalized by the admin API. */
async function finalizedInvoice(customer: string): Promise<string> {
  const time = new Date(Date.now() - 34 * 86_400_000);
  const event = { specversion: '1.0', id: `e2e-invoice-${customer}`, source: 'e2e', type: 'usage', time: time.toISOString(), subject: customer, data: { product: 'fal-ai/flux/dev', megapixels: '40' } };
  const sent = await server.api.post('/v1/events', [event]);
  expect(sent.body.data[0].status).toBe('accepted');
  const { invoice } = await server.app.services.invoices.draft(customer, time.toISOString().slice(0, 7));
  const finalized = await server.api.post(`/v1/invoices/${invoice.id}/finalize`);
  expect(finalized.status).toBe(200);
  return invoice.id;
}
