import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  add,
  ceilDiv,
  cmp,
  decimalFromJson,
  DecimalFormatError,
  formatDecimal,
  formatScaled,
  fromBigInt,
  isNegative,
  isZero,
  max,
  min,
  mul,
  parseDecimal,
  parseScaled,
  sub,
  toScaledInteger,
  ZERO,
  type Decimal,
} from '../../src/platform/decimal.js';

const pow10 = (n: number) => 10n ** BigInt(n);
const dec = (text: string) => parseDecimal(text, { allowNegative: true });

// Arbitrary decimals, deliberately not normalized (e.g. coef 150n scale 2).
const arbDecimal = fc.record({
  coef: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
  scale: fc.integer({ min: 0, max: 12 }),
});
const REF_SCALE = 12;
// Reference representation: the exact value as an integer at REF_SCALE.
const ref = (d: Decimal) => d.coef * pow10(REF_SCALE - d.scale);

// Canonical decimal strings: no leading zeros, no trailing fraction zeros, no "-0".
const arbCanonical = fc
  .tuple(
    fc.boolean(),
    fc.stringMatching(/^(0|[1-9]\d{0,17})$/),
    fc.option(fc.stringMatching(/^\d{0,11}[1-9]$/), { nil: undefined }),
  )
  .map(([neg, int, frac]) => {
    const body = frac === undefined ? int : `${int}.${frac}`;
    return neg && body !== '0' ? `-${body}` : body;
  });

describe('parseDecimal / formatDecimal', () => {
  it('round-trips canonical strings', () => {
    fc.assert(
      fc.property(arbCanonical, (s) => {
        expect(formatDecimal(dec(s))).toBe(s);
      }),
    );
  });

  it('round-trips values through their canonical form', () => {
    fc.assert(
      fc.property(arbDecimal, (d) => {
        const back = parseDecimal(formatDecimal(d), { allowNegative: true, maxIntegerDigits: 40 });
        expect(cmp(back, d)).toBe(0);
        expect(formatDecimal(back)).toBe(formatDecimal(d));
      }),
    );
  });

  it('normalizes trailing zeros and leading zeros', () => {
    expect(parseDecimal('1.500')).toEqual({ coef: 15n, scale: 1 });
    expect(parseDecimal('007.0')).toEqual({ coef: 7n, scale: 0 });
    expect(parseDecimal('0.000')).toEqual(ZERO);
    expect(parseDecimal('-0', { allowNegative: true })).toEqual(ZERO);
    expect(formatDecimal({ coef: 1500n, scale: 3 })).toBe('1.5');
    expect(formatDecimal(parseDecimal('0.000015'))).toBe('0.000015');
    expect(formatDecimal(fromBigInt(-2n))).toBe('-2');
    expect(formatDecimal(ZERO)).toBe('0');
  });

  it.each(['1e5', '+1', ' 1', '1 ', '1.', '.5', 'NaN', 'Infinity', '', '-', '1,5', '0x10', '1.2.3', '١'])(
    'rejects %j',
    (s) => {
      expect(() => parseDecimal(s, { allowNegative: true })).toThrow(DecimalFormatError);
    },
  );

  it('enforces limits and sign', () => {
    expect(() => parseDecimal('-1')).toThrow(DecimalFormatError);
    expect(() => parseDecimal('0.0000000000001')).toThrow('at most 12 fractional digits');
    expect(parseDecimal('0.1000000000000').scale).toBe(1); // trailing zeros do not count
    expect(() => parseDecimal('1'.repeat(19))).toThrow('at most 18 integer digits');
    expect(parseDecimal('1'.repeat(18)).coef).toBe(BigInt('1'.repeat(18)));
    expect(() => parseDecimal('1.23', { maxScale: 1 })).toThrow('at most 1 fractional digits');
    expect(() => parseDecimal('1.5', { maxScale: 0 })).toThrow('whole number');
    expect(() => parseDecimal('123', { maxIntegerDigits: 2 })).toThrow(DecimalFormatError);
  });
});

