import { assertInvariant, refusal, type Outcome } from '../platform/errors.js';
import {
  SPEND_PERIODS,
  availableBalance,
  periodStart,
  postedBalance,
  type Account,
  type Grant,
  type GrantCategory,
  type KeyState,
  type OperatorAccountCode,
  type Quantities,
  type Reservation,
  type SpendPeriod,
  type Transfer,
  type TransferKind,
} from './model.js';

/** The ledger operations that go through the group-committed batch, in arrival order. */
export type LedgerOp =
  | { type: 'grant'; grantId: string; customerId: string; category: GrantCategory; priority: number; amount: bigint; expiresAt: Date | null; description: string | null }
  | {
      type: 'authorize';
      reservationId: string;
      customerId: string;
      apiKeyId: string;
      productId: string;
      amount: bigint;
      priceIds: string[];
      estimate: Quantities;
      metadata: Record<string, unknown>;
      holdSeconds: number;
    }
  | { type: 'settle'; reservationId: string; usage: Quantities }
  | { type: 'release'; reservationId: string }
  | { type: 'expire_reservation'; reservationId: string }
  | { type: 'expire_grant'; grantId: string; customerId: string }
  /** Usage recorded after the fact (metering): charged as far as available allows, the rest uncollected. */
  | { type: 'usage_charge'; customerId: string; apiKeyId: string | null; amount: bigint }
  /** Credit taken back (a refunded top-up): as far as available allows, from `grantId` first; the rest uncollected. */
  | { type: 'clawback'; customerId: string; grantId: string | null; amount: bigint; reason: string }
  /**
   * Money an invoice gives back to the customer (an adjustment, a payment, a credit note, a void):
   * from an operator account, paying the customer's debt first; the rest becomes a spendable
   * purchased grant `grantId` (no grant when nothing is left).
   */
  | { type: 'credit'; customerId: string; source: CreditSource; amount: bigint; reason: InvoiceTransferReason; invoiceId: string; grantId: string }
  /** What an invoice bills beyond what the ledger charged (an adjustment, the tax): posted in full, even beyond the credit limit. */
  | { type: 'invoice_charge'; customerId: string; target: InvoiceChargeTarget; amount: bigint; reason: InvoiceTransferReason; invoiceId: string };

export type CreditSource = Extract<OperatorAccountCode, 'revenue' | 'tax' | 'payments'>;
export type InvoiceChargeTarget = Extract<OperatorAccountCode, 'revenue' | 'tax'>;
/** The `reason` of the transfers invoices make (docs/billing.md). */
export type InvoiceTransferReason = 'invoice_adjustment' | 'invoice_tax' | 'invoice_payment' | 'credit_note' | 'invoice_void';

/** Grants that a credit leaves behind are purchased credit at the default priority, with no expiry. */
const CREDIT_GRANT_PRIORITY = 100;

export interface SettleResult {
  reservation: Reservation;
  charged: bigint;
  released: bigint;
  uncollected: bigint;
}

export type LedgerOpValue =
  | { type: 'grant'; grant: Grant }
  | { type: 'authorize'; reservation: Reservation; availableAfter: bigint }
  | ({ type: 'settle' } & SettleResult)
  | { type: 'release'; reservation: Reservation }
  | { type: 'expire_reservation'; reservation: Reservation | null }
  | { type: 'expire_grant'; grant: Grant | null; expired: bigint }
  | { type: 'usage_charge'; charged: bigint; uncollected: bigint }
  | { type: 'clawback'; taken: bigint; uncollected: bigint }
  | { type: 'credit'; grant: Grant | null; posted: bigint }
  | { type: 'invoice_charge'; posted: bigint };

export type LedgerOpResult = Outcome<LedgerOpValue>;

/** Everything a batch reads, loaded (and locked) by the store before the rules run. */
export interface BatchState {
  customerAccounts: Map<string, Account>;
  operatorAccounts: Map<string, Account>; // by `${code}:${currency}`
  grants: Map<string, Grant[]>; // by customer id
  reservations: Map<string, Reservation>;
  keys: Map<string, KeyState>;
}

export interface BatchDeps {
  now: Date;
  newId: (prefix: 'trf') => string;
  /** Exact cost of a settle's usage at the reservation's prices, in ledger units. */
  rate: (reservation: Reservation, usage: Quantities) => Outcome<bigint>;
}

