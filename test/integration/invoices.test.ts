import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { billingRunOn, expectStatus } from '../support/billing.js';
import { ADMIN_TOKEN, startServer, type Api, type TestServer } from '../support/harness.js';
import { createCustomer, type Fixture } from '../support/fixtures.js';
import { testDir } from '../support/temp-dir.js';

/*
 * A postpaid customer's November on a manual clock: usage events every day and settles on the hot
 * path, a billing run on December 1st, then the invoice's lifecycle. The expected numbers are
 * worked out by hand in the comments.
 */

const DAY = 86_400_000;
const at = (iso: string) => new Date(iso);

let server: TestServer;
let api: Api;
let clock: ManualClock;
let A: Fixture; // postpaid, the story
let B: Fixture; // postpaid, a little usage
let Z: Fixture; // postpaid, no usage at all
let P: Fixture; // prepaid: never invoiced

const billingRun = (period: string) => billingRunOn(server, clock, period);
const ok = expectStatus;

async function sendEvent(customer: string, id: string, product: string, data: Record<string, string>) {
  const body = await ok(api.post('/v1/events', [{ specversion: '1.0', id, source: 'invoice-test', type: 'usage', time: clock.now().toISOString(), subject: customer, data: { product, ...data } }]));
  expect(body.data[0].status).toBe('accepted');
}

async function settleImages(f: Fixture, images: string) {
  const auth = await ok(api.post('/v1/authorize', { api_key: f.apiKey, product: 'acme/image-gen', estimate: { images } }));
  await ok(api.post(`/v1/reservations/${auth.reservation.id}/settle`, { usage: { images } }));
}

beforeAll(async () => {
  clock = new ManualClock(at('2026-10-20T00:00:00Z'));
  server = await startServer({ clock });
  api = server.api;
  await ok(api.post('/v1/meters', { key: 'images', name: 'Images', unit: 'image' }), 201);
  await ok(api.post('/v1/meters', { key: 'gpu_seconds', name: 'GPU seconds', unit: 'second' }), 201);
  await ok(api.post('/v1/products', { key: 'acme/image-gen', name: 'Image generation' }), 201);
  await ok(api.post('/v1/products', { key: 'acme/gpu', name: 'GPU time' }), 201);
  // graduated: units 1-100 at 0.045, 101-1000 at 0.0275 (+0.50 once entered), above at 0.02
  await ok(api.post('/v1/prices', {
    product: 'acme/image-gen', meter: 'images', currency: 'USD', scheme: 'graduated',
    tiers: [{ up_to: '100', unit_amount: '0.045' }, { up_to: '1000', unit_amount: '0.0275', flat_amount: '0.50' }, { up_to: null, unit_amount: '0.02' }],
  }), 201);
  // volume: up to 3600 s all at 0.0012, above 3600 s all at 0.001
  await ok(api.post('/v1/prices', {
    product: 'acme/gpu', meter: 'gpu_seconds', currency: 'USD', scheme: 'volume',
    tiers: [{ up_to: '3600', unit_amount: '0.0012' }, { up_to: null, unit_amount: '0.001' }],
  }), 201);
  A = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '1000.00' });
  B = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '1000.00' });
  Z = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '10.00' });
  P = await createCustomer(api, { credit: '50.00' });
  await ok(api.request('PUT', `/v1/customers/${A.customerId}/billing_settings`, { tax_rate: '20' }));

  // October usage belongs to October's invoice.
  clock.set(at('2026-10-31T23:00:00Z'));
  await sendEvent(A.customerId, 'oct-last', 'acme/image-gen', { images: '50' });
  // November: day d (1..30) at 12:00 UTC: d images and 123.25 GPU seconds; 7 images settled on days 5, 10, 15, 20, 25.
  for (let day = 1; day <= 30; day++) {
    clock.set(new Date(Date.UTC(2026, 10, day, 12)));
    await sendEvent(A.customerId, `img-${day}`, 'acme/image-gen', { images: String(day) });
    await sendEvent(A.customerId, `gpu-${day}`, 'acme/gpu', { gpu_seconds: '123.25' });
    if (day % 5 === 0 && day <= 25) await settleImages(A, '7');
  }
  await sendEvent(B.customerId, 'b-1', 'acme/image-gen', { images: '3' });
  await sendEvent(P.customerId, 'p-1', 'acme/image-gen', { images: '3' });
  // December usage belongs to December's invoice.
  clock.set(at('2026-12-01T00:30:00Z'));
  await sendEvent(A.customerId, 'dec-first', 'acme/image-gen', { images: '1000' });
}, 120_000);

