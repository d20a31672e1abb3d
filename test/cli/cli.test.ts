import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../src/platform/db.js';
import { apiClient } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';
import { testDir } from '../support/temp-dir.js';

/** The CLI as a user runs it, on the embedded database (it needs no service). */

afterEach(killChildren);

const field = (text: string, label: string) => new RegExp(`${label}\\s+(\\S+)`).exec(text)?.[1] ?? '';

describe('tollgate dev', () => {
  it('starts with a demo catalog, customer, credit and key, and keeps the data across restarts', async () => {
    const dir = testDir('tollgate-dev-');
    const port = await freePort();
    const env = { TOLLGATE_DATA_DIR: join(dir, 'data'), TOLLGATE_PORT: String(port) };
    const first = tollgate(['dev'], env);
    const text = await first.waitFor(/Demo API key\s+\S+/);
    const url = field(text, 'URL');
    const admin = field(text, 'Admin token');
    const key = field(text, 'Demo API key');
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(admin).toMatch(/^tga_/);
    expect(key).toMatch(/^tg_/);
    expect(statSync(join(dir, 'dev-secrets.json')).mode & 0o077).toBe(0);

    const api = apiClient(url, admin);
    const pricing = await api.get('/v1/pricing');
    const products = pricing.body.data.map((e: { product: { key: string } }) => e.product.key);
    expect(products).toEqual(expect.arrayContaining(['fal-ai/flux/dev', 'fal-ai/kling-video/v2/master', 'meta-llama/llama-3.1-70b-instruct', 'gpu/h100']));

    // The README walkthrough, as written.
    const auth = await api.post('/v1/authorize', { api_key: key, product: 'fal-ai/flux/dev', estimate: { megapixels: '4.194304' } });
    expect(auth.status).toBe(200);
    expect(auth.body).toMatchObject({ authorized: true, reservation: { amount: '0.1048576' }, available_after: '24.8951424' });
    const settle = await api.post(`/v1/reservations/${auth.body.reservation.id}/settle`, { usage: { megapixels: '1.048576' } });
    expect(settle.body).toMatchObject({ charged: '0.0262144', released: '0.0786432', uncollected: '0.00' });
    const balance = await apiClient(url, key).get('/v1/me/balance');
    expect(balance.body).toMatchObject({ available: '24.9737856', held: '0.00', posted: '24.9737856' });
    // The README's usage example: an event after the fact, then the customer's usage report.
    const events = await api.post('/v1/events', [
      { specversion: '1.0', id: 'job-1', source: 'my-gateway', type: 'usage', subject: 'demo-acme', data: { product: 'fal-ai/flux/dev', megapixels: '2' } },
    ]);
    expect(events.body.data).toEqual([{ id: 'job-1', source: 'my-gateway', status: 'accepted', event: expect.stringMatching(/^evt_/) }]);
    const usage = await apiClient(url, key).get('/v1/me/usage?from=2026-01-01T00:00:00Z&to=2036-01-01T00:00:00Z&window=month&group_by=product,meter');
    expect(usage.status).toBe(200);
    expect(usage.body.data).toEqual([expect.objectContaining({ product: 'fal-ai/flux/dev', meter: 'megapixels', sum: '3.048576', count: 2, charged: '0.0762144' })]);
    // docs/graphql.md: GraphiQL at the printed address, and the balance (after the event's 0.05) through GraphQL.
    expect(field(text, 'GraphiQL')).toBe(`${url}/graphql`);
    const graphiql = await api.get('/graphql', { token: null });
    expect([graphiql.status, graphiql.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    const me = await apiClient(url, key).post('/graphql', { query: '{ me { balance { available held } } }' });
    expect(me.body).toEqual({ data: { me: { balance: { available: '24.9237856', held: '0.00' } } } });

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = tollgate(['dev'], env);
    const again = await second.waitFor(/Demo API key\s+\S+/);
    expect(field(again, 'Admin token')).toBe(admin);
    expect(field(again, 'Demo API key')).toBe(key);
    const after = await apiClient(url, key).get('/v1/me/balance');
    expect(after.body).toMatchObject({ available: '24.9237856', posted: '24.9237856' });
    const customers = await apiClient(url, admin).get('/v1/customers');
    expect(customers.body.data).toHaveLength(1);
    second.child.kill('SIGTERM');
    expect(await second.exited, second.output()).toBe(0);
  });

  it('uses TOLLGATE_ADMIN_TOKEN when it is set', async () => {
    const dir = testDir('tollgate-dev-');
    const port = await freePort();
    const run = tollgate(['dev'], { TOLLGATE_DATA_DIR: join(dir, 'data'), TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: 'my-own-admin-token-123' });
    const text = await run.waitFor(/Demo API key\s+\S+/);
    expect(field(text, 'Admin token')).toBe('my-own-admin-token-123');
    expect(JSON.parse(readFileSync(join(dir, 'dev-secrets.json'), 'utf8')).adminToken).toBeUndefined();
    run.child.kill('SIGTERM');
    expect(await run.exited, run.output()).toBe(0);
  });
});

describe('tollgate serve and migrate', () => {
  it('serve refuses to start without an admin token', async () => {
    const dir = testDir('tollgate-serve-');
    const run = tollgate(['serve'], { TOLLGATE_DATA_DIR: join(dir, 'data') });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/TOLLGATE_ADMIN_TOKEN/);
  });

  it('refuses invalid configuration with a message naming the variable', async () => {
    const run = tollgate(['serve'], { TOLLGATE_PORT: 'eighty', TOLLGATE_ADMIN_TOKEN: 'admin-token-long-enough' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/TOLLGATE_PORT must be an integer/);
  });

  it('migrate applies the migrations once, then reports nothing to do; serve is ready after', async () => {
    const dir = testDir('tollgate-migrate-');
    const env = { TOLLGATE_DATA_DIR: join(dir, 'data') };
    const first = tollgate(['migrate'], env);
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/Applied: 001_core\.sql/);
    const second = tollgate(['migrate'], env);
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/up to date/);

    const port = await freePort();
    const serve = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: 'admin-token-long-enough', LOG_LEVEL: 'info' });
    await serve.waitFor(/Server listening/);
    const api = apiClient(`http://127.0.0.1:${port}`, 'admin-token-long-enough');
    expect((await api.get('/healthz', { token: null })).status).toBe(200);
    expect((await api.get('/readyz', { token: null })).body).toEqual({ status: 'ready' });
    // GraphiQL is for dev mode only; the GraphQL API itself is there.
    expect((await api.get('/graphql', { token: null })).status).toBe(404);
    expect((await api.post('/graphql', { query: '{ me { id } }' })).body).toEqual({ data: { me: null } });
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
  });
});

