import { AppError } from '../platform/errors.js';
import { CURRENCIES, LEDGER_SCALE } from '../platform/money.js';

/** A top-up is 1 to 10,000 currency units in minor units (1.00-10,000.00 USD; 100-1,000,000 JPY). */
export const TOP_UP_MIN_MINOR = 100n;
export const TOP_UP_MAX_MINOR = 1_000_000n;

/**
 * A top-up amount in the customer's currency, as minor units; at most the currency's minor digits.
 * `field` names the input in the refusal (auto top-up's threshold follows the same rules).
 */
export function parseTopUpAmount(text: string, currency: string, field = 'amount'): bigint {
  const digits = CURRENCIES[currency]!.minorUnits;
  const match = /^(\d{1,15})(?:\.(\d+))?$/.exec(text);
  const fraction = match?.[2] ?? '';
  if (!match || fraction.replace(/0+$/, '').length > digits) {
    throw refuse(field, `must have at most ${digits} fractional digits in ${currency}`);
  }
  const minor = BigInt(match[1]!) * 10n ** BigInt(digits) + BigInt((fraction.slice(0, digits) || '0').padEnd(digits, '0'));
  if (minor < TOP_UP_MIN_MINOR || minor > TOP_UP_MAX_MINOR) {
    throw refuse(field, `must be from ${formatMinor(TOP_UP_MIN_MINOR, digits)} to ${formatMinor(TOP_UP_MAX_MINOR, digits)} ${currency}`);
  }
  return minor;
}

export function minorToLedger(minor: bigint, currency: string): bigint {
  return minor * 10n ** BigInt(LEDGER_SCALE - CURRENCIES[currency]!.minorUnits);
}

function formatMinor(minor: bigint, digits: number): string {
  if (digits === 0) return minor.toString();
  const text = minor.toString().padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

function refuse(field: string, message: string): AppError {
  return new AppError('invalid_request', `${field} ${message}`, [{ path: field, message }]);
}

/** Ledger units as the provider's minor units, rounded up: a charge never asks for less than is owed. */
export function ledgerToMinorCeil(amount: bigint, currency: string): bigint {
  const unit = 10n ** BigInt(LEDGER_SCALE - CURRENCIES[currency]!.minorUnits);
  return (amount + unit - 1n) / unit;
}
