import type { Db, Queryable } from '../../src/platform/db.js';

/** A Db that counts its round trips: every statement, and a transaction's BEGIN and COMMIT. */
export interface CountingDb extends Db {
  readonly roundTrips: number;
}

export function countingDb(db: Db): CountingDb {
  let roundTrips = 0;
  const counted = (q: Queryable): Queryable['query'] => (sql, params) => {
    roundTrips++;
    return q.query(sql, params);
  };
  return {
    kind: db.kind,
    get roundTrips() {
      return roundTrips;
    },
    query: counted(db),
    transaction: (fn) => {
      roundTrips += 2;
      return db.transaction((tx) => fn({ query: counted(tx) }));
    },
    exec: (sql) => {
      roundTrips++;
      return db.exec(sql);
    },
    close: () => db.close(),
    ...(db.poolUse ? { poolUse: () => db.poolUse!() } : {}),
  };
}
