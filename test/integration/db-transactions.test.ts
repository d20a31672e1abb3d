import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrayLiteral, columns } from '../../src/platform/columns.js';
import { openDb, type Db, type Tx } from '../../src/platform/db.js';
import { createTestDatabase, type TestDatabase } from '../support/harness.js';
import { testEngine } from '../support/test-db.js';

/**
 * The transaction calls the hot paths use to save round trips and planning (Tx.queryEach,
 * Tx.commitWith): on PostgreSQL they pipeline their statements as named prepared statements,
 * planned once per connection (src/platform/db.ts, PostgresTx), and PGlite runs them as named
 * prepared statements too (src/platform/pglite-prepared.ts), so they must carry exactly what a
 * plain query carries, keep their transaction's guarantees, and keep plans that stay right as the
 * tables grow.
 */
let database: TestDatabase;
let db: Db;

const TABLES = `CREATE TABLE tx_probe (id int PRIMARY KEY, v int NOT NULL);
  CREATE TABLE tx_seen (id int PRIMARY KEY);
  CREATE TABLE tx_grows (id text PRIMARY KEY, v int NOT NULL);
  INSERT INTO tx_probe VALUES (1, 0);`;

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  await db.exec(TABLES);
});

/**
 * The test database again through a Db of its own with one connection and a replan schedule by the
 * test's clock. PGlite's in-memory database cannot be opened twice: there it is a new one with the
 * same tables.
 */
async function openWithSchedule(replanAfterMs: number[], nowMs: () => number): Promise<Db> {
  if (database.url) return openDb({ databaseUrl: database.url, poolSize: 1, replanAfterMs, nowMs });
  const own = await openDb({ replanAfterMs, nowMs });
  await own.exec(TABLES);
  return own;
}
afterAll(async () => {
  await database?.drop();
});

const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);

