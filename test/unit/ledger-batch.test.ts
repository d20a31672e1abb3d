import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerBatch, grantOrder, type BatchState, type LedgerOp } from '../../src/ledger/batch-rules.js';
import { availableBalance, heldBalance, postedBalance, type Account, type Grant } from '../../src/ledger/model.js';
import { InvariantError } from '../../src/platform/errors.js';

const CUSTOMERS = ['cus_a', 'cus_b'];
const KEYS = { cus_a: 'key_a', cus_b: 'key_b' } as Record<string, string>;

function account(id: string, code: Account['code'], customerId: string | null, creditLimit = 0n): Account {
  return { id, currency: 'USD', code, customerId, creditLimit, debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n };
}

function freshState(creditLimitB: bigint): BatchState {
  return {
    customerAccounts: new Map([
      ['cus_a', account('acc_a', 'customer', 'cus_a')],
      ['cus_b', account('acc_b', 'customer', 'cus_b', creditLimitB)],
    ]),
    operatorAccounts: new Map(
      (['revenue', 'promotional', 'purchased', 'expired', 'tax', 'payments'] as const).map((code) => [`${code}:USD`, account(`acc_${code}`, code, null)]),
    ),
    grants: new Map(),
    reservations: new Map(),
    keys: new Map(
      Object.values(KEYS).map((id) => [id, { apiKeyId: id, active: true, maxConcurrency: 3, spendLimit: null, openCount: 0, heldAmount: 0n, spent: { day: 0n, month: 0n } }]),
    ),
  };
}

/** A step: an operation, then a possible advance of the clock (seconds). */
const step = fc.record({
  customer: fc.constantFrom(...CUSTOMERS),
  kind: fc.constantFrom('grant', 'authorize', 'settle', 'release', 'expire_grant', 'expire_reservation', 'usage_charge', 'invoice_charge', 'credit'),
  amount: fc.bigInt({ min: 1n, max: 5_000n }),
  cost: fc.bigInt({ min: 0n, max: 8_000n }),
  pick: fc.nat(),
  category: fc.constantFrom('purchased' as const, 'promotional' as const),
  priority: fc.integer({ min: 0, max: 3 }),
  expiresIn: fc.option(fc.integer({ min: 1, max: 50 }), { nil: null }),
  holdSeconds: fc.integer({ min: 1, max: 60 }),
  advance: fc.integer({ min: 0, max: 30 }),
});