describe('decimalFromJson', () => {
  it('accepts strings and plain numbers', () => {
    expect(decimalFromJson('2.50')).toEqual({ coef: 25n, scale: 1 });
    expect(decimalFromJson(1.5)).toEqual({ coef: 15n, scale: 1 });
    expect(decimalFromJson(1500)).toEqual({ coef: 1500n, scale: 0 });
    expect(decimalFromJson(0.000015)).toEqual({ coef: 15n, scale: 6 });
    expect(decimalFromJson(-3, { allowNegative: true })).toEqual({ coef: -3n, scale: 0 });
  });

  it.each([1e21, 1e-7, NaN, Infinity, -Infinity, 2 ** 60, 0.1 + 0.2, -1, null, undefined, true, {}, [], 10n])(
    'rejects %s',
    (v) => {
      expect(() => decimalFromJson(v)).toThrow(DecimalFormatError);
    },
  );

  it('agrees with the string form for short numbers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 9 }), fc.integer({ min: 0, max: 6 }), (n, s) => {
        const text = formatScaled(BigInt(n), s, 0);
        expect(decimalFromJson(Number(text))).toEqual(parseDecimal(text));
      }),
    );
  });
});

describe('arithmetic', () => {
  it('add, sub and mul match scaled-bigint references', () => {
    fc.assert(
      fc.property(arbDecimal, arbDecimal, (a, b) => {
        expect(toScaledInteger(add(a, b), REF_SCALE)).toBe(ref(a) + ref(b));
        expect(toScaledInteger(sub(a, b), REF_SCALE)).toBe(ref(a) - ref(b));
        expect(toScaledInteger(mul(a, b), 2 * REF_SCALE)).toBe(ref(a) * ref(b));
      }),
    );
  });

  it('returns normalized results', () => {
    fc.assert(
      fc.property(arbDecimal, arbDecimal, (a, b) => {
        for (const r of [add(a, b), sub(a, b), mul(a, b)]) {
          expect(r.scale === 0 || r.coef % 10n !== 0n).toBe(true);
        }
      }),
    );
  });

  it('cmp, min, max, isZero, isNegative agree with the reference', () => {
    fc.assert(
      fc.property(arbDecimal, arbDecimal, (a, b) => {
        const [x, y] = [ref(a), ref(b)];
        expect(cmp(a, b)).toBe(x < y ? -1 : x > y ? 1 : 0);
        expect(ref(max(a, b))).toBe(x > y ? x : y);
        expect(ref(min(a, b))).toBe(x < y ? x : y);
        expect(isZero(a)).toBe(x === 0n);
        expect(isNegative(a)).toBe(x < 0n);
      }),
    );
  });

  it('ceilDiv is the smallest integer q with q * b >= a', () => {
    const nonNeg = arbDecimal.map((d) => ({ coef: d.coef < 0n ? -d.coef : d.coef, scale: d.scale }));
    const pos = nonNeg.filter((d) => d.coef > 0n);
    fc.assert(
      fc.property(nonNeg, pos, (a, b) => {
        const q = ceilDiv(a, b);
        expect(cmp(mul(fromBigInt(q), b), a)).toBeGreaterThanOrEqual(0);
        if (q > 0n) expect(cmp(mul(fromBigInt(q - 1n), b), a)).toBe(-1);
      }),
    );
    expect(ceilDiv(dec('1.2'), dec('0.5'))).toBe(3n);
    expect(ceilDiv(dec('1000'), dec('1000'))).toBe(1n);
    expect(ceilDiv(ZERO, dec('7'))).toBe(0n);
    expect(() => ceilDiv(dec('1'), ZERO)).toThrow(RangeError);
    expect(() => ceilDiv(dec('-1'), dec('1'))).toThrow(RangeError);
  });
});

