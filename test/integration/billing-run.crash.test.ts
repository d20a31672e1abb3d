import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBilling } from '../../src/billing/billing-run.js';
import { InvoiceService, type BillingDeps } from '../../src/billing/invoice-service.js';
import { periodUsage } from '../../src/metering/period-usage.js';
import { ManualClock } from '../../src/platform/clock.js';
import { listEvery, startServer, type TestServer } from '../support/harness.js';
import { killChildren, tollgate } from '../support/processes.js';
import { testEngine } from '../support/test-db.js';

/**
 * A billing run stopped midway (an error in the middle, or the process killed) and run again
 * produces each customer's invoice exactly once, with the right amounts.
 */

const CUSTOMERS = 60;
// The CLI reads the system clock, so the periods are the last two real months.
const thisMonth = (() => {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
})();
const monthBack = (n: number) => new Date(new Date(thisMonth).setUTCMonth(new Date(thisMonth).getUTCMonth() - n));
const TWO_AGO = monthBack(2).toISOString().slice(0, 7);
const LAST = monthBack(1).toISOString().slice(0, 7);
let server: TestServer;
let clock: ManualClock;
const customerIds: string[] = [];

beforeAll(async () => {
  clock = new ManualClock(new Date(monthBack(2).getTime() - 5 * 86_400_000));
  server = await startServer({ clock });
  const { api } = server;
  expect((await api.post('/v1/meters', { key: 'tokens', name: 'Tokens', unit: 'token' })).status).toBe(201);
  expect((await api.post('/v1/products', { key: 'llm/small', name: 'Small LLM' })).status).toBe(201);
  expect((await api.post('/v1/prices', { product: 'llm/small', meter: 'tokens', currency: 'USD', scheme: 'per_unit', unit_amount: '0.000002' })).status).toBe(201);
  for (let i = 0; i < CUSTOMERS; i++) {
    const c = await api.post('/v1/customers', { name: `Postpaid ${i}`, currency: 'USD', billing_mode: 'postpaid', credit_limit: '100.00' });
    customerIds.push(c.body.id);
  }
  customerIds.sort();
  // In each of the two months customer i used 1,000,000 x (i + 1) tokens: 2.00 x (i + 1) USD.
  for (const month of [2, 1]) {
    clock.set(new Date(monthBack(month).getTime() + 10 * 86_400_000));
    const events = customerIds.map((id, i) => ({ specversion: '1.0', id: `crash-${month}-${i}`, source: 'crash-test', type: 'usage', subject: id, data: { product: 'llm/small', tokens: String(1_000_000 * (i + 1)) } }));
    const sent = await api.post('/v1/events', events);
    expect(sent.body.data.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
  }
  clock.set(new Date(thisMonth + 3_600_000));
}, 120_000);
afterAll(() => server?.close());
afterEach(killChildren);

function invoicesOfPeriod(period: string): Promise<Array<{ customer_id: string; total: string }>> {
  return listEvery(server.api, `/v1/invoices?period=${period}`);
}

function expectEachOnceWithItsTotal(invoices: Array<{ customer_id: string; total: string }>) {
  expect(invoices.map((i) => i.customer_id).sort()).toEqual(customerIds);
  for (const inv of invoices) expect(inv.total).toBe(`${2 * (customerIds.indexOf(inv.customer_id) + 1)}.00`);
}

/** The billing service wired as main.ts does, with usage reads that fail once for one customer. */
function serviceFailingOnce(failFor: string): InvoiceService {
  const { accounts, catalog, invoices, ledger } = server.app.services;
  let failed = false;
  const deps: BillingDeps = {
    customer: (id) => accounts.getCustomer(id),
    postpaidCustomerIds: () => invoices.postpaidCustomerIds(),
    periodPricing: (q) => catalog.periodPricing(q),
    periodUsage: async (customerId, from, to, reader = server.database.db) => {
      if (customerId === failFor && !failed) {
        failed = true;
        throw new Error('connection lost (simulated)');
      }
      return periodUsage(reader, customerId, from, to);
    },
    lockAccount: (tx, customerId) => ledger.lockAccount(tx, customerId),
    post: (tx, ops) => ledger.applyInTransaction(tx, ops),
  };
  return new InvoiceService(server.database.db, clock, deps);
}

describe('billing run stopped midway', () => {
  it('an error in the middle stops the run; the rerun makes the rest, each invoice once', async () => {
    const failing = serviceFailingOnce(customerIds[25]);
    const run = (invoices: InvoiceService) => runBilling({ db: server.database.db, clock, invoices, customers: () => invoices.postpaidCustomerIds() }, TWO_AGO);
    await expect(run(failing)).rejects.toThrow(/simulated/);
    // Customers are billed in id order: the 25 before the failure are done, whole.
    const partial = await invoicesOfPeriod(TWO_AGO);
    expect(partial.map((i) => i.customer_id).sort()).toEqual(customerIds.slice(0, 25));
    expect(await run(failing)).toMatchObject({ customers: CUSTOMERS, created: CUSTOMERS - 25, existing: 25 });
    expectEachOnceWithItsTotal(await invoicesOfPeriod(TWO_AGO));
  });

  it.skipIf(testEngine !== 'postgres')('`tollgate billing run` killed (SIGKILL) mid-run and run again: each invoice exactly once', async () => {
    const period = LAST;
    const env = { DATABASE_URL: server.database.url!, LOG_LEVEL: 'silent' };
    const count = async () => Number((await server.database.db.query<{ n: string }>('SELECT count(*)::text AS n FROM invoices WHERE period = $1', [period]))[0].n);
    const first = tollgate(['billing', 'run', '--period', period], env);
    const start = Date.now();
    while ((await count()) < 5 && first.child.exitCode === null && Date.now() - start < 30_000) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    await first.exited;
    const madeBeforeKill = await count();
    expect(madeBeforeKill).toBeGreaterThan(0);
    expect(madeBeforeKill).toBeLessThan(CUSTOMERS); // killed mid-run, not after it
    const second = tollgate(['billing', 'run', '--period', period], env);
    expect(await second.closed, second.output()).toBe(0);
    expect(second.stdout()).toMatch(new RegExp(`${CUSTOMERS} postpaid customers, ${CUSTOMERS - madeBeforeKill} invoices created, ${madeBeforeKill} already invoiced`));
    const rows = await server.database.db.query<{ customer_id: string; n: string }>('SELECT customer_id, count(*)::text AS n FROM invoices WHERE period = $1 GROUP BY customer_id', [period]);
    expect(rows.map((r) => r.customer_id).sort()).toEqual(customerIds);
    expect(rows.every((r) => r.n === '1')).toBe(true);
    expectEachOnceWithItsTotal(await invoicesOfPeriod(period));
    // Lines are written with their invoice, in one transaction: no invoice without its lines' sum.
    const broken = await server.database.db.query(
      `SELECT i.id FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.id WHERE i.period = $1 GROUP BY i.id, i.subtotal HAVING i.subtotal <> coalesce(sum(l.amount), 0)`,
      [period],
    );
    expect(broken).toEqual([]);
  }, 120_000);
});
