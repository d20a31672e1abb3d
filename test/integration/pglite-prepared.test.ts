import { PGlite, protocol } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PglitePreparedStatements } from '../../src/platform/pglite-prepared.js';
import { testEngine } from '../support/test-db.js';

/** The named statements PGlite runs the hot paths with (src/platform/pglite-prepared.ts), on an engine of their own. */
describe.runIf(testEngine === 'pglite')('PGlite prepared statements', () => {
  let db: PGlite;
  beforeAll(async () => {
    // As Tollgate opens it (src/platform/db.ts): int8 as text, so the instance's own parsers must be the ones used.
    db = await PGlite.create({ parsers: { 20: (value: string) => value } });
  });
  afterAll(() => db?.close());

  it('binds values by their parameter types and answers rows, from the first run and the next ones', async () => {
    const prepared = new PglitePreparedStatements(db);
    const sql = 'SELECT $1::int8 AS n, $2::text[] AS tags, $3::jsonb AS doc';
    for (const n of [1, 2]) {
      expect(await prepared.run('probe', sql, [String(n), ['a', 'b'], JSON.stringify({ n })])).toEqual([{ n: String(n), tags: ['a', 'b'], doc: { n } }]);
    }
  });

  it('prepares a statement whose name the engine already holds from an earlier, unremembered parse', async () => {
    // As after a parse whose describe failed: the engine has the name, this instance does not know it.
    await db.execProtocol(protocol.serialize.parse({ name: 'leftover', text: 'SELECT 0 AS v' }));
    await db.execProtocol(protocol.serialize.sync());
    expect(await new PglitePreparedStatements(db).run('leftover', 'SELECT $1::int AS v', [7])).toEqual([{ v: 7 }]);
  });

  it('leaves the engine usable after a statement fails, and forgets nothing it should keep', async () => {
    const prepared = new PglitePreparedStatements(db);
    await expect(prepared.run('fails', 'SELECT 1 / $1::int AS v', [0])).rejects.toThrow(/division by zero/);
    expect(await prepared.run('fails', 'SELECT 1 / $1::int AS v', [1])).toEqual([{ v: 1 }]);
    expect((await db.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });
});