afterAll(async () => {
  await server?.close();
});

describe('billing run for November', () => {
  it('invoices no period that has not ended', async () => {
    clock.set(at('2026-11-30T23:00:00Z'));
    expect(await billingRun('2026-11')).toMatchObject({ customers: 3, created: 0, existing: 0, skipped: 3 });
    await expect(server.app.services.invoices.draft(A.customerId, '2026-11')).rejects.toThrow(/can be invoiced after/);
    expect((await ok(api.get('/v1/invoices'))).data).toEqual([]);
    clock.set(at('2026-12-01T01:00:00Z'));
  });

  it('drafts one invoice per postpaid customer, equal to the hand-computed reference to the cent', async () => {
    // A crash after A's invoice committed: the run resumes and creates only the others.
    await server.app.services.invoices.draft(A.customerId, '2026-11');
    const report = await billingRun('2026-11');
    expect(report).toMatchObject({ customers: 3, created: 2, existing: 1, skipped: 0 });

    const list = await ok(api.get(`/v1/invoices?customer=${A.customerId}&period=2026-11`));
    expect(list.data).toHaveLength(1);
    const inv = list.data[0];
    expect(inv).toMatchObject({
      customer_id: A.customerId, currency: 'USD', period: '2026-11', status: 'draft', number: null,
      period_start: '2026-11-01T00:00:00.000Z', period_end: '2026-12-01T00:00:00.000Z',
    });
    // images: 1 + 2 + ... + 30 = 465 from events, 5 x 7 = 35 settled: 500.
    //   graduated on 500: 100 x 0.045 = 4.50; 400 x 0.0275 = 11.00; tier 2 flat 0.50 -> 16.00
    // gpu_seconds: 30 x 123.25 = 3697.5, above 3600: all at 0.001 (volume) = 3.6975 -> 3.70
    expect(inv.lines).toEqual([
      expect.objectContaining({ product: 'acme/gpu', meter: 'gpu_seconds', quantity: '3697.5', scheme: 'volume', amount: '3.70' }),
      expect.objectContaining({ product: 'acme/image-gen', meter: 'images', quantity: '500', scheme: 'graduated', amount: '16.00' }),
    ]);
    // subtotal 19.70; tax 20 % = 3.94; total 23.64
    expect(inv).toMatchObject({ subtotal: '19.70', tax_rate: '20', tax: '3.94', total: '23.64' });
    // Accrued per event on the ledger: images 500 x 0.045 = 22.50 (every event stays in tier 1);
    // GPU 30 x 123.25 x 0.0012 = 4.437. Total 26.937; the period's tiers give back 7.237.
    expect(inv.lines.map((l: { accrued: string }) => l.accrued)).toEqual(['4.437', '22.50']);
    expect(inv).toMatchObject({ accrued: '26.937', adjustment: '-7.237' });

    const b = (await ok(api.get(`/v1/invoices?customer=${B.customerId}`))).data[0];
    expect(b).toMatchObject({ subtotal: '0.14', tax: '0.00', total: '0.14' }); // 3 x 0.045 = 0.135 -> 0.14 (half-even)
    const z = (await ok(api.get(`/v1/invoices?customer=${Z.customerId}`))).data[0];
    expect(z).toMatchObject({ lines: [], subtotal: '0.00', total: '0.00' });
    expect((await ok(api.get(`/v1/invoices?customer=${P.customerId}`))).data).toEqual([]);
  });

  it('a rerun creates nothing', async () => {
    const before = (await ok(api.get('/v1/invoices?limit=100'))).data;
    expect(await billingRun('2026-11')).toMatchObject({ customers: 3, created: 0, existing: 3, skipped: 0 });
    expect((await ok(api.get('/v1/invoices?limit=100'))).data).toEqual(before);
  });
});

