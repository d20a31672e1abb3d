/** Column arrays for `INSERT ... SELECT * FROM unnest(...)`: one array per column, in order. */
export function columns<T>(items: T[], pick: Array<(item: T) => unknown>): unknown[][] {
  return pick.map((f) => items.map((item) => {
    const value = f(item);
    return typeof value === 'bigint' ? value.toString() : value;
  }));
}
