import type { App } from '../main.js';

export interface DemoSeed {
  customerId: string;
  apiKey: string | null;
  created: boolean;
}

const METERS = [
  { key: 'megapixels', name: 'Megapixels', unit: 'megapixel' },
  { key: 'video_seconds', name: 'Video seconds', unit: 'second' },
  { key: 'input_tokens', name: 'Input tokens', unit: 'token' },
  { key: 'output_tokens', name: 'Output tokens', unit: 'token' },
  { key: 'gpu_seconds', name: 'GPU seconds', unit: 'GPU-second' },
];

/** A catalog shaped like a generative-media platform's, priced in USD. */
const PRODUCTS = [
  { key: 'fal-ai/flux/dev', name: 'FLUX.1 [dev] text-to-image', prices: [{ meter: 'megapixels', unit_amount: '0.025' }] },
  { key: 'fal-ai/kling-video/v2/master', name: 'Kling 2.0 Master text-to-video', prices: [{ meter: 'video_seconds', unit_amount: '0.28' }] },
  {
    key: 'meta-llama/llama-3.1-70b-instruct',
    name: 'Llama 3.1 70B Instruct',
    // $0.60 and $0.80 per million tokens
    prices: [{ meter: 'input_tokens', unit_amount: '0.0000006' }, { meter: 'output_tokens', unit_amount: '0.0000008' }],
  },
  { key: 'gpu/h100', name: 'Raw H100 GPU time', prices: [{ meter: 'gpu_seconds', unit_amount: '0.000527' }] },
];

export const DEMO_EXTERNAL_ID = 'demo-acme';

/** Creates the demo catalog, customer, credit and key once; later runs find them and change nothing. */
export async function seedDemo(app: App): Promise<DemoSeed> {
  const { accounts, catalog, credit } = app.services;
  const existing = await accounts.getCustomerByExternalId(DEMO_EXTERNAL_ID).catch(() => null);
  if (existing) return { customerId: existing.id, apiKey: null, created: false };
  const epoch = new Date('2026-01-01T00:00:00Z').toISOString();
  const customer = await app.db.transaction(async (tx) => {
    for (const meter of METERS) await catalog.createMeter(tx, meter);
    for (const product of PRODUCTS) {
      await catalog.createProduct(tx, { key: product.key, name: product.name });
      for (const price of product.prices) {
        await catalog.createPrice(tx, { product: product.key, meter: price.meter, currency: 'USD', scheme: 'per_unit', unit_amount: price.unit_amount, effective_at: epoch });
      }
    }
    return accounts.createCustomer(tx, { name: 'Acme AI (demo)', external_id: DEMO_EXTERNAL_ID, email: 'dev@acme.example', currency: 'USD', billing_mode: 'prepaid' });
  });
  await credit.grant(customer.id, { amount: '25.00', category: 'promotional', description: 'Demo credit' });
  const key = await app.db.transaction((tx) => accounts.createKey(tx, customer.id, { name: 'Demo key', max_concurrency: 16 }));
  return { customerId: customer.id, apiKey: key.secret, created: true };
}
