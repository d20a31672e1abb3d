import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INVOICE_ATTEMPTS_MAX, INVOICE_RETRY_AFTER_MS, invoiceAttemptDue, nextInvoiceAttempt } from '../../src/payments/invoice-collection-rules.js';
import { ledgerToMinorCeil, minorToLedger } from '../../src/payments/top-up-rules.js';

const DAY = 86_400_000;
const t0 = new Date('2031-01-01T00:00:00Z');

describe('invoice collection schedule', () => {
  it('first attempt at once, then 1, 3 and 5 days after each decline, then never', () => {
    expect(invoiceAttemptDue({ pending: false, failures: 0, lastFailedAt: null }, t0)).toBe(true);
    expect(INVOICE_RETRY_AFTER_MS).toEqual([DAY, 3 * DAY, 5 * DAY]);
    for (const [failures, wait] of [[1, DAY], [2, 3 * DAY], [3, 5 * DAY]] as const) {
      expect(nextInvoiceAttempt({ pending: false, failures, lastFailedAt: t0 })).toEqual(new Date(t0.getTime() + wait));
      expect(invoiceAttemptDue({ pending: false, failures, lastFailedAt: t0 }, new Date(t0.getTime() + wait - 1))).toBe(false);
      expect(invoiceAttemptDue({ pending: false, failures, lastFailedAt: t0 }, new Date(t0.getTime() + wait))).toBe(true);
    }
    expect(nextInvoiceAttempt({ pending: false, failures: INVOICE_ATTEMPTS_MAX, lastFailedAt: t0 })).toBeNull();
  });

  it('never while a charge is in flight, whatever else', () => {
    fc.assert(
      fc.property(fc.nat(10), fc.date({ noInvalidDate: true }), fc.date({ noInvalidDate: true }), (failures, last, now) => {
        expect(invoiceAttemptDue({ pending: true, failures, lastFailedAt: last }, now)).toBe(false);
      }),
    );
  });

  it('a charge in minor units never asks for less than the ledger amount, and not a unit more', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 15n }), fc.constantFrom('USD', 'JPY'), (amount, currency) => {
        const minor = ledgerToMinorCeil(amount, currency);
        expect(minorToLedger(minor, currency) >= amount).toBe(true);
        expect(minorToLedger(minor - 1n, currency) < amount).toBe(true);
      }),
    );
  });
});
