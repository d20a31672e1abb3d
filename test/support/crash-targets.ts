import { join } from 'node:path';
import { openDb, type Db } from '../../src/platform/db.js';
import { ADMIN_TOKEN, apiClient, createTestDatabase, type TestDatabase } from './harness.js';
import { tollgate } from './processes.js';
import { testEngine } from './test-db.js';
import { testDir } from './temp-dir.js';

/** A database for `tollgate` processes that a test kills and restarts: PostgreSQL or a PGlite data directory. */
export interface Target {
  env: Record<string, string>;
  /** Opens the database once the server is gone (PGlite allows one process at a time). */
  open(): Promise<Db>;
  cleanup(): Promise<void>;
}

export async function target(): Promise<Target> {
  if (testEngine === 'postgres') {
    const database: TestDatabase = await createTestDatabase();
    return { env: { DATABASE_URL: database.url! }, open: async () => database.db, cleanup: () => database.drop() };
  }
  const dataDir = join(testDir('tollgate-crash-'), 'data');
  return { env: { TOLLGATE_DATA_DIR: dataDir }, open: () => openDb({ dataDir }), cleanup: async () => {} };
}

/** Starts `tollgate serve` on `port` and waits until it is ready. */
export async function startServe(env: Record<string, string>, port: number) {
  const run = tollgate(['serve'], { ...env, TOLLGATE_PORT: String(port), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN });
  const api = apiClient(`http://127.0.0.1:${port}`);
  for (const started = Date.now(); Date.now() - started < 60_000; await sleep(50)) {
    if (run.child.exitCode !== null) throw new Error(`serve exited: ${run.output()}`);
    const ready = await api.get('/readyz', { token: null }).catch(() => null);
    if (ready?.status === 200) return run;
  }
  throw new Error(`serve did not become ready: ${run.output()}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
