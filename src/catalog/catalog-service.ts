import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { parseDecimal, type Decimal } from '../platform/decimal.js';
import { AppError, notFound, refusal, type Outcome } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { toPage, type Page } from '../platform/lists.js';
import * as store from './catalog-store.js';
import { indexPrices, priceInForce, pricesInForce, rateByMeter, rateQuantities, type PriceIndex, type PriceVersion } from './price-book.js';
import { validatePriceTerms, type PriceTerms } from './pricing.js';
import type { MeterCreate, Price, PriceCreate, ProductCreate } from './schemas.js';

interface Snapshot {
  meters: Map<string, store.MeterRow>; // by id
  metersByKey: Map<string, store.MeterRow>;
  products: Map<string, store.ProductRow>; // by id and by key
  prices: PriceVersion[];
  priceIndex: PriceIndex;
  pricesById: Map<string, PriceVersion>;
  rows: Map<string, store.PriceRow>;
  loadedAt: number;
  /** Rows of each table it was loaded from: the catalog only grows, so equal counts mean nothing was added. */
  counts: store.CatalogCounts;
  /** The invalidation count when its load started: a load that overlapped an invalidation is stale. */
  generation: number;
}

/**
 * How long another instance's new prices may take to be seen here (this instance sees its own at
 * once). Past it, the tables' row counts are checked, and the catalog is read again only if they
 * grew: reading a platform's thousands of prices took 30-40 ms of the server's CPU.
 */
const SNAPSHOT_TTL_MS = 5_000;
const MISS_RELOAD_MIN_MS = 250;

