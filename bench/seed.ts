// What the scenarios need, written before the server starts: a catalog (through the API, in
// process), customers with one API key and plenty of credit each (through the services the API
// calls, 250 customers per transaction: over HTTP, one commit per request, 10,000 customers took
// minutes), and millions of stored usage events straight into the metering tables with
// generate_series.
import type { App } from '../src/main.js';
import type { Db } from '../src/platform/db.js';

export interface Seeded {
  productId: string;
  customers: Array<{ id: string; keyId: string; key: string }>;
}

const CUSTOMERS_PER_TRANSACTION = 250;
const CREDIT_USD = '1000000';

async function post(app: App, token: string, url: string, payload: object): Promise<any> {
  const res = await app.http.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload });
  if (res.statusCode !== 201) throw new Error(`seed ${url}: ${res.statusCode} ${res.body}`);
  return res.json();
}

export async function seedCustomers(app: App, token: string, count: number): Promise<Seeded> {
  await post(app, token, '/v1/meters', { key: 'megapixels', name: 'Megapixels', unit: 'megapixel' });
  const product = await post(app, token, '/v1/products', { key: 'fal-ai/flux/dev', name: 'FLUX dev' });
  await post(app, token, '/v1/prices', { product: 'fal-ai/flux/dev', meter: 'megapixels', currency: 'USD', scheme: 'per_unit', unit_amount: '0.025', effective_at: '2020-01-01T00:00:00Z' });
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
  return { productId: product.id, customers };
}

const HOUR_MS = 3_600_000;
const SEED_CHUNK = 1_000_000;
/** 1.5 megapixels at 0.025 USD, in ledger units (scale 9). */
const EVENT_CHARGE = 37_500_000n;

/**
 * `count` charged events spread evenly over the `days` whole UTC hours before the current hour
 * (the scenarios' live events are in the current hour, so the rollup rows never collide) and
 * over every customer, then their hourly rollups computed from them, as ingestion maintains them.
 * Returns the hour the seeded range ends at.
 */
export async function seedStoredEvents(db: Db, seeded: Seeded, count: number, days: number): Promise<Date> {
  const end = new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS);
  const spanSeconds = days * 24 * 3600;
  const customerIds = seeded.customers.map((c) => c.id);
  const keyIds = seeded.customers.map((c) => c.keyId);
  for (let from = 0; from < count; from += SEED_CHUNK) {
    await db.query(
      `INSERT INTO usage_events (id, source, event_id, type, time, received_at, customer_id, product_id, api_key_id, currency, quantities, status, amount, charged)
       SELECT 'evt_' || lpad(to_hex(g), 26, '0'), 'bench-seed', g::text, 'usage', t, t, ($4::text[])[1 + g % $5], $6, ($7::text[])[1 + g % $5], 'USD',
              '{"megapixels": "1.5"}', 'charged', $8, $8
       FROM generate_series($1::bigint, $2::bigint) AS g,
            LATERAL (SELECT $3::timestamptz - make_interval(secs => 1 + (g * 7919) % ${spanSeconds})) AS at(t)`,
      [from, Math.min(count, from + SEED_CHUNK) - 1, end, customerIds, customerIds.length, seeded.productId, keyIds, String(EVENT_CHARGE)],
    );
  }
  await db.query(
    `INSERT INTO usage_rollups (customer_id, product_id, api_key_id, meter_key, bucket_start, currency, quantity_sum, quantity_max, event_count, charged)
     SELECT customer_id, product_id, coalesce(api_key_id, ''), 'megapixels', date_trunc('hour', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', currency,
            sum((quantities->>'megapixels')::numeric), max((quantities->>'megapixels')::numeric), count(*), sum(charged)
     FROM usage_events WHERE source = 'bench-seed' GROUP BY 1, 2, 3, 5, 6`,
  );
  await db.query('ANALYZE');
  return end;
}
