import type { Db, Statement, Tx } from '../../src/platform/db.js';

/**
 * A Db that counts its round trips as PostgreSQL's driver makes them: every statement sent alone,
 * one per queryEach or commitWith, and a transaction's BEGIN and COMMIT unless they travel with a
 * queryEach or commitWith (src/platform/db.ts, PostgresTx).
 */
export interface CountingDb extends Db {
  readonly roundTrips: number;
  /** Statements sent so far, however they travelled (BEGIN and COMMIT not counted). */
  readonly statements: number;
  /** Round trips of each committed or rolled back transaction so far, BEGIN and COMMIT included, oldest first. */
  readonly transactions: readonly number[];
}

export function countingDb(db: Db): CountingDb {
  let roundTrips = 0;
  let statements = 0;
  const transactions: number[] = [];
  const count = (n: number, own?: { count: number }) => {
    roundTrips += n;
    if (own) own.count += n;
  };
  return {
    kind: db.kind,
    get roundTrips() {
      return roundTrips;
    },
    get statements() {
      return statements;
    },
    transactions,
    query: (sql, params) => {
      count(1);
      statements++;
      return db.query(sql, params);
    },
    transaction: async (fn) => {
      const own = { count: 0 };
      let begun = false;
      let committed = false;
      const sent = (alone: boolean, statementCount: number) => {
        count(alone && !begun ? 2 : 1, own);
        statements += statementCount;
        begun = true;
      };
      try {
        return await db.transaction((tx) => {
          const counted: Tx = {
            query: (sql, params) => (sent(true, 1), tx.query(sql, params)),
            queryEach: (list: Statement[]) => (sent(false, list.length), tx.queryEach(list)),
            commitWith: (list: Statement[]) => (sent(false, list.length), (committed = true), tx.commitWith(list)),
          };
          return fn(counted);
        });
      } finally {
        if (begun && !committed) count(1, own);
        transactions.push(own.count);
      }
    },
    exec: (sql) => {
      count(1);
      return db.exec(sql);
    },
    close: () => db.close(),
    ...(db.poolUse ? { poolUse: () => db.poolUse!() } : {}),
  };
}
