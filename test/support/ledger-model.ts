/**
 * A small in-memory reference of the ledger as a customer sees it (docs/ledger.md), written
 * independently of src/ledger: plain balances per customer, grants, reservations. Amounts are
 * bigint nano-units (9 decimals). The model-based test runs the same operations against the
 * service and this model and compares them after every step.
 */

export type GrantCategory = 'promotional' | 'purchased';
export type ReservationStatus = 'pending' | 'settled' | 'released' | 'expired';

export interface ModelGrant {
  id: string;
  category: GrantCategory;
  priority: number;
  expiresAt: number | null;
  remaining: bigint;
  seq: number;
}

export interface ModelCustomer {
  posted: bigint;
  held: bigint;
  creditLimit: bigint;
  grants: ModelGrant[];
}

export interface SettleOutcome {
  charged: bigint;
  released: bigint;
  uncollected: bigint;
}

export interface ModelReservation {
  id: string;
  customer: number;
  amount: bigint;
  expiresAt: number;
  status: ReservationStatus;
  settled?: SettleOutcome;
}

export type Refusal = { ok: false; code: string };

export class LedgerModel {
  readonly customers: ModelCustomer[];
  readonly reservations: ModelReservation[] = [];
  private grantSeq = 0;

  constructor(
    public now: number,
    creditLimits: bigint[],
  ) {
    this.customers = creditLimits.map((creditLimit) => ({ posted: 0n, held: 0n, creditLimit, grants: [] }));
  }

  available(c: number): bigint {
    const customer = this.customers[c]!;
    return customer.posted - customer.held + customer.creditLimit;
  }

  grant(c: number, g: { id: string; amount: bigint; category: GrantCategory; priority: number; expiresAt: number | null }): void {
    const customer = this.customers[c]!;
    const debt = customer.posted < 0n ? -customer.posted : 0n;
    customer.posted += g.amount;
    const remaining = g.amount > debt ? g.amount - debt : 0n;
    customer.grants.push({ id: g.id, category: g.category, priority: g.priority, expiresAt: g.expiresAt, remaining, seq: this.grantSeq++ });
  }

  authorize(c: number, id: string, amount: bigint, holdSeconds: number): { ok: true; availableAfter: bigint } | Refusal {
    this.expireHolds(c);
    if (this.available(c) < amount) return { ok: false, code: 'insufficient_funds' };
    this.customers[c]!.held += amount;
    this.reservations.push({ id, customer: c, amount, expiresAt: this.now + holdSeconds * 1000, status: 'pending' });
    return { ok: true, availableAfter: this.available(c) };
  }

  settle(r: ModelReservation, cost: bigint): { ok: true; value: SettleOutcome } | Refusal {
    this.expireHolds(r.customer);
    if (r.status === 'settled') return { ok: true, value: r.settled! };
    if (r.status !== 'pending') return { ok: false, code: 'reservation_not_pending' };
    const customer = this.customers[r.customer]!;
    const captured = cost < r.amount ? cost : r.amount;
    customer.held -= r.amount;
    this.spend(r.customer, captured);
    const extra = cost - captured;
    const room = this.available(r.customer) > 0n ? this.available(r.customer) : 0n;
    const extraCharged = extra < room ? extra : room;
    this.spend(r.customer, extraCharged);
    r.status = 'settled';
    r.settled = { charged: captured + extraCharged, released: r.amount - captured, uncollected: extra - extraCharged };
    return { ok: true, value: r.settled };
  }

  release(r: ModelReservation): { ok: true } | Refusal {
    this.expireHolds(r.customer);
    if (r.status === 'released') return { ok: true };
    if (r.status !== 'pending') return { ok: false, code: 'reservation_not_pending' };
    this.customers[r.customer]!.held -= r.amount;
    r.status = 'released';
    return { ok: true };
  }

  /** Any read or operation on a customer first returns its holds past expiry. */
  expireHolds(c: number): void {
    for (const r of this.reservations) {
      if (r.customer === c && r.status === 'pending' && r.expiresAt <= this.now) {
        this.customers[c]!.held -= r.amount;
        r.status = 'expired';
      }
    }
  }

  /** What the expiry sweep does: overdue holds back, then expired grant remainders out, never taking available below zero. */
  sweep(): void {
    for (let c = 0; c < this.customers.length; c++) {
      this.expireHolds(c);
      const customer = this.customers[c]!;
      let room = this.available(c);
      for (const g of this.expiredGrants(c)) {
        const take = room <= 0n ? 0n : g.remaining < room ? g.remaining : room;
        g.remaining -= take;
        customer.posted -= take;
        room -= take;
      }
    }
  }

  expiredGrants(c: number): ModelGrant[] {
    return this.customers[c]!.grants.filter((g) => g.expiresAt !== null && g.expiresAt <= this.now && g.remaining > 0n);
  }

  liveGrants(c: number): ModelGrant[] {
    return this.customers[c]!.grants.filter((g) => !(g.expiresAt !== null && g.expiresAt <= this.now));
  }

  /** Posted spend uses grants up: expired leftovers first, then promotional, priority, expiry, age. */
  private spend(c: number, amount: bigint): void {
    if (amount === 0n) return;
    const customer = this.customers[c]!;
    customer.posted -= amount;
    const live = this.liveGrants(c).sort(
      (a, b) =>
        (a.category === b.category ? 0 : a.category === 'promotional' ? -1 : 1) ||
        a.priority - b.priority ||
        (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) ||
        a.seq - b.seq,
    );
    let left = amount;
    for (const g of [...this.expiredGrants(c), ...live]) {
      const take = g.remaining < left ? g.remaining : left;
      g.remaining -= take;
      left -= take;
    }
  }
}

/** "12.5" / "-0.0262144" / "3" -> nano-units, exactly. */
export function toNano(text: string): bigint {
  const match = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (!match) throw new Error(`not a ledger amount: ${text}`);
  const value = BigInt(match[2]!) * 1_000_000_000n + BigInt((match[3] ?? '').padEnd(9, '0'));
  return match[1] ? -value : value;
}