/** What the batch changed; the store writes exactly this in one transaction. */
export interface BatchEffects {
  transfers: Transfer[];
  accountDeltas: Map<string, { debitsPosted: bigint; creditsPosted: bigint; debitsPending: bigint; creditsPending: bigint }>;
  newReservations: Map<string, Reservation>;
  changedReservations: Map<string, Reservation>;
  newGrants: Map<string, Grant>;
  changedGrants: Map<string, Grant>;
  /** Spend of the keys with a spend limit, the only keys whose spend is kept (migration 014). */
  keySpend: Map<string, { apiKeyId: string; period: SpendPeriod; periodStart: Date; amount: bigint }>;
  /** Reservations settled by this batch (not replays), for the usage they record. */
  settled: Reservation[];
}

/**
 * Pure ledger arithmetic for one batch: applies operations in order to loaded state and records
 * the effects. No I/O; the store loads state under row locks, runs this, and writes the effects.
 */
export class LedgerBatch {
  readonly effects: BatchEffects = {
    transfers: [],
    accountDeltas: new Map(),
    newReservations: new Map(),
    changedReservations: new Map(),
    newGrants: new Map(),
    changedGrants: new Map(),
    keySpend: new Map(),
    settled: [],
  };

  constructor(
    private readonly state: BatchState,
    private readonly deps: BatchDeps,
  ) {}

  apply(op: LedgerOp): LedgerOpResult {
    switch (op.type) {
      case 'grant':
        return this.grant(op);
      case 'authorize':
        return this.authorize(op);
      case 'settle':
        return this.settle(op);
      case 'release':
        return this.release(op.reservationId, 'released');
      case 'expire_reservation':
        return this.expireReservation(op.reservationId);
      case 'expire_grant':
        return this.expireGrant(op.grantId, op.customerId);
      case 'usage_charge':
        return this.usageCharge(op);
      case 'clawback':
        return this.clawback(op);
      case 'credit':
        return this.credit(op);
      case 'invoice_charge':
        return this.invoiceCharge(op);
    }
  }

  /** Holds past their expiry go back to available before anything else touches the customer. */
  expireOverdueHolds(customerId: string): void {
    for (const reservation of this.state.reservations.values()) {
      if (reservation.customerId === customerId && reservation.status === 'pending' && reservation.expiresAt <= this.deps.now) {
        this.resolveHold(reservation, 'expired');
      }
    }
  }

  private grant(op: Extract<LedgerOp, { type: 'grant' }>): LedgerOpResult {
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('not_found', `No customer with id ${op.customerId}`);
    const source = this.operatorAccount(op.category, account.currency);
    const { grantId, category, priority, expiresAt, description } = op;
    const grant = this.creditAccount(account, source, op.amount, { kind: 'grant' }, { id: grantId, category, priority, expiresAt, description }, true)!;
    return { ok: true, value: { type: 'grant', grant } };
  }

  private credit(op: Extract<LedgerOp, { type: 'credit' }>): LedgerOpResult {
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('not_found', `No customer with id ${op.customerId}`);
    const source = this.operatorAccount(op.source, account.currency);
    const grant = this.creditAccount(account, source, op.amount, { kind: 'adjustment', reason: op.reason, invoiceId: op.invoiceId }, {
      id: op.grantId,
      category: 'purchased',
      priority: CREDIT_GRANT_PRIORITY,
      expiresAt: null,
      description: `${op.reason} ${op.invoiceId}`,
    }, false);
    return { ok: true, value: { type: 'credit', grant, posted: postedBalance(account) } };
  }

  /**
   * Credit into a customer's account first pays its debt (a negative posted balance); only the
   * rest becomes a spendable grant. A grant op always records its grant; a credit only when
   * something is left to spend.
   */
  private creditAccount(
    account: Account,
    source: Account,
    amount: bigint,
    link: { kind: TransferKind; reason?: string; invoiceId?: string },
    g: Pick<Grant, 'id' | 'category' | 'priority' | 'expiresAt' | 'description'>,
    keepEmptyGrant: boolean,
  ): Grant | null {
    const debt = postedBalance(account) < 0n ? -postedBalance(account) : 0n;
    const remaining = amount > debt ? amount - debt : 0n;
    const kept = remaining > 0n || keepEmptyGrant;
    const grant: Grant = {
      ...g,
      customerId: account.customerId!,
      currency: account.currency,
      amount,
      remaining,
      expiredAt: remaining === 0n ? this.deps.now : null,
      createdAt: this.deps.now,
    };
    if (amount > 0n) this.transfer({ debit: source, credit: account, amount, customerId: grant.customerId, grantId: kept ? grant.id : undefined, ...link });
    if (kept) {
      this.grantsOf(grant.customerId).push(grant);
      this.effects.newGrants.set(grant.id, grant);
    }
    this.checkGrantsMatchBalance(account);
    return kept ? grant : null;
  }

