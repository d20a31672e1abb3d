import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { newId } from '../platform/ids.js';
import type { BillingDeps, InvoiceService } from './invoice-service.js';
import * as store from './invoice-store.js';

export interface BillingRunReport {
  runId: string;
  period: string;
  customers: number;
  created: number;
  /** Customers whose invoice for the period already existed (an earlier or concurrent run). */
  existing: number;
  /** Customers whose period has not ended yet (their anchor day is later), or ended before they existed. */
  skipped: number;
}

/**
 * Drafts the period's invoice for every postpaid customer whose period has ended. Each customer's
 * invoice is written in its own transaction and a customer's period is invoiced at most once, so
 * a rerun creates nothing twice and a run stopped midway resumes where it stopped; several runs
 * (the scheduler on several instances, an operator's CLI run) may overlap.
 */
export async function runBilling(
  deps: { db: Db; clock: Clock; invoices: InvoiceService; customers: BillingDeps['postpaidCustomerIds'] },
  period: string,
  onProgress: (done: number, total: number, created: number) => void = () => {},
): Promise<BillingRunReport> {
  const runId = newId('brn', deps.clock.now().getTime());
  await store.startRun(deps.db, runId, period, deps.clock.now());
  const ids = await deps.customers();
  let created = 0;
  let skipped = 0;
  onProgress(0, ids.length, 0);
  for (const [i, id] of ids.entries()) {
    if ((await deps.invoices.periodState(id, period)) !== 'billable') skipped += 1;
    else if ((await deps.invoices.draft(id, period)).created) created += 1;
    onProgress(i + 1, ids.length, created);
  }
  await store.finishRun(deps.db, runId, deps.clock.now(), ids.length, created);
  return { runId, period, customers: ids.length, created, existing: ids.length - created - skipped, skipped };
}