describe('tollgate ledger verify', () => {
  it('says the books agree (exit 0), and names what is wrong when they do not (exit 1)', async () => {
    const dir = testDir('tollgate-verify-');
    const env = { TOLLGATE_DATA_DIR: join(dir, 'data') };
    expect(await tollgate(['migrate'], env).exited).toBe(0);
    const clean = tollgate(['ledger', 'verify'], env);
    expect(await clean.exited).toBe(0);
    expect(clean.output()).toMatch(/The ledger agrees with itself/);

    const db = await openDb({ dataDir: env.TOLLGATE_DATA_DIR });
    await db.query(`INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, kind, customer_id, created_at)
      VALUES ('trf_damaged', 'acc_nobody', 'acc_nothing', 5, 'USD', 'charge', 'cus_nobody', now())`);
    await db.close();
    const damaged = tollgate(['ledger', 'verify'], env);
    expect(await damaged.exited).toBe(1);
    expect(damaged.output()).toContain('references: transfer trf_damaged names account acc_nobody, which does not exist');
    expect(damaged.output()).toContain('references: transfer trf_damaged names account acc_nothing, which does not exist');

    const usage = tollgate(['ledger'], env);
    expect(await usage.exited).toBe(1);
    expect(usage.output()).toMatch(/Usage: tollgate ledger verify/);
  });
});
