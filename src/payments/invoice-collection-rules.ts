/** How many times a finalized invoice's saved card is charged before collection stops. */
export const INVOICE_ATTEMPTS_MAX = 4;
/** The wait after the n-th failed attempt (1 day, 3 days, 5 days), then no more attempts. */
export const INVOICE_RETRY_AFTER_MS = [86_400_000, 3 * 86_400_000, 5 * 86_400_000];

export interface InvoiceAttempts {
  /** A charge is in flight (pending at Tollgate or the provider). */
  pending: boolean;
  /** Failed charges for this invoice so far. */
  failures: number;
  lastFailedAt: Date | null;
}

/**
 * When the next charge of an invoice may be made: now for a first attempt, after the wait that
 * follows the last failure, never (null) once the attempts are used up or while one is in flight.
 */
export function nextInvoiceAttempt(attempts: InvoiceAttempts): Date | null {
  if (attempts.pending || attempts.failures >= INVOICE_ATTEMPTS_MAX) return null;
  if (attempts.failures === 0 || !attempts.lastFailedAt) return new Date(0);
  return new Date(attempts.lastFailedAt.getTime() + INVOICE_RETRY_AFTER_MS[attempts.failures - 1]!);
}

export function invoiceAttemptDue(attempts: InvoiceAttempts, now: Date): boolean {
  const next = nextInvoiceAttempt(attempts);
  return next !== null && next <= now;
}
