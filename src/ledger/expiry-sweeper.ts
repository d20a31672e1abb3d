import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { dueGrantExpiries, forgetSpentExpiries } from './grant-expiries.js';
import { overdueReservations } from './ledger-queries.js';
import type { LedgerService } from './ledger-service.js';

const SWEEP_BATCH_MAX = 500;

/**
 * Returns overdue holds to available and moves expired grant remainders out, whether or not anyone
 * reads them. Safe on several instances at once: each operation re-checks under the row lock.
 */
export class ExpirySweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ledger: LedgerService,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.sweep().then(() => undefined).catch((err) => this.log.error({ err }, 'expiry sweep failed')).finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass; returns how many operations it submitted. */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    const reservations = await overdueReservations(this.db, now, SWEEP_BATCH_MAX);
    await Promise.all(reservations.map((reservationId) => this.ledger.apply({ type: 'expire_reservation', reservationId })));
    // After the holds: credit they gave back is what lets an expired grant's remainder leave.
    await forgetSpentExpiries(this.db, now);
    const grants = await dueGrantExpiries(this.db, now, SWEEP_BATCH_MAX);
    await Promise.all(grants.map((g) => this.ledger.apply({ type: 'expire_grant', grantId: g.id, customerId: g.customerId })));
    return reservations.length + grants.length;
  }
}
