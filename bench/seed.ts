// What the scenarios need, written before the server starts: a catalog the size of an AI
// platform's (through the API and the catalog's services, in process), customers with one API key
// and plenty of credit each (through the services the API calls, 250 customers per transaction:
// over HTTP, one commit per request, 10,000 customers took minutes), and millions of stored usage
// events straight into the metering tables with generate_series.
import type { PriceCreate } from '../src/catalog/schemas.js';
import type { App } from '../src/main.js';
import type { Db } from '../src/platform/db.js';

export interface Seeded {
  productId: string;
  customers: Array<{ id: string; keyId: string; key: string }>;
}

/** The customers as the ingest scenario names them (no key secrets: events carry the key's id). */
export function ingestCustomers(seeded: Pick<Seeded, 'customers'>): Array<{ id: string; keyId: string }> {
  return seeded.customers.map(({ id, keyId }) => ({ id, keyId }));
}

const CUSTOMERS_PER_TRANSACTION = 250;
const CREDIT_USD = '1000000';

async function post(app: App, token: string, url: string, payload: object): Promise<any> {
  const res = await app.http.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload });
  if (res.statusCode !== 201) throw new Error(`seed ${url}: ${res.statusCode} ${res.body}`);
  return res.json();
}

export async function seedCustomers(app: App, token: string, count: number, otherModels = OTHER_MODELS): Promise<Seeded> {
  await post(app, token, '/v1/meters', { key: 'megapixels', name: 'Megapixels', unit: 'megapixel' });
  const product = await post(app, token, '/v1/products', { key: 'fal-ai/flux/dev', name: 'FLUX dev' });
  // Its price history; the scenarios' events are rated at the last version, 0.025 USD a megapixel.
  for (const [unitAmount, from] of [['0.04', '2019-01-01'], ['0.03', '2019-06-01'], ['0.025', '2020-01-01']] as const) {
    await post(app, token, '/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: unitAmount, effective_at: `${from}T00:00:00Z` });
  }
  await seedOtherModels(app, otherModels);
  const { accounts, credit } = app.services;
  const customers: Seeded['customers'] = [];
  for (let from = 0; from < count; from += CUSTOMERS_PER_TRANSACTION) {
    const batch = await app.db.transaction(async (tx) => {
      const made: Seeded['customers'] = [];
      for (let n = from; n < Math.min(count, from + CUSTOMERS_PER_TRANSACTION); n++) {
        const customer = await accounts.createCustomer(tx, { name: `Bench ${n}`, external_id: `bench-${n}`, currency: 'USD' });
        const key = await accounts.createKey(tx, customer.id, { name: 'bench' });
        made.push({ id: customer.id, keyId: key.id, key: key.secret });
      }
      return made;
    });
    // Concurrent grants are committed together by the ledger's batcher.
    await Promise.all(batch.map((c) => credit.grant(c.id, { amount: CREDIT_USD, category: 'purchased' })));
    customers.push(...batch);
  }
  await seedOverrides(app, customers, otherModels);
  return { productId: product.id, customers };
}

/**
 * The rest of a platform's catalog, which the scenarios never call but every lookup of a price
 * shares a snapshot with: by default OTHER_MODELS endpoints (a quick run seeds fewer), each priced
 * on one or two of the platform's meters (per unit, tiered for tokens) in two currencies, with
 * three versions of each price.
 */
const OTHER_MODELS = 300;
const OTHER_METERS = [
  { key: 'images', unit: 'image' },
  { key: 'video_seconds', unit: 'second' },
  { key: 'gpu_seconds', unit: 'second' },
  { key: 'input_tokens', unit: 'token' },
  { key: 'output_tokens', unit: 'token' },
] as const;
const PRICE_VERSIONS = ['2024-01-01', '2025-01-01', '2026-01-01'];
/** One customer in OVERRIDE_EVERY has a negotiated price on another model. */
const OVERRIDE_EVERY = 20;

async function seedOtherModels(app: App, count: number): Promise<void> {
  const { catalog } = app.services;
  await app.db.transaction(async (tx) => {
    for (const meter of OTHER_METERS) await catalog.createMeter(tx, { key: meter.key, name: meter.key, unit: meter.unit });
    for (let n = 0; n < count; n++) {
      const product = otherModel(n);
      await catalog.createProduct(tx, { key: product, name: `Model ${n}` });
      for (const meter of metersOf(n)) {
        for (const currency of ['USD', 'EUR']) {
          for (const [v, from] of PRICE_VERSIONS.entries()) {
            await catalog.createPrice(tx, { product, meter: meter.key, currency, effective_at: `${from}T00:00:00Z`, ...terms(meter.unit, 3 - v) });
          }
        }
      }
    }
  });
}

async function seedOverrides(app: App, customers: Seeded['customers'], models: number): Promise<void> {
  const { catalog } = app.services;
  await app.db.transaction(async (tx) => {
    for (let n = 0; n < customers.length; n += OVERRIDE_EVERY) {
      const model = (n / OVERRIDE_EVERY) % models;
      const [meter] = metersOf(model);
      await catalog.createPrice(tx, { product: otherModel(model), meter: meter.key, currency: 'USD', customer: customers[n]!.id, effective_at: '2026-01-01T00:00:00Z', ...terms(meter.unit, 1) });
    }
  });
}

const otherModel = (n: number) => `bench/model-${n}`;

/** The meters model `n` is priced on: one, or for every other model two. */
function metersOf(n: number): Array<(typeof OTHER_METERS)[number]> {
  const first = OTHER_METERS[n % OTHER_METERS.length]!;
  return n % 2 === 0 ? [first] : [first, OTHER_METERS[(n + 1) % OTHER_METERS.length]!];
}

/** A price's terms; `scale` makes older versions dearer. */
function terms(unit: string, scale: number): Pick<PriceCreate, 'scheme' | 'unit_amount' | 'tiers'> {
  if (unit === 'token') {
    return { scheme: 'graduated', tiers: [{ up_to: '1000000', unit_amount: `0.00000${scale + 1}` }, { up_to: null, unit_amount: `0.00000${scale}` }] };
  }
  return { scheme: 'per_unit', unit_amount: `0.0${scale}` };
}

const HOUR_MS = 3_600_000;
const SEED_CHUNK = 1_000_000;
/** 1.5 megapixels at 0.025 USD, in ledger units (scale 9). */
const EVENT_CHARGE = 37_500_000n;

/**
 * `count` charged events spread evenly over the `days` whole UTC hours before the current hour
 * (the scenarios' live events are in the current hour, so the rollup rows never collide) and
 * over every customer, then their hourly rollups computed from them, as ingestion maintains them,
 * and stored hour after hour as ingestion stores them (in GROUP BY's order instead, one day's
 * rollups were spread over every page of the table, which a day's report then had to read).
 * Returns the hour the seeded range ends at.
 */
export async function seedStoredEvents(db: Db, seeded: Seeded, count: number, days: number): Promise<Date> {
  const end = await withoutIndexes(db, 'usage_events', () => insertStoredEvents(db, seeded, count, days));
  await db.exec('ANALYZE');
  const [counted] = await db.query<{ events: string }>(`SELECT coalesce(sum(event_count), 0)::text AS events FROM usage_rollups WHERE bucket_start < $1`, [end]);
  if (Number(counted!.events) !== count) throw new Error(`seeded ${count} events but the rollups count ${counted!.events}`);
  return end;
}

/**
 * Runs a bulk load with the table's keys and indexes dropped, then builds them again from their
 * own definitions (one sort each instead of ten million B-tree inserts; the same schema after).
 */
async function withoutIndexes<T>(db: Db, table: string, load: () => Promise<T>): Promise<T> {
  const constraints = await db.query<{ name: string; def: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u')`, [table]);
  for (const c of constraints) await db.exec(`ALTER TABLE ${table} DROP CONSTRAINT ${c.name}`);
  const indexes = await db.query<{ name: string; def: string }>(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = $1 AND schemaname = current_schema()`, [table]);
  for (const i of indexes) await db.exec(`DROP INDEX ${i.name}`);
  const result = await load();
  for (const c of constraints) await db.exec(`ALTER TABLE ${table} ADD CONSTRAINT ${c.name} ${c.def}`);
  for (const i of indexes) await db.exec(i.def);
  return result;
}

async function insertStoredEvents(db: Db, seeded: Seeded, count: number, days: number): Promise<Date> {
  const end = new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS);
  const spanSeconds = days * 24 * 3600;
  // A numbered table of customers to join on (subscripting a 10,000-element array parameter
  // walks the array on every row).
  await db.exec('DROP TABLE IF EXISTS bench_seed_customers; CREATE TABLE bench_seed_customers (n integer PRIMARY KEY, customer_id text NOT NULL, api_key_id text NOT NULL)');
  await db.query('INSERT INTO bench_seed_customers SELECT n - 1, c, k FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, k, n)', [
    seeded.customers.map((c) => c.id),
    seeded.customers.map((c) => c.keyId),
  ]);
  for (let from = 0; from < count; from += SEED_CHUNK) {
    await db.query(
      `INSERT INTO usage_events (id, source, event_id, type, time, received_at, customer_id, product_id, api_key_id, currency, quantities, status, amount, charged)
       SELECT 'evt_' || lpad(to_hex(g), 26, '0'), 'bench-seed', g::text, 'usage', t, t, c.customer_id, $4, c.api_key_id, 'USD',
              '{"megapixels": "1.5"}', 'charged', $5, $5
       FROM generate_series($1::bigint, $2::bigint) AS g
       JOIN bench_seed_customers c ON c.n = g % $6,
       LATERAL (SELECT $3::timestamptz - make_interval(secs => 1 + (g * 7919) % ${spanSeconds})) AS at(t)`,
      [from, Math.min(count, from + SEED_CHUNK) - 1, end, seeded.productId, String(EVENT_CHARGE), seeded.customers.length],
    );
  }
  await db.exec('DROP TABLE bench_seed_customers');
  await db.query(
    `INSERT INTO usage_rollups (customer_id, product_id, api_key_id, meter_key, bucket_start, currency, quantity_sum, quantity_max, event_count, charged)
     SELECT customer_id, product_id, coalesce(api_key_id, ''), 'megapixels', date_trunc('hour', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', currency,
            sum((quantities->>'megapixels')::numeric), max((quantities->>'megapixels')::numeric), count(*), sum(charged)
     FROM usage_events WHERE source = 'bench-seed' GROUP BY 1, 2, 3, 5, 6 ORDER BY 5`,
  );
  return end;
}
