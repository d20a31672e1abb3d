// The PostgreSQL server the bench creates its databases on, and how it reaches them.
import pg from 'pg';

/** `TOLLGATE_BENCH_PG_URL`: a database on the server to connect to for CREATE and DROP DATABASE. */
export const pgAdminUrl = process.env.TOLLGATE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `name` on the same server. */
export function databaseUrl(name: string): string {
  const url = new URL(pgAdminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** `fn` with a connection of its own to the admin database, closed after it. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgAdminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
