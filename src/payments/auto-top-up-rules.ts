import { minorToLedger, parseTopUpAmount } from './top-up-rules.js';

/** After this many declines in a row, auto top-up turns itself off until the customer turns it on again. */
export const AUTO_TOP_UP_FAILURES_MAX = 3;
/** How long to wait after the n-th decline in a row (1 h, then 6 h); the third disables. */
export const RETRY_AFTER_FAILURE_MS = [3_600_000, 21_600_000];
/** The provider did not answer: call again (same payment, same idempotency key) after this; not a decline. */
export const UNAVAILABLE_RETRY_MS = 60_000;
export const DISABLED_REASON = 'too_many_failures';

export interface AutoTopUpSettings {
  enabled: boolean;
  /** Ledger units: a top-up starts when available falls below this. */
  threshold: bigint;
  amountMinor: bigint;
  nextAttemptAt: Date | null;
}

/** The settings a customer asks for: amounts follow the top-up rules (1.00 to 10,000.00, minor digits). */
export function parseSettings(input: { enabled: boolean; threshold: string; amount: string }, currency: string) {
  return {
    enabled: input.enabled,
    threshold: minorToLedger(parseTopUpAmount(input.threshold, currency, 'threshold'), currency),
    amountMinor: parseTopUpAmount(input.amount, currency, 'amount'),
  };
}

/** Whether a customer with these settings and this available balance should be topped up now. */
export function topUpDue(settings: AutoTopUpSettings | null, available: bigint, now: Date): boolean {
  if (!settings?.enabled) return false;
  if (settings.nextAttemptAt && settings.nextAttemptAt > now) return false;
  return available < settings.threshold;
}

/** The state after one more decline in a row: when to try again, or off. */
export function afterFailure(consecutiveFailures: number, now: Date): { consecutiveFailures: number; nextAttemptAt: Date | null; disable: boolean } {
  const failures = consecutiveFailures + 1;
  if (failures >= AUTO_TOP_UP_FAILURES_MAX) return { consecutiveFailures: failures, nextAttemptAt: null, disable: true };
  return { consecutiveFailures: failures, nextAttemptAt: new Date(now.getTime() + RETRY_AFTER_FAILURE_MS[failures - 1]!), disable: false };
}
