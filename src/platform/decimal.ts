/**
 * Exact decimals for money and quantities: value = coef / 10^scale. No floats anywhere.
 * Every function returns normalized values (no trailing zeros in the fraction), so two equal
 * values have equal fields; inputs need not be normalized.
 */
export interface Decimal {
  readonly coef: bigint;
  readonly scale: number;
}

export interface DecimalParseOptions {
  /** Most fractional digits allowed (trailing zeros are not counted). Default 12. */
  maxScale?: number;
  /** Most integer digits allowed (leading zeros are not counted). Default 18. */
  maxIntegerDigits?: number;
  /** Accept a leading '-'. Default false. */
  allowNegative?: boolean;
}

/** Bad decimal input; `message` reads after a field name ("amount must be ..."). */
export class DecimalFormatError extends Error {
  override name = 'DecimalFormatError';
}

export const ZERO: Decimal = Object.freeze({ coef: 0n, scale: 0 });

/** Powers of ten up to 10^64, computed once: pricing asks for them on every rated quantity. */
const POWERS_OF_TEN = Array.from({ length: 65 }, (_, n) => 10n ** BigInt(n));
const pow10 = (n: number): bigint => POWERS_OF_TEN[n] ?? 10n ** BigInt(n);

function normalize(coef: bigint, scale: number): Decimal {
  if (coef === 0n) return ZERO;
  while (scale > 0 && coef % 10n === 0n) {
    coef /= 10n;
    scale -= 1;
  }
  return { coef, scale };
}

/** Coefficient of `d` at a scale >= d.scale (exact). */
function at(d: Decimal, scale: number): bigint {
  return d.coef * pow10(scale - d.scale);
}

export function fromBigInt(n: bigint): Decimal {
  return normalize(n, 0);
}

const DECIMAL_RE = /^(-?)(\d+)(?:\.(\d+))?$/;

export function parseDecimal(text: string, opts: DecimalParseOptions = {}): Decimal {
  const { maxScale = 12, maxIntegerDigits = 18, allowNegative = false } = opts;
  const m = DECIMAL_RE.exec(text);
  if (!m || (m[1] && !allowNegative)) {
    const kind = allowNegative ? 'a decimal string' : 'a non-negative decimal string';
    throw new DecimalFormatError(`must be ${kind} such as "12.5" (no exponent, '+' or spaces)`);
  }
  // Limits apply to the value, so "007" and "1.50" are fine; they are checked before any
  // BigInt conversion so a huge string cannot cost more than a regex scan.
  const int = m[2].replace(/^0+/, '');
  const frac = (m[3] ?? '').replace(/0+$/, '');
  if (frac.length > maxScale) {
    throw new DecimalFormatError(
      maxScale === 0 ? 'must be a whole number' : `must be a decimal string with at most ${maxScale} fractional digits`,
    );
  }
  if (int.length > maxIntegerDigits) {
    throw new DecimalFormatError(`must be a decimal string with at most ${maxIntegerDigits} integer digits`);
  }
  const coef = BigInt((int || '0') + frac);
  return normalize(m[1] ? -coef : coef, frac.length);
}

/**
 * A decimal from a JSON value: a string, or a number whose shortest text is exact. A number is
 * only trusted when it is a safe integer or has at most 15 significant digits (any such decimal
 * survives the trip through a double unchanged); exponent forms like 1e-7 are rejected.
 */
export function decimalFromJson(value: unknown, opts?: DecimalParseOptions): Decimal {
  if (typeof value === 'string') return parseDecimal(value, opts);
  if (typeof value === 'number' && Number.isFinite(value)) {
    const text = String(value);
    const significant = text.replace(/[-.]/g, '').replace(/^0+/, '').length;
    if (!text.includes('e') && (Number.isSafeInteger(value) || significant <= 15)) return parseDecimal(text, opts);
  }
  throw new DecimalFormatError('must be a decimal string such as "12.5"');
}

export function add(a: Decimal, b: Decimal): Decimal {
  const s = Math.max(a.scale, b.scale);
  return normalize(at(a, s) + at(b, s), s);
}

export function sub(a: Decimal, b: Decimal): Decimal {
  const s = Math.max(a.scale, b.scale);
  return normalize(at(a, s) - at(b, s), s);
}

export function mul(a: Decimal, b: Decimal): Decimal {
  return normalize(a.coef * b.coef, a.scale + b.scale);
}

export function cmp(a: Decimal, b: Decimal): -1 | 0 | 1 {
  const s = Math.max(a.scale, b.scale);
  const x = at(a, s);
  const y = at(b, s);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const isZero = (d: Decimal): boolean => d.coef === 0n;
export const isNegative = (d: Decimal): boolean => d.coef < 0n;
export const max = (a: Decimal, b: Decimal): Decimal => (cmp(a, b) >= 0 ? a : b);
export const min = (a: Decimal, b: Decimal): Decimal => (cmp(a, b) <= 0 ? a : b);

/** ceil(a / b) for a >= 0 and b > 0 (number of packages needed to cover a). */
export function ceilDiv(a: Decimal, b: Decimal): bigint {
  if (a.coef < 0n || b.coef <= 0n) throw new RangeError('ceilDiv needs a >= 0 and b > 0');
  const s = Math.max(a.scale, b.scale);
  const num = at(a, s);
  const den = at(b, s);
  return (num + den - 1n) / den;
}

/** `d` rounded half-even to `scale` fractional digits, as the integer coefficient at that scale. */
export function toScaledInteger(d: Decimal, scale: number): bigint {
  if (d.scale <= scale) return at(d, scale);
  const div = pow10(d.scale - scale);
  const abs = d.coef < 0n ? -d.coef : d.coef;
  let q = abs / div;
  const twice = (abs % div) * 2n;
  if (twice > div || (twice === div && q % 2n === 1n)) q += 1n;
  return d.coef < 0n ? -q : q;
}

/** Canonical minimal form: "1.5", "0", "0.000015", "-2". */
export function formatDecimal(d: Decimal): string {
  return formatScaled(d.coef, d.scale, 0);
}

/** An integer at `scale` as a decimal string, trailing zeros trimmed down to minFractionDigits. */
export function formatScaled(amount: bigint, scale: number, minFractionDigits: number): string {
  const abs = amount < 0n ? -amount : amount;
  const unit = pow10(scale);
  const int = (abs / unit).toString();
  let frac = scale > 0 ? (abs % unit).toString().padStart(scale, '0') : '';
  frac = frac.replace(/0+$/, '').padEnd(minFractionDigits, '0');
  return (amount < 0n ? '-' : '') + int + (frac ? `.${frac}` : '');
}

/** Parses into an integer at `scale`; more fractional digits than `scale` is an error, never rounded. */
export function parseScaled(text: string, scale: number, opts: Omit<DecimalParseOptions, 'maxScale'> = {}): bigint {
  return at(parseDecimal(text, { ...opts, maxScale: scale }), scale);
}