describe('ledger batch rules', () => {
  it('keep double entry, the balance floor and grants = posted through any sequence of operations, invoice charges included', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), fc.bigInt({ min: 0n, max: 3_000n }), (steps, creditLimitB) => {
        const state = freshState(creditLimitB);
        let now = new Date('2026-01-01T00:00:00Z');
        let n = 0;
        const resIds: string[] = [];
        const grantIds: Array<[string, string]> = [];
        for (const s of steps) {
          const costs = new Map<string, bigint>();
          const batch = new LedgerBatch(state, {
            now,
            newId: () => `trf_${String(++n).padStart(8, '0')}`,
            rate: (reservation) => ({ ok: true, value: costs.get(reservation.id) ?? 0n }),
          });
          const op = toOp(s, resIds, grantIds, now, ++n);
          if (op.type === 'settle') costs.set(op.reservationId, s.cost);
          const before = new Map([...state.customerAccounts].map(([id, a]) => [id, availableBalance(a)]));
          const overdue = op.type === 'authorize' ? overdueHeld(state, op.customerId, now) : 0n;
          const result = batch.apply(op);
          // An authorize first expires the customer's overdue holds (their amounts come back), then
          // is refused if available is still below zero.
          if (op.type === 'authorize' && before.get(op.customerId)! + overdue < 0n) {
            expect(result).toMatchObject({ ok: false, code: 'insufficient_funds' });
          }
          checkFloor(state, before, op);
          if (result.ok && op.type === 'authorize') resIds.push(op.reservationId);
          if (result.ok && op.type === 'grant') grantIds.push([op.grantId, op.customerId]);
          checkInvariants(state, creditLimitB);
          now = new Date(now.getTime() + s.advance * 1000);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an authorize that would take available below zero, and settle never overdraws', () => {
    const state = freshState(0n);
    const batch = new LedgerBatch(state, { now: new Date(), newId: () => `trf_${Math.random()}`, rate: () => ({ ok: true, value: 10_000n }) });
    batch.apply({ type: 'grant', grantId: 'grt_1', customerId: 'cus_a', category: 'purchased', priority: 1, amount: 100n, expiresAt: null, description: null });
    const refused = batch.apply(authorizeOp('res_big', 'cus_a', 101n));
    expect(refused).toMatchObject({ ok: false, code: 'insufficient_funds' });
    expect(batch.apply(authorizeOp('res_1', 'cus_a', 60n)).ok).toBe(true);
    const settled = batch.apply({ type: 'settle', reservationId: 'res_1', usage: {} });
    expect(settled).toMatchObject({ ok: true, value: { charged: 100n, released: 0n, uncollected: 9_900n } });
    expect(availableBalance(state.customerAccounts.get('cus_a')!)).toBe(0n);
  });

  it('orders grants: expired leftovers, promotional, priority, earliest expiry', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const g = (id: string, category: Grant['category'], priority: number, expiresAt: string | null): Grant => ({
      id, customerId: 'c', currency: 'USD', category, priority, amount: 1n, remaining: 1n,
      expiresAt: expiresAt ? new Date(expiresAt) : null, expiredAt: null, description: null, createdAt: now,
    });
    const grants = [
      g('g1', 'purchased', 0, null),
      g('g2', 'promotional', 5, null),
      g('g3', 'promotional', 1, '2026-12-01T00:00:00Z'),
      g('g4', 'promotional', 1, '2026-07-01T00:00:00Z'),
      g('g5', 'purchased', 9, '2026-05-01T00:00:00Z'),
    ];
    expect(grants.sort((a, b) => grantOrder(a, b, now)).map((x) => x.id)).toEqual(['g5', 'g4', 'g3', 'g2', 'g1']);
  });
});

function authorizeOp(reservationId: string, customerId: string, amount: bigint, holdSeconds = 60): LedgerOp {
  return { type: 'authorize', reservationId, customerId, apiKeyId: KEYS[customerId], productId: 'prd_x', amount, priceIds: [], estimate: {}, metadata: {}, holdSeconds };
}

type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function toOp(s: Step, resIds: string[], grantIds: Array<[string, string]>, now: Date, n: number): LedgerOp {
  const reservationId = resIds.length > 0 ? resIds[s.pick % resIds.length] : 'res_none';
  switch (s.kind) {
    case 'grant':
      return {
        type: 'grant', grantId: `grt_${n}`, customerId: s.customer, category: s.category, priority: s.priority, amount: s.amount,
        expiresAt: s.expiresIn === null ? null : new Date(now.getTime() + s.expiresIn * 1000), description: null,
      };
    case 'authorize':
      return authorizeOp(`res_${n}`, s.customer, s.amount, s.holdSeconds);
    case 'settle':
      return { type: 'settle', reservationId, usage: {} };
    case 'release':
      return { type: 'release', reservationId };
    case 'expire_reservation':
      return { type: 'expire_reservation', reservationId };
    case 'usage_charge':
      return { type: 'usage_charge', customerId: s.customer, apiKeyId: null, amount: s.cost };
    case 'invoice_charge':
      return { type: 'invoice_charge', customerId: s.customer, target: s.pick % 2 === 0 ? 'revenue' : 'tax', amount: s.cost, reason: 'invoice_tax', invoiceId: 'inv_x' };
    case 'credit':
      return { type: 'credit', customerId: s.customer, source: (['revenue', 'tax', 'payments'] as const)[s.pick % 3], amount: s.amount, reason: 'invoice_payment', invoiceId: 'inv_x', grantId: `grt_${n}` };
    case 'expire_grant': {
      const [grantId, customerId] = grantIds.length > 0 ? grantIds[s.pick % grantIds.length] : ['grt_none', s.customer];
      return { type: 'expire_grant', grantId, customerId };
    }
  }
}

