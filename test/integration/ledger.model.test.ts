import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { createCustomer, seedCatalog } from '../support/fixtures.js';
import { startServer, type Api, type TestServer } from '../support/harness.js';
import { LedgerModel, toNano, type GrantCategory, type ModelReservation } from '../support/ledger-model.js';
import { expectDoubleEntry } from '../support/ledger-checks.js';

// Model-based test: random sequences of grants, authorizes, settles, releases, time passing
// (hold and grant expiries) and concurrent bursts, run against the service over HTTP and
// against the reference model in test/support/ledger-model.ts, compared after every step.

const NANO_PER_MILLI_MEGAPIXEL = 25_000n; // fal-ai/flux/dev: 0.025 USD per megapixel
const CREDIT_LIMITS = [0n, 5_000_000_000n]; // a prepaid customer and a postpaid one with 5.00 of credit

const clock = new ManualClock(new Date('2026-03-01T00:00:00Z'));
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ clock });
  await seedCatalog(server.api);
});
afterAll(() => server?.close());

interface Real {
  api: Api;
  customers: Array<{ id: string; key: string }>;
  /** Service ids, aligned with model.reservations. */
  reservationIds: string[];
}

const megapixels = (milli: number) => `${Math.floor(milli / 1000)}.${String(milli % 1000).padStart(3, '0')}`;
const costOf = (milli: number) => BigInt(milli) * NANO_PER_MILLI_MEGAPIXEL;

function reservationOf(model: LedgerModel, customer: number, pick: number): ModelReservation | undefined {
  const own = model.reservations.filter((r) => r.customer === customer);
  return own.length === 0 ? undefined : own[pick % own.length];
}

async function expectSameState(model: LedgerModel, real: Real): Promise<void> {
  for (const [c, customer] of real.customers.entries()) {
    const balance = await real.api.get(`/v1/customers/${customer.id}/balance`);
    expect(balance.status).toBe(200);
    model.expireHolds(c);
    const m = model.customers[c]!;
    expect({ available: toNano(balance.body.available), held: toNano(balance.body.held), posted: toNano(balance.body.posted) }).toEqual({
      available: model.available(c),
      held: m.held,
      posted: m.posted,
    });
    const remaining = new Map<string, bigint>(balance.body.grants.map((g: { id: string; remaining: string }) => [g.id, toNano(g.remaining)]));
    for (const g of model.liveGrants(c)) expect(remaining.get(g.id) ?? 0n, `grant ${g.id}`).toBe(g.remaining);
    // How an expired remainder that had to stay behind holds splits between expired grants depends
    // on sweep order; what is left of them in total does not.
    const expiredLeft = (grants: Array<{ remaining: bigint }>) => grants.reduce((s, g) => s + g.remaining, 0n);
    const expiredIds = new Set(m.grants.filter((g) => !model.liveGrants(c).includes(g)).map((g) => g.id));
    expect(expiredLeft([...remaining].filter(([id]) => expiredIds.has(id)).map(([, r]) => ({ remaining: r })))).toBe(expiredLeft(model.expiredGrants(c)));
    const grantsTotal = [...remaining.values()].reduce((s, r) => s + r, 0n);
    expect(grantsTotal).toBe(m.posted > 0n ? m.posted : 0n);
  }
  await expectDoubleEntry(server.database.db);
}

class GrantCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(
    readonly customer: number,
    readonly cents: number,
    readonly category: GrantCategory,
    readonly priority: number,
    readonly expiresInSeconds: number | null,
  ) {}
  check = () => true;
  async run(model: LedgerModel, real: Real) {
    const expiresAt = this.expiresInSeconds === null ? null : model.now + this.expiresInSeconds * 1000;
    const body = {
      amount: (this.cents / 100).toFixed(2),
      category: this.category,
      priority: this.priority,
      ...(expiresAt === null ? {} : { expires_at: new Date(expiresAt).toISOString() }),
    };
    const r = await real.api.post(`/v1/customers/${real.customers[this.customer]!.id}/credit_grants`, body);
    expect(r.status).toBe(201);
    model.grant(this.customer, { id: r.body.id, amount: BigInt(this.cents) * 10_000_000n, category: this.category, priority: this.priority, expiresAt });
    await expectSameState(model, real);
  }
  toString = () => `grant(c${this.customer}, ${this.cents}c, ${this.category}, p${this.priority}, ${this.expiresInSeconds ?? '-'}s)`;
}

class AuthorizeCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(
    readonly customer: number,
    readonly milli: number,
    readonly holdSeconds: number,
  ) {}
  check = () => true;
  async run(model: LedgerModel, real: Real) {
    const r = await authorizeCall(real, this.customer, this.milli, this.holdSeconds);
    const expected = model.authorize(this.customer, r.body?.reservation?.id ?? '', costOf(this.milli), this.holdSeconds);
    if (expected.ok) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(toNano(r.body.reservation.amount)).toBe(costOf(this.milli));
      expect(toNano(r.body.available_after)).toBe(expected.availableAfter);
      real.reservationIds.push(r.body.reservation.id);
    } else {
      expect(r.status).toBe(402);
      expect(r.body.code).toBe(expected.code);
    }
    await expectSameState(model, real);
  }
  toString = () => `authorize(c${this.customer}, ${megapixels(this.milli)}MP, ${this.holdSeconds}s)`;
}

class SettleCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(
    readonly customer: number,
    readonly pick: number,
    readonly usageMilli: number,
  ) {}
  check = (model: Readonly<LedgerModel>) => model.reservations.some((r) => r.customer === this.customer);
  async run(model: LedgerModel, real: Real) {
    const reservation = reservationOf(model, this.customer, this.pick)!;
    const r = await settleCall(real, model, reservation, this.usageMilli);
    const expected = model.settle(reservation, costOf(this.usageMilli));
    if (expected.ok) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect({ charged: toNano(r.body.charged), released: toNano(r.body.released), uncollected: toNano(r.body.uncollected) }).toEqual(expected.value);
    } else {
      expect(r.status).toBe(409);
      expect(r.body.code).toBe(expected.code);
    }
    await expectSameState(model, real);
  }
  toString = () => `settle(c${this.customer}, #${this.pick}, ${megapixels(this.usageMilli)}MP)`;
}

class ReleaseCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(
    readonly customer: number,
    readonly pick: number,
  ) {}
  check = (model: Readonly<LedgerModel>) => model.reservations.some((r) => r.customer === this.customer);
  async run(model: LedgerModel, real: Real) {
    const reservation = reservationOf(model, this.customer, this.pick)!;
    const r = await releaseCall(real, model, reservation);
    const expected = model.release(reservation);
    if (expected.ok) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.reservation.status).toBe('released');
    } else {
      expect(r.status).toBe(409);
      expect(r.body.code).toBe(expected.code);
    }
    await expectSameState(model, real);
  }
  toString = () => `release(c${this.customer}, #${this.pick})`;
}

/** Time passes and the expiry sweep runs: overdue holds come back, expired grants leave. */
class AdvanceCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(readonly seconds: number) {}
  check = () => true;
  async run(model: LedgerModel, real: Real) {
    clock.advance(this.seconds * 1000);
    model.now = clock.now().getTime();
    await server.app.services.sweeper.sweep();
    model.sweep();
    await expectSameState(model, real);
  }
  toString = () => `advance(${this.seconds}s)`;
}

type BurstItem = { op: 'authorize'; customer: number; milli: number } | { op: 'settle'; customer: number; pick: number; fraction: number } | { op: 'release'; customer: number; pick: number };

/**
 * Concurrent requests. Each reservation appears at most once and settles stay within their hold,
 * so the end state does not depend on arrival order; which authorizes won may, so a refusal is
 * checked against the least that could have been available when it ran.
 */
class BurstCommand implements fc.AsyncCommand<LedgerModel, Real> {
  constructor(readonly items: BurstItem[]) {}
  check = () => true;
  async run(model: LedgerModel, real: Real) {
    for (let c = 0; c < model.customers.length; c++) model.expireHolds(c);
    const availableBefore = model.customers.map((_, c) => model.available(c));
    const used = new Set<ModelReservation>();
    const planned = this.items.map((item) => {
      if (item.op === 'authorize') return { item, reservation: undefined };
      const reservation = reservationOf(model, item.customer, item.pick);
      if (!reservation || used.has(reservation)) return null;
      used.add(reservation);
      return { item, reservation };
    }).filter((p) => p !== null);

    const replies = await Promise.all(
      planned.map(({ item, reservation }) => {
        if (item.op === 'authorize') return authorizeCall(real, item.customer, item.milli, 900);
        if (item.op === 'settle') return settleCall(real, model, reservation!, usageWithinHold(reservation!, item.fraction));
        return releaseCall(real, model, reservation!);
      }),
    );

    const wonHolds = model.customers.map(() => 0n);
    const refusedAuthorizes: Array<{ customer: number; amount: bigint }> = [];
    // Settles and releases first: they only give credit back, so the model can then take the
    // winning authorizes in any order.
    const outcomes = planned.map((p, i) => ({ ...p, r: replies[i]! }));
    const returnsFirst = [...outcomes.filter((o) => o.item.op !== 'authorize'), ...outcomes.filter((o) => o.item.op === 'authorize')];
    for (const { item, reservation, r } of returnsFirst) {
      if (item.op === 'authorize') {
        if (r.status === 200) {
          const expected = model.authorize(item.customer, r.body.reservation.id, costOf(item.milli), 900);
          expect(expected.ok, 'the service authorized what the model cannot cover').toBe(true);
          real.reservationIds.push(r.body.reservation.id);
          wonHolds[item.customer]! += costOf(item.milli);
        } else {
          expect(r.status, JSON.stringify(r.body)).toBe(402);
          expect(r.body.code).toBe('insufficient_funds');
          refusedAuthorizes.push({ customer: item.customer, amount: costOf(item.milli) });
        }
      } else if (item.op === 'settle') {
        const expected = model.settle(reservation!, costOf(usageWithinHold(reservation!, item.fraction)));
        if (expected.ok) {
          expect(r.status, JSON.stringify(r.body)).toBe(200);
          expect({ charged: toNano(r.body.charged), released: toNano(r.body.released), uncollected: toNano(r.body.uncollected) }).toEqual(expected.value);
        } else {
          expect(r.status).toBe(409);
        }
      } else {
        const expected = model.release(reservation!);
        expect(r.status, JSON.stringify(r.body)).toBe(expected.ok ? 200 : 409);
      }
    }
    // A refused authorize saw at least availableBefore minus every hold that won in the burst
    // (settles and releases only give credit back), and was still more than that.
    for (const refused of refusedAuthorizes) {
      expect(refused.amount).toBeGreaterThan(availableBefore[refused.customer]! - wonHolds[refused.customer]!);
    }
    await expectSameState(model, real);
  }
  toString = () => `burst(${this.items.map((i) => i.op[0] + i.customer).join(' ')})`;
}

