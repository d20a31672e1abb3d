import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/platform/errors.js';
import { minorToLedger, parseTopUpAmount } from '../../src/payments/top-up-rules.js';

describe('top-up amounts', () => {
  it('reads a decimal string in minor units of the currency', () => {
    expect(parseTopUpAmount('25', 'USD')).toBe(2500n);
    expect(parseTopUpAmount('25.5', 'USD')).toBe(2550n);
    expect(parseTopUpAmount('25.50', 'EUR')).toBe(2550n);
    expect(parseTopUpAmount('25.500000', 'USD')).toBe(2550n);
    expect(parseTopUpAmount('1.00', 'USD')).toBe(100n);
    expect(parseTopUpAmount('10000', 'USD')).toBe(1_000_000n);
    expect(parseTopUpAmount('100', 'JPY')).toBe(100n);
    expect(parseTopUpAmount('1000000', 'JPY')).toBe(1_000_000n);
  });

  it('refuses digits finer than the minor unit and amounts outside the limits, naming amount', () => {
    for (const [text, currency] of [['1.001', 'USD'], ['100.5', 'JPY'], ['0.99', 'USD'], ['10000.01', 'USD'], ['99', 'KRW'], ['1000001', 'JPY'], ['0', 'USD'], ['-1', 'USD'], ['1e3', 'USD']]) {
      let error: unknown;
      try {
        parseTopUpAmount(text!, currency!);
      } catch (e) {
        error = e;
      }
      expect(error, `${text} ${currency}`).toBeInstanceOf(AppError);
      expect((error as AppError).errors).toEqual([expect.objectContaining({ path: 'amount' })]);
    }
  });

  it('converts minor units to ledger units (scale 9)', () => {
    expect(minorToLedger(2550n, 'USD')).toBe(25_500_000_000n);
    expect(minorToLedger(100n, 'JPY')).toBe(100_000_000_000n);
  });
});
