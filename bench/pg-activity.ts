// npx tsx bench/pg-activity.ts [seconds]   (run it next to `npm run bench -- --engine=postgres`)
// Samples what the bench database's connections are doing every 20 ms: running (CPU), waiting on
// a lock, on the WAL, or idle in a transaction (waiting for the server's next statement), with the
// statement; prints the counts, largest first. Shows whether a figure is limited by the database's
// work, by lock waits between batches, or by the server's round trips.
import pg from 'pg';
import { pgAdminUrl } from './postgres-admin.js';

const seconds = Number(process.argv[2] ?? 60);
const client = new pg.Client({ connectionString: pgAdminUrl });
await client.connect();
const counts = new Map<string, number>();
for (const end = Date.now() + seconds * 1000; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 20))) {
  const { rows } = await client.query(
    `SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, left(regexp_replace(query, '\\s+', ' ', 'g'), 50) AS query
     FROM pg_stat_activity WHERE datname LIKE 'tollgate_bench_%' AND pid <> pg_backend_pid() AND state <> 'idle'`,
  );
  for (const r of rows) {
    const key = `${r.state} | ${r.wait}${r.state === 'active' ? ` | ${r.query}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}
await client.end();
for (const [key, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`${String(n).padStart(6)}  ${key}\n`);
