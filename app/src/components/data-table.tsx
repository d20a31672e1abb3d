import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Table } from './page';
import { QueryView } from './states';

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  /** Right-aligned, tabular figures (amounts, counts). */
  numeric?: boolean;
  /** Header read by screen readers only (an actions column). */
  hiddenHeader?: boolean;
}

/** Rows as a table, one column definition per column. */
export function DataTable<T>({ caption, rows, columns, rowKey }: { caption: string; rows: T[]; columns: Column<T>[]; rowKey: (row: T) => string }) {
  return (
    <Table caption={caption}>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c.header} scope="col" className={c.numeric ? 'num' : undefined}>
              {c.hiddenHeader ? <span className="visually-hidden">{c.header}</span> : c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={rowKey(row)}>
            {columns.map((c) => (
              <td key={c.header} className={c.numeric ? 'num' : undefined}>
                {c.hiddenHeader ? <div className="actions nowrap">{c.cell(row)}</div> : c.cell(row)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </Table>
  );
}

/** A list route's page (`{ data: [...] }`) as a table, with its loading, error and empty states. */
export function QueryTable<T>(props: { query: UseQueryResult<{ data: T[] }>; caption: string; empty: string; columns: Column<T>[]; rowKey: (row: T) => string }) {
  return (
    <QueryView query={props.query} isEmpty={(page) => page.data.length === 0} empty={props.empty}>
      {(page) => <DataTable caption={props.caption} rows={page.data} columns={props.columns} rowKey={props.rowKey} />}
    </QueryView>
  );
}
