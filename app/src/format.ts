// Display formatting with Intl. Money arrives as decimal strings (up to 9 fractional digits): it is
// formatted from the string itself (Intl.NumberFormat formats a numeric string exactly) and any
// arithmetic is done on BigInt units of 10^-9, never on floats.

const LOCALE = undefined; // the browser's

export const SCALE = 9;
const UNIT = 10n ** BigInt(SCALE);

/** A decimal string ("-12.5") as an integer count of 10^-9 units. */
export function toUnits(amount: string): bigint {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!match) throw new Error(`not a decimal amount: ${amount}`);
  const fraction = (match[3] ?? '').slice(0, SCALE).padEnd(SCALE, '0');
  const units = BigInt(match[2]) * UNIT + BigInt(fraction);
  return match[1] ? -units : units;
}

/** Integer 10^-9 units back to a decimal string, trailing zeros trimmed. */
export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / UNIT;
  const fraction = (abs % UNIT).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

const moneyFormats = new Map<string, Intl.NumberFormat>();

/**
 * "1234.5", "USD" -> "$1,234.50". Amounts under one major unit keep up to 6 digits so a
 * per-image price of 0.0035 does not show as $0.00.
 */
export function formatMoney(amount: string, currency: string): string {
  const units = toUnits(amount);
  const small = units !== 0n && (units < 0n ? -units : units) < UNIT;
  const key = `${currency}:${small}`;
  let format = moneyFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(LOCALE, { style: 'currency', currency, maximumFractionDigits: small ? 6 : 2 });
    moneyFormats.set(key, format);
  }
  return format.format(amount as Intl.StringNumericLiteral);
}

/** A quantity (decimal string or number) with grouping. */
export function formatNumber(value: string | number, maximumFractionDigits = 3): string {
  return new Intl.NumberFormat(LOCALE, { maximumFractionDigits }).format(value as Intl.StringNumericLiteral);
}

const dateTime = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeZone: 'UTC' });
const dayLabel = new Intl.DateTimeFormat(LOCALE, { month: 'short', day: 'numeric', timeZone: 'UTC' });

export const formatDateTime = (iso: string) => dateTime.format(new Date(iso));
/** A UTC calendar day (periods and usage windows are UTC). */
export const formatDate = (iso: string) => dateOnly.format(new Date(iso));
export const formatDay = (iso: string) => dayLabel.format(new Date(iso));

/** Whole days as "3 days" / "1 day" in the browser's language. */
export function formatDays(days: bigint): string {
  return new Intl.NumberFormat(LOCALE, { style: 'unit', unit: 'day', unitDisplay: 'long' }).format(days);
}
