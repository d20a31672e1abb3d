/** A node of a plan from PostgreSQL's `EXPLAIN (FORMAT JSON)`: the fields the plan tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

/** The one row `EXPLAIN (FORMAT JSON)` answers. */
export type ExplainRow = { 'QUERY PLAN': Array<{ Plan: PlanNode }> };