  /**
   * The one operation that may take available below zero: an invoice is owed whatever the credit
   * limit. Authorizes are refused until it is paid (available below the estimate), and nothing
   * else lowers an available that is already negative.
   */
  private invoiceCharge(op: Extract<LedgerOp, { type: 'invoice_charge' }>): LedgerOpResult {
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('not_found', `No customer with id ${op.customerId}`);
    if (op.amount > 0n) {
      const target = this.operatorAccount(op.target, account.currency);
      this.transfer({ debit: account, credit: target, amount: op.amount, kind: 'charge', reason: op.reason, invoiceId: op.invoiceId, customerId: op.customerId });
      this.consumeGrants(account, op.amount);
    }
    return { ok: true, value: { type: 'invoice_charge', posted: postedBalance(account) } };
  }

  private authorize(op: Extract<LedgerOp, { type: 'authorize' }>): LedgerOpResult {
    const key = this.state.keys.get(op.apiKeyId);
    if (!key || !key.active) return refusal('invalid_api_key', 'The API key is unknown, revoked or expired');
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('invalid_api_key', 'The API key belongs to no customer');
    this.expireOverdueHolds(op.customerId);
    if (key.maxConcurrency !== null && key.openCount >= key.maxConcurrency) {
      return refusal('concurrency_limit_exceeded', `The key already has ${key.openCount} open reservations (max_concurrency ${key.maxConcurrency})`);
    }
    if (key.spendLimit && key.spent[key.spendLimit.period] + key.heldAmount + op.amount > key.spendLimit.amount) {
      return refusal('spend_limit_exceeded', `The key's ${key.spendLimit.period} spend limit would be exceeded`);
    }
    const available = availableBalance(account);
    if (available < op.amount) {
      return refusal('insufficient_funds', 'The customer has not enough available credit for this estimate', { available, currency: account.currency });
    }
    const reservation: Reservation = {
      id: op.reservationId,
      customerId: op.customerId,
      apiKeyId: op.apiKeyId,
      productId: op.productId,
      currency: account.currency,
      amount: op.amount,
      priceIds: op.priceIds,
      estimate: op.estimate,
      metadata: op.metadata,
      status: 'pending',
      holdTransferId: null,
      expiresAt: new Date(this.deps.now.getTime() + op.holdSeconds * 1000),
      createdAt: this.deps.now,
      resolvedAt: null,
      usage: null,
      captured: null,
      charged: null,
      released: null,
      uncollected: null,
    };
    if (op.amount > 0n) {
      const revenue = this.operatorAccount('revenue', account.currency);
      const hold = this.transfer({
        debit: account, credit: revenue, amount: op.amount, kind: 'hold', pending: true, customerId: op.customerId, reservationId: reservation.id, apiKeyId: op.apiKeyId,
      });
      reservation.holdTransferId = hold.id;
    }
    key.openCount += 1;
    key.heldAmount += op.amount;
    this.state.reservations.set(reservation.id, reservation);
    this.effects.newReservations.set(reservation.id, reservation);
    assertInvariant(availableBalance(account) >= 0n, `authorize left ${account.id} below its limit`);
    return { ok: true, value: { type: 'authorize', reservation, availableAfter: availableBalance(account) } };
  }

