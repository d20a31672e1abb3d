import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiClient } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testDir } from '../support/temp-dir.js';

/** `tollgate billing run` as an operator runs it, on the embedded database. */

afterEach(killChildren);

const field = (text: string, label: string) => new RegExp(`${label}\\s+(\\S+)`).exec(text)?.[1] ?? '';

async function devSession(env: Record<string, string>, work: (url: string, admin: string) => Promise<void>) {
  const dev = tollgate(['dev'], env);
  const text = await dev.waitFor(/Demo API key\s+\S+/);
  await work(field(text, 'URL'), field(text, 'Admin token'));
  dev.child.kill('SIGTERM');
  expect(await dev.exited).toBe(0);
}

describe('tollgate billing run', () => {
  it('drafts last month’s invoice for each postpaid customer once; a rerun creates nothing', async () => {
    const dir = testDir('tollgate-billing-');
    const env = { TOLLGATE_DATA_DIR: join(dir, 'data'), TOLLGATE_PORT: String(await freePort()) };
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const lastMonth = new Date(monthStart - 3_600_000); // inside the events' 35-day window
    const period = lastMonth.toISOString().slice(0, 7);
    let customerId = '';
    await devSession(env, async (url, admin) => {
      const api = apiClient(url, admin);
      const customer = await api.post('/v1/customers', { name: 'Postpaid Co', currency: 'USD', billing_mode: 'postpaid', credit_limit: '100.00' });
      expect(customer.status).toBe(201);
      customerId = customer.body.id;
      const sent = await api.post('/v1/events', [{ specversion: '1.0', id: 'cli-1', source: 'cli-test', type: 'usage', time: lastMonth.toISOString(), subject: customerId, data: { product: 'fal-ai/flux/dev', megapixels: '2' } }]);
      expect(sent.body.data[0].status).toBe('accepted');
    });

    const bad = tollgate(['billing', 'run'], env);
    expect(await bad.closed).toBe(1);
    expect(bad.stderr()).toMatch(/--period YYYY-MM/);

    const first = tollgate(['billing', 'run', '--period', period], env);
    expect(await first.closed).toBe(0);
    expect(first.stdout()).toMatch(/1 postpaid customers, 1 invoices created, 0 already invoiced/);
    const again = tollgate(['billing', 'run', `--period=${period}`], env);
    expect(await again.closed).toBe(0);
    expect(again.stdout()).toMatch(/1 postpaid customers, 0 invoices created, 1 already invoiced/);

    await devSession(env, async (url, admin) => {
      const invoices = await apiClient(url, admin).get(`/v1/invoices?period=${period}`);
      expect(invoices.body.data).toEqual([
        expect.objectContaining({ customer_id: customerId, status: 'draft', subtotal: '0.05', total: '0.05', lines: [expect.objectContaining({ product: 'fal-ai/flux/dev', meter: 'megapixels', quantity: '2', amount: '0.05' })] }),
      ]);
    });
  }, 120_000);
});
