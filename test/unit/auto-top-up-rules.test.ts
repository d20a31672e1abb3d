import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { afterFailure, AUTO_TOP_UP_FAILURES_MAX, parseSettings, topUpDue } from '../../src/payments/auto-top-up-rules.js';
import { disputeTarget, refundDue } from '../../src/payments/reversal-rules.js';

const NOW = new Date('2031-07-01T00:00:00Z');
const HOUR = 3_600_000;

describe('auto top-up rules', () => {
  it('is due only when on, past any wait, and strictly below the threshold', () => {
    const on = { enabled: true, threshold: 10n, amountMinor: 100n, nextAttemptAt: null };
    expect(topUpDue(on, 9n, NOW)).toBe(true);
    expect(topUpDue(on, 10n, NOW)).toBe(false);
    expect(topUpDue({ ...on, enabled: false }, 0n, NOW)).toBe(false);
    expect(topUpDue(null, 0n, NOW)).toBe(false);
    expect(topUpDue({ ...on, nextAttemptAt: new Date(NOW.getTime() + 1) }, 0n, NOW)).toBe(false);
    expect(topUpDue({ ...on, nextAttemptAt: NOW }, 0n, NOW)).toBe(true);
  });

  it('waits 1 h after the first decline, 6 h after the second, and turns off at the third', () => {
    expect(afterFailure(0, NOW)).toEqual({ consecutiveFailures: 1, nextAttemptAt: new Date(NOW.getTime() + HOUR), disable: false });
    expect(afterFailure(1, NOW)).toEqual({ consecutiveFailures: 2, nextAttemptAt: new Date(NOW.getTime() + 6 * HOUR), disable: false });
    expect(afterFailure(2, NOW)).toEqual({ consecutiveFailures: AUTO_TOP_UP_FAILURES_MAX, nextAttemptAt: null, disable: true });
  });

  it('parses threshold and amount by the top-up rules, naming the field', () => {
    expect(parseSettings({ enabled: true, threshold: '5.5', amount: '20' }, 'USD')).toEqual({ enabled: true, threshold: 5_500_000_000n, amountMinor: 2000n });
    expect(parseSettings({ enabled: false, threshold: '100', amount: '1000' }, 'JPY')).toEqual({ enabled: false, threshold: 100_000_000_000n, amountMinor: 1000n });
    expect(() => parseSettings({ enabled: true, threshold: '0.50', amount: '20' }, 'USD')).toThrow(/threshold/);
    expect(() => parseSettings({ enabled: true, threshold: '5', amount: '20.001' }, 'USD')).toThrow(/amount/);
  });
});

describe('refunds and a dispute, in any order', () => {
  it('never take back more than the payment, and end where the reported totals say', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('refund' as const), total: fc.bigInt({ min: 0n, max: 1200n }) }),
      fc.record({ kind: fc.constant('dispute' as const), amount: fc.bigInt({ min: 1n, max: 1200n }), status: fc.constantFrom('needs_response', 'under_review', 'won', 'lost') }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1000n }), fc.array(step, { maxLength: 12 }), (amount, steps) => {
        const p = { amount, refunded: 0n, disputed: 0n };
        let refundTotal = 0n;
        let dispute: { amount: bigint; status: string } | null = null;
        for (const s of steps) {
          if (s.kind === 'refund') refundTotal = s.total > refundTotal ? s.total : refundTotal;
          else if (!dispute || !['won', 'lost'].includes(dispute.status)) dispute = { amount: s.amount, status: s.status };
          // As reconcileReversals does: refunds, the dispute, refunds again.
          p.refunded += refundDue(p, refundTotal);
          const target = disputeTarget(p, dispute);
          if (target > p.disputed || target === 0n) p.disputed = target;
          p.refunded += refundDue(p, refundTotal);
          expect(p.refunded + p.disputed).toBeLessThanOrEqual(amount);
          expect(p.refunded).toBeLessThanOrEqual(refundTotal);
        }
        // Whatever is neither refunded nor disputed is not claimed by either.
        const open = dispute && !['won', 'warning_closed'].includes(dispute.status);
        if (!open) expect(p.refunded).toBe(refundTotal < amount ? refundTotal : amount);
      }),
    );
  });
});
