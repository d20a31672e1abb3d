import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { chromiumPresent, launchChromium, newPerson, screenshotBothWidths, unlabelledControls } from '../support/browser.js';
import { ensureDashboardBuilt } from '../support/dashboard-build.js';
import { createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';
import { ADMIN_TOKEN, startServer, type TestServer } from '../support/harness.js';
import { stripeEvents } from '../support/stripe-events.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

/**
 * The operator console in a real browser (Debian's Chromium through playwright-core): the operator
 * signs in with the admin token, finds a customer, grants credit and sees the balance move,
 * publishes a new price version and sees it in the product's history, reads revenue by model,
 * and finds a failed payment, a failing webhook endpoint and an unpriced event on the attention
 * page. Every page is photographed at 1280 and 375 px (test-artifacts/screenshots/operator-*.png).
 */

let server: TestServer;
let browser: Browser;
let page: Page;
let problems: string[];
let receiver: Receiver;
const clock = new ManualClock();
const NAME = `Acme Rendering ${process.pid}`;
let acme: Fixture;
let holdId: string;
let failingUrl: string;
/** Pages wider than the viewport at either width (they should scroll only down). */
const overflowing: string[] = [];
/** Form controls with no accessible name. */
const unlabelled: string[] = [];
const browserHere = chromiumPresent();

/** Screenshots at both widths, and the page's layout and labelling checked on the way. */
async function capture(name: string) {
  overflowing.push(...(await screenshotBothWidths(page, name)));
  unlabelled.push(...(await unlabelledControls(page)));
}

beforeAll(async () => {
  if (!browserHere) return;
  await ensureDashboardBuilt();
  server = await startServer({ clock });
  const { api } = server;
  await seedCatalog(api);
  acme = await createCustomer(api, { credit: '100.00' });
  expect((await api.patch(`/v1/customers/${acme.customerId}`, { name: NAME, email: `billing-${process.pid}@acme.example` })).status).toBe(200);
  await createCustomer(api, { credit: '5.00' });

  // Usage priced by the catalog (revenue), and usage of a model with no price yet (unpriced).
  expect((await api.post('/v1/meters', { key: 'video_seconds', name: 'Video seconds', unit: 'second' })).status).toBe(201);
  expect((await api.post('/v1/products', { key: 'acme/video-beta', name: 'Video beta' })).status).toBe(201);
  const event = (id: string, data: Record<string, unknown>) => ({ specversion: '1.0', id, source: 'console-e2e', type: 'usage', time: clock.now().toISOString(), subject: acme.customerId, data });
  const sent = await api.post('/v1/events', [event('priced-1', { product: 'fal-ai/flux/dev', megapixels: '40' }), event('unpriced-1', { product: 'acme/video-beta', video_seconds: '12' })]);
  expect(sent.status, JSON.stringify(sent.body)).toBe(200);
  expect((await api.get('/v1/events?status=unpriced')).body.data).toHaveLength(1);

  // A job running: a hold of 4 megapixels (0.10).
  const held = await api.post('/v1/authorize', { api_key: acme.apiKey, product: 'fal-ai/flux/dev', estimate: { megapixels: 4 } });
  expect(held.status).toBe(200);
  holdId = held.body.reservation.id;

  // A declined Checkout top-up.
  const { topUp, deliver, intentFailed } = stripeEvents(() => server, clock);
  const declined = await topUp(acme, '50.00');
  expect((await deliver(intentFailed(declined, 'pi_console_e2e'))).status).toBe(200);

  // A webhook endpoint whose receiver answers 500.
  receiver = await startReceiver();
  receiver.behave(() => ({ status: 500 }));
  const endpoint = await api.post('/v1/webhook_endpoints', { url: receiver.url, customer: acme.customerId, event_types: ['credit_grant.created'], description: 'acme ops' });
  expect(endpoint.status).toBe(201);
  failingUrl = receiver.url;
  expect((await api.post(`/v1/customers/${acme.customerId}/credit_grants`, { amount: '0.01', description: 'wakes the endpoint' })).status).toBe(201);
  for (let i = 0; i < 20 && (await server.app.services.webhookDispatcher.runOnce()) > 0; i++);
  expect((await api.get('/v1/webhook_endpoints?failing=true')).body.data).toHaveLength(1);

  browser = await launchChromium();
  ({ page, problems } = await newPerson(browser, server.url));
});

afterAll(async () => {
  await browser?.close();
  await receiver?.close();
  await server?.close();
});

/** The available balance as the customer page shows it. */
const available = () => page.getByRole('region', { name: 'Balance', exact: true }).locator('.stat').filter({ hasText: 'Available' }).locator('.stat-value');

describe.skipIf(!browserHere)('the operator console', () => {
  it('signs in with the admin token, which the browser does not keep', async () => {
    await page.goto('/app/');
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Customers');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    expect(stored).not.toContain(ADMIN_TOKEN);
    expect(stored).not.toContain('tollgate_session'); // HttpOnly
  });

  it('lists customers with their balances and finds one by part of its name', async () => {
    await expect.poll(() => page.getByRole('table', { name: 'Customers' }).getByRole('row').count()).toBe(3);
    await capture('operator-customers');
    await page.getByLabel('Search customers').fill('acme rend');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.getByRole('table', { name: 'Customers' }).getByRole('row');
    await expect.poll(() => rows.count()).toBe(2); // the header and Acme
    await expect.poll(() => rows.nth(1).textContent()).toContain('$98.91'); // 100.00 + 0.01 - 1.00 of FLUX usage - 0.10 held
    await page.getByRole('link', { name: NAME }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe(NAME);
  });

  it('grants credit on the customer page and the balance changes; the open hold is listed', async () => {
    await expect.poll(() => available().textContent()).toBe('$98.91');
    await page.getByLabel('Amount (USD)').fill('25.50');
    await page.getByLabel('Description').fill('Goodwill for the outage');
    await page.getByRole('button', { name: 'Grant credit' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Granted' }).textContent()).toBe('Granted $25.50.');
    await expect.poll(() => available().textContent()).toBe('$124.41');
    const grants = page.getByRole('table', { name: 'Credit grants' });
    await expect.poll(() => grants.textContent()).toContain('Goodwill for the outage');
    const balance = (await server.api.get(`/v1/customers/${acme.customerId}/balance`)).body;
    expect(balance.available).toBe('124.41');
    // The open hold, the ledger, keys, usage and payments of the customer are on the page too.
    const holds = page.getByRole('table', { name: 'Open holds' });
    expect(await holds.textContent()).toContain(holdId);
    expect(await holds.textContent()).toContain('$0.10');
    for (const name of ['Ledger entries, newest first', 'API keys', 'Payments']) expect(await page.getByRole('table', { name }).count()).toBe(1);
    await expect.poll(() => page.getByRole('img', { name: /Charges per day over the last 30 days/ }).count()).toBe(1);
    await capture('operator-customer');
  });

  it('creates a portal link and shows it with a copy button', async () => {
    await page.getByRole('button', { name: 'Create portal link' }).click();
    const link = page.getByLabel(/Portal link/);
    await expect.poll(() => link.inputValue()).toMatch(/\/app\/portal#pst_/);
    await page.getByRole('button', { name: 'Copy link' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(await link.inputValue());
  });

  it('publishes a new price version and sees it in the product history; the old one stays; a refused one is explained', async () => {
    await page.getByRole('link', { name: 'Catalog and prices' }).click();
    await page.getByRole('button', { name: 'Prices of fal-ai/flux/dev' }).click();
    const history = page.getByRole('table', { name: 'Price versions of fal-ai/flux/dev' });
    await expect.poll(() => history.getByRole('row').count()).toBe(2);
    const form = page.getByRole('form', { name: 'New price version of fal-ai/flux/dev' });
    // The form starts from the latest version's meter and currency.
    expect(await form.getByLabel('Meter').inputValue()).toBe('megapixels');
    expect(await form.getByLabel('Currency').inputValue()).toBe('USD');
    // A refusal is shown with the server's reason, and publishes nothing.
    await form.getByLabel('Scheme').selectOption('graduated');
    await form.getByLabel('Tier 1: up to').fill('100');
    await form.getByLabel('Tier 1: unit price').fill('0.03');
    await form.getByRole('button', { name: 'Publish price version' }).click();
    await expect.poll(() => form.getByRole('alert').textContent()).toContain('tiers[0].up_to must be null on the last tier');
    expect(await history.getByRole('row').count()).toBe(2);
    await form.getByLabel('Scheme').selectOption('per_unit');
    await form.getByLabel('Price per unit').fill('0.0275');
    await form.getByRole('button', { name: 'Publish price version' }).click();
    await expect.poll(() => form.getByRole('status').textContent()).toMatch(/^Published version pri_/);
    await expect.poll(() => history.getByRole('row').count()).toBe(3);
    const rows = await history.getByRole('row').allTextContents();
    expect(rows[1]).toContain('USD 0.0275 per unit');
    expect(rows[1]).toContain('in force');
    expect(rows[2]).toContain('USD 0.025 per unit');
    expect(rows[2]).toContain('superseded');
    const prices = (await server.api.get('/v1/prices?product=fal-ai/flux/dev')).body.data;
    expect(prices.map((p: { unit_amount: string }) => p.unit_amount)).toEqual(['0.0275', '0.025']);
    await capture('operator-catalog');
  });

  it('shows revenue by model per day and per month, chart and table', async () => {
    await page.getByRole('link', { name: 'Revenue' }).click();
    const totals = page.getByRole('table', { name: 'Revenue and usage by model over the period' });
    await expect.poll(() => totals.textContent()).toContain('fal-ai/flux/dev');
    const flux = await totals.getByRole('row', { name: /fal-ai\/flux\/dev/ }).textContent();
    expect(flux).toMatch(/megapixels.*40.*\$1\.00/);
    expect(await page.getByRole('img', { name: /Revenue in USD per day, stacked by model/ }).count()).toBe(1);
    await capture('operator-revenue');
    await page.getByLabel('Period', { exact: true }).selectOption('month');
    await expect.poll(() => page.getByRole('img', { name: /Revenue in USD per month/ }).count()).toBe(1);
    expect(await totals.textContent()).toContain('$1.00');
  });

  it('lists the unpriced event, the failed payment and the failing endpoint on the attention page', async () => {
    await page.getByRole('link', { name: 'Needs attention' }).click();
    const unpriced = page.getByRole('table', { name: 'Unpriced events' });
    await expect.poll(() => unpriced.textContent()).toContain('acme/video-beta');
    expect(await unpriced.textContent()).toContain('console-e2e / unpriced-1');
    const payments = page.getByRole('table', { name: 'Failed payments' });
    await expect.poll(() => payments.textContent()).toContain('$50.00');
    expect(await payments.textContent()).toContain(acme.customerId);
    const endpoints = page.getByRole('table', { name: 'Failing or disabled webhook endpoints' });
    await expect.poll(() => endpoints.textContent()).toContain(failingUrl);
    expect(await endpoints.textContent()).toContain('failing');
    await capture('operator-attention');
  });

  it('is usable by keyboard: the skip link leads to the page and the nav is reachable with Tab', async () => {
    await page.goto('/app/console');
    await page.getByRole('heading', { level: 1, name: 'Customers' }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => location.hash)).toBe('#main');
  });

  it('met no page error, console error or failed asset on the way; every page fits 375 px and labels its controls', () => {
    expect(problems).toEqual([]);
    expect(overflowing).toEqual([]);
    expect(unlabelled).toEqual([]);
  });
});