  private settle(op: Extract<LedgerOp, { type: 'settle' }>): LedgerOpResult {
    const reservation = this.state.reservations.get(op.reservationId);
    if (!reservation) return refusal('not_found', `No reservation with id ${op.reservationId}`);
    this.expireOverdueHolds(reservation.customerId);
    if (reservation.status === 'settled') return { ok: true, value: { type: 'settle', ...settledResult(reservation) } };
    if (reservation.status !== 'pending') {
      return refusal('reservation_not_pending', `The reservation is ${reservation.status}; it can no longer be settled`, { reservation_status: reservation.status });
    }
    const cost = this.deps.rate(reservation, op.usage);
    if (!cost.ok) return cost;
    const account = this.customerAccount(reservation.customerId)!;
    const before = availableBalance(account);
    const captured = cost.value < reservation.amount ? cost.value : reservation.amount;
    this.resolveHold(reservation, 'settled', captured);
    const extra = cost.value - captured;
    const charged = payable(account, extra);
    this.chargeToRevenue(account, charged, { reservationId: reservation.id, apiKeyId: reservation.apiKeyId });
    this.addSpend(reservation.apiKeyId, captured + charged);
    Object.assign(reservation, {
      usage: op.usage,
      captured,
      charged: captured + charged,
      uncollected: extra - charged,
    });
    checkFloor(account, before, 'settle');
    this.effects.settled.push(reservation);
    return { ok: true, value: { type: 'settle', ...settledResult(reservation) } };
  }

  private usageCharge(op: Extract<LedgerOp, { type: 'usage_charge' }>): LedgerOpResult {
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('not_found', `No customer with id ${op.customerId}`);
    this.expireOverdueHolds(op.customerId);
    const before = availableBalance(account);
    const charged = payable(account, op.amount);
    this.chargeToRevenue(account, charged, { reason: 'usage', apiKeyId: op.apiKeyId ?? undefined });
    if (op.apiKeyId) this.addSpend(op.apiKeyId, charged);
    checkFloor(account, before, 'usage charge');
    return { ok: true, value: { type: 'usage_charge', charged, uncollected: op.amount - charged } };
  }

  /**
   * Takes granted credit back to where it came from (purchased): never below available zero, so
   * open holds stay covered; the grant being reversed gives first, other grants after.
   */
  private clawback(op: Extract<LedgerOp, { type: 'clawback' }>): LedgerOpResult {
    const account = this.customerAccount(op.customerId);
    if (!account) return refusal('not_found', `No customer with id ${op.customerId}`);
    this.expireOverdueHolds(op.customerId);
    const before = availableBalance(account);
    const taken = payable(account, op.amount);
    if (taken > 0n) {
      const sink = this.operatorAccount('purchased', account.currency);
      this.transfer({ debit: account, credit: sink, amount: taken, kind: 'adjustment', reason: op.reason, customerId: op.customerId, grantId: op.grantId ?? undefined });
      const own = op.grantId ? this.grantsOf(op.customerId).find((g) => g.id === op.grantId) : undefined;
      const fromOwn = own ? (own.remaining < taken ? own.remaining : taken) : 0n;
      if (own && fromOwn > 0n) {
        own.remaining -= fromOwn;
        this.markGrantChanged(own);
      }
      this.consumeGrants(account, taken - fromOwn);
    }
    checkFloor(account, before, 'clawback');
    return { ok: true, value: { type: 'clawback', taken, uncollected: op.amount - taken } };
  }

  private release(reservationId: string, as: 'released'): LedgerOpResult {
    const reservation = this.state.reservations.get(reservationId);
    if (!reservation) return refusal('not_found', `No reservation with id ${reservationId}`);
    this.expireOverdueHolds(reservation.customerId);
    if (reservation.status === as) return { ok: true, value: { type: 'release', reservation } };
    if (reservation.status !== 'pending') {
      return refusal('reservation_not_pending', `The reservation is ${reservation.status}; it can no longer be released`, { reservation_status: reservation.status });
    }
    this.resolveHold(reservation, as);
    return { ok: true, value: { type: 'release', reservation } };
  }

  private expireReservation(reservationId: string): LedgerOpResult {
    const reservation = this.state.reservations.get(reservationId);
    if (reservation) this.expireOverdueHolds(reservation.customerId);
    return { ok: true, value: { type: 'expire_reservation', reservation: reservation ?? null } };
  }

  /** Moves what is left of an expired grant out, never more than leaves open holds covered. */
  private expireGrant(grantId: string, customerId: string): LedgerOpResult {
    const grant = this.grantsOf(customerId).find((g) => g.id === grantId);
    const account = this.customerAccount(customerId);
    if (!grant || !account || grant.remaining === 0n || !grant.expiresAt || grant.expiresAt > this.deps.now) {
      return { ok: true, value: { type: 'expire_grant', grant: grant ?? null, expired: 0n } };
    }
    this.expireOverdueHolds(customerId);
    const before = availableBalance(account);
    // Open holds keep only what they need: available (credit limit included) never goes below zero.
    const amount = payable(account, grant.remaining);
    if (amount > 0n) {
      const sink = this.operatorAccount('expired', account.currency);
      this.transfer({ debit: account, credit: sink, amount, kind: 'expiry', customerId, grantId });
      grant.remaining -= amount;
    }
    if (grant.remaining === 0n) grant.expiredAt = this.deps.now;
    this.markGrantChanged(grant);
    this.checkGrantsMatchBalance(account);
    checkFloor(account, before, 'grant expiry');
    return { ok: true, value: { type: 'expire_grant', grant, expired: amount } };
  }

