import { Batcher } from '../platform/batcher.js';
import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError, notFound } from '../platform/errors.js';
import type { Principal } from '../platform/http.js';
import { newId } from '../platform/ids.js';
import { emit, event } from '../outbox/outbox.js';
import { pagesPerParent, toPage, type Page } from '../platform/lists.js';
import { formatScaled } from '../platform/decimal.js';
import { AMOUNT_MAX, formatAmount, LEDGER_SCALE, parseAmount } from '../platform/money.js';
import { toIso } from '../platform/schemas.js';
import { creditLimitsOf, openCustomerAccount, setCreditLimit } from '../ledger/account-store.js';
import type { KeyLimitsSql } from '../ledger/batch-load.js';
import { startKeySpend } from '../ledger/key-spend.js';
import { keyAllowance, type KeyRateLimits } from '../rate-limits/rate-limits.js';
import * as customers from './customer-store.js';
import * as keys from './key-store.js';
import { generateSecret, hashSecret, looksLikeKeySecret, tokenMatcher } from './key-secret.js';
import type { ApiKey, ApiKeyCreate, ApiKeyUpdate, Customer, CustomerCreate, CustomerUpdate } from './schemas.js';

/** What the hot path needs to know about a key secret; none of it ever changes for a key. */
export interface KeyIdentity {
  apiKeyId: string;
  customerId: string;
  currency: string;
}

const KEY_CACHE_MAX = 100_000;
const KEY_LOOKUPS_PER_QUERY_MAX = 500;
/**
 * How often a process asks the database which keys' rate limits changed (one query, whatever the
 * number of keys): a change made elsewhere reaches every process within it. The cached limits keep
 * answering meanwhile, off the request's path. Until 2026-12-07 each cached key's limits were read
 * again once 10 s old: with 10,000 keys in use, a query for nearly every authorize.
 */
const KEY_RATE_LIMITS_POLL_MS = 5_000;
/**
 * Each ask goes back this far before the previous one's time. A change is stamped when its UPDATE
 * runs and seen once it commits: one that committed just after an ask but was stamped before it is
 * still found by the next, and so is a cached value read before a change and stored after it.
 */
const KEY_RATE_LIMITS_CHANGE_OVERLAP_S = 60;
/** Reads of several keys' limits wait this long to share a query. */
const KEY_RATE_LIMITS_READ_WAIT_MS = 2;

export class AccountsService {
  /** secret hash -> identity. Safe to keep: revocation and limits are checked in the ledger's transaction. */
  private readonly identities = new Map<string, KeyIdentity>();
  /** key id -> its rate limits, kept up to date by asking for changes every KEY_RATE_LIMITS_POLL_MS. */
  private readonly rateLimitsRead = new Map<string, KeyRateLimits>();
  /** The database's time of the last ask for changed limits (null: none yet), and when (this clock) one last started. */
  private rateLimitsCheckedAt: Date | null = null;
  private rateLimitsCheckStartedMs = -Infinity;
  private rateLimitsChecking: Promise<void> | null = null;
  /** Monotonic: the first ask looks back over the whole life of the process, whose cache is at most that old. */
  private readonly startedAtMs = performance.now();

