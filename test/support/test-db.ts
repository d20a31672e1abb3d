import pg from 'pg';

/** Which engine the integration suite runs on: `TOLLGATE_TEST_DB=pglite|postgres` (scripts/test.mjs runs both). */
export const testEngine = (process.env.TOLLGATE_TEST_DB ?? 'pglite') as 'pglite' | 'postgres';

/** The PostgreSQL server used by the postgres run (trust auth on the test machine). */
export const adminUrl = process.env.TOLLGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
