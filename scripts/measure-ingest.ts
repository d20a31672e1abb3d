// A rough end-to-end ingestion rate (not the benchmark, which is issue 6): one in-process Tollgate,
// 100,000 usage events over HTTP in batches of 1,000 from 4 concurrent clients.
//   npx tsx scripts/measure-ingest.ts                      # embedded PGlite (in memory)
//   npx tsx scripts/measure-ingest.ts postgres://...       # an empty PostgreSQL database
import { buildApp } from '../src/main.js';
import { loadConfig } from '../src/platform/config.js';
import { openDb } from '../src/platform/db.js';
import { seedCatalog } from '../test/support/fixtures.js';
import { apiClient } from '../test/support/harness.js';

const url = process.argv[2];
const db = await openDb(url ? { databaseUrl: url, poolSize: 8 } : {});
const config = { ...loadConfig({ LOG_LEVEL: 'silent' }), adminToken: 'bench-admin-token-0123456789', port: 0 };
const app = await buildApp(config, { db, backgroundJobs: false });
const base = await app.http.listen({ host: '127.0.0.1', port: 0 });
const api = apiClient(base, 'bench-admin-token-0123456789');
await seedCatalog(api);
const customers: string[] = [];
for (let i = 0; i < 20; i++) {
  const c = await api.post('/v1/customers', { name: 'b', external_id: `b-${i}-${Date.now()}`, currency: 'USD' });
  await api.post(`/v1/customers/${c.body.id}/credit_grants`, { amount: '1000000', category: 'purchased' });
  customers.push(c.body.id);
}
const N = 100_000, B = 1000, C = 4;
const batches = Array.from({ length: N / B }, (_, b) => Array.from({ length: B }, (_, i) => ({ specversion: '1.0', id: `e-${b}-${i}`, source: 'bench', type: 'usage', subject: customers[(b * B + i) % customers.length], data: { product: 'fal-ai/flux/dev', megapixels: '1.5' } })));
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: C }, async () => { while (next < batches.length) { const b = batches[next++]!; const r = await api.post('/v1/events', b); if (r.status !== 200) throw new Error(String(r.status)); } }));
const s = (performance.now() - t0) / 1000;
console.log(`${url ? 'postgres' : 'pglite'}: ${N} events in ${s.toFixed(1)} s = ${Math.round(N / s)} events/s (batches of ${B}, ${C} concurrent clients, HTTP, one process)`);
await app.close(); await db.close();