/** What the customer's holds past their expiry hold: an operation on the customer releases it first. */
function overdueHeld(state: BatchState, customerId: string, now: Date): bigint {
  return [...state.reservations.values()]
    .filter((r) => r.customerId === customerId && r.status === 'pending' && r.expiresAt <= now)
    .reduce((t, r) => t + r.amount, 0n);
}

/**
 * Only an invoice charge takes available below zero; every other operation leaves it at zero or
 * above, or, when it was already below zero, no lower than before (and an authorize is refused then).
 */
function checkFloor(state: BatchState, before: Map<string, bigint>, op: LedgerOp) {
  for (const [customerId, account] of state.customerAccounts) {
    const after = availableBalance(account);
    const was = before.get(customerId)!;
    if (op.type === 'invoice_charge' && op.customerId === customerId) {
      expect(after).toBe(was - op.amount);
      continue;
    }
    if (was >= 0n) expect(after).toBeGreaterThanOrEqual(0n);
    else expect(after).toBeGreaterThanOrEqual(was);
  }
}

function checkInvariants(state: BatchState, creditLimitB: bigint) {
  const all = [...state.customerAccounts.values(), ...state.operatorAccounts.values()];
  const sum = (f: (a: Account) => bigint) => all.reduce((t, a) => t + f(a), 0n);
  expect(sum((a) => a.debitsPosted)).toBe(sum((a) => a.creditsPosted));
  expect(sum((a) => a.debitsPending)).toBe(sum((a) => a.creditsPending));
  for (const [customerId, account] of state.customerAccounts) {
    expect(account.creditLimit).toBe(customerId === 'cus_b' ? creditLimitB : 0n);
    const posted = postedBalance(account);
    const remaining = (state.grants.get(customerId) ?? []).reduce((t, g) => t + g.remaining, 0n);
    expect(remaining).toBe(posted > 0n ? posted : 0n);
    const open = [...state.reservations.values()].filter((r) => r.customerId === customerId && r.status === 'pending');
    expect(heldBalance(account)).toBe(open.reduce((t, r) => t + r.amount, 0n));
    const key = state.keys.get(KEYS[customerId])!;
    expect(key.openCount).toBe(open.length);
    expect(key.openCount).toBeLessThanOrEqual(3);
  }
}

it('asserts instead of continuing when a rule would break an invariant', () => {
  const state = freshState(0n);
  state.operatorAccounts.delete('revenue:USD');
  const batch = new LedgerBatch(state, { now: new Date(), newId: () => 'trf_x', rate: () => ({ ok: true, value: 0n }) });
  batch.apply({ type: 'grant', grantId: 'grt_1', customerId: 'cus_a', category: 'purchased', priority: 1, amount: 100n, expiresAt: null, description: null });
  expect(() => batch.apply(authorizeOp('res_1', 'cus_a', 10n))).toThrow(InvariantError);
});

