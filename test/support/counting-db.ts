import type { Db, Queryable } from '../../src/platform/db.js';

/** A Db that counts its round trips: every statement, and a transaction's BEGIN and COMMIT. */
export interface CountingDb extends Db {
  readonly roundTrips: number;
  /** Round trips of each committed or rolled back transaction so far, BEGIN and COMMIT included, oldest first. */
  readonly transactions: readonly number[];
}

export function countingDb(db: Db): CountingDb {
  let roundTrips = 0;
  const transactions: number[] = [];
  const counted = (q: Queryable, also?: { count: number }): Queryable['query'] => (sql, params) => {
    roundTrips++;
    if (also) also.count++;
    return q.query(sql, params);
  };
  return {
    kind: db.kind,
    get roundTrips() {
      return roundTrips;
    },
    transactions,
    query: counted(db),
    transaction: async (fn) => {
      roundTrips += 2;
      const own = { count: 2 };
      try {
        return await db.transaction((tx) => fn({ query: counted(tx, own) }));
      } finally {
        transactions.push(own.count);
      }
    },
    exec: (sql) => {
      roundTrips++;
      return db.exec(sql);
    },
    close: () => db.close(),
    ...(db.poolUse ? { poolUse: () => db.poolUse!() } : {}),
  };
}