describe('lifecycle', () => {
  const invoiceOf = async (f: Fixture) => (await ok(api.get(`/v1/invoices?customer=${f.customerId}`))).data[0];

  it('finalize numbers sequentially; a finalized invoice is immutable (409)', async () => {
    const a = await invoiceOf(A);
    const b = await invoiceOf(B);
    const z = await invoiceOf(Z);
    // Only finalized invoices can be paid, voided or written off.
    for (const action of ['mark_paid', 'void', 'mark_uncollectible']) {
      const r = await api.post(`/v1/invoices/${a.id}/${action}`);
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('conflict');
    }
    clock.advance(DAY);
    const fa = await ok(api.post(`/v1/invoices/${a.id}/finalize`));
    const fb = await ok(api.post(`/v1/invoices/${b.id}/finalize`));
    const fz = await ok(api.post(`/v1/invoices/${z.id}/finalize`));
    expect([fa.number, fb.number, fz.number]).toEqual([1, 2, 3]);
    expect(fa).toMatchObject({ status: 'finalized', finalized_at: clock.now().toISOString(), total: '23.64', amount_due: '23.64', credits_applied: '0.00', amount_remaining: '23.64' });
    // Nothing due (a total of 0): paid at finalization.
    expect(fz).toMatchObject({ status: 'paid', total: '0.00', amount_due: '0.00', paid_at: clock.now().toISOString() });
    expect({ ...fa, status: 'draft', number: null, finalized_at: null }).toEqual(a);

    const again = await api.post(`/v1/invoices/${a.id}/finalize`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('conflict');
    // Billing settings changed later do not touch it, nor does another run.
    await ok(api.request('PUT', `/v1/customers/${A.customerId}/billing_settings`, { tax_rate: '5' }));
    await billingRun('2026-11');
    expect(await ok(api.get(`/v1/invoices/${a.id}`))).toEqual(fa);
    expect(await ok(api.get(`/v1/customers/${A.customerId}/billing_settings`))).toMatchObject({ tax_rate: '5', anchor_day: 1 });
    // Moving the anchor day once invoices exist would make periods overlap: refused.
    const moved = await api.request('PUT', `/v1/customers/${A.customerId}/billing_settings`, { tax_rate: '5', anchor_day: 10 });
    expect(moved.status).toBe(409);
    expect(moved.body.code).toBe('conflict');
  });

  it('paid and uncollectible transitions, and what they refuse (void: invoices.ledger.test.ts)', async () => {
    const a = await invoiceOf(A);
    const paid = await ok(api.post(`/v1/invoices/${a.id}/mark_paid`, { reference: 'wire 2026-12-03' }));
    expect(paid).toMatchObject({ status: 'paid', payment_reference: 'wire 2026-12-03', paid_at: clock.now().toISOString() });
    for (const action of ['finalize', 'mark_paid', 'void', 'mark_uncollectible']) expect((await api.post(`/v1/invoices/${a.id}/${action}`)).status).toBe(409);

    const b = await invoiceOf(B);
    expect(await ok(api.post(`/v1/invoices/${b.id}/mark_uncollectible`))).toMatchObject({ status: 'uncollectible' });
    expect(await ok(api.post(`/v1/invoices/${b.id}/mark_paid`))).toMatchObject({ status: 'paid', uncollectible_at: expect.any(String) });
    expect((await api.post(`/v1/invoices/${b.id}/void`)).status).toBe(409);

    const z = await invoiceOf(Z);
    expect((await api.post(`/v1/invoices/${z.id}/mark_uncollectible`)).status).toBe(409);

    const byStatus = async (status: string) => (await ok(api.get(`/v1/invoices?status=${status}`))).data.map((i: { id: string }) => i.id).sort();
    expect(await byStatus('paid')).toEqual([a.id, b.id, z.id].sort());
    expect(await byStatus('draft')).toEqual([]);
  });

  it('an unknown invoice is 404', async () => {
    const r = await api.post('/v1/invoices/inv_00000000000000000000000000/finalize');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('not_found');
  });
});

describe('GET /v1/invoices/{id}/pdf', () => {
  it('is a real PDF that pdftoppm renders, with operator, customer, period, lines, tax and totals', async () => {
    const invoice = (await ok(api.get(`/v1/invoices?customer=${A.customerId}`))).data[0];
    const r = await fetch(`${server.url}/v1/invoices/${invoice.id}/pdf`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/pdf/);
    const pdf = Buffer.from(await r.arrayBuffer());
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const dir = testDir('tollgate-pdf-');
    writeFileSync(join(dir, 'invoice.pdf'), pdf);
    execFileSync('pdftoppm', ['-png', '-r', '40', join(dir, 'invoice.pdf'), join(dir, 'page')]);
    expect(readdirSync(dir).filter((f) => f.startsWith('page') && f.endsWith('.png'))).toHaveLength(1);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'invoice.pdf'), '-']).toString();
    for (const expected of ['Tollgate', 'Invoice 000001', 'Billed to', A.customerId, '2026-11', 'acme/image-gen', 'images', '500', '16.00', 'acme/gpu', '3697.5', '3.70', '19.70', 'Tax (20 %)', '3.94', '23.64 USD', 'paid', 'Credits applied', 'Amount due', 'Remaining', '0.00 USD']) {
      expect(text).toContain(expected);
    }
    // A customer key uses /v1/me (the same PDF); the operator route is 403 to it; an unknown invoice is 404.
    const mine = await fetch(`${server.url}/v1/me/invoices/${invoice.id}/pdf`, { headers: { authorization: `Bearer ${A.apiKey}` } });
    expect(mine.status).toBe(200);
    expect(mine.headers.get('content-type')).toMatch(/^application\/pdf/);
    expect((await api.get(`/v1/me/invoices/${invoice.id}/pdf`, { token: B.apiKey })).status).toBe(404);
    expect((await api.get(`/v1/invoices/${invoice.id}/pdf`, { token: A.apiKey })).status).toBe(403);
    expect((await api.get('/v1/invoices/inv_00000000000000000000000000/pdf')).status).toBe(404);
  });
});

