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
