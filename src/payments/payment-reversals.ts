import type { LedgerService } from '../ledger/ledger-service.js';
import type { Queryable } from '../platform/db.js';
import { assertInvariant } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import * as store from './payment-store.js';
import { disputeTarget, refundDue, refundStatus, type PaymentReversals } from './reversal-rules.js';
import { minorToLedger } from './top-up-rules.js';

/**
 * Brings a paid payment up to what the provider reported against it: refunds (cumulative totals)
 * and a dispute (its latest status). Each difference is a new ledger transfer, never an edit, and
 * the payment row keeps the running totals; returns what was done, one phrase per change.
 */
export async function reconcileReversals(tx: Queryable, ledger: LedgerService, payment: store.PaymentRow, now: Date): Promise<string[]> {
  const done: string[] = [];
  const refund = await applyRefunds(tx, ledger, payment);
  if (refund) done.push(refund);
  const dispute = await applyDispute(tx, ledger, payment, now);
  if (dispute) done.push(dispute);
  // A won dispute frees room that a refund reported meanwhile may now take.
  const refundAfterWin = await applyRefunds(tx, ledger, payment);
  if (refundAfterWin) done.push(refundAfterWin);
  await store.updatePayment(tx, payment);
  return done;
}

function reversalsOf(payment: store.PaymentRow): PaymentReversals {
  return { amount: BigInt(payment.amount), refunded: BigInt(payment.refunded), disputed: BigInt(payment.disputed) };
}

async function applyRefunds(tx: Queryable, ledger: LedgerService, payment: store.PaymentRow): Promise<string | null> {
  const totalMinor = payment.payment_intent_id ? await store.refundTotal(tx, payment.provider, payment.payment_intent_id) : 0n;
  const due = refundDue(reversalsOf(payment), minorToLedger(totalMinor, payment.currency));
  if (due === 0n) return null;
  const { taken, uncollected } = await clawback(tx, ledger, payment, due, 'refund');
  payment.refunded = (BigInt(payment.refunded) + due).toString();
  payment.refund_taken = (BigInt(payment.refund_taken) + taken).toString();
  payment.refund_uncollected = (BigInt(payment.refund_uncollected) + uncollected).toString();
  payment.status = refundStatus(reversalsOf(payment));
  return uncollected > 0n ? 'refund applied, part already spent' : 'refund applied';
}

/**
 * An open or lost dispute takes its amount back like a refund; a won one gives back what it took
 * with a new purchased grant (what was never collected is simply no longer owed).
 */
async function applyDispute(tx: Queryable, ledger: LedgerService, payment: store.PaymentRow, now: Date): Promise<string | null> {
  const dispute = payment.payment_intent_id ? await store.disputeOf(tx, payment.provider, payment.payment_intent_id) : null;
  if (!dispute) return null;
  const statusChanged = payment.dispute_status !== dispute.status;
  payment.dispute_status = dispute.status;
  const disputed = BigInt(payment.disputed);
  const target = disputeTarget(reversalsOf(payment), { amount: minorToLedger(BigInt(dispute.amount_minor), payment.currency), status: dispute.status });
  if (target > disputed) {
    const { taken, uncollected } = await clawback(tx, ledger, payment, target - disputed, 'dispute');
    payment.disputed = target.toString();
    payment.dispute_taken = (BigInt(payment.dispute_taken) + taken).toString();
    payment.dispute_uncollected = (BigInt(payment.dispute_uncollected) + uncollected).toString();
    return uncollected > 0n ? 'dispute applied, part already spent' : 'dispute applied';
  }
  if (target < disputed) {
    // Refunds never grow into what a dispute holds, so only a win lowers the target, to zero.
    assertInvariant(target === 0n, `dispute target of ${payment.id} fell to ${target}, not zero`);
    const giveBack = BigInt(payment.dispute_taken) - BigInt(payment.dispute_reinstated);
    if (giveBack > 0n) await grantBack(tx, ledger, payment, giveBack, now);
    payment.disputed = '0';
    payment.dispute_uncollected = '0';
    payment.dispute_reinstated = (BigInt(payment.dispute_reinstated) + giveBack).toString();
    return `dispute ${dispute.status}: credit given back`;
  }
  return statusChanged ? `dispute ${dispute.status} recorded` : null;
}

async function clawback(tx: Queryable, ledger: LedgerService, payment: store.PaymentRow, amount: bigint, reason: 'refund' | 'dispute') {
  const [result] = await ledger.applyInTransaction(tx, [{ type: 'clawback', customerId: payment.customer_id, grantId: payment.grant_id, amount, reason }]);
  if (!result!.ok || result!.value.type !== 'clawback') throw new Error(`${reason} clawback refused: ${JSON.stringify(result)}`);
  return result!.value;
}

async function grantBack(tx: Queryable, ledger: LedgerService, payment: store.PaymentRow, amount: bigint, now: Date) {
  const [result] = await ledger.applyInTransaction(tx, [
    { type: 'grant', grantId: newId('grt', now.getTime()), customerId: payment.customer_id, category: 'purchased', priority: 100, amount, expiresAt: null, description: `Dispute won on ${payment.id}` },
  ]);
  if (!result!.ok) throw new Error(`dispute give-back refused: ${result!.code} ${result!.detail}`);
}
