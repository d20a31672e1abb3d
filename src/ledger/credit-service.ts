import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError, notFound } from '../platform/errors.js';
import { replayOrThrow, type IdempotencyRequest, type StoredReply } from '../platform/idempotency.js';
import { newId } from '../platform/ids.js';
import { pagesPerParent, toPage, type Page } from '../platform/lists.js';
import { formatScaled } from '../platform/decimal.js';
import { AMOUNT_MAX, LEDGER_SCALE, parseAmount } from '../platform/money.js';
import type { LedgerOpResult } from './batch-rules.js';
import * as queries from './ledger-queries.js';
import type { LedgerService } from './ledger-service.js';
import { availableBalance } from './model.js';
import { presentBalance, presentGrant, presentTransaction } from './present.js';
import type { CreditGrantCreate } from './schemas.js';

const DEFAULT_GRANT_PRIORITY = 100;

/** A customer's credit: grants, balance and the transactions behind it. */
export class CreditService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly ledger: LedgerService,
  ) {}

  async grant(customerId: string, input: CreditGrantCreate, idempotency?: IdempotencyRequest): Promise<StoredReply & { replayed: boolean }> {
    const amount = parseAmount(input.amount);
    if (amount <= 0n || amount > AMOUNT_MAX) {
      const message = `must be greater than 0 and at most ${formatScaled(AMOUNT_MAX, LEDGER_SCALE, 0)}`;
      throw new AppError('invalid_request', `amount ${message}`, [{ path: 'amount', message }]);
    }
    const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (expiresAt && expiresAt <= this.clock.now()) {
      // A retry of a grant that succeeded before its expires_at passed replays it.
      return replayOrThrow(this.db, idempotency, new AppError('invalid_request', 'expires_at must be in the future', [{ path: 'expires_at', message: 'must be in the future' }]));
    }
    const result = await this.ledger.submit({
      op: {
        type: 'grant',
        grantId: newId('grt'),
        customerId,
        category: input.category ?? 'promotional',
        priority: input.priority ?? DEFAULT_GRANT_PRIORITY,
        amount,
        expiresAt,
        description: input.description ?? null,
      },
      idempotency,
      render: renderGrant,
    });
    if (result.kind === 'replay') return { ...result.reply, replayed: true };
    if (result.kind === 'error') throw result.error;
    return { ...renderGrant(result.result), replayed: false };
  }

  async balance(customerId: string) {
    await this.expireOverdueHolds(customerId);
    const account = await queries.customerAccount(this.db, customerId);
    if (!account) throw notFound('customer', customerId);
    return presentBalance(account, await queries.activeGrants(this.db, customerId));
  }

  /**
   * The balances of several customers in three queries whatever their number (the GraphQL API's
   * batched read): customer id -> balance, absent for an unknown customer. Overdue holds are
   * expired first, as for one balance.
   */
  async balances(customerIds: string[]) {
    await this.expireOverdueHoldsOf(customerIds);
    const [accounts, grants] = await Promise.all([queries.customerAccounts(this.db, customerIds), queries.activeGrantsOf(this.db, customerIds)]);
    return new Map([...accounts].map(([id, account]) => [id, presentBalance(account, grants.get(id) ?? [])]));
  }

  /** A customer's available balance (ledger units, credit limit included), for modules that act on it; null: no such customer. */
  async available(customerId: string, db: Queryable = this.db): Promise<bigint | null> {
    const account = await queries.customerAccount(db, customerId);
    return account ? availableBalance(account) : null;
  }

  async transactions(customerId: string, limit: number, cursor?: string) {
    await this.expireOverdueHolds(customerId);
    const account = await queries.customerAccount(this.db, customerId);
    if (!account) throw notFound('customer', customerId);
    const rows = await queries.listTransfers(this.db, customerId, limit, cursor);
    return toPage(rows.map((t) => presentTransaction(t, account.id)), limit);
  }

  async grants(customerId: string, limit: number, cursor?: string) {
    const account = await queries.customerAccount(this.db, customerId);
    if (!account) throw notFound('customer', customerId);
    return toPage((await queries.listGrants(this.db, customerId, limit, cursor)).map(presentGrant), limit);
  }

  /** A page of ledger entries of each of several customers, in three queries whatever their number: customer id -> page. */
  async transactionsOf(customerIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<ReturnType<typeof presentTransaction>>>> {
    await this.expireOverdueHoldsOf(customerIds);
    const [accounts, transfers] = await Promise.all([queries.customerAccounts(this.db, customerIds), queries.listTransfersOf(this.db, customerIds, limit, cursor)]);
    return pagesPerParent([...accounts.keys()], transfers, (t) => t.customerId, (t) => presentTransaction(t, accounts.get(t.customerId)!.id), limit);
  }

  /** A page of grants of each of several customers, in one query: customer id -> page. */
  async grantsOf(customerIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<ReturnType<typeof presentGrant>>>> {
    return pagesPerParent(customerIds, await queries.listGrantsOf(this.db, customerIds, limit, cursor), (g) => g.customerId, presentGrant, limit);
  }

  private async expireOverdueHoldsOf(customerIds: string[]) {
    const overdue = await queries.overdueHoldsOf(this.db, customerIds, this.clock.now());
    await Promise.all(overdue.map((reservationId) => this.ledger.apply({ type: 'expire_reservation', reservationId })));
  }

  /** Reads show holds past their expiry as already returned: the expiry is applied first. */
  private async expireOverdueHolds(customerId: string) {
    const overdue = await queries.hasOverdueHolds(this.db, customerId, this.clock.now());
    if (overdue) await this.ledger.apply({ type: 'expire_reservation', reservationId: overdue });
  }
}

function renderGrant(result: LedgerOpResult): StoredReply {
  if (!result.ok) throw new AppError(result.code, result.detail);
  if (result.value.type !== 'grant') throw new Error('unexpected result');
  return { status: 201, body: presentGrant(result.value.grant) };
}