describe('values sent together', () => {
  const SQL = `SELECT $1::text AS text, $2::text[] AS texts, $3::int8 AS big, $4::timestamptz AS at, $5::jsonb AS doc,
    $6::bool AS flag, $7::bytea AS bytes, $8::text AS none, $9::int8[] AS bigs`;
  // PostgreSQL text cannot hold NUL; every other character, quotes and backslashes included, must survive.
  const text = fc.string({ unit: 'binary' }).map((s) => s.replaceAll('\u0000', ''));

  it('read back exactly as the same values sent in a query of their own', async () => {
    await fc.assert(
      fc.asyncProperty(
        text,
        fc.array(fc.option(text, { nil: null }), { maxLength: 5 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean())),
        fc.boolean(),
        fc.uint8Array({ maxLength: 16 }),
        fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 4 }),
        async (t, texts, big, at, doc, flag, bytes, bigs) => {
          const params = [t, texts, big, at, doc, flag, Buffer.from(bytes), null, bigs];
          const [alone] = await db.query(SQL, params);
          const [[together]] = await db.transaction(async (tx) => {
            const rows = await tx.queryEach([{ sql: SQL, params }, { sql: 'SELECT 1' }]);
            await tx.commitWith([]);
            return rows;
          });
          expect(together).toEqual(alone);
          expect(together!.text).toBe(t);
          expect(together!.texts).toEqual(texts);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('column arrays (columns(), the batched writes)', () => {
  // The element kinds the stores send, with strings that need every kind of quoting and would-be NULLs.
  const text = fc.oneof(
    fc.string({ unit: 'binary' }).map((s) => s.replaceAll('\u0000', '')),
    fc.constantFrom('', 'NULL', 'null', 'a,b', '{x}', '"', '\\', ' padded ', 'cus_01m954ysrxehvjpchxjc4nschp', '2026-12-06T07:45:47.690Z'),
  );
  const nullable = <T>(arb: fc.Arbitrary<T>) => fc.array(fc.option(arb, { nil: null }), { maxLength: 6 });

  it("read back exactly as the driver's own arrays of the same values (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        nullable(text),
        nullable(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
        // Times that repeat, as a batch's do (each a Date of its own), beside any time at all.
        nullable(fc.oneof(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), fc.integer({ min: 0, max: 2 }).map((ms) => new Date(Date.UTC(2026, 11, 7) + ms)))),
        nullable(fc.boolean()),
        nullable(fc.integer()),
        nullable(fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean()))),
        async (texts, bigs, dates, flags, ints, docs) => {
          const SQL = 'SELECT $1::text[] AS texts, $2::int8[] AS bigs, $3::timestamptz[] AS dates, $4::bool[] AS flags, $5::int[] AS ints, $6::jsonb[] AS docs';
          const driver = [texts, bigs.map((b) => (b === null ? null : b.toString())), dates, flags, ints, docs];
          const ours = [arrayLiteral(texts), arrayLiteral(bigs), arrayLiteral(dates), arrayLiteral(flags), arrayLiteral(ints), arrayLiteral(docs)];
          const [expected] = await db.query(SQL, driver);
          const [actual] = await db.query(SQL, ours);
          expect(actual).toEqual(expected);
          expect(actual!.texts).toEqual(texts);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("columns() makes one such array per column, in the items' order", async () => {
    const rows = [{ id: 'a"1', n: 5n, at: new Date('2026-01-02T03:04:05.678Z') }, { id: 'NULL', n: -1n, at: null }];
    const [row] = await db.query('SELECT $1::text[] AS ids, $2::int8[] AS ns, $3::timestamptz[] AS ats', columns(rows, [(r) => r.id, (r) => r.n, (r) => r.at]));
    expect(row).toEqual({ ids: ['a"1', 'NULL'], ns: ['5', '-1'], ats: [new Date('2026-01-02T03:04:05.678Z'), null] });
  });
});

describe('statements sent together in a transaction', () => {
  it('queryEach answers each statement its own rows, in order', async () => {
    const rows = await db.transaction((tx) => tx.queryEach([{ sql: 'SELECT 1 AS a' }, { sql: 'SELECT $1::text AS b UNION ALL SELECT $2', params: ['x', 'y'] }]));
    expect(rows).toEqual([[{ a: 1 }], [{ b: 'x' }, { b: 'y' }]]);
  });

  it('commitWith commits its writes with those sent before it', async () => {
    await db.transaction(async (tx) => {
      await tx.queryEach([{ sql: 'INSERT INTO tx_seen VALUES ($1)', params: [10] }]);
      await tx.commitWith([{ sql: 'INSERT INTO tx_seen VALUES ($1)', params: [11] }]);
    });
    expect(await db.query('SELECT id FROM tx_seen WHERE id IN (10, 11) ORDER BY id')).toEqual([{ id: 10 }, { id: 11 }]);
  });

  it('a failing statement in commitWith commits nothing of the transaction, and the pool goes on working', async () => {
    const before = await count('tx_seen');
    await expect(
      db.transaction(async (tx) => {
        await tx.queryEach([{ sql: 'INSERT INTO tx_seen VALUES ($1)', params: [20] }]);
        await tx.commitWith([{ sql: 'INSERT INTO tx_seen VALUES ($1)', params: [21] }, { sql: 'INSERT INTO tx_seen VALUES ($1)', params: [10] }]);
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await count('tx_seen')).toBe(before);
    // Every pooled connection is back outside any transaction.
    await Promise.all(Array.from({ length: 8 }, () => db.transaction((tx) => tx.commitWith([{ sql: 'SELECT 1' }]))));
    expect(await count('tx_seen')).toBe(before);
  });

  it('a failure after queryEach rolls back what it wrote', async () => {
    const before = await count('tx_seen');
    await expect(
      db.transaction(async (tx) => {
        await tx.queryEach([{ sql: 'INSERT INTO tx_seen VALUES ($1)', params: [30] }]);
        throw new Error('the rules refused');
      }),
    ).rejects.toThrow('the rules refused');
    expect(await count('tx_seen')).toBe(before);
  });

  // PGlite has one connection: no second transaction can hold the lock meanwhile.
  it.skipIf(testEngine !== 'postgres')('a statement after one that waited on a lock sees what the lock holder committed', async () => {
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.transaction(async (tx) => {
      await tx.query('UPDATE tx_probe SET v = v + 1 WHERE id = 1');
      await tx.query('INSERT INTO tx_seen VALUES (40)');
      locked();
      await holding;
    });
    await lockTaken;
    const waiter = db.transaction(async (tx) => {
      const [lockedRows, seen] = await tx.queryEach([
        { sql: 'SELECT v FROM tx_probe WHERE id = 1 FOR NO KEY UPDATE' },
        { sql: 'SELECT count(*)::int AS n FROM tx_seen WHERE id = 40' },
      ]);
      await tx.commitWith([]);
      return { v: lockedRows![0]!.v, seen: seen![0]!.n };
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await holder;
    // The second statement's snapshot was taken after the first got the lock: it sees the holder's insert.
    expect(await waiter).toEqual({ v: 1, seen: 1 });
  });
});

// Both engines keep the hot statements prepared per connection (PGlite has one).
describe('statements sent together are planned once per connection', () => {
  const preparedAs = (tx: Tx, sql: string) =>
    tx.queryEach([{ sql: 'SELECT name, generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE statement = $1', params: [sql] }]);
  /** One connection past its first plan generation (planned for its values each time): its plans are kept now. */
  let kept: Db;
  beforeAll(async () => {
    let now = 0;
    kept = await openWithSchedule([1_000, 3_600_000], () => now);
    await kept.transaction((tx) => tx.commitWith([{ sql: 'SELECT 1' }]));
    now = 1_000;
  });
  afterAll(async () => {
    await kept?.close();
  });

  it("plans a statement for its values during the connection's first generation, then runs the plan it keeps", async () => {
    let now = 0;
    const fresh = await openWithSchedule([1_000, 3_600_000], () => now);
    try {
      const LOOKUP = 'SELECT v FROM tx_probe WHERE id = ANY($1::int[])';
      const run = (times: number) =>
        fresh.transaction(async (tx) => {
          for (let i = 0; i < times; i++) expect(await tx.queryEach([{ sql: LOOKUP, params: [[1]] }])).toEqual([[{ v: expect.any(Number) }]]);
          const [stats] = await preparedAs(tx, LOOKUP);
          await tx.commitWith([]);
          return stats;
        });
      expect(await run(2)).toEqual([{ name: expect.stringMatching(/^tollgate_\d+_0$/), generic: 0, custom: 2 }]);
      now = 1_000;
      expect(await run(3)).toEqual([{ name: expect.stringMatching(/^tollgate_\d+_1$/), generic: 3, custom: 0 }]);
    } finally {
      await fresh.close();
    }
  });

  it('keeps looking rows up by key in a table that was nearly empty when the plan was made', async () => {
    const LOOKUP = 'SELECT v FROM tx_grows WHERE id = ANY($1::text[])';
    await kept.exec(`INSERT INTO tx_grows SELECT 'k' || g, g FROM generate_series(1, 5) g; ANALYZE tx_grows;`);
    const plan = await kept.transaction(async (tx) => {
      // Planned now, on a table of one page (a whole-table scan is the cheapest plan there), then the table grows.
      await tx.queryEach([{ sql: LOOKUP, params: [['k1']] }]);
      await tx.queryEach([{ sql: `INSERT INTO tx_grows SELECT 'g' || g, g FROM generate_series(1, 50000) g` }]);
      const [[statement]] = (await preparedAs(tx, LOOKUP)) as Array<Array<{ name: string; generic: number }>>;
      const [explained] = await tx.queryEach([{ sql: `EXPLAIN (FORMAT JSON) EXECUTE ${statement!.name}('{k1,g7}')` }]);
      const [rows] = await tx.queryEach([{ sql: LOOKUP, params: [['k1', 'g7']] }]);
      await tx.commitWith([]);
      return { plan: JSON.stringify(explained), rows, generic: statement!.generic };
    });
    expect(plan.generic).toBe(1);
    expect(plan.rows).toEqual(expect.arrayContaining([{ v: 1 }, { v: 7 }]));
    expect(plan.plan).toMatch(/Index (Only )?Scan/);
    expect(plan.plan).not.toMatch(/Seq Scan/);
  });
});

// Made again on a schedule (db.ts, REPLAN_AFTER_MS); here soon after, so a test can see it.
describe('a connection makes its kept plans again', () => {
  it('once their generation is due, from the tables as they are then: a plan made on an empty table gives way to one made on a full one', async () => {
    let now = 0;
    const soon = await openWithSchedule([300], () => now);
    try {
      await soon.exec(`CREATE TABLE tx_history (id text PRIMARY KEY, grp text NOT NULL, v int NOT NULL);
        CREATE INDEX tx_history_grp ON tx_history (grp, id); ANALYZE tx_history;
        INSERT INTO tx_history SELECT 'h' || g, 'one', g FROM generate_series(1, 5) g;`);
      const LOOKUP = 'SELECT v FROM tx_history WHERE id = ANY($1::text[]) AND grp = ANY($2::text[])';
      const planOf = (generationDue: boolean) =>
        soon.transaction(async (tx) => {
          const [rows] = await tx.queryEach([{ sql: LOOKUP, params: [['h2'], ['one']] }]);
          const [[statement]] = (await tx.queryEach([{ sql: 'SELECT name FROM pg_prepared_statements WHERE statement = $1', params: [LOOKUP] }])) as Array<Array<{ name: string }>>;
          const [explained] = await tx.queryEach([{ sql: `EXPLAIN (FORMAT JSON) EXECUTE ${statement!.name}('{h2}', '{one}')` }]);
          const [kept] = await tx.queryEach([{ sql: "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'tollgate\\_%' AND statement = $1", params: [LOOKUP] }]);
          await tx.commitWith([]);
          expect(rows, `rows when the generation was ${generationDue ? '' : 'not '}due`).toEqual([{ v: 2 }]);
          return { name: statement!.name, plan: JSON.stringify(explained), kept: kept![0]!.n };
        });
      const first = await planOf(false);
      await soon.exec(`INSERT INTO tx_history SELECT 'g' || g, 'one', g FROM generate_series(1, 50000) g`);
      const same = await planOf(false);
      expect(same.name).toBe(first.name);
      now += 300;
      const again = await planOf(true);
      expect(again.name).not.toBe(first.name);
      // The old generation's statements are gone from the connection; the new plan fetches the row by its key.
      expect(again.kept).toBe(1);
      expect(again.plan).toContain('tx_history_pkey');
    } finally {
      await soon.close();
    }
  });
});

// PGlite is in-process: its connection cannot be lost.
describe.skipIf(testEngine !== 'postgres')('a connection lost in the middle of a transaction', () => {
  it('fails the transaction, not the process, and the pool goes on with a new connection', async () => {
    const before = await count('tx_seen');
    await expect(
      db.transaction(async (tx) => {
        const [[{ pid }]] = (await tx.queryEach([{ sql: 'SELECT pg_backend_pid() AS pid' }, { sql: 'INSERT INTO tx_seen VALUES (60)' }])) as Array<Array<{ pid: number }>>;
        // Cut while the transaction waits between two round trips, as while a batch is computed.
        await db.query('SELECT pg_terminate_backend($1)', [pid]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        await tx.commitWith([{ sql: 'INSERT INTO tx_seen VALUES (61)' }]);
      }),
    ).rejects.toThrow();
    expect(await count('tx_seen')).toBe(before);
    // Every connection the pool hands out now works.
    await Promise.all(Array.from({ length: 8 }, () => db.transaction((tx) => tx.commitWith([{ sql: 'SELECT 1' }]))));
  });
});

describe.skipIf(testEngine !== 'postgres')('every pooled connection runs without JIT compilation', () => {
  it('answers SHOW jit with off on each connection, in plain queries and in transactions', async () => {
    const pooled = await openDb({ databaseUrl: database.url, poolSize: 3 });
    try {
      // Three transactions held open at once take three connections; a plain query after them reuses one.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const settings = Promise.all(
        [0, 1, 2].map(() =>
          pooled.transaction(async (tx) => {
            const [row] = await tx.query<{ jit: string; pid: number }>('SELECT current_setting($1) AS jit, pg_backend_pid() AS pid', ['jit']);
            await held;
            return row!;
          }),
        ),
      );
      setTimeout(release, 50);
      const rows = await settings;
      expect(new Set(rows.map((r) => r.pid)).size).toBe(3);
      expect(rows.map((r) => r.jit)).toEqual(['off', 'off', 'off']);
      expect(await pooled.query('SELECT current_setting($1) AS jit', ['jit'])).toEqual([{ jit: 'off' }]);
    } finally {
      await pooled.close();
    }
  });
});
