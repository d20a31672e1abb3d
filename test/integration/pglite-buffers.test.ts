import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config.js';
import { openConfiguredDb, type Db } from '../../src/platform/db.js';
import { testEngine } from '../support/test-db.js';

/**
 * The embedded database's buffer cache lives in its WebAssembly memory, which never shrinks, so
 * Tollgate starts PGlite with a smaller one than PostgreSQL's default (src/platform/db.ts).
 */
describe.skipIf(testEngine !== 'pglite')('the embedded database (PGlite) buffer cache', () => {
  // Made in beforeAll, not here: a skipped suite's hooks do not run, and its directory would be left behind.
  let dataDir: string;
  beforeAll(() => void (dataDir = mkdtempSync(join(tmpdir(), 'tollgate-pglite-buffers-'))));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const sharedBuffers = async (db: Db) => (await db.query<{ shared_buffers: string }>('SHOW shared_buffers'))[0]!.shared_buffers;

  it('is 32 MB by default and TOLLGATE_PGLITE_SHARED_BUFFERS_MB sets it, for the same data directory', async () => {
    const first = await openConfiguredDb(loadConfig({ TOLLGATE_DATA_DIR: dataDir }));
    try {
      expect(await sharedBuffers(first)).toBe('32MB');
      await first.exec('CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);');
    } finally {
      await first.close();
    }
    const second = await openConfiguredDb(loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_PGLITE_SHARED_BUFFERS_MB: '8' }));
    try {
      expect(await sharedBuffers(second)).toBe('8MB');
      expect(await second.query('SELECT v FROM kept')).toEqual([{ v: 7 }]);
    } finally {
      await second.close();
    }
  });
});