export class CatalogService {
  private snapshot: Snapshot | null = null;
  private loading: { promise: Promise<Snapshot>; generation: number } | null = null;
  private checking: Promise<Snapshot> | null = null;
  private lastMissReload = 0;
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** The accounts module answers which currency a customer bills in (null: no such customer), read through `db`. */
    private readonly customerCurrency: (customerId: string, db: Queryable) => Promise<string | null>,
  ) {}

  async createMeter(tx: Queryable, input: MeterCreate) {
    const row: store.MeterRow = { id: newId('met'), key: input.key, name: input.name, unit: input.unit, aggregation: input.aggregation ?? 'sum', created_at: this.clock.now() };
    await uniquely(() => store.insertMeter(tx, row), `A meter with key "${input.key}" already exists`);
    this.invalidate();
    return presentMeter(row);
  }

  async createProduct(tx: Queryable, input: ProductCreate) {
    const row: store.ProductRow = { id: newId('prd'), key: input.key, name: input.name, description: input.description ?? null, created_at: this.clock.now() };
    await uniquely(() => store.insertProduct(tx, row), `A product with key "${input.key}" already exists`);
    this.invalidate();
    return presentProduct(row);
  }

  async createPrice(tx: Queryable, input: PriceCreate): Promise<Price> {
    const product = await store.findProduct(tx, input.product);
    const meter = await store.findMeter(tx, input.meter);
    if (!product) throw new AppError('not_found', `No product "${input.product}"`, [{ path: 'product', message: 'unknown product' }]);
    if (!meter) throw new AppError('not_found', `No meter "${input.meter}"`, [{ path: 'meter', message: 'unknown meter' }]);
    if (input.customer) {
      // Read in the transaction: PGlite has one connection, which the transaction holds.
      const currency = await this.customerCurrency(input.customer, tx);
      if (!currency) throw new AppError('not_found', `No customer with id ${input.customer}`, [{ path: 'customer', message: 'unknown customer' }]);
      if (currency !== input.currency) throw new AppError('invalid_request', `The customer bills in ${currency}`, [{ path: 'currency', message: `must be ${currency}` }]);
    }
    const now = this.clock.now();
    const row: store.PriceRow = {
      id: newId('pri'),
      product_id: product.id,
      meter_id: meter.id,
      currency: input.currency,
      customer_id: input.customer ?? null,
      scheme: input.scheme as store.PriceRow['scheme'],
      unit_amount: input.unit_amount ?? null,
      tiers: input.tiers ? input.tiers.map((t) => ({ up_to: t.up_to, unit_amount: t.unit_amount ?? '0', flat_amount: t.flat_amount ?? '0' })) : null,
      package_size: input.package_size ?? null,
      effective_at: input.effective_at ? new Date(input.effective_at) : now,
      created_at: now,
    };
    const problems = validatePriceTerms(termsOf(row));
    if (problems.length > 0) throw new AppError('invalid_request', `The price is invalid: ${problems.join('; ')}`, problems.map((message) => ({ path: input.scheme, message })));
    await store.insertPrice(tx, row);
    this.invalidate();
    return presentPrice(row, product, meter);
  }

  async listMeters(limit: number, cursor?: string) {
    return toPage((await store.listMeters(this.db, limit, cursor)).map(presentMeter), limit);
  }

  async listProducts(limit: number, cursor?: string) {
    return toPage((await store.listProducts(this.db, limit, cursor)).map(presentProduct), limit);
  }

  async getProduct(keyOrId: string) {
    const row = await store.findProduct(this.db, keyOrId);
    if (!row) throw notFound('product', keyOrId);
    return presentProduct(row);
  }

  async listPrices(f: { limit: number; cursor?: string; product?: string; customer?: string }): Promise<Page<Price>> {
    let productId: string | undefined;
    if (f.product) {
      const product = await store.findProduct(this.db, f.product);
      if (!product) return { data: [], has_more: false, next_cursor: null };
      productId = product.id;
    }
    const rows = await store.listPrices(this.db, { limit: f.limit, cursor: f.cursor, productId, customerId: f.customer });
    const snap = await this.current();
    return toPage(rows.map((r) => presentPrice(r, snap.products.get(r.product_id)!, snap.meters.get(r.meter_id)!)), f.limit);
  }

  async getPrice(id: string): Promise<Price> {
    const snap = await this.current();
    const row = snap.rows.get(id);
    if (!row) throw notFound('price', id);
    return presentPrice(row, snap.products.get(row.product_id)!, snap.meters.get(row.meter_id)!);
  }

  /** What each product costs now, per meter, for a customer (overrides applied) or the public list. */
  async pricing(customerId: string | null, currency?: string) {
    const snap = await this.current();
    const at = this.clock.now();
    const products = [...new Map([...snap.products.values()].map((p) => [p.id, p])).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    const currencies = currency ? [currency] : [...new Set(snap.prices.map((p) => p.currency))].sort();
    return products.flatMap((product) => {
      const prices = currencies.flatMap((c) => pricesInForce(snap.priceIndex, { productId: product.id, currency: c, customerId, at }));
      if (prices.length === 0) return [];
      return [{
        product: presentProduct(product),
        prices: prices.map((p) => ({
          meter: p.meterKey,
          unit: snap.meters.get(p.meterId)!.unit,
          price: presentPrice(snap.rows.get(p.id)!, product, snap.meters.get(p.meterId)!),
        })),
      }];
    });
  }

  /**
   * The quote an authorize holds: the estimate rated at the prices in force now, and those prices'
   * ids (every meter of the product), which settle will use whatever prices come later.
   */
  async quote(q: { productKey: string; currency: string; customerId: string; estimate: Record<string, string> }): Promise<Outcome<{ productId: string; priceIds: string[]; amount: bigint }>> {
    let snap = await this.current();
    let product = snap.products.get(q.productKey);
    if (!product) {
      snap = await this.reloadOnMiss(snap);
      product = snap.products.get(q.productKey);
      if (!product) return refusal('product_not_found', `No product "${q.productKey}"`);
    }
    const at = this.clock.now();
    let prices = pricesInForce(snap.priceIndex, { productId: product.id, currency: q.currency, customerId: q.customerId, at });
    const missing = () => prices.length === 0 || Object.keys(q.estimate).some((k) => !prices.some((p) => p.meterKey === k));
    if (missing()) {
      snap = await this.reloadOnMiss(snap);
      prices = pricesInForce(snap.priceIndex, { productId: product.id, currency: q.currency, customerId: q.customerId, at });
    }
    if (prices.length === 0) return refusal('no_price', `Product "${q.productKey}" has no price in ${q.currency}`);
    const amount = rateQuantities(prices, q.estimate);
    if (!amount.ok) return amount;
    return { ok: true, value: { productId: product.id, priceIds: prices.map((p) => p.id), amount: amount.value } };
  }

  /** Rates usage at given price versions (immutable, so any snapshot that has them will do). */
  rateAt(priceIds: string[], usage: Record<string, string>): Outcome<bigint> {
    const snap = this.snapshot;
    const prices = priceIds.map((id) => snap?.pricesById.get(id)).filter((p): p is PriceVersion => p !== undefined);
    if (prices.length !== priceIds.length) {
      void this.reload();
      return refusal('service_unavailable', 'The prices of this reservation are still loading; retry shortly');
    }
    return rateQuantities(prices, usage);
  }

  /**
   * What usage ingestion reads from the catalog, from one fresh snapshot: products and meters by
   * key or id, and rating at the prices in force at an event's own time.
   */
  async usageView(): Promise<UsageCatalogView> {
    return usageViewOf(await this.current());
  }

  /**
   * The same view over the snapshot in hand, without any I/O: for use inside a transaction (on
   * PGlite's single connection a reload there would wait on the transaction itself). Prices are
   * immutable, so a snapshot that rated a settle has everything its usage needs.
   */
  cachedUsageView(): UsageCatalogView | null {
    return this.snapshot ? usageViewOf(this.snapshot) : null;
  }

  /** Keeps the snapshot within its freshness window before a batch rates with it. */
  async ensureFresh(): Promise<void> {
    await this.current();
  }

  /** Prices in force for a product at a time, one per meter, overrides applied (billing rates a period with them). */
  async pricesAt(q: { productId: string; currency: string; customerId: string; at: Date }): Promise<PriceVersion[]> {
    return pricesInForce((await this.current()).priceIndex, q);
  }

  /**
   * What billing needs to rate a period, from one fresh snapshot: per product and meter, the
   * product's key, the meter's aggregation and the price in force at `at` (overrides applied). The
   * lookup does no I/O, so billing reads it before its transaction and uses it inside.
   */
  async periodPricing(q: { currency: string; customerId: string; at: Date }): Promise<PeriodPricing> {
    const snap = await this.current();
    const view = usageViewOf(snap);
    return (productId, meterKey) => {
      const meter = snap.metersByKey.get(meterKey);
      const price = meter ? priceInForce(snap.priceIndex, { ...q, productId, meterId: meter.id }) : null;
      return { productKey: view.product(productId)?.key ?? productId, aggregation: meter?.aggregation ?? 'sum', price: price ? { id: price.id, terms: price.terms } : null };
    };
  }

  productKeyOf(productId: string): string | null {
    return this.snapshot?.products.get(productId)?.key ?? null;
  }

  priceInForceFor(q: Parameters<typeof priceInForce>[1]): PriceVersion | null {
    return this.snapshot ? priceInForce(this.snapshot.priceIndex, q) : null;
  }

  /**
   * Drops the cached catalog; the routes call it again after their transaction commits, since a
   * reload that ran before the commit could not see the change.
   */
  invalidate(): void {
    this.generation += 1;
    if (this.snapshot) this.snapshot.loadedAt = 0;
  }

  /** The snapshot, read again when invalidated here, checked for growth once past its window. */
  private async current(): Promise<Snapshot> {
    const snap = this.snapshot;
    if (!snap || snap.loadedAt === 0) return this.reload();
    if (Date.now() - snap.loadedAt < SNAPSHOT_TTL_MS) return snap;
    // Past its window but not invalidated here: only another instance could have added to it.
    return this.revalidate(snap);
  }

  private revalidate(snap: Snapshot): Promise<Snapshot> {
    const generation = this.generation;
    this.checking ??= store
      .catalogCounts(this.db)
      .then((counts) => {
        const unchanged = counts.meters === snap.counts.meters && counts.products === snap.counts.products && counts.prices === snap.counts.prices;
        // An invalidation or a newer load meanwhile wins over the check.
        if (!unchanged || generation !== this.generation || this.snapshot !== snap) return this.reload();
        snap.loadedAt = Date.now();
        return snap;
      })
      .finally(() => (this.checking = null));
    return this.checking;
  }

  private async reloadOnMiss(snap: Snapshot): Promise<Snapshot> {
    if (Date.now() - this.lastMissReload < MISS_RELOAD_MIN_MS) return snap;
    this.lastMissReload = Date.now();
    return this.reload();
  }

  private reload(): Promise<Snapshot> {
    // A load started before the latest invalidation may miss the change: start a new one.
    if (this.loading?.generation === this.generation) return this.loading.promise;
    const generation = this.generation;
    const promise: Promise<Snapshot> = this.load(generation).finally(() => {
      if (this.loading?.promise === promise) this.loading = null;
    });
    this.loading = { promise, generation };
    return promise;
  }

  private async load(generation: number): Promise<Snapshot> {
    const [meters, products, priceRows] = await Promise.all([store.allMeters(this.db), store.allProducts(this.db), store.allPrices(this.db)]);
    const meterById = new Map(meters.map((m) => [m.id, m]));
    const prices = priceRows.map((r): PriceVersion => ({
      id: r.id,
      productId: r.product_id,
      meterId: r.meter_id,
      meterKey: meterById.get(r.meter_id)!.key,
      currency: r.currency,
      customerId: r.customer_id,
      terms: termsOf(r),
      effectiveAt: new Date(r.effective_at),
      createdAt: new Date(r.created_at),
    }));
    const snapshot: Snapshot = {
      meters: meterById,
      metersByKey: new Map(meters.map((m) => [m.key, m])),
      products: new Map(products.flatMap((p) => [[p.id, p], [p.key, p]] as Array<[string, store.ProductRow]>)),
      prices,
      priceIndex: indexPrices(prices),
      pricesById: new Map(prices.map((p) => [p.id, p])),
      rows: new Map(priceRows.map((r) => [r.id, r])),
      loadedAt: generation === this.generation ? Date.now() : 0,
      counts: { meters: meters.length, products: products.length, prices: priceRows.length },
      generation,
    };
    // An older load finishing last must not replace a newer snapshot.
    if (!this.snapshot || this.snapshot.generation <= generation) this.snapshot = snapshot;
    return snapshot;
  }
}