describe('invoice charges and credits', () => {
  const batchOn = (state: BatchState, cost = 0n) =>
    new LedgerBatch(state, { now: new Date('2026-01-01T00:00:00Z'), newId: () => `trf_${Math.random()}`, rate: () => ({ ok: true, value: cost }) });

  it('an invoice charge is posted in full beyond the credit limit; then authorizes are refused and nothing lowers available further', () => {
    const state = freshState(100n);
    const batch = batchOn(state, 80n);
    expect(batch.apply(authorizeOp('res_1', 'cus_b', 50n)).ok).toBe(true);
    const charged = batch.apply({ type: 'invoice_charge', customerId: 'cus_b', target: 'tax', amount: 120n, reason: 'invoice_tax', invoiceId: 'inv_1' });
    expect(charged).toMatchObject({ ok: true, value: { posted: -120n } });
    const account = state.customerAccounts.get('cus_b')!;
    expect(availableBalance(account)).toBe(-70n); // -120 posted - 50 held + 100 limit
    expect(batch.apply(authorizeOp('res_2', 'cus_b', 1n))).toMatchObject({ ok: false, code: 'insufficient_funds' });
    // The settle captures its hold (available unchanged) and charges nothing beyond it: 30 uncollected.
    expect(batch.apply({ type: 'settle', reservationId: 'res_1', usage: {} })).toMatchObject({ ok: true, value: { charged: 50n, uncollected: 30n } });
    expect(availableBalance(account)).toBe(-70n);
    expect(batch.apply({ type: 'usage_charge', customerId: 'cus_b', apiKeyId: null, amount: 10n })).toMatchObject({ ok: true, value: { charged: 0n, uncollected: 10n } });
    expect(batch.apply({ type: 'clawback', customerId: 'cus_b', grantId: null, amount: 10n, reason: 'refund' })).toMatchObject({ ok: true, value: { taken: 0n } });
    expect(availableBalance(account)).toBe(-70n);
    expect(state.operatorAccounts.get('tax:USD')!.creditsPosted).toBe(120n);
  });

  it('a credit pays the debt first and leaves only the rest as a purchased grant', () => {
    const state = freshState(0n);
    const batch = batchOn(state);
    batch.apply({ type: 'invoice_charge', customerId: 'cus_a', target: 'revenue', amount: 300n, reason: 'invoice_adjustment', invoiceId: 'inv_1' });
    const paid = batch.apply({ type: 'credit', customerId: 'cus_a', source: 'payments', amount: 200n, reason: 'invoice_payment', invoiceId: 'inv_1', grantId: 'grt_1' });
    expect(paid).toMatchObject({ ok: true, value: { grant: null, posted: -100n } });
    const over = batch.apply({ type: 'credit', customerId: 'cus_a', source: 'revenue', amount: 250n, reason: 'credit_note', invoiceId: 'inv_1', grantId: 'grt_2' });
    expect(over).toMatchObject({ ok: true, value: { grant: { id: 'grt_2', category: 'purchased', amount: 250n, remaining: 150n }, posted: 150n } });
    expect(batch.effects.transfers.map((t) => [t.kind, t.reason, t.invoiceId, t.amount])).toEqual([
      ['charge', 'invoice_adjustment', 'inv_1', 300n],
      ['adjustment', 'invoice_payment', 'inv_1', 200n],
      ['adjustment', 'credit_note', 'inv_1', 250n],
    ]);
    expect(state.grants.get('cus_a')!.map((g) => g.id)).toEqual(['grt_2']);
  });

  it('an invoice charge uses grants up like any posted debit', () => {
    const state = freshState(0n);
    const batch = batchOn(state);
    batch.apply({ type: 'grant', grantId: 'grt_1', customerId: 'cus_a', category: 'promotional', priority: 1, amount: 100n, expiresAt: null, description: null });
    batch.apply({ type: 'invoice_charge', customerId: 'cus_a', target: 'revenue', amount: 40n, reason: 'invoice_adjustment', invoiceId: 'inv_1' });
    expect(state.grants.get('cus_a')![0].remaining).toBe(60n);
    batch.apply({ type: 'invoice_charge', customerId: 'cus_a', target: 'tax', amount: 70n, reason: 'invoice_tax', invoiceId: 'inv_1' });
    expect(state.grants.get('cus_a')![0].remaining).toBe(0n);
    expect(postedBalance(state.customerAccounts.get('cus_a')!)).toBe(-10n);
  });
});
