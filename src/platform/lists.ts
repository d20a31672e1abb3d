import { Type, type Static } from 'typebox';

export const LIST_LIMIT_MAX = 100;

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: LIST_LIMIT_MAX, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z]{3}_[0-9a-z]{26}$' })),
});
export type ListQuery = Static<typeof ListQuery>;

export function ListOf<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    has_more: Type.Boolean(),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  });
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Lists are newest first; stores fetch limit + 1 rows with id < cursor. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  return { data, has_more: hasMore, next_cursor: hasMore ? data[data.length - 1].id : null };
}

/**
 * The SELECT behind a page of each of several parents in one round trip: the first limit + 1 rows
 * of every parent, newest first, with id < cursor. $1 the parent ids, $2 the cursor, $3 limit + 1;
 * `where` may use further parameters. Table and column names come from code, never from a request.
 */
export function pagesPerParentSql(table: string, parentColumn: string, where = 'TRUE'): string {
  return `SELECT * FROM (
      SELECT t.*, row_number() OVER (PARTITION BY t.${parentColumn} ORDER BY t.id DESC) AS page_row
      FROM ${table} t WHERE t.${parentColumn} = ANY($1::text[]) AND ($2::text IS NULL OR t.id < $2) AND (${where})
    ) p WHERE p.page_row <= $3 ORDER BY p.${parentColumn}, p.id DESC`;
}

/** Rows of several parents (limit + 1 per parent, newest first) -> one page per parent, empty when it has none. */
export function pagesPerParent<R, T extends { id: string }>(parentIds: string[], rows: R[], parentOf: (row: R) => string, present: (row: R) => T, limit: number): Map<string, Page<T>> {
  const grouped = new Map<string, T[]>(parentIds.map((id) => [id, []]));
  for (const row of rows) grouped.get(parentOf(row))?.push(present(row));
  return new Map([...grouped].map(([id, items]) => [id, toPage(items, limit)]));
}