function termsOf(row: store.PriceRow): PriceTerms {
  return {
    scheme: row.scheme,
    unitAmount: row.unit_amount !== null ? parseDecimal(row.unit_amount) : null,
    tiers: row.tiers
      ? row.tiers.map((t) => ({ upTo: t.up_to === null ? null : parseDecimal(t.up_to), unitAmount: parseDecimal(t.unit_amount), flatAmount: parseDecimal(t.flat_amount ?? '0') }))
      : null,
    packageSize: row.package_size !== null ? parseDecimal(row.package_size) : null,
  };
}

async function uniquely(insert: () => Promise<void>, message: string) {
  try {
    await insert();
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw new AppError('conflict', message);
    throw error;
  }
}

function presentMeter(m: store.MeterRow) {
  return { id: m.id, key: m.key, name: m.name, unit: m.unit, aggregation: m.aggregation as 'sum' | 'count' | 'max' | 'unique_count', created_at: new Date(m.created_at).toISOString() };
}

function presentProduct(p: store.ProductRow) {
  return { id: p.id, key: p.key, name: p.name, description: p.description, created_at: new Date(p.created_at).toISOString() };
}

function presentPrice(r: store.PriceRow, product: store.ProductRow, meter: store.MeterRow): Price {
  return {
    id: r.id,
    product_id: r.product_id,
    product: product.key,
    meter_id: r.meter_id,
    meter: meter.key,
    currency: r.currency,
    customer_id: r.customer_id,
    scheme: r.scheme,
    unit_amount: r.unit_amount,
    tiers: r.tiers ? r.tiers.map((t) => ({ up_to: t.up_to, unit_amount: t.unit_amount, flat_amount: t.flat_amount ?? '0' })) : null,
    package_size: r.package_size,
    effective_at: new Date(r.effective_at).toISOString(),
    created_at: new Date(r.created_at).toISOString(),
  };
}