  /** Captures `captured` of a pending hold (settle) and returns the rest to available. */
  private resolveHold(reservation: Reservation, status: 'settled' | 'released' | 'expired', captured = 0n): void {
    const account = this.customerAccount(reservation.customerId)!;
    const key = this.state.keys.get(reservation.apiKeyId);
    const released = reservation.amount - captured;
    assertInvariant(reservation.status === 'pending', `reservation ${reservation.id} resolved twice`);
    assertInvariant(released >= 0n, `capture above hold on ${reservation.id}`);
    const revenue = this.operatorAccount('revenue', account.currency);
    const link = { customerId: account.customerId!, reservationId: reservation.id, pendingId: reservation.holdTransferId, apiKeyId: reservation.apiKeyId };
    if (captured > 0n) {
      this.transfer({ debit: account, credit: revenue, amount: captured, kind: 'capture', postsPending: true, ...link });
      this.consumeGrants(account, captured);
    }
    if (released > 0n) {
      this.transfer({ debit: account, credit: revenue, amount: released, kind: 'release', voidsPending: true, reason: status, ...link });
    }
    if (key) {
      key.openCount -= 1;
      key.heldAmount -= reservation.amount;
    }
    Object.assign(reservation, { status, resolvedAt: this.deps.now, released, captured, charged: status === 'settled' ? captured : 0n });
    if (status !== 'settled') reservation.uncollected = 0n;
    if (!this.effects.newReservations.has(reservation.id)) this.effects.changedReservations.set(reservation.id, reservation);
  }

  /** Posted debits use up grants: expired leftovers first, promotional before purchased, priority, expiry. */
  private consumeGrants(account: Account, amount: bigint): void {
    const now = this.deps.now;
    const order = this.grantsOf(account.customerId!)
      .filter((g) => g.remaining > 0n)
      .sort((a, b) => grantOrder(a, b, now));
    let left = amount;
    for (const grant of order) {
      if (left === 0n) break;
      const take = grant.remaining < left ? grant.remaining : left;
      grant.remaining -= take;
      left -= take;
      if (grant.remaining === 0n && grant.expiresAt && grant.expiresAt <= now) grant.expiredAt = now;
      this.markGrantChanged(grant);
    }
    this.checkGrantsMatchBalance(account);
  }

  /** Usage beyond any hold: customer -> revenue, using grants up (nothing when `amount` is 0). */
  private chargeToRevenue(account: Account, amount: bigint, link: { reservationId?: string; reason?: string; apiKeyId?: string }): void {
    if (amount === 0n) return;
    const revenue = this.operatorAccount('revenue', account.currency);
    this.transfer({ debit: account, credit: revenue, amount, kind: 'charge', customerId: account.customerId!, ...link });
    this.consumeGrants(account, amount);
  }

  /** Counts a key's spend, kept only while the key has a spend limit (setting one fills the periods in). */
  private addSpend(apiKeyId: string, amount: bigint): void {
    const key = this.state.keys.get(apiKeyId);
    if (amount === 0n || !key?.spendLimit) return;
    for (const period of SPEND_PERIODS) {
      const start = periodStart(period, this.deps.now);
      const id = `${apiKeyId}:${period}:${start.toISOString()}`;
      const row = this.effects.keySpend.get(id) ?? { apiKeyId, period, periodStart: start, amount: 0n };
      row.amount += amount;
      this.effects.keySpend.set(id, row);
      key.spent[period] += amount;
    }
  }

