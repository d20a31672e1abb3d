import type { UsageCatalogView } from '../catalog/catalog-service.js';
import type { Db } from '../platform/db.js';
import { formatDecimal } from '../platform/decimal.js';
import { AppError, assertInvariant } from '../platform/errors.js';
import { formatAmount } from '../platform/money.js';
import { queryUsage, queryUsageOfCustomers, recomputeUsageFromEvents, TooManyGroupsError, USAGE_GROUPS_MAX, type UsageFilters, type UsageRating } from './usage-queries.js';
import { isWholeHour, USAGE_DIMENSIONS, USAGE_WINDOWS_MAX, windowCount, type UsageDimension, type UsageGroup, type UsageWindow } from './usage-rules.js';
import type { MyUsageQuery, UsageReply } from './usage-schemas.js';

/** What usage reports read from the catalog (CatalogService provides it). */
export interface UsageCatalog {
  usageView(): Promise<Pick<UsageCatalogView, 'product' | 'meter' | 'rateWith'>>;
  /** By key or id, from the database; throws not_found. */
  getProduct(keyOrId: string): Promise<{ id: string; key: string }>;
}

type View = Awaited<ReturnType<UsageCatalog['usageView']>>;

/**
 * GET /v1/usage and /v1/me/usage: validate and resolve the query, read the groups (from the
 * rollups, or recomputed from raw events), present them. See docs/metering.md, "Usage".
 */
export class UsageService {
  constructor(
    private readonly db: Db,
    private readonly catalog: UsageCatalog,
  ) {}

  /** Usage of one customer, or of all of them (`customerId` null, the operator's view). */
  async usage(customerId: string | null, query: MyUsageQuery): Promise<UsageReply> {
    const view = await this.catalog.usageView();
    const filters = await this.filtersOf(customerId, query, view);
    return { data: await this.present(await limited(queryUsage(this.db, filters)), filters, view) };
  }

  /** The same report for each of several customers, in the same round trips whatever their number: customer id -> rows. */
  async usageOf(customerIds: string[], query: MyUsageQuery): Promise<Map<string, UsageReply['data']>> {
    const view = await this.catalog.usageView();
    const filters = await this.filtersOf(null, query, view);
    const perCustomer = await limited(queryUsageOfCustomers(this.db, filters, customerIds));
    const replies = new Map<string, UsageReply['data']>();
    for (const [id, groups] of perCustomer) replies.set(id, await this.present(groups, filters, view));
    return replies;
  }

  /** The same reply computed from the raw events, not the rollups: they must always agree. */
  async recompute(customerId: string | null, query: MyUsageQuery): Promise<UsageReply> {
    const view = await this.catalog.usageView();
    const filters = await this.filtersOf(customerId, query, view);
    return { data: await this.present(await limited(recomputeUsageFromEvents(this.db, filters, ratingOf(view))), filters, view) };
  }

  private async filtersOf(customerId: string | null, q: MyUsageQuery, view: View): Promise<UsageFilters> {
    const window: UsageWindow = q.window ?? 'day';
    const from = new Date(q.from);
    const to = new Date(q.to);
    // A filter naming nothing is a bad parameter (400), not a missing resource: /v1/usage exists.
    const refuse = (path: string, message: string) => new AppError('invalid_request', `${path} ${message}`, [{ path, message }]);
    if (!isWholeHour(from)) throw refuse('from', 'must be a whole UTC hour (usage is kept per hour)');
    if (!isWholeHour(to)) throw refuse('to', 'must be a whole UTC hour (usage is kept per hour)');
    if (to.getTime() <= from.getTime()) throw refuse('to', 'must be after from');
    const windows = windowCount(from, to, window);
    if (windows > USAGE_WINDOWS_MAX) {
      throw refuse('to', `makes ${windows} ${window} windows; at most ${USAGE_WINDOWS_MAX} per query (use a larger window or a shorter range)`);
    }
    let productId: string | null = null;
    if (q.product !== undefined) {
      const product = view.product(q.product) ?? (await this.catalog.getProduct(q.product).catch(unlessNotFound));
      if (!product) throw refuse('product', 'is not a known product key or id');
      productId = product.id;
    }
    if (q.meter !== undefined && !view.meter(q.meter)) throw refuse('meter', 'is not a known meter key');
    const groupBy = new Set((q.group_by ?? '').split(',').filter((d): d is UsageDimension => (USAGE_DIMENSIONS as string[]).includes(d)));
    return { customerId, productId, meterKey: q.meter ?? null, apiKeyId: q.api_key ?? null, from, to, window, groupBy };
  }

  /**
   * Quantities are shown only for rows of one meter (grouped by meter, or filtered to one):
   * adding megapixels to tokens means nothing. Charges and counts are shown for every row.
   */
  private async present(groups: UsageGroup[], f: UsageFilters, view: View): Promise<UsageReply['data']> {
    const productKeys = new Map<string, string>();
    for (const id of new Set(groups.map((g) => g.productId).filter((id): id is string => id !== null))) {
      productKeys.set(id, view.product(id)?.key ?? (await this.catalog.getProduct(id)).key);
    }
    return groups.map((g) => {
      const meter = f.meterKey ?? g.meterKey;
      const unique = meter !== null && view.meter(meter)?.aggregation === 'unique_count';
      const numeric = meter !== null && !unique;
      return {
        window_start: g.windowStart.toISOString(),
        product: g.productId === null ? null : productKeys.get(g.productId)!,
        meter: g.meterKey,
        api_key_id: g.apiKeyId,
        currency: g.currency,
        sum: numeric ? formatDecimal(g.sum) : null,
        count: safeNumber(g.count),
        max: numeric && g.max !== null ? formatDecimal(g.max) : null,
        unique_count: unique ? safeNumber(g.uniqueCount) : null,
        charged: formatAmount(g.charged, g.currency),
      };
    });
  }
}

function unlessNotFound(error: unknown): null {
  if (error instanceof AppError && error.code === 'not_found') return null;
  throw error;
}

async function limited<T>(groups: Promise<T>): Promise<T> {
  try {
    return await groups;
  } catch (error) {
    if (error instanceof TooManyGroupsError) {
      throw new AppError('invalid_request', `The query has more than ${USAGE_GROUPS_MAX} rows: use a larger window, fewer group_by dimensions or a shorter range`);
    }
    throw error;
  }
}

/** Meters and exact per-meter costs at an event's price versions, from one catalog snapshot. */
function ratingOf(view: View): UsageRating {
  return {
    isUniqueCount: (meterKey) => view.meter(meterKey)?.aggregation === 'unique_count',
    meterCosts: (priceIds, quantities) => {
      const rated = view.rateWith(priceIds, quantities);
      if (!rated) throw new AppError('service_unavailable', 'The prices of some events are still loading; retry shortly');
      return new Map(Object.entries(rated.meterCosts));
    },
  };
}

function safeNumber(n: bigint): number {
  assertInvariant(n <= BigInt(Number.MAX_SAFE_INTEGER), `a count of ${n} does not fit a JSON number`);
  return Number(n);
}
