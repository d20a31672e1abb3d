import type { Queryable, Statement } from './db.js';

const WRITE = /^\s*(INSERT|UPDATE|DELETE)\b/i;
const RETURNING = /\bRETURNING\b/i;

/**
 * Collects writes to send later together with others (Tx.commitWith: one round trip, with the
 * COMMIT). It is a Queryable so the same store functions write either now or here; a write answers
 * no rows, so anything that reads (a SELECT, RETURNING) is refused rather than answered wrongly.
 * The writes run in the order they were collected, each as its own statement: each text stays
 * the same from batch to batch, so PostgreSQL keeps one plan for it (db.ts, PostgresTx).
 */
export class WriteBatch implements Queryable {
  private readonly collected: Statement[] = [];

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (!WRITE.test(sql) || RETURNING.test(sql)) throw new Error(`a write batch takes writes that return nothing, not: ${sql.slice(0, 80)}`);
    this.collected.push({ sql, params });
    return [];
  }

  /** The collected writes, in order. */
  statements(): Statement[] {
    return [...this.collected];
  }
}
