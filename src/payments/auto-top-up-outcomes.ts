import type { Queryable } from '../platform/db.js';
import { afterFailure, DISABLED_REASON } from './auto-top-up-rules.js';
import { lockSettings, putSettings } from './auto-top-up-store.js';

/**
 * What an auto top-up's outcome does to the customer's settings, in the transaction that records
 * the outcome (exactly once per payment). The place to emit `top_up.failed` and
 * `auto_top_up.disabled` from, once there are events.
 */

export interface AutoTopUpFailure {
  customerId: string;
  paymentId: string;
  code: string;
  message: string;
}

/** A declined auto top-up: counted, retried on the schedule, and after the last allowed failure, auto top-up turns off. */
export async function autoTopUpFailed(tx: Queryable, failure: AutoTopUpFailure, now: Date): Promise<{ disabled: boolean; consecutiveFailures: number }> {
  const settings = await lockSettings(tx, failure.customerId);
  if (!settings) return { disabled: false, consecutiveFailures: 0 };
  const next = afterFailure(settings.consecutive_failures, now);
  const disabled = next.disable && settings.enabled;
  await putSettings(tx, {
    ...settings,
    consecutive_failures: next.consecutiveFailures,
    next_attempt_at: next.nextAttemptAt,
    ...(disabled ? { enabled: false, disabled_reason: DISABLED_REASON, disabled_at: now } : {}),
  });
  return { disabled, consecutiveFailures: next.consecutiveFailures };
}

/** A paid auto top-up: the failures in a row start again from zero. */
export async function autoTopUpSucceeded(tx: Queryable, customerId: string): Promise<void> {
  const settings = await lockSettings(tx, customerId);
  if (settings && (settings.consecutive_failures > 0 || settings.next_attempt_at)) await putSettings(tx, { ...settings, consecutive_failures: 0, next_attempt_at: null });
}
