import type { Queryable } from '../platform/db.js';

export interface MeterRow { id: string; key: string; name: string; unit: string; aggregation: string; created_at: Date }
export interface ProductRow { id: string; key: string; name: string; description: string | null; created_at: Date }
export interface TierRow { up_to: string | null; unit_amount: string; flat_amount: string }
export interface PriceRow {
  id: string;
  product_id: string;
  meter_id: string;
  currency: string;
  customer_id: string | null;
  scheme: 'per_unit' | 'graduated' | 'volume' | 'package';
  unit_amount: string | null;
  tiers: TierRow[] | null;
  package_size: string | null;
  effective_at: Date;
  created_at: Date;
}

export async function insertMeter(tx: Queryable, m: MeterRow) {
  await tx.query('INSERT INTO meters (id, key, name, unit, aggregation, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [m.id, m.key, m.name, m.unit, m.aggregation, m.created_at]);
}

export async function insertProduct(tx: Queryable, p: ProductRow) {
  await tx.query('INSERT INTO products (id, key, name, description, created_at) VALUES ($1, $2, $3, $4, $5)', [p.id, p.key, p.name, p.description, p.created_at]);
}

export async function insertPrice(tx: Queryable, p: PriceRow) {
  await tx.query(
    `INSERT INTO prices (id, product_id, meter_id, currency, customer_id, scheme, unit_amount, tiers, package_size, effective_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [p.id, p.product_id, p.meter_id, p.currency, p.customer_id, p.scheme, p.unit_amount, p.tiers ? JSON.stringify(p.tiers) : null, p.package_size, p.effective_at, p.created_at],
  );
}

export async function findMeter(db: Queryable, keyOrId: string): Promise<MeterRow | null> {
  const [row] = await db.query<MeterRow>('SELECT * FROM meters WHERE id = $1 OR key = $1', [keyOrId]);
  return row ?? null;
}

export async function findProduct(db: Queryable, keyOrId: string): Promise<ProductRow | null> {
  const [row] = await db.query<ProductRow>('SELECT * FROM products WHERE id = $1 OR key = $1', [keyOrId]);
  return row ?? null;
}

export async function listMeters(db: Queryable, limit: number, cursor?: string) {
  return db.query<MeterRow>('SELECT * FROM meters WHERE ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2', [cursor ?? null, limit + 1]);
}

export async function listProducts(db: Queryable, limit: number, cursor?: string) {
  return db.query<ProductRow>('SELECT * FROM products WHERE ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2', [cursor ?? null, limit + 1]);
}

export async function allMeters(db: Queryable) {
  return db.query<MeterRow>('SELECT * FROM meters ORDER BY id');
}

export async function allProducts(db: Queryable) {
  return db.query<ProductRow>('SELECT * FROM products ORDER BY id');
}

export async function allPrices(db: Queryable) {
  return db.query<PriceRow>('SELECT * FROM prices ORDER BY id');
}

export interface CatalogCounts {
  meters: number;
  products: number;
  prices: number;
}

/** The catalog's tables only ever get rows (prices are immutable versions): their counts say whether anything was added. */
export async function catalogCounts(db: Queryable): Promise<CatalogCounts> {
  const [row] = await db.query<CatalogCounts>(
    'SELECT (SELECT count(*) FROM meters)::int AS meters, (SELECT count(*) FROM products)::int AS products, (SELECT count(*) FROM prices)::int AS prices',
  );
  return row!;
}

export async function listPrices(db: Queryable, f: { limit: number; cursor?: string; productId?: string; customerId?: string }) {
  return db.query<PriceRow>(
    `SELECT * FROM prices WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR product_id = $2)
       AND ($3::text IS NULL OR customer_id = $3) ORDER BY id DESC LIMIT $4`,
    [f.cursor ?? null, f.productId ?? null, f.customerId ?? null, f.limit + 1],
  );
}