  /**
   * Key lookups by secret hash gathered for a tick (until the event loop's check phase) and read in
   * one query: a burst of first-seen keys costs one round trip, not one each, and on PGlite one
   * place in its queue behind the ledger's transactions.
   */
  private readonly keyLookups: Batcher<string, keys.KeyByHashRow | null>;
  /** Keys' rate limits read from the database, many keys per query. */
  private readonly rateLimitReads: Batcher<string, KeyRateLimits>;
  private readonly isAdminToken: (token: string) => boolean;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    adminToken: string,
    /** TOLLGATE_RATE_LIMIT_PER_KEY: the allowance of a key without rate_limit_max (0: unlimited). */
    private readonly rateLimitPerKeyDefault = 0,
  ) {
    this.isAdminToken = tokenMatcher(adminToken);
    this.keyLookups = new Batcher({
      waitMs: 0,
      sizeMax: KEY_LOOKUPS_PER_QUERY_MAX,
      inFlightMax: 2,
      flush: async (hashes) => {
        const found = await keys.findKeysByHash(this.db, hashes);
        return hashes.map((hash) => found.get(hash) ?? null);
      },
    });
    this.rateLimitReads = new Batcher({
      waitMs: KEY_RATE_LIMITS_READ_WAIT_MS,
      sizeMax: KEY_LOOKUPS_PER_QUERY_MAX,
      inFlightMax: 2,
      flush: async (ids) => {
        const found = await keys.keyRateLimits(this.db, ids);
        return ids.map((id) => found.get(id) ?? { rateLimit: null, rateLimitMax: null });
      },
    });
  }

  /**
   * Fills the key cache with the active keys, newest first (up to its size), so a process that just
   * started does not look every key up on its first authorize: one query instead of one per key.
   * Run in the background at start; a key revoked meanwhile is refused by the ledger as ever.
   */
  async warmKeyCache(): Promise<number> {
    const rows = await keys.activeKeyIdentities(this.db, this.clock.now(), KEY_CACHE_MAX);
    for (const row of rows) {
      if (this.identities.size >= KEY_CACHE_MAX) break;
      if (!this.identities.has(row.secret_hash)) this.identities.set(row.secret_hash, { apiKeyId: row.id, customerId: row.customer_id, currency: row.currency });
      if (!this.rateLimitsRead.has(row.id)) this.rememberRateLimits(row.id, { rateLimit: row.rate_limit, rateLimitMax: row.rate_limit_max });
    }
    return rows.length;
  }

  async createCustomer(tx: Queryable, input: CustomerCreate): Promise<Customer> {
    const now = this.clock.now();
    const billingMode = input.billing_mode ?? 'prepaid';
    const creditLimit = input.credit_limit ? clientAmount(input.credit_limit, 'credit_limit') : 0n;
    if (billingMode === 'prepaid' && creditLimit !== 0n) {
      throw new AppError('invalid_request', 'A prepaid customer has no credit limit', [{ path: 'credit_limit', message: 'must be 0 for prepaid customers' }]);
    }
    const row: customers.CustomerRow = {
      id: newId('cus', now.getTime()),
      name: input.name,
      external_id: input.external_id ?? null,
      email: input.email ?? null,
      currency: input.currency,
      billing_mode: billingMode,
      metadata: input.metadata ?? {},
      created_at: now,
      updated_at: now,
    };
    try {
      await customers.insertCustomer(tx, row);
    } catch (error) {
      if (customers.isUniqueViolation(error)) throw new AppError('conflict', `A customer with external_id "${input.external_id}" already exists`);
      throw error;
    }
    await openCustomerAccount(tx, row.id, row.currency, creditLimit, now);
    const customer = presentCustomer(row, creditLimit);
    await emit(tx, [event('customer.created', customer.id, customer)], now);
    return customer;
  }

  async getCustomer(id: string, db: Queryable = this.db): Promise<Customer> {
    const row = await customers.findCustomer(db, id);
    if (!row) throw notFound('customer', id);
    return presentCustomer(row, (await creditLimitsOf(db, [id])).get(id) ?? 0n);
  }

  /** Several customers in two queries (the GraphQL API's batched reads): id -> customer, absent when unknown. */
  async customersByIds(ids: string[]): Promise<Map<string, Customer>> {
    const [rows, limits] = await Promise.all([customers.findCustomers(this.db, ids), creditLimitsOf(this.db, ids)]);
    return new Map(rows.map((r) => [r.id, presentCustomer(r, limits.get(r.id) ?? 0n)]));
  }

  /** For usage ingestion: customers by id or external_id, and key owners, one query each. */
  async resolveUsageSubjects(customerRefs: string[], apiKeyIds: string[]) {
    const [customersByRef, owners] = await Promise.all([customers.findCustomersByRef(this.db, customerRefs), keys.keyOwners(this.db, apiKeyIds)]);
    return { customersByRef, keyOwners: owners };
  }

  async getCustomerByExternalId(externalId: string): Promise<Customer> {
    const row = await customers.findCustomerByExternalId(this.db, externalId);
    if (!row) throw new AppError('not_found', `No customer with external_id "${externalId}"`);
    return this.getCustomer(row.id);
  }

  async listCustomers(filter: { limit: number; cursor?: string; email?: string; external_id?: string; search?: string }): Promise<Page<Customer>> {
    if (filter.external_id !== undefined) {
      const row = await customers.findCustomerByExternalId(this.db, filter.external_id);
      return { data: row ? [await this.getCustomer(row.id)] : [], has_more: false, next_cursor: null };
    }
    const rows = await customers.listCustomers(this.db, filter);
    const limits = await creditLimitsOf(this.db, rows.map((r) => r.id));
    return toPage(rows.map((r) => presentCustomer(r, limits.get(r.id) ?? 0n)), filter.limit);
  }

  async updateCustomer(tx: Queryable, id: string, patch: CustomerUpdate): Promise<Customer> {
    const row = await customers.findCustomer(tx, id, true);
    if (!row) throw notFound('customer', id);
    const billingMode = patch.billing_mode ?? row.billing_mode;
    let creditLimit = (await creditLimitsOf(tx, [id])).get(id) ?? 0n;
    if (patch.credit_limit !== undefined || billingMode !== row.billing_mode) {
      creditLimit = billingMode === 'prepaid' ? 0n : patch.credit_limit !== undefined ? clientAmount(patch.credit_limit, 'credit_limit') : creditLimit;
      if (billingMode === 'prepaid' && patch.credit_limit !== undefined && parseAmount(patch.credit_limit) !== 0n) {
        throw new AppError('invalid_request', 'A prepaid customer has no credit limit', [{ path: 'credit_limit', message: 'must be 0 for prepaid customers' }]);
      }
      await setCreditLimit(tx, id, creditLimit);
    }
    const next: customers.CustomerRow = {
      ...row,
      name: patch.name ?? row.name,
      external_id: patch.external_id !== undefined ? patch.external_id : row.external_id,
      email: patch.email !== undefined ? patch.email : row.email,
      billing_mode: billingMode,
      metadata: patch.metadata ?? row.metadata,
      updated_at: this.clock.now(),
    };
    try {
      await customers.updateCustomer(tx, next);
    } catch (error) {
      if (customers.isUniqueViolation(error)) throw new AppError('conflict', `A customer with external_id "${patch.external_id}" already exists`);
      throw error;
    }
    return presentCustomer(next, creditLimit);
  }

  /** `owner`: the customer creating a key for itself (limited to its allowance); undefined: the operator. */
  async createKey(tx: Queryable, customerId: string, input: ApiKeyCreate, owner?: string): Promise<ApiKey & { secret: string }> {
    const customer = await customers.findCustomer(tx, customerId);
    if (!customer) throw notFound('customer', customerId);
    const now = this.clock.now();
    if (input.expires_at && new Date(input.expires_at) <= now) {
      throw new AppError('invalid_request', 'expires_at must be in the future', [{ path: 'expires_at', message: 'must be in the future' }]);
    }
    const rateLimits = this.checkRateLimits({ rateLimit: input.rate_limit ?? null, rateLimitMax: input.rate_limit_max ?? null }, input, owner);
    const secret = generateSecret();
    const row: keys.ApiKeyRow = {
      id: newId('key', now.getTime()),
      customer_id: customerId,
      name: input.name ?? 'API key',
      secret_hash: secret.hash,
      secret_prefix: secret.displayPrefix,
      expires_at: input.expires_at ? new Date(input.expires_at) : null,
      spend_limit_amount: input.spend_limit ? clientAmount(input.spend_limit.amount, 'spend_limit.amount').toString() : null,
      spend_limit_period: input.spend_limit?.period ?? null,
      max_concurrency: input.max_concurrency ?? null,
      rate_limit: rateLimits.rateLimit,
      rate_limit_max: rateLimits.rateLimitMax,
      revoked_at: null,
      created_at: now,
    };
    await keys.insertKey(tx, row);
    const key = presentKey(row, customer.currency, now);
    await emit(tx, [event('api_key.created', customerId, key)], now);
    return { ...key, secret: secret.secret };
  }

  async listKeys(customerId: string, limit: number, cursor?: string): Promise<Page<ApiKey>> {
    const customer = await customers.findCustomer(this.db, customerId);
    if (!customer) throw notFound('customer', customerId);
    const rows = await keys.listKeys(this.db, customerId, limit, cursor);
    const now = this.clock.now();
    return toPage(rows.map((r) => presentKey(r, customer.currency, now)), limit);
  }

  /** A page of keys of each of several customers, in one query (known customers only: the caller checked them). */
  async listKeysOf(customerIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<ApiKey>>> {
    const rows = await keys.listKeysOf(this.db, customerIds, limit, cursor);
    const now = this.clock.now();
    return pagesPerParent(customerIds, rows, (r) => r.customer_id, (r) => presentKey(r, r.currency, now), limit);
  }

  /** A key, as seen by `owner` (a customer id) or by the operator (undefined). */
  async getKey(id: string, owner?: string, db: Queryable = this.db): Promise<ApiKey> {
    const row = await keys.findKey(db, id);
    if (!row || (owner !== undefined && row.customer_id !== owner)) throw notFound('API key', id);
    const customer = await customers.findCustomer(db, row.customer_id);
    return presentKey(row, customer!.currency, this.clock.now());
  }

  async updateKey(tx: Queryable, id: string, patch: ApiKeyUpdate, owner?: string): Promise<ApiKey> {
    const row = await keys.findKey(tx, id);
    if (!row || (owner !== undefined && row.customer_id !== owner)) throw notFound('API key', id);
    const next: keys.ApiKeyRow = { ...row, name: patch.name ?? row.name };
    if (patch.spend_limit !== undefined) {
      next.spend_limit_amount = patch.spend_limit ? clientAmount(patch.spend_limit.amount, 'spend_limit.amount').toString() : null;
      next.spend_limit_period = patch.spend_limit?.period ?? null;
    }
    if (patch.max_concurrency !== undefined) next.max_concurrency = patch.max_concurrency;
    const rateLimits = this.checkRateLimits(
      { rateLimit: patch.rate_limit !== undefined ? patch.rate_limit : row.rate_limit, rateLimitMax: patch.rate_limit_max !== undefined ? patch.rate_limit_max : row.rate_limit_max },
      patch,
      owner,
    );
    next.rate_limit = rateLimits.rateLimit;
    next.rate_limit_max = rateLimits.rateLimitMax;
    await keys.updateKeyLimits(tx, next);
    // The ledger keeps a key's spend only while it has a limit: a new limit counts the periods' spend so far.
    if (patch.spend_limit) await startKeySpend(tx, row.customer_id, id, this.clock.now());
    return this.getKey(id, owner, tx);
  }

  async revokeKey(tx: Queryable, id: string, owner?: string): Promise<ApiKey> {
    const row = await keys.findKey(tx, id);
    if (!row || (owner !== undefined && row.customer_id !== owner)) throw notFound('API key', id);
    const now = this.clock.now();
    await keys.revokeKey(tx, id, now);
    this.identities.delete(row.secret_hash);
    const key = await this.getKey(id, owner, tx);
    // Revoking a revoked key changes nothing and reports nothing.
    if (row.revoked_at === null) await emit(tx, [event('api_key.revoked', row.customer_id, key)], now);
    return key;
  }

  /** Bearer token -> principal: the admin token, or an active customer API key. */
  async authenticate(token: string): Promise<Principal | null> {
    if (this.isAdminToken(token)) return { kind: 'admin' };
    if (!looksLikeKeySecret(token)) return null;
    const row = await this.keyLookups.submit(hashSecret(token));
    if (!row || !isActive(row, this.clock.now())) return null;
    this.rememberRateLimits(row.id, { rateLimit: row.rate_limit, rateLimitMax: row.rate_limit_max });
    return { kind: 'customer', customerId: row.customer_id, apiKeyId: row.id };
  }

  /** Key secret -> identity for authorize, from memory when seen before (no round trip). */
  async identifyKey(secret: string): Promise<KeyIdentity | null> {
    if (!looksLikeKeySecret(secret)) return null;
    const hash = hashSecret(secret);
    const cached = this.identities.get(hash);
    if (cached) return cached;
    const row = await this.keyLookups.submit(hash);
    if (!row || !isActive(row, this.clock.now())) return null;
    const identity = { apiKeyId: row.id, customerId: row.customer_id, currency: row.currency };
    this.rememberRateLimits(row.id, { rateLimit: row.rate_limit, rateLimitMax: row.rate_limit_max });
    if (this.identities.size >= KEY_CACHE_MAX) this.identities.clear();
    this.identities.set(hash, identity);
    return identity;
  }

  /**
   * A key's rate limits for the rate limiter: from memory once read (many keys per query), kept up
   * to date by asking for the keys changed since the last ask, at most every KEY_RATE_LIMITS_POLL_MS.
   */
  async keyRateLimits(apiKeyId: string): Promise<KeyRateLimits> {
    this.checkRateLimitChanges();
    const known = this.rateLimitsRead.get(apiKeyId);
    if (known) return known;
    const limits = await this.rateLimitReads.submit(apiKeyId);
    this.rememberRateLimits(apiKeyId, limits);
    return limits;
  }

  /**
   * After a key's update has committed: this process applies its limits at once (others within
   * KEY_RATE_LIMITS_POLL_MS). Not before the commit, since a rolled-back change is never stamped,
   * so no ask for changes would ever take it back. Returns the key.
   */
  keyUpdated(key: ApiKey): ApiKey {
    if (this.rateLimitsRead.has(key.id)) this.rememberRateLimits(key.id, { rateLimit: key.rate_limit, rateLimitMax: key.rate_limit_max });
    return key;
  }

  /** Starts an ask for changed limits in the background when the last one is old enough; a failed one is tried again next time. */
  private checkRateLimitChanges(): void {
    const nowMs = this.clock.now().getTime();
    if (this.rateLimitsChecking || nowMs - this.rateLimitsCheckStartedMs < KEY_RATE_LIMITS_POLL_MS) return;
    this.rateLimitsCheckStartedMs = nowMs;
    this.rateLimitsChecking = this.askRateLimitChanges()
      .catch(() => {})
      .finally(() => (this.rateLimitsChecking = null));
  }

  private async askRateLimitChanges(): Promise<void> {
    const since = this.rateLimitsCheckedAt
      ? new Date(this.rateLimitsCheckedAt.getTime() - KEY_RATE_LIMITS_CHANGE_OVERLAP_S * 1000)
      : await keys.databaseTimeAgo(this.db, (performance.now() - this.startedAtMs) / 1000 + KEY_RATE_LIMITS_CHANGE_OVERLAP_S);
    const { readAt, changed } = await keys.keyRateLimitsChanged(this.db, since);
    for (const [id, limits] of changed) if (this.rateLimitsRead.has(id)) this.rateLimitsRead.set(id, limits);
    this.rateLimitsCheckedAt = readAt;
  }

  /** Settles once the ask for changed limits under way, if any, has been answered (tests wait on it). */
  async rateLimitChangesChecked(): Promise<void> {
    await this.rateLimitsChecking;
  }

  private rememberRateLimits(apiKeyId: string, limits: KeyRateLimits) {
    this.rateLimitsRead.delete(apiKeyId);
    if (this.rateLimitsRead.size >= KEY_CACHE_MAX) this.rateLimitsRead.delete(this.rateLimitsRead.keys().next().value!);
    this.rateLimitsRead.set(apiKeyId, { rateLimit: limits.rateLimit, rateLimitMax: limits.rateLimitMax });
  }

  /**
   * Only the operator sets a key's allowance (rate_limit_max); a customer sets rate_limit within
   * it, so it can slow its own key down but never past what the operator allows.
   */
  private checkRateLimits(next: KeyRateLimits, input: { rate_limit?: number | null; rate_limit_max?: number | null }, owner: string | undefined): KeyRateLimits {
    if (owner === undefined) return next;
    if (input.rate_limit_max !== undefined) throw new AppError('forbidden', 'rate_limit_max is set by the operator (admin token)');
    const allowance = keyAllowance(next.rateLimitMax, this.rateLimitPerKeyDefault);
    if (input.rate_limit !== undefined && input.rate_limit !== null && allowance !== null && input.rate_limit > allowance) {
      const message = `must be at most ${allowance} (the key's allowance)`;
      throw new AppError('invalid_request', `rate_limit ${message}`, [{ path: 'rate_limit', message }]);
    }
    return next;
  }

  /** The ledger's view of keys, read inside its batch statement (see KeyLimitsSql). */
  readonly keyLimitsSql: KeyLimitsSql = keys.keyLimitsSql;
}

