import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { billingRunOn, expectStatus } from '../support/billing.js';
import { ADMIN_TOKEN, listEvery, startServer, type Api, type TestServer } from '../support/harness.js';
import { authorize, balanceOf, createCustomer, owedInvoice, seedCatalog, type Fixture } from '../support/fixtures.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';

/*
 * Invoices move money through the ledger (docs/billing.md, "The invoice and the ledger"). C is a
 * postpaid customer with a 10.00 grant and 20 % tax: November's usage on a graduated and a volume
 * price, a late event, finalization with credits applied, payment; then December's invoice bills
 * the late usage exactly once. Other customers show credit notes, void, uncollectible and races.
 * Every expected number is worked out by hand in the comments.
 */

const at = (iso: string) => new Date(iso);

let server: TestServer;
let api: Api;
let clock: ManualClock;
let C: Fixture;

const billingRun = (period: string) => billingRunOn(server, clock, period);
const ok = expectStatus;

async function sendEvent(customer: string, id: string, time: string, data: Record<string, string>) {
  const body = await ok(api.post('/v1/events', [{ specversion: '1.0', id, source: 'invoice-ledger-test', type: 'usage', time, subject: customer, data }]));
  expect(body.data[0].status).toBe('accepted');
}

/** November usage, one event pair every third day from the 1st: 60 images and 450 GPU seconds. */
const novemberDays = [1, 4, 7, 10, 13, 16, 19, 22, 25, 28];
async function novemberUsage(day: number) {
  const time = new Date(Date.UTC(2026, 10, day, 12)).toISOString();
  await sendEvent(C.customerId, `img-${day}`, time, { product: 'acme/image-gen', images: '60' });
  await sendEvent(C.customerId, `gpu-${day}`, time, { product: 'acme/gpu', gpu_seconds: '450' });
}

const posted = async (customerId: string) => (await balanceOf(api, customerId)).posted;
const invoiceTransfers = async (customerId: string, invoiceId: string) =>
  (await listEvery(api, `/v1/customers/${customerId}/transactions`))
    .filter((t) => t.invoice_id === invoiceId)
    .map((t) => [t.kind, t.reason, t.direction, t.amount])
    .sort();