describe('/v1/me/invoices', () => {
  it("lists and shows only the key's own customer's invoices", async () => {
    const mine = await ok(api.get('/v1/me/invoices', { token: A.apiKey }));
    expect(mine.data.map((i: { customer_id: string }) => i.customer_id)).toEqual([A.customerId]);
    const aInvoice = mine.data[0];
    expect(await ok(api.get(`/v1/me/invoices/${aInvoice.id}`, { token: A.apiKey }))).toEqual(aInvoice);
    const bInvoice = (await ok(api.get(`/v1/invoices?customer=${B.customerId}`))).data[0];
    const other = await api.get(`/v1/me/invoices/${bInvoice.id}`, { token: A.apiKey });
    expect(other.status).toBe(404);
    expect((await api.get(`/v1/me/invoices?customer=${B.customerId}`, { token: A.apiKey })).status).toBe(400);
    expect((await api.get('/v1/me/invoices', { token: P.apiKey })).body.data).toEqual([]);
    expect((await api.get('/v1/invoices', { token: A.apiKey })).status).toBe(403);
  });
});

describe('the background scheduler', () => {
  it('drafts the last two months on its own, each invoice once', async () => {
    // December 2nd: October was never run; November is done.
    clock.set(at('2026-12-02T00:00:00Z'));
    const [october, november] = await server.app.services.billingScheduler.tick();
    expect(october).toMatchObject({ period: '2026-10', customers: 3, created: 3, existing: 0 });
    expect(november).toMatchObject({ period: '2026-11', customers: 3, created: 0, existing: 3 });
    // A's October: the 50 images of October 31st at 0.045 = 2.25; tax 5 % (A's setting now) = 0.1125 -> 0.11.
    const [a] = (await ok(api.get(`/v1/invoices?customer=${A.customerId}&period=2026-10`))).data;
    expect(a).toMatchObject({ lines: [expect.objectContaining({ meter: 'images', quantity: '50', amount: '2.25' })], subtotal: '2.25', tax_rate: '5', tax: '0.11', total: '2.36' });
    const again = await server.app.services.billingScheduler.tick();
    expect(again.map((r) => r.created)).toEqual([0, 0]);
  });
});
