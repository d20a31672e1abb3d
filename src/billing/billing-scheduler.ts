import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { runBilling, type BillingRunReport } from './billing-run.js';
import type { InvoiceService } from './invoice-service.js';

/** How often the scheduler looks for periods to invoice. */
export const BILLING_SCHEDULE_INTERVAL_MS = 3_600_000;

/**
 * Runs billing on its own: every interval, the last two calendar months (with an anchor day d, the
 * period YYYY-MM ends on day d of the next month, so the latest ended period is one or two months
 * back). Runs are idempotent, so ticks on several instances at once create each invoice once.
 */
export class BillingScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly deps: { db: Db; clock: Clock; invoices: InvoiceService; log: FastifyBaseLogger },
    private readonly intervalMs = BILLING_SCHEDULE_INTERVAL_MS,
  ) {}

  start(): void {
    const run = () => {
      if (this.running) return;
      this.running = this.tick()
        .catch((err) => this.deps.log.error({ err }, 'scheduled billing run failed; the next tick retries'))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(run, this.intervalMs);
    this.timer.unref();
    run();
  }

  async tick(): Promise<BillingRunReport[]> {
    const now = this.deps.clock.now();
    const periods = [2, 1].map((back) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 7));
    const reports: BillingRunReport[] = [];
    for (const period of periods) {
      const report = await runBilling({ ...this.deps, customers: () => this.deps.invoices.postpaidCustomerIds() }, period);
      if (report.created > 0) this.deps.log.info({ period, created: report.created }, 'billing run drafted invoices');
      reports.push(report);
    }
    return reports;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
