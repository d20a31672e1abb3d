import type { Queryable, Statement } from './db.js';

const WRITE = /^\s*(INSERT|UPDATE|DELETE)\b/i;
const RETURNING = /\bRETURNING\b/i;

/**
 * Collects writes and sends them as one statement (a WITH of data-modifying sub-statements): one
 * round trip instead of one per write. It is a Queryable so the same store functions write either
 * now or here; a write answers no rows, so anything that reads (a SELECT, RETURNING) is refused
 * rather than answered wrongly. The sub-statements share one snapshot and PostgreSQL does not
 * promise their order, so they must be independent: none may touch a row another one touches (only
 * one change to a row would take effect) or need to see another's rows (foreign keys are checked
 * at the end of the statement, so a row may refer to one inserted beside it).
 */
export class WriteBatch implements Queryable {
  private readonly statements: string[] = [];
  private readonly params: unknown[] = [];

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (!WRITE.test(sql) || RETURNING.test(sql)) throw new Error(`a write batch takes writes that return nothing, not: ${sql.slice(0, 80)}`);
    const offset = this.params.length;
    // Each statement numbers its own parameters from $1; in the batch they follow the ones before.
    this.statements.push(sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`));
    this.params.push(...params);
    return [];
  }

  /** The collected writes as one statement (none when there are none). */
  statement(): Statement | null {
    if (this.statements.length === 0) return null;
    if (this.statements.length === 1) return { sql: this.statements[0]!, params: this.params };
    const parts = this.statements.map((sql, i) => `w${i} AS (${sql})`);
    return { sql: `WITH ${parts.join(',\n')}\nSELECT 1`, params: this.params };
  }
}