export type PeriodPricing = (productId: string, meterKey: string) => { productKey: string; aggregation: string; price: { id: string; terms: PriceTerms } | null };

export interface UsageCatalogView {
  product(ref: string): { id: string; key: string } | null;
  meter(key: string): { key: string; aggregation: string } | null;
  /** null: some meter has no price in force at `at` (the event is unpriced); a refusal: absurd quantities. */
  rate(q: { productId: string; currency: string; customerId: string; at: Date; quantities: Record<string, string> }):
    | { priceIds: string[]; amount: bigint; meterCosts: Record<string, Decimal> }
    | Extract<Outcome<never>, { ok: false }>
    | null;
  /** A settle's usage at its reservation's prices, per meter (null when they are not loaded). */
  rateWith(priceIds: string[], quantities: Record<string, string>): { amount: bigint; meterCosts: Record<string, Decimal> } | null;
}

function usageViewOf(snap: Snapshot): UsageCatalogView {
  return {
    product: (ref) => snap.products.get(ref) ?? null,
    meter: (key) => snap.metersByKey.get(key) ?? null,
    rate: (q) => {
      const prices = pricesInForce(snap.priceIndex, q).filter((p) => p.meterKey in q.quantities);
      if (Object.keys(q.quantities).some((k) => !prices.some((p) => p.meterKey === k))) return null;
      const rated = rateByMeter(prices, q.quantities);
      return rated.ok ? { priceIds: prices.map((p) => p.id), ...rated.value } : rated;
    },
    rateWith: (priceIds, quantities) => {
      const prices = priceIds.map((id) => snap.pricesById.get(id)).filter((p): p is PriceVersion => p !== undefined);
      const priced = Object.fromEntries(Object.entries(quantities).filter(([k]) => prices.some((p) => p.meterKey === k)));
      const rated = rateByMeter(prices, priced);
      return rated.ok ? rated.value : null;
    },
  };
}
