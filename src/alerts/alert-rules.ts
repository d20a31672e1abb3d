import { event, type NewEvent } from '../outbox/outbox.js';
import { formatAmount } from '../platform/money.js';
import { SPEND_PERIODS, periodStart, type SpendPeriod } from '../ledger/model.js';

/** A customer's thresholds (ledger units) and which alerts fired since they were last re-armed. */
export interface AlertState {
  customerId: string;
  balanceLow: bigint | null;
  spend: Record<SpendPeriod, bigint | null>;
  balanceLowFired: boolean;
  balanceDepletedFired: boolean;
  /** The start of the period a spend alert fired for: it fires again in the next period. */
  spendFiredFor: Record<SpendPeriod, Date | null>;
}

export function unsetAlerts(customerId: string): AlertState {
  return { customerId, balanceLow: null, spend: { day: null, month: null }, balanceLowFired: false, balanceDepletedFired: false, spendFiredFor: { day: null, month: null } };
}

export interface AlertInputs {
  currency: string;
  available: bigint;
  spent: Record<SpendPeriod, bigint>;
  now: Date;
}

/**
 * Fires each alert once per crossing and re-arms it when the customer is back on the safe side:
 * balance.low below the threshold (re-armed at or above it), balance.depleted at zero available
 * (re-armed above zero), spend_limit.reached once per UTC period. Pure: the caller runs it under
 * the customer's ledger lock, so concurrent batches see each other's state and never fire twice.
 */
export function evaluateAlerts(state: AlertState, inputs: AlertInputs): { next: AlertState; events: NewEvent[] } {
  const { currency, available, now } = inputs;
  const next: AlertState = { ...state, spendFiredFor: { ...state.spendFiredFor } };
  const events: NewEvent[] = [];
  const money = (amount: bigint) => formatAmount(amount, currency);
  const customer_id = state.customerId;
  if (available <= 0n && !state.balanceDepletedFired) {
    next.balanceDepletedFired = true;
    events.push(event('balance.depleted', customer_id, { customer_id, currency, available: money(available < 0n ? 0n : available) }));
  } else if (available > 0n) next.balanceDepletedFired = false;
  if (state.balanceLow !== null) {
    if (available < state.balanceLow && !state.balanceLowFired) {
      next.balanceLowFired = true;
      events.push(event('balance.low', customer_id, { customer_id, currency, available: money(available < 0n ? 0n : available), threshold: money(state.balanceLow) }));
    } else if (available >= state.balanceLow) next.balanceLowFired = false;
  }
  for (const period of SPEND_PERIODS) {
    const threshold = state.spend[period];
    const start = periodStart(period, now);
    if (threshold === null || inputs.spent[period] < threshold || state.spendFiredFor[period]?.getTime() === start.getTime()) continue;
    next.spendFiredFor[period] = start;
    events.push(
      event('spend_limit.reached', customer_id, { customer_id, currency, period, period_start: start.toISOString(), spent: money(inputs.spent[period]), threshold: money(threshold) }),
    );
  }
  return { next, events };
}

export function alertStateChanged(a: AlertState, b: AlertState): boolean {
  return (
    a.balanceLowFired !== b.balanceLowFired ||
    a.balanceDepletedFired !== b.balanceDepletedFired ||
    SPEND_PERIODS.some((p) => a.spendFiredFor[p]?.getTime() !== b.spendFiredFor[p]?.getTime())
  );
}
