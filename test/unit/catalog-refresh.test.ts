import { afterEach, describe, it, expect, vi } from 'vitest';
import { CatalogService } from '../../src/catalog/catalog-service.js';
import type { Db } from '../../src/platform/db.js';
import { systemClock } from '../../src/platform/clock.js';

/** The catalog's three tables in memory, and how often the whole price list was read. */
function fakeCatalogDb() {
  const at = new Date('2026-01-01T00:00:00Z');
  const tables = {
    meters: [{ id: 'met_1', key: 'images', name: 'Images', unit: 'image', aggregation: 'sum', created_at: at }],
    products: [{ id: 'prd_1', key: 'model/a', name: 'A', description: null, created_at: at }],
    prices: [price('pri_1', '0.01')],
  };
  const reads = { prices: 0, counts: 0 };
  function price(id: string, unitAmount: string) {
    return { id, product_id: 'prd_1', meter_id: 'met_1', currency: 'USD', customer_id: null, scheme: 'per_unit', unit_amount: unitAmount, tiers: null, package_size: null, effective_at: at, created_at: new Date(at.getTime() + Number(id.slice(4))) };
  }
  const db = {
    kind: 'postgres',
    async query(sql: string) {
      if (sql.includes('count(*)')) {
        reads.counts++;
        return [{ meters: tables.meters.length, products: tables.products.length, prices: tables.prices.length }];
      }
      if (sql.includes('FROM meters')) return [...tables.meters];
      if (sql.includes('FROM products')) return [...tables.products];
      if (sql.includes('FROM prices')) {
        reads.prices++;
        return [...tables.prices];
      }
      throw new Error(`unexpected SQL: ${sql}`);
    },
  } as unknown as Db;
  return { db, reads, addPrice: (id: string, unitAmount: string) => tables.prices.push(price(id, unitAmount)) };
}

const rate = (catalog: CatalogService) =>
  catalog.usageView().then((view) => {
    const rated = view.rate({ productId: 'prd_1', currency: 'USD', customerId: 'cus_1', at: new Date('2026-06-01T00:00:00Z'), quantities: { images: '1' } });
    return rated && 'amount' in rated ? rated.amount : null;
  });

describe('the catalog snapshot past its 5 s', () => {
  afterEach(() => vi.useRealTimers());

  it('is read again only when another instance added to the catalog, and at once after this one did', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { db, reads, addPrice } = fakeCatalogDb();
    const catalog = new CatalogService(db, systemClock, async () => 'USD');
    expect(await rate(catalog)).toBe(10_000_000n);
    expect(reads).toEqual({ prices: 1, counts: 0 });

    vi.advanceTimersByTime(6_000);
    expect(await rate(catalog)).toBe(10_000_000n);
    expect(reads).toEqual({ prices: 1, counts: 1 });
    // Checked: fresh for another 5 s.
    expect(await rate(catalog)).toBe(10_000_000n);
    expect(reads).toEqual({ prices: 1, counts: 1 });

    addPrice('pri_2', '0.02');
    expect(await rate(catalog)).toBe(10_000_000n);
    vi.advanceTimersByTime(6_000);
    expect(await rate(catalog)).toBe(20_000_000n);
    expect(reads).toEqual({ prices: 2, counts: 2 });

    addPrice('pri_3', '0.03');
    catalog.invalidate();
    expect(await rate(catalog)).toBe(30_000_000n);
    expect(reads).toEqual({ prices: 3, counts: 2 });
  });
});
