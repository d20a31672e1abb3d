import type { AccountsService, KeyIdentity } from '../accounts/accounts-service.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { normalizeQuantities } from '../catalog/price-book.js';
import type { Clock } from '../platform/clock.js';
import type { Db } from '../platform/db.js';
import { AppError, notFound, type Outcome } from '../platform/errors.js';
import { replayOrThrow, type IdempotencyRequest, type StoredReply } from '../platform/idempotency.js';
import { newId } from '../platform/ids.js';
import { toPage, type Page } from '../platform/lists.js';
import { formatAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import type { LedgerOp, LedgerOpResult } from '../ledger/batch-rules.js';
import { getReservation, listReservations } from '../ledger/ledger-queries.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Reservation } from '../ledger/model.js';
import { HOLD_SECONDS_DEFAULT, type AuthorizeRequest, type SettleRequest } from './schemas.js';

export type Reply = StoredReply & { replayed: boolean; headers?: Record<string, string> };

/** The key's rate limit: the RateLimit-* headers to send, or throws 429 rate_limited. */
export type KeyRateLimit = (apiKeyId: string) => Promise<Record<string, string>>;

/**
 * The hot path a platform's inference gateway calls around every job: authorize (hold the
 * estimate), then settle (charge what was used) or release (charge nothing).
 */
export class GatewayService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
    private readonly catalog: CatalogService,
    private readonly ledger: LedgerService,
    private readonly limitKey: KeyRateLimit = async () => ({}),
  ) {}

  async authorize(input: AuthorizeRequest, idempotency?: IdempotencyRequest): Promise<Reply> {
    const identity = await this.accounts.identifyKey(input.api_key);
    // Counted before any database work: a key over its limit costs one bucket check, nothing more.
    const headers = identity ? await this.limitKey(identity.apiKeyId) : {};
    let op: LedgerOp;
    try {
      op = await this.authorizeOp(input, identity);
    } catch (error) {
      // The key may have been revoked (or the price withdrawn) since this very request succeeded.
      return replayOrThrow(this.db, idempotency, error);
    }
    const reply = await this.run(op, idempotency, (value) => {
      if (value.type !== 'authorize') throw new Error('unexpected result');
      const r = value.reservation;
      return {
        status: 200,
        body: {
          authorized: true,
          customer: r.customerId,
          api_key_id: r.apiKeyId,
          reservation: { id: r.id, amount: formatAmount(r.amount, r.currency), currency: r.currency, expires_at: r.expiresAt.toISOString() },
          available_after: formatAmount(value.availableAfter, r.currency),
        },
      };
    });
    return { ...reply, headers };
  }

  private async authorizeOp(input: AuthorizeRequest, identity: KeyIdentity | null): Promise<LedgerOp> {
    if (!identity) throw new AppError('invalid_api_key', 'The API key is unknown, revoked or expired');
    const estimate = orThrow(normalizeQuantities(input.estimate));
    const quote = orThrow(await this.catalog.quote({ productKey: input.product, currency: identity.currency, customerId: identity.customerId, estimate }));
    return {
      type: 'authorize',
      reservationId: newId('res'),
      customerId: identity.customerId,
      apiKeyId: identity.apiKeyId,
      productId: quote.productId,
      amount: quote.amount,
      priceIds: quote.priceIds,
      estimate,
      metadata: input.metadata ?? {},
      holdSeconds: input.hold_seconds ?? HOLD_SECONDS_DEFAULT,
    };
  }

  async settle(reservationId: string, input: SettleRequest, idempotency?: IdempotencyRequest): Promise<Reply> {
    const usage = orThrow(normalizeQuantities(input.usage));
    await this.catalog.ensureFresh();
    return this.run({ type: 'settle', reservationId, usage }, idempotency, (value) => {
      if (value.type !== 'settle') throw new Error('unexpected result');
      const c = value.reservation.currency;
      return {
        status: 200,
        body: {
          reservation: this.presentReservation(value.reservation),
          charged: formatAmount(value.charged, c),
          released: formatAmount(value.released, c),
          uncollected: formatAmount(value.uncollected, c),
        },
      };
    });
  }

  async release(reservationId: string, idempotency?: IdempotencyRequest): Promise<Reply> {
    return this.run({ type: 'release', reservationId }, idempotency, (value) => {
      if (value.type !== 'release') throw new Error('unexpected result');
      return { status: 200, body: { reservation: this.presentReservation(value.reservation) } };
    });
  }

  async get(reservationId: string) {
    let reservation = await getReservation(this.db, reservationId);
    if (!reservation) throw notFound('reservation', reservationId);
    if (reservation.status === 'pending' && reservation.expiresAt <= this.clock.now()) {
      await this.ledger.apply({ type: 'expire_reservation', reservationId });
      reservation = (await getReservation(this.db, reservationId))!;
    }
    return this.presentReservation(reservation);
  }

  /**
   * A customer's reservations, newest first; status=pending lists its open holds. An overdue hold
   * on the page is expired first, as reading one reservation does, so the page says what holds.
   */
  async list(customerId: string, filter: { status?: Reservation['status']; limit: number; cursor?: string }): Promise<Page<ReturnType<GatewayService['presentReservation']>>> {
    await this.accounts.getCustomer(customerId);
    let rows = await listReservations(this.db, customerId, filter);
    const now = this.clock.now();
    const overdue = rows.filter((r) => r.status === 'pending' && r.expiresAt <= now);
    if (overdue.length > 0) {
      for (const r of overdue) await this.ledger.apply({ type: 'expire_reservation', reservationId: r.id });
      rows = await listReservations(this.db, customerId, filter);
    }
    return toPage(rows.map((r) => this.presentReservation(r)), filter.limit);
  }

  /** Rates usage at a reservation's prices; handed to the ledger, which calls it inside its batch. */
  readonly rate = (reservation: Reservation, usage: Record<string, string>): Outcome<bigint> => this.catalog.rateAt(reservation.priceIds, usage);

  private async run(op: LedgerOp, idempotency: IdempotencyRequest | undefined, render: (value: Extract<LedgerOpResult, { ok: true }>['value']) => StoredReply): Promise<Reply> {
    const renderResult = (result: LedgerOpResult) => {
      if (!result.ok) throw toAppError(result);
      return render(result.value);
    };
    const outcome = await this.ledger.submit({ op, idempotency, render: renderResult });
    if (outcome.kind === 'replay') return { ...outcome.reply, replayed: true };
    if (outcome.kind === 'error') throw outcome.error;
    return { ...(outcome.reply ?? renderResult(outcome.result)), replayed: false };
  }

  private presentReservation(r: Reservation) {
    const money = (v: bigint | null) => (v === null ? null : formatAmount(v, r.currency));
    return {
      id: r.id,
      status: r.status,
      customer_id: r.customerId,
      api_key_id: r.apiKeyId,
      product_id: r.productId,
      product: this.catalog.productKeyOf(r.productId),
      currency: r.currency,
      amount: formatAmount(r.amount, r.currency),
      estimate: r.estimate,
      usage: r.usage,
      charged: money(r.charged),
      released: money(r.released),
      uncollected: money(r.uncollected),
      metadata: r.metadata,
      expires_at: r.expiresAt.toISOString(),
      created_at: r.createdAt.toISOString(),
      resolved_at: toIso(r.resolvedAt),
    };
  }
}

function orThrow<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw toAppError(outcome);
  return outcome.value;
}

function toAppError(refused: Extract<Outcome<unknown>, { ok: false }>): AppError {
  const { errors, available, currency, ...extra } = refused.extra ?? {};
  const shown = typeof available === 'bigint' ? { ...extra, available: formatAmount(available, currency as string) } : extra;
  return new AppError(refused.code, refused.detail, errors as never, shown);
}
