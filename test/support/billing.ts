import { runBilling } from '../../src/billing/billing-run.js';
import type { Clock } from '../../src/platform/clock.js';
import type { TestServer } from './harness.js';

/** A billing run for `period` on the test server's database and clock, as `tollgate billing run` does. */
export function billingRunOn(server: TestServer, clock: Clock, period: string) {
  const invoices = server.app.services.invoices;
  return runBilling({ db: server.app.db, clock, invoices, customers: () => invoices.postpaidCustomerIds() }, period);
}

/** The body of a reply with the expected status; anything else throws with the reply. */
export async function expectStatus(response: Promise<{ status: number; body: any }>, status = 200) {
  const r = await response;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}
