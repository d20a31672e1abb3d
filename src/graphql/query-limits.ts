import { getNamedType, isObjectType, Kind, type DocumentNode, type FragmentDefinitionNode, type GraphQLObjectType, type GraphQLSchema, type SelectionSetNode, type ValueNode } from 'graphql';
import { LIST_LIMIT_MAX } from '../platform/lists.js';

/** Deepest nesting of fields a query may have (introspection fields, `__schema` and the like, are not counted). */
export const QUERY_DEPTH_MAX = 8;
/** Most objects a query may ask for, counted as if every list came back full (see measureQuery). */
export const QUERY_COST_MAX = 10_000;

export interface QueryMeasure {
  depth: number;
  cost: number;
}

/**
 * Depth and cost of the operation a request will run, before anything runs. Cost counts the
 * objects it may read: a field returning an object costs 1 plus what is selected in it, and a
 * field with a `limit` argument (a list) multiplies that by its limit (its default when not
 * given, LIST_LIMIT_MAX when a variable does not hold a number). Scalars are free. The document
 * has passed validation, so fragments do not form cycles and every field exists.
 */
export function measureQuery(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown>): QueryMeasure {
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations.length === 1 ? operations[0] : undefined;
  const root = operation?.operation === 'query' ? schema.getQueryType() : undefined;
  if (!operation || !root) return { depth: 0, cost: 0 };
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]));

  const walk = (selectionSet: SelectionSetNode, type: GraphQLObjectType): QueryMeasure => {
    let depth = 0;
    let cost = 0;
    for (const selection of selectionSet.selections) {
      let inner: QueryMeasure | null = null;
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value.startsWith('__')) continue;
        const field = type.getFields()[selection.name.value];
        const fieldType = getNamedType(field.type);
        const below = selection.selectionSet && isObjectType(fieldType) ? walk(selection.selectionSet, fieldType) : { depth: 0, cost: 0 };
        const limitArg = field.args.find((a) => a.name === 'limit');
        const given = selection.arguments?.find((a) => a.name.value === 'limit')?.value;
        const times = limitArg ? limitOf(given, variables, limitArg.defaultValue) : 1;
        depth = Math.max(depth, below.depth + 1);
        cost += isObjectType(fieldType) ? (1 + below.cost) * times : 0;
        continue;
      }
      const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments.get(selection.name.value);
      if (!fragment) continue;
      const on = fragment.typeCondition ? schema.getType(fragment.typeCondition.name.value) : type;
      inner = walk(fragment.selectionSet, isObjectType(on) ? on : type);
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    }
    return { depth, cost };
  };
  return walk(operation.selectionSet, root);
}

function limitOf(value: ValueNode | undefined, variables: Record<string, unknown>, fallback: unknown): number {
  const given = value === undefined ? fallback : value.kind === Kind.INT ? Number(value.value) : value.kind === Kind.VARIABLE ? (variables[value.name.value] ?? fallback) : LIST_LIMIT_MAX;
  return typeof given === 'number' && Number.isInteger(given) && given >= 0 ? Math.min(given, LIST_LIMIT_MAX) : LIST_LIMIT_MAX;
}
