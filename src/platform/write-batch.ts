import type { Queryable, Statement } from './db.js';

const WRITE = /^\s*(INSERT|UPDATE|DELETE)\b/i;
const RETURNING = /\bRETURNING\b/i;

/**
 * Collects writes to send later together with others (Tx.commitWith: one round trip, with the
 * COMMIT). It is a Queryable so the same store functions write either now or here; a write answers
 * no rows, so anything that reads (a SELECT, RETURNING) is refused rather than answered wrongly.
 * The writes must be independent: none may touch a row another one touches or need to see another's
 * rows, since they may run as one statement sharing one snapshot (see statements()).
 */
export class WriteBatch implements Queryable {
  private readonly collected: Statement[] = [];

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (!WRITE.test(sql) || RETURNING.test(sql)) throw new Error(`a write batch takes writes that return nothing, not: ${sql.slice(0, 80)}`);
    this.collected.push({ sql, params });
    return [];
  }

  /**
   * The collected writes, for `kind` of database. On PostgreSQL, each its own statement: each text
   * stays the same from batch to batch, so the connection keeps one plan for it (db.ts, PostgresTx).
   * On PGlite, which plans every statement anyway and costs a call into the engine per statement,
   * one statement: a WITH of data-modifying parts (foreign keys are checked at its end, so a row
   * may refer to one inserted beside it).
   */
  statements(kind: 'postgres' | 'pglite'): Statement[] {
    if (kind === 'postgres' || this.collected.length <= 1) return [...this.collected];
    const params: unknown[] = [];
    const parts = this.collected.map(({ sql, params: own = [] }, i) => {
      const offset = params.length;
      params.push(...own);
      // Each write numbers its parameters from $1; in the one statement they follow the ones before.
      return `w${i} AS (${sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)})`;
    });
    return [{ sql: `WITH ${parts.join(',\n')}\nSELECT 1`, params }];
  }
}
