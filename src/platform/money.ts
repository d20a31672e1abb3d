import { formatScaled, parseScaled } from './decimal.js';

/**
 * Ledger amounts are integers at a fixed asset scale: 9 fractional digits (nano-units) in every
 * currency, fine enough to charge a single token of an LLM priced per million tokens. Rounding to
 * that scale happens in one place, when usage is rated (half-even); invoices round to minor units.
 */
export const LEDGER_SCALE = 9;

/** Supported ISO 4217 currencies and their minor units (used for display and invoice rounding). */
export const CURRENCIES: Record<string, { minorUnits: number }> = {
  USD: { minorUnits: 2 },
  EUR: { minorUnits: 2 },
  GBP: { minorUnits: 2 },
  CAD: { minorUnits: 2 },
  AUD: { minorUnits: 2 },
  CHF: { minorUnits: 2 },
  SGD: { minorUnits: 2 },
  INR: { minorUnits: 2 },
  BRL: { minorUnits: 2 },
  JPY: { minorUnits: 0 },
  KRW: { minorUnits: 0 },
};
export const CURRENCY_CODES = Object.keys(CURRENCIES);

/**
 * Largest amount accepted from a client: one billion currency units, 10^18 ledger units, inside
 * the bigint columns (< 9.2 x 10^18) with room for sums. (10^15 units of currency would not fit.)
 */
export const AMOUNT_MAX = 10n ** 9n * 10n ** BigInt(LEDGER_SCALE);

export function formatAmount(amount: bigint, currency: string): string {
  return formatScaled(amount, LEDGER_SCALE, CURRENCIES[currency]?.minorUnits ?? 2);
}

/** Parses a client's decimal string into ledger units; throws DecimalFormatError on bad input. */
export function parseAmount(text: string): bigint {
  return parseScaled(text, LEDGER_SCALE, { maxIntegerDigits: 15 });
}
