import { sharedRead, type Metrics } from '../observability/metrics.js';
import type { Clock } from '../platform/clock.js';
import type { Queryable } from '../platform/db.js';
import { LEDGER_SCALE } from '../platform/money.js';
import { holdCounts, ledgerTotals } from './ledger-queries.js';

const UNITS_PER_CURRENCY_UNIT = 10 ** LEDGER_SCALE;

/**
 * The ledger's gauges, read from the database when Prometheus scrapes (so every instance reports
 * the same numbers, and a scrape costs two grouped queries). Amounts are in currency units, as
 * floats: fine for dashboards; the imbalance is computed exactly on the integers first, so a
 * single ledger unit of difference shows as a non-zero value.
 */
export function registerLedgerMetrics(metrics: Metrics, db: Queryable, clock: Clock, queued: () => number) {
  const totals = sharedRead(() => ledgerTotals(db));
  metrics.gauge('tollgate_ledger_imbalance', 'Debits minus credits over all accounts, per currency and state (posted, pending): must be 0 (DESIGN.md invariant 1)', ['currency', 'state'], async (set) => {
    for (const t of await totals()) {
      set({ currency: t.currency, state: 'posted' }, toUnits(BigInt(t.debits_posted) - BigInt(t.credits_posted)));
      set({ currency: t.currency, state: 'pending' }, toUnits(BigInt(t.debits_pending) - BigInt(t.credits_pending)));
    }
  });
  metrics.gauge('tollgate_ledger_credits', 'Sum of credits over all accounts, in currency units, per currency and state (posted, pending)', ['currency', 'state'], async (set) => {
    for (const t of await totals()) {
      set({ currency: t.currency, state: 'posted' }, toUnits(BigInt(t.credits_posted)));
      set({ currency: t.currency, state: 'pending' }, toUnits(BigInt(t.credits_pending)));
    }
  });
  const holds = sharedRead(() => holdCounts(db, clock.now()));
  metrics.gauge('tollgate_holds_open', 'Open holds (pending reservations), per currency', ['currency'], async (set) => {
    for (const h of await holds()) set({ currency: h.currency }, Number(h.open));
  });
  metrics.gauge('tollgate_holds_overdue', 'Open holds past their expiry, not yet returned by the sweeper, per currency', ['currency'], async (set) => {
    for (const h of await holds()) set({ currency: h.currency }, Number(h.overdue));
  });
  metrics.gauge('tollgate_ledger_queue', 'Hot-path operations waiting for or in a batch commit', [], (set) => set({}, queued()));
}

function toUnits(amount: bigint): number {
  return Number(amount) / UNITS_PER_CURRENCY_UNIT;
}