/** The invoice's PDF as text (pdftotext, poppler-utils). */
async function pdfText(invoiceId: string): Promise<string> {
  const r = await fetch(`${server.url}/v1/invoices/${invoiceId}/pdf`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(r.status).toBe(200);
  return execFileSync('pdftotext', ['-layout', '-', '-'], { input: Buffer.from(await r.arrayBuffer()) }).toString();
}

beforeAll(async () => {
  clock = new ManualClock(at('2026-10-25T00:00:00Z'));
  server = await startServer({ clock });
  api = server.api;
  await seedCatalog(api); // fal-ai/flux/dev at 0.025 per megapixel (owedInvoice), and the gpu_seconds meter
  await ok(api.post('/v1/meters', { key: 'images', name: 'Images', unit: 'image' }), 201);
  await ok(api.post('/v1/products', { key: 'acme/image-gen', name: 'Image generation' }), 201);
  await ok(api.post('/v1/products', { key: 'acme/gpu', name: 'GPU time' }), 201);
  const epoch = '2020-01-01T00:00:00Z';
  // graduated: units 1-100 at 0.045, 101-1000 at 0.0275 (+0.50 once entered), above at 0.02
  await ok(api.post('/v1/prices', {
    product: 'acme/image-gen', meter: 'images', currency: 'USD', scheme: 'graduated', effective_at: epoch,
    tiers: [{ up_to: '100', unit_amount: '0.045' }, { up_to: '1000', unit_amount: '0.0275', flat_amount: '0.50' }, { up_to: null, unit_amount: '0.02' }],
  }), 201);
  // volume: up to 3600 s all at 0.0012, above 3600 s all at 0.001
  await ok(api.post('/v1/prices', {
    product: 'acme/gpu', meter: 'gpu_seconds', currency: 'USD', scheme: 'volume', effective_at: epoch,
    tiers: [{ up_to: '3600', unit_amount: '0.0012' }, { up_to: null, unit_amount: '0.001' }],
  }), 201);
  C = await createCustomer(api, { billing_mode: 'postpaid', credit_limit: '100.00' });
  await ok(api.request('PUT', `/v1/customers/${C.customerId}/billing_settings`, { tax_rate: '20' }));
  await ok(api.post(`/v1/customers/${C.customerId}/credit_grants`, { amount: '10.00', category: 'promotional' }), 201);
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe("C's November: usage, finalization with credits applied, payment", () => {
  let novemberId: string;

  it('charges usage per event as it happens, grants first', async () => {
    for (const day of novemberDays.slice(0, -1)) {
      clock.set(new Date(Date.UTC(2026, 10, day, 12)));
      await novemberUsage(day);
    }
    // December's first usage: 10 images at 0.045 = 0.45 (not November's).
    clock.set(at('2026-12-01T00:30:00Z'));
    await sendEvent(C.customerId, 'dec-1', '2026-12-01T00:30:00.000Z', { product: 'acme/image-gen', images: '10' });
    // Per event: 60 images x 0.045 = 2.70 and 450 s x 0.0012 = 0.54; 9 days x 3.24 = 29.16, + 0.45.
    // 10.00 granted - 29.61 = -19.61.
    expect(await posted(C.customerId)).toBe('-19.61');
    await expectDoubleEntry(server.database.db);
  });

  it('drafts from the usage so far; the draft posts nothing', async () => {
    clock.set(at('2026-12-01T01:00:00Z'));
    const { invoice } = await server.app.services.invoices.draft(C.customerId, '2026-11');
    novemberId = invoice.id;
    // 540 images: 100 x 0.045 = 4.50 + 440 x 0.0275 = 12.10 + 0.50 = 17.10; 4050 s all at 0.001 = 4.05.
    expect(invoice.lines.map((l) => [l.product, l.quantity, l.amount])).toEqual([['acme/gpu', '4050', '4.05'], ['acme/image-gen', '540', '17.10']]);
    expect(invoice).toMatchObject({ status: 'draft', subtotal: '21.15', tax: '4.23', total: '25.38', amount_due: '25.38', credits_applied: '0.00' });
    expect(await posted(C.customerId)).toBe('-19.61');
  });

  it('finalization recomputes from the usage as it is now, posts adjustment and tax, applies the grant', async () => {
    // November 28th's usage arrives after the draft (events may be up to 35 days old).
    clock.set(at('2026-12-01T02:00:00Z'));
    await novemberUsage(28);
    expect(await posted(C.customerId)).toBe('-22.85'); // another 3.24

    clock.set(at('2026-12-02T00:00:00Z'));
    const inv = await ok(api.post(`/v1/invoices/${novemberId}/finalize`));
    // 600 images: 4.50 + 500 x 0.0275 = 13.75 + 0.50 -> 18.75; 4500 s x 0.001 = 4.50 (volume).
    expect(inv.lines.map((l: any) => [l.type, l.product, l.quantity, l.amount, l.accrued])).toEqual([
      ['usage', 'acme/gpu', '4500', '4.50', '5.40'],
      ['usage', 'acme/image-gen', '600', '18.75', '27.00'],
    ]);
    // subtotal 23.25, tax 20 % = 4.65, total 27.90; accrued 32.40, adjustment -9.15.
    expect(inv).toMatchObject({ status: 'finalized', subtotal: '23.25', tax: '4.65', total: '27.90', accrued: '32.40', adjustment: '-9.15' });
    // Ledger: -22.85 + 9.15 (adjustment credited from revenue) - 4.65 (tax) = -18.35. The debt
    // 18.35 less December's 0.45 is this invoice's: 17.90 due; the 10.00 grant paid the rest.
    expect(inv).toMatchObject({ amount_due: '17.90', credits_applied: '10.00', amount_remaining: '17.90', amount_paid: '0.00' });
    expect(await posted(C.customerId)).toBe('-18.35');
    expect(await invoiceTransfers(C.customerId, novemberId)).toEqual([
      ['adjustment', 'invoice_adjustment', 'credit', '9.15'],
      ['charge', 'invoice_tax', 'debit', '4.65'],
    ]);
    await expectDoubleEntry(server.database.db);
  });

  it('mark_paid credits what is due from the payments account: only December is left on the account', async () => {
    clock.set(at('2026-12-03T00:00:00Z'));
    const paid = await ok(api.post(`/v1/invoices/${novemberId}/mark_paid`, { reference: 'wire 2026-12-03' }));
    expect(paid).toMatchObject({ status: 'paid', amount_paid: '17.90', amount_remaining: '0.00', payment_provider: 'manual', payment_reference: 'wire 2026-12-03' });
    expect(await posted(C.customerId)).toBe('-0.45');
    expect(await invoiceTransfers(C.customerId, novemberId)).toContainEqual(['adjustment', 'invoice_payment', 'credit', '17.90']);
    await expectDoubleEntry(server.database.db);
  });
});

describe('late usage: an event of a finalized period is billed on the next invoice, exactly once', () => {
  let decemberId: string;
  let januaryId: string;

  it('is charged by the ledger as usual but changes no finalized invoice', async () => {
    const november = (await ok(api.get(`/v1/invoices?customer=${C.customerId}&period=2026-11`))).data[0];
    clock.set(at('2026-12-03T12:00:00Z'));
    await sendEvent(C.customerId, 'late-nov-30', '2026-11-30T12:00:00.000Z', { product: 'acme/image-gen', images: '40' });
    expect(await posted(C.customerId)).toBe('-2.25'); // 40 x 0.045 = 1.80 more
    expect(await ok(api.get(`/v1/invoices/${november.id}`))).toEqual(november);
  });

  it('shows on every draft until an invoice that bills it is finalized, then on no other', async () => {
    clock.set(at('2027-01-01T01:00:00Z'));
    const december = (await server.app.services.invoices.draft(C.customerId, '2026-12')).invoice;
    decemberId = december.id;
    const november = (await ok(api.get(`/v1/invoices?customer=${C.customerId}&period=2026-11`))).data[0];
    const lateLine = { type: 'late_usage', product: null, meter: null, quantity: null, late_invoice_id: november.id, late_period: '2026-11', amount: '1.80', accrued: '1.80' };
    // December: 10 images = 0.45, and November's late 1.80: subtotal 2.25, tax 0.45, total 2.70.
    expect(december.lines).toEqual([expect.objectContaining({ type: 'usage', quantity: '10', amount: '0.45' }), expect.objectContaining(lateLine)]);
    expect(december).toMatchObject({ subtotal: '2.25', tax: '0.45', total: '2.70', adjustment: '0.00' });

    // January is drafted before December is finalized: it shows the late usage too, for now.
    clock.set(at('2027-02-02T00:00:00Z'));
    const january = (await server.app.services.invoices.draft(C.customerId, '2027-01')).invoice;
    januaryId = january.id;
    expect(january.lines).toEqual([expect.objectContaining(lateLine)]);

    const finalDecember = await ok(api.post(`/v1/invoices/${decemberId}/finalize`));
    expect(finalDecember).toMatchObject({ total: '2.70', amount_due: '2.70', credits_applied: '0.00', status: 'finalized' });
    expect(finalDecember.lines).toEqual(december.lines);
    expect(await posted(C.customerId)).toBe('-2.70'); // -2.25 - 0.45 tax
    // January, finalized after December billed the late usage, bills nothing: paid at once.
    const finalJanuary = await ok(api.post(`/v1/invoices/${januaryId}/finalize`));
    expect(finalJanuary).toMatchObject({ lines: [], total: '0.00', amount_due: '0.00', status: 'paid' });
    expect(await pdfText(decemberId)).toMatch(/Late usage, period 2026-11\s+1\.80/);
    expect(await posted(C.customerId)).toBe('-2.70');
    await expectDoubleEntry(server.database.db);
  });

  it('billing reruns and later drafts bill it no more', async () => {
    for (const period of ['2026-11', '2026-12', '2027-01']) expect((await billingRun(period)).created).toBe(0);
    clock.set(at('2027-03-02T00:00:00Z'));
    const february = (await server.app.services.invoices.draft(C.customerId, '2027-02')).invoice;
    expect(february.lines).toEqual([]);
  });
});

describe('credit notes, void, uncollectible', () => {
  // owedInvoice: 400 megapixels x 0.025 = 10.00 charged per event; 20 % tax 2.00; total 12.00.
  const owed = (options: { creditLimit?: string } = {}) => owedInvoice(server, clock.now(), { megapixels: '400', taxRate: '20', ...options });

  it('on an unpaid invoice: lowers what is owed (tax part from tax, the rest from revenue); the last one pays it', async () => {
    const { invoiceId, customer } = await owed();
    expect(await posted(customer.customerId)).toBe('-12.00');
    const note = await ok(api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '6.00', reason: 'duplicate', memo: 'billed twice' }), 201);
    // Tax part: 6.00 x 2.00 / 12.00 = 1.00.
    expect(note).toMatchObject({ invoice_id: invoiceId, customer_id: customer.customerId, amount: '6.00', tax: '1.00', reason: 'duplicate', memo: 'billed twice' });
    expect(note.id).toMatch(/^cn_[0-9a-z]{26}$/);
    expect(await ok(api.get(`/v1/invoices/${invoiceId}`))).toMatchObject({ status: 'finalized', amount_credited: '6.00', amount_remaining: '6.00', credit_notes: [note] });
    expect(await posted(customer.customerId)).toBe('-6.00');
    expect((await invoiceTransfers(customer.customerId, invoiceId)).filter((t) => t[1] === 'credit_note')).toEqual([
      ['adjustment', 'credit_note', 'credit', '1.00'],
      ['adjustment', 'credit_note', 'credit', '5.00'],
    ]);

    const last = await ok(api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '6.00', reason: 'other' }), 201);
    expect(last.tax).toBe('1.00');
    expect(await ok(api.get(`/v1/invoices/${invoiceId}`))).toMatchObject({ status: 'paid', payment_provider: 'credit_note', amount_credited: '12.00', amount_remaining: '0.00', amount_paid: '0.00' });
    expect(await posted(customer.customerId)).toBe('0.00');
    // Nothing is left to credit; amounts finer than a cent are refused.
    const over = await api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '0.01', reason: 'other' });
    expect([over.status, over.body.code, over.body.errors?.[0]?.path]).toEqual([400, 'invalid_request', 'amount']);
    const list = await ok(api.get(`/v1/invoices/${invoiceId}/credit_notes`));
    expect(list.data.map((n: { id: string }) => n.id)).toEqual([last.id, note.id]);
    const pdf = await pdfText(invoiceId);
    for (const expected of [/Credits applied\s+0\.00/, /Amount due\s+12\.00 USD/, /Credit note \d{4}-\d{2}-\d{2} \(duplicate\)\s+-6\.00/, /\(other\)\s+-6\.00/, /Remaining\s+0\.00 USD/]) {
      expect(pdf).toMatch(expected);
    }
    // The customer reads them on its invoice.
    expect((await ok(api.get(`/v1/me/invoices/${invoiceId}`, { token: customer.apiKey }))).credit_notes).toEqual([note, last]);
    await expectDoubleEntry(server.database.db);
  });

  it('on a paid invoice: the credit ends as spendable credit', async () => {
    const { invoiceId, customer } = await owed();
    await ok(api.post(`/v1/invoices/${invoiceId}/mark_paid`));
    expect(await posted(customer.customerId)).toBe('0.00');
    await ok(api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '3.00', reason: 'product_unsatisfactory' }), 201);
    const balance = await balanceOf(api, customer.customerId);
    // 3.00 x 2 / 12 = 0.50 from tax, 2.50 from revenue: two purchased grants, 3.00 to spend.
    expect(balance).toMatchObject({ posted: '3.00', available: '1003.00' });
    expect(balance.grants.map((g) => g.remaining).sort()).toEqual(['0.50', '2.50']);
    expect(await ok(api.get(`/v1/invoices/${invoiceId}`))).toMatchObject({ status: 'paid', amount_credited: '3.00', amount_remaining: '0.00' });
    await expectDoubleEntry(server.database.db);
  });

  it('void forgives what is still owed; credits already applied are not given back', async () => {
    const { invoiceId, customer } = await owed();
    await ok(api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '2.40', reason: 'order_change' }), 201); // tax part 0.40
    const voided = await ok(api.post(`/v1/invoices/${invoiceId}/void`));
    expect(voided).toMatchObject({ status: 'void', amount_remaining: '0.00', voided_at: clock.now().toISOString() });
    expect(await posted(customer.customerId)).toBe('0.00');
    // 9.60 forgiven: its tax part is 2.00 - 0.40 = 1.60, the rest 8.00.
    expect((await invoiceTransfers(customer.customerId, invoiceId)).filter((t) => t[1] === 'invoice_void')).toEqual([
      ['adjustment', 'invoice_void', 'credit', '1.60'],
      ['adjustment', 'invoice_void', 'credit', '8.00'],
    ]);
    expect((await api.post(`/v1/invoices/${invoiceId}/credit_notes`, { amount: '1.00', reason: 'other' })).status).toBe(409);
    await expectDoubleEntry(server.database.db);
  });

  it('an invoice is owed beyond the credit limit: spending is refused until it is paid; uncollectible changes nothing, then paid', async () => {
    // Credit limit 10.00: the 10.00 of usage is charged up to it, the 2.00 tax beyond it.
    const { invoiceId, customer } = await owed({ creditLimit: '10.00' });
    expect(await balanceOf(api, customer.customerId)).toMatchObject({ posted: '-12.00', available: '-2.00' });
    const refused = await authorize(api, customer.apiKey, { megapixels: '1' });
    expect([refused.status, refused.body.code]).toEqual([402, 'insufficient_funds']);
    const written = await ok(api.post(`/v1/invoices/${invoiceId}/mark_uncollectible`));
    expect(written).toMatchObject({ status: 'uncollectible', amount_remaining: '12.00' });
    expect(await balanceOf(api, customer.customerId)).toMatchObject({ posted: '-12.00', available: '-2.00' });
    const paid = await ok(api.post(`/v1/invoices/${invoiceId}/mark_paid`, { reference: 'collected late' }));
    expect(paid).toMatchObject({ status: 'paid', amount_paid: '12.00', amount_remaining: '0.00', uncollectible_at: expect.any(String) });
    expect(await balanceOf(api, customer.customerId)).toMatchObject({ posted: '0.00', available: '10.00' });
    expect((await authorize(api, customer.apiKey, { megapixels: '1' })).status).toBe(200);
    await expectDoubleEntry(server.database.db);
  });
});

