import type { WrittenBatch } from '../ledger/ledger-service.js';
import { availableBalance, type SpendPeriod } from '../ledger/model.js';
import type { Clock } from '../platform/clock.js';
import type { NewEvent } from '../outbox/outbox.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError } from '../platform/errors.js';
import { AMOUNT_MAX, formatAmount, parseAmount } from '../platform/money.js';
import { alertStateChanged, evaluateAlerts, unsetAlerts, type AlertState } from './alert-rules.js';
import * as store from './alert-store.js';
import type { AlertSettings, AlertSettingsPut } from './schemas.js';

/** What the alerts need of the ledger when a spend alert is set. */
export interface AlertsLedger {
  /** Takes the lock a ledger batch takes on the customer's account, until the transaction ends. */
  lockAccount(tx: Queryable, customerId: string): Promise<unknown>;
  periodSpend(tx: Queryable, customerId: string, at: Date): Promise<Record<SpendPeriod, bigint>>;
}

/**
 * Balance and spend alerts per customer, evaluated in each ledger batch's own transaction.
 *
 * Spend is kept per UTC day and month (customer_spend) only for the customers with a spend alert:
 * two rows written per customer and batch, for every customer, were about an eighth of
 * PostgreSQL's CPU per ingested event (docs/performance.md). Setting a spend alert fills in the current
 * periods from the ledger, under the customer's ledger lock, so no batch's spend is counted twice
 * or missed.
 */
export class AlertsService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ledger: AlertsLedger,
    private readonly currencyOf: (customerId: string) => Promise<string>,
  ) {}

  /** What record() needs a ledger batch to read for it (LedgerService.onWritten). */
  readonly batchReads = store.batchReads;

  /**
   * For every customer whose balance a batch moved: records its spend, evaluates its alerts
   * and returns the events to emit. Reads nothing itself: the batch read the alerts and spend of
   * its customers (batchReads) before its writes, so the spend read is without this batch's. Writes
   * through `writes`, the batch's write batch.
   */
  async record(writes: Queryable, { effects, accounts, now, reads }: WrittenBatch): Promise<NewEvent[]> {
    const states = store.alertsRead(reads.alerts);
    const withSpendAlerts = new Set([...states.values()].filter(hasSpendAlert).map((s) => s.customerId));
    const spend = new Map<string, bigint>();
    for (const t of effects.transfers) {
      if ((t.kind === 'capture' || t.kind === 'charge') && withSpendAlerts.has(t.customerId)) spend.set(t.customerId, (spend.get(t.customerId) ?? 0n) + t.amount);
    }
    await store.addCustomerSpend(writes, spend, now);
    const touched = [...accounts.values()].filter((a) => effects.accountDeltas.has(a.id));
    if (touched.length === 0) return [];
    const spent = store.spendRead(reads.alert_spend, [...withSpendAlerts]);
    for (const [customerId, total] of spent) {
      const added = spend.get(customerId) ?? 0n;
      spent.set(customerId, { day: total.day + added, month: total.month + added });
    }
    const events: NewEvent[] = [];
    const changed: AlertState[] = [];
    for (const account of touched) {
      const state = states.get(account.customerId!) ?? unsetAlerts(account.customerId!);
      const result = evaluateAlerts(state, { currency: account.currency, available: availableBalance(account), spent: spent.get(state.customerId) ?? { day: 0n, month: 0n }, now });
      events.push(...result.events);
      if (alertStateChanged(state, result.next)) changed.push(result.next);
    }
    await store.saveFired(writes, changed);
    return events;
  }

  async getSettings(customerId: string): Promise<AlertSettings> {
    const currency = await this.currencyOf(customerId);
    const state = (await store.loadAlerts(this.db, [customerId])).get(customerId) ?? unsetAlerts(customerId);
    return presentSettings(state, currency);
  }

  async putSettings(customerId: string, input: AlertSettingsPut): Promise<AlertSettings> {
    const currency = await this.currencyOf(customerId);
    const threshold = (field: keyof AlertSettingsPut) => {
      const text = input[field];
      if (text === undefined || text === null) return null;
      const amount = parseAmount(text);
      if (amount <= 0n || amount > AMOUNT_MAX) throw new AppError('invalid_request', `${field} must be greater than 0`, [{ path: field, message: 'must be greater than 0 and at most 1000000000' }]);
      return amount;
    };
    const balanceLow = threshold('balance_low');
    const spend = { day: threshold('spend_day'), month: threshold('spend_month') };
    const settings = { ...unsetAlerts(customerId), balanceLow, spend };
    await this.db.transaction(async (tx) => {
      // A batch that committed before this lock is in the ledger's sums below; one after it reads
      // these thresholds, and adds its own spend to the rows.
      await this.ledger.lockAccount(tx, customerId);
      await store.saveThresholds(tx, customerId, balanceLow, spend);
      if (!hasSpendAlert(settings)) return;
      const now = this.clock.now();
      await store.setCustomerSpend(tx, customerId, await this.ledger.periodSpend(tx, customerId, now), now);
    });
    return presentSettings(settings, currency);
  }
}

const hasSpendAlert = (state: AlertState) => state.spend.day !== null || state.spend.month !== null;

function presentSettings(state: AlertState, currency: string): AlertSettings {
  const money = (v: bigint | null) => (v === null ? null : formatAmount(v, currency));
  return { customer_id: state.customerId, currency, balance_low: money(state.balanceLow), spend_day: money(state.spend.day), spend_month: money(state.spend.month) };
}