describe('toScaledInteger (half-even)', () => {
  it('matches hand-computed examples', () => {
    expect(toScaledInteger(dec('1.2345'), 2)).toBe(123n);
    expect(toScaledInteger(dec('0.125'), 2)).toBe(12n);
    expect(toScaledInteger(dec('0.135'), 2)).toBe(14n);
    expect(toScaledInteger(dec('-0.125'), 2)).toBe(-12n);
    expect(toScaledInteger(dec('-0.135'), 2)).toBe(-14n);
    expect(toScaledInteger(dec('2.5'), 0)).toBe(2n);
    expect(toScaledInteger(dec('3.5'), 0)).toBe(4n);
    expect(toScaledInteger(dec('0.1251'), 2)).toBe(13n);
    expect(toScaledInteger(dec('1.5'), 9)).toBe(1_500_000_000n);
  });

  const arbRounding = fc.tuple(arbDecimal, fc.integer({ min: 0, max: 12 }));

  it('is within half a unit of the exact value, ties going to even', () => {
    fc.assert(
      fc.property(arbRounding, ([d, scale]) => {
        const r = toScaledInteger(d, scale);
        if (d.scale <= scale) {
          expect(r).toBe(d.coef * pow10(scale - d.scale));
          return;
        }
        const unit = pow10(d.scale - scale); // one unit of the result, at d's scale
        const diff = r * unit - d.coef;
        const twice = 2n * (diff < 0n ? -diff : diff);
        expect(twice <= unit).toBe(true);
        if (twice === unit) expect(r % 2n).toBe(0n);
      }),
    );
  });

  it('sends exact ties to the even neighbour', () => {
    // k + 0.5 units at `scale`, built directly since random decimals rarely land on a tie
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), fc.integer({ min: 0, max: 9 }), (k, scale) => {
        const tie = { coef: (2n * k + 1n) * 5n, scale: scale + 1 };
        const r = toScaledInteger(tie, scale);
        expect(r % 2n).toBe(0n);
        expect(r === k || r === k + 1n).toBe(true);
      }),
    );
  });

  it('is symmetric for negatives and exact on already-scaled values', () => {
    fc.assert(
      fc.property(arbRounding, ([d, scale]) => {
        expect(toScaledInteger({ coef: -d.coef, scale: d.scale }, scale)).toBe(-toScaledInteger(d, scale));
        const r = toScaledInteger(d, scale);
        expect(toScaledInteger({ coef: r, scale }, scale)).toBe(r);
      }),
    );
  });
});

describe('formatScaled / parseScaled', () => {
  it('formats hand-computed examples', () => {
    expect(formatScaled(1_500_000_000n, 9, 2)).toBe('1.50');
    expect(formatScaled(15_000n, 9, 2)).toBe('0.000015');
    expect(formatScaled(-5n, 9, 2)).toBe('-0.000000005');
    expect(formatScaled(0n, 9, 2)).toBe('0.00');
    expect(formatScaled(123n, 0, 0)).toBe('123');
    expect(formatScaled(123n, 0, 2)).toBe('123.00');
    expect(formatScaled(-1_000_000_000n, 9, 0)).toBe('-1');
  });

  it('parses into the scale without rounding', () => {
    expect(parseScaled('1.5', 9)).toBe(1_500_000_000n);
    expect(parseScaled('0.000000001', 9)).toBe(1n);
    expect(parseScaled('2.0000000000', 9)).toBe(2_000_000_000n);
    expect(parseScaled('-0.5', 2, { allowNegative: true })).toBe(-50n);
    expect(() => parseScaled('0.0000000001', 9)).toThrow('at most 9 fractional digits');
    expect(() => parseScaled('-1', 9)).toThrow(DecimalFormatError);
    expect(() => parseScaled('1'.repeat(16), 9, { maxIntegerDigits: 15 })).toThrow(DecimalFormatError);
  });

  it('round-trips integers at a scale', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 4 }),
        (n, scale, minFrac) => {
          const text = formatScaled(n, scale, minFrac);
          expect(parseScaled(text, scale, { allowNegative: true, maxIntegerDigits: 30 })).toBe(n);
          expect(text.split('.')[1]?.length ?? 0).toBeGreaterThanOrEqual(minFrac);
        },
      ),
    );
  });
});
