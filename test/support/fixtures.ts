import type { Api, TestServer } from './harness.js';

export interface Fixture {
  customerId: string;
  apiKey: string;
  apiKeyId: string;
}

let seq = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

/**
 * A small generative-media catalog in USD: an image model per megapixel, an LLM per token
 * (input and output), a GPU product priced graduated per GPU-second.
 */
export async function seedCatalog(api: Api): Promise<void> {
  const ok = async (p: Promise<{ status: number; body: any }>) => {
    const r = await p;
    if (r.status !== 201) throw new Error(`seed failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  for (const meter of [
    { key: 'megapixels', name: 'Megapixels', unit: 'megapixel' },
    { key: 'input_tokens', name: 'Input tokens', unit: 'token' },
    { key: 'output_tokens', name: 'Output tokens', unit: 'token' },
    { key: 'gpu_seconds', name: 'GPU seconds', unit: 'second' },
  ]) await ok(api.post('/v1/meters', meter));
  await ok(api.post('/v1/products', { key: 'fal-ai/flux/dev', name: 'FLUX dev' }));
  await ok(api.post('/v1/products', { key: 'meta/llama-3-70b', name: 'Llama 3 70B' }));
  await ok(api.post('/v1/products', { key: 'gpu/h100', name: 'H100' }));
  const epoch = '2020-01-01T00:00:00Z';
  await ok(api.post('/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0.025', effective_at: epoch }));
  await ok(api.post('/v1/prices', { product: 'meta/llama-3-70b', meter: 'input_tokens', currency: 'USD', scheme: 'per_unit', unit_amount: '0.0000006', effective_at: epoch }));
  await ok(api.post('/v1/prices', { product: 'meta/llama-3-70b', meter: 'output_tokens', currency: 'USD', scheme: 'per_unit', unit_amount: '0.0000008', effective_at: epoch }));
  await ok(api.post('/v1/prices', {
    product: 'gpu/h100', meter: 'gpu_seconds', currency: 'USD', scheme: 'graduated', effective_at: epoch,
    tiers: [{ up_to: '3600', unit_amount: '0.001' }, { up_to: null, unit_amount: '0.0005' }],
  }));
}

/** A customer with `credit` granted (if any) and one API key. */
export async function createCustomer(
  api: Api,
  options: { credit?: string; billing_mode?: 'prepaid' | 'postpaid'; credit_limit?: string; key?: Record<string, unknown>; currency?: string } = {},
): Promise<Fixture> {
  const customer = await api.post('/v1/customers', {
    name: 'Customer',
    external_id: unique('ext'),
    currency: options.currency ?? 'USD',
    billing_mode: options.billing_mode ?? 'prepaid',
    ...(options.credit_limit ? { credit_limit: options.credit_limit } : {}),
  });
  if (customer.status !== 201) throw new Error(`customer: ${customer.status} ${JSON.stringify(customer.body)}`);
  if (options.credit) {
    const grant = await api.post(`/v1/customers/${customer.body.id}/credit_grants`, { amount: options.credit, category: 'purchased' });
    if (grant.status !== 201) throw new Error(`grant: ${grant.status} ${JSON.stringify(grant.body)}`);
  }
  const key = await api.post(`/v1/customers/${customer.body.id}/api_keys`, { name: 'test', ...(options.key ?? {}) });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
  return { customerId: customer.body.id, apiKey: key.body.secret, apiKeyId: key.body.id };
}

export async function authorize(api: Api, apiKey: string, estimate: Record<string, string | number>, extra: Record<string, unknown> = {}) {
  return api.post('/v1/authorize', { api_key: apiKey, product: 'fal-ai/flux/dev', estimate, ...extra });
}

export async function balanceOf(api: Api, customerId: string) {
  const r = await api.get(`/v1/customers/${customerId}/balance`);
  if (r.status !== 200) throw new Error(`balance: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { available: string; held: string; posted: string; credit_limit: string; grants: Array<{ id: string; remaining: string }> };
}

const BACK_DATED_MS = 34 * 86_400_000; // within TOLLGATE_EVENT_MAX_AGE (35 days)

/**
 * An invoice that owes something (after seedCatalog): a new postpaid customer's usage of
 * `megapixels` (default 40) on fal-ai/flux/dev (0.025 each) dated 34 days back, so the calendar
 * month holding it has ended; drafted as a billing run does, and finalized unless `finalize` is
 * false. The customer's credit limit defaults to 1000.00, its tax rate to 0.
 */
export async function owedInvoice(
  server: TestServer,
  now: Date,
  options: { finalize?: boolean; megapixels?: string; taxRate?: string; creditLimit?: string } = {},
): Promise<{ invoiceId: string; customer: Fixture }> {
  const customer = await createCustomer(server.api, { billing_mode: 'postpaid', credit_limit: options.creditLimit ?? '1000.00' });
  if (options.taxRate) await server.api.request('PUT', `/v1/customers/${customer.customerId}/billing_settings`, { tax_rate: options.taxRate });
  const time = new Date(now.getTime() - BACK_DATED_MS);
  const event = { specversion: '1.0', id: unique('owed'), source: 'owed-invoice', type: 'usage', time: time.toISOString(), subject: customer.customerId, data: { product: 'fal-ai/flux/dev', megapixels: options.megapixels ?? '40' } };
  const sent = await server.api.post('/v1/events', [event]);
  if (sent.status !== 200 || sent.body.data[0].status !== 'accepted') throw new Error(`event: ${sent.status} ${JSON.stringify(sent.body)}`);
  const { invoice } = await server.app.services.invoices.draft(customer.customerId, time.toISOString().slice(0, 7));
  if (options.finalize ?? true) {
    const finalized = await server.api.post(`/v1/invoices/${invoice.id}/finalize`);
    if (finalized.status !== 200 || finalized.body.status !== 'finalized') throw new Error(`finalize: ${finalized.status} ${JSON.stringify(finalized.body)}`);
  }
  return { invoiceId: invoice.id, customer };
}