  private transfer(t: {
    debit: Account;
    credit: Account;
    amount: bigint;
    kind: TransferKind;
    customerId: string;
    pending?: boolean;
    postsPending?: boolean;
    voidsPending?: boolean;
    pendingId?: string | null;
    reservationId?: string;
    apiKeyId?: string;
    grantId?: string;
    invoiceId?: string;
    reason?: string;
  }): Transfer {
    assertInvariant(t.amount > 0n, 'a transfer moves a positive amount');
    assertInvariant(t.debit.currency === t.credit.currency, 'a transfer stays in one currency');
    const resolvesPending = t.postsPending || t.voidsPending;
    const pendingDelta = t.pending ? t.amount : resolvesPending ? -t.amount : 0n;
    const postedDelta = t.pending || t.voidsPending ? 0n : t.amount;
    this.move(t.debit, { debitsPending: pendingDelta, debitsPosted: postedDelta });
    this.move(t.credit, { creditsPending: pendingDelta, creditsPosted: postedDelta });
    const transfer: Transfer = {
      id: this.deps.newId('trf'),
      debitAccountId: t.debit.id,
      creditAccountId: t.credit.id,
      amount: t.amount,
      currency: t.debit.currency,
      kind: t.kind,
      pending: t.pending ?? false,
      pendingId: t.pendingId ?? null,
      customerId: t.customerId,
      reservationId: t.reservationId ?? null,
      apiKeyId: t.apiKeyId ?? null,
      grantId: t.grantId ?? null,
      invoiceId: t.invoiceId ?? null,
      reason: t.reason ?? null,
      createdAt: this.deps.now,
    };
    this.effects.transfers.push(transfer);
    return transfer;
  }

  private move(account: Account, delta: Partial<Record<'debitsPosted' | 'creditsPosted' | 'debitsPending' | 'creditsPending', bigint>>) {
    const total = this.effects.accountDeltas.get(account.id) ?? { debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n };
    for (const [field, value] of Object.entries(delta) as Array<[keyof typeof total, bigint]>) {
      account[field] += value;
      total[field] += value;
      assertInvariant(account[field] >= 0n, `${field} of ${account.id} went negative`);
    }
    this.effects.accountDeltas.set(account.id, total);
  }

  private customerAccount(customerId: string): Account | undefined {
    return this.state.customerAccounts.get(customerId);
  }

  private operatorAccount(code: OperatorAccountCode, currency: string): Account {
    const account = this.state.operatorAccounts.get(`${code}:${currency}`);
    assertInvariant(account !== undefined, `operator account ${code} ${currency} is missing`);
    return account;
  }

  private grantsOf(customerId: string): Grant[] {
    let grants = this.state.grants.get(customerId);
    if (!grants) this.state.grants.set(customerId, (grants = []));
    return grants;
  }

  private markGrantChanged(grant: Grant): void {
    if (!this.effects.newGrants.has(grant.id)) this.effects.changedGrants.set(grant.id, grant);
  }

  /** Grants are the breakdown of a positive posted balance: their remainders add up to it. */
  private checkGrantsMatchBalance(account: Account): void {
    const remaining = this.grantsOf(account.customerId!).reduce((sum, g) => sum + g.remaining, 0n);
    const posted = postedBalance(account);
    assertInvariant(remaining === (posted > 0n ? posted : 0n), `grants of ${account.customerId} (${remaining}) differ from posted balance (${posted})`);
  }
}

/**
 * After any operation but an invoice charge: available is not below zero, or, when it already was
 * (an unpaid invoice), not lower than before.
 */
function checkFloor(account: Account, before: bigint, what: string): void {
  const after = availableBalance(account);
  assertInvariant(after >= 0n || after >= before, `${what} left ${account.id} below its limit`);
}

/** How much of `amount` the account can pay now without its available balance going below zero (0 when it already is). */
function payable(account: Account, amount: bigint): bigint {
  const available = availableBalance(account);
  if (available <= 0n) return 0n;
  return amount < available ? amount : available;
}

function settledResult(reservation: Reservation): SettleResult {
  return {
    reservation,
    charged: reservation.charged ?? 0n,
    released: reservation.released ?? 0n,
    uncollected: reservation.uncollected ?? 0n,
  };
}

export function grantOrder(a: Grant, b: Grant, now: Date): number {
  const expiredA = a.expiresAt !== null && a.expiresAt <= now;
  const expiredB = b.expiresAt !== null && b.expiresAt <= now;
  if (expiredA !== expiredB) return expiredA ? -1 : 1;
  if (a.category !== b.category) return a.category === 'promotional' ? -1 : 1;
  if (a.priority !== b.priority) return a.priority - b.priority;
  const expiryA = a.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  const expiryB = b.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (expiryA !== expiryB) return expiryA < expiryB ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