/** A client's amount in ledger units; above AMOUNT_MAX it would not fit the ledger's bigint columns (400). */
function clientAmount(text: string, path: string): bigint {
  const amount = parseAmount(text);
  if (amount > AMOUNT_MAX) {
    const message = `must be at most ${formatScaled(AMOUNT_MAX, LEDGER_SCALE, 0)}`;
    throw new AppError('invalid_request', `${path} ${message}`, [{ path, message }]);
  }
  return amount;
}

function isActive(row: keys.ApiKeyRow, now: Date): boolean {
  return row.revoked_at === null && (row.expires_at === null || new Date(row.expires_at) > now);
}

function presentCustomer(row: customers.CustomerRow, creditLimit: bigint): Customer {
  return {
    id: row.id,
    name: row.name,
    external_id: row.external_id,
    email: row.email,
    currency: row.currency,
    billing_mode: row.billing_mode,
    credit_limit: formatAmount(creditLimit, row.currency),
    metadata: row.metadata,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

function presentKey(row: keys.ApiKeyRow, currency: string, now: Date): ApiKey {
  const status = row.revoked_at ? 'revoked' : row.expires_at && new Date(row.expires_at) <= now ? 'expired' : 'active';
  return {
    id: row.id,
    customer_id: row.customer_id,
    name: row.name,
    prefix: row.secret_prefix,
    status,
    expires_at: toIso(row.expires_at ? new Date(row.expires_at) : null),
    spend_limit:
      row.spend_limit_amount && row.spend_limit_period
        ? { amount: formatAmount(BigInt(row.spend_limit_amount), currency), period: row.spend_limit_period }
        : null,
    max_concurrency: row.max_concurrency,
    rate_limit: row.rate_limit,
    rate_limit_max: row.rate_limit_max,
    revoked_at: toIso(row.revoked_at ? new Date(row.revoked_at) : null),
    created_at: new Date(row.created_at).toISOString(),
  };
}