describe('races', () => {
  it('two finalizations of one invoice: one posts, the other is 409', async () => {
    const { invoiceId, customer } = await owedInvoice(server, clock.now(), { megapixels: '400', taxRate: '20', finalize: false });
    const replies = await Promise.all([api.post(`/v1/invoices/${invoiceId}/finalize`), api.post(`/v1/invoices/${invoiceId}/finalize`)]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await invoiceTransfers(customer.customerId, invoiceId)).toEqual([['charge', 'invoice_tax', 'debit', '2.00']]);
    expect(await posted(customer.customerId)).toBe('-12.00');
    await expectDoubleEntry(server.database.db);
  });

  it('two payments of one invoice: one credits, the other is 409', async () => {
    const { invoiceId, customer } = await owedInvoice(server, clock.now(), { megapixels: '400' });
    const replies = await Promise.all([api.post(`/v1/invoices/${invoiceId}/mark_paid`, { reference: 'a' }), api.post(`/v1/invoices/${invoiceId}/mark_paid`, { reference: 'b' })]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409]);
    expect((await invoiceTransfers(customer.customerId, invoiceId)).filter((t) => t[1] === 'invoice_payment')).toEqual([['adjustment', 'invoice_payment', 'credit', '10.00']]);
    expect(await posted(customer.customerId)).toBe('0.00');
    await expectDoubleEntry(server.database.db);
  });
});