function usageWithinHold(reservation: ModelReservation, fraction: number): number {
  const heldMilli = Number(reservation.amount / NANO_PER_MILLI_MEGAPIXEL);
  return Math.floor(heldMilli * fraction);
}

function authorizeCall(real: Real, customer: number, milli: number, holdSeconds: number) {
  return real.api.post('/v1/authorize', {
    api_key: real.customers[customer]!.key,
    product: 'fal-ai/flux/dev',
    estimate: { megapixels: megapixels(milli) },
    hold_seconds: holdSeconds,
  });
}

function serviceId(real: Real, model: LedgerModel, reservation: ModelReservation) {
  return real.reservationIds[model.reservations.indexOf(reservation)]!;
}

function settleCall(real: Real, model: LedgerModel, reservation: ModelReservation, usageMilli: number) {
  return real.api.post(`/v1/reservations/${serviceId(real, model, reservation)}/settle`, { usage: { megapixels: megapixels(usageMilli) } });
}

function releaseCall(real: Real, model: LedgerModel, reservation: ModelReservation) {
  return real.api.post(`/v1/reservations/${serviceId(real, model, reservation)}/release`);
}

const customerArb = fc.integer({ min: 0, max: CREDIT_LIMITS.length - 1 });
const milliArb = fc.oneof(fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 0, max: 400_000 }));

const commands = [
  fc.tuple(customerArb, fc.integer({ min: 1, max: 5_000 }), fc.constantFrom<GrantCategory>('promotional', 'purchased'), fc.constantFrom(10, 100), fc.option(fc.integer({ min: 1, max: 3_600 }), { nil: null }))
    .map(([c, cents, category, priority, expires]) => new GrantCommand(c, cents, category, priority, expires)),
  fc.tuple(customerArb, milliArb, fc.constantFrom(60, 900)).map(([c, milli, hold]) => new AuthorizeCommand(c, milli, hold)),
  fc.tuple(customerArb, milliArb, fc.constantFrom(60, 900)).map(([c, milli, hold]) => new AuthorizeCommand(c, milli, hold)),
  fc.tuple(customerArb, fc.nat(), milliArb).map(([c, pick, usage]) => new SettleCommand(c, pick, usage)),
  fc.tuple(customerArb, fc.nat(), milliArb).map(([c, pick, usage]) => new SettleCommand(c, pick, usage)),
  fc.tuple(customerArb, fc.nat()).map(([c, pick]) => new ReleaseCommand(c, pick)),
  fc.integer({ min: 1, max: 2_000 }).map((s) => new AdvanceCommand(s)),
  fc.array(
    fc.oneof(
      fc.record({ op: fc.constant('authorize' as const), customer: customerArb, milli: milliArb }),
      fc.record({ op: fc.constant('settle' as const), customer: customerArb, pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ op: fc.constant('release' as const), customer: customerArb, pick: fc.nat() }),
    ),
    { minLength: 2, maxLength: 16 },
  ).map((items) => new BurstCommand(items)),
];

describe('ledger against a reference model', () => {
  it('matches the model and keeps the invariants after every step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: 'large' }), fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 2, maxLength: 2 }), async (cmds, openingCents) => {
        const model = new LedgerModel(clock.now().getTime(), CREDIT_LIMITS);
        const real: Real = { api: server.api, customers: [], reservationIds: [] };
        for (const [c, limit] of CREDIT_LIMITS.entries()) {
          const fixture = await createCustomer(server.api, limit > 0n ? { billing_mode: 'postpaid', credit_limit: '5.00' } : {});
          real.customers.push({ id: fixture.customerId, key: fixture.apiKey });
          if (openingCents[c]! > 0) await new GrantCommand(c, openingCents[c]!, 'purchased', 100, null).run(model, real);
        }
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        if (process.env.DEBUG_MODEL) console.log(String(cmds));
      }),
      { numRuns: Number(process.env.LEDGER_MODEL_RUNS ?? 30) },
    );
  }, 240_000);
});
