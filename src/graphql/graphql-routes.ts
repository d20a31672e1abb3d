import { execute, GraphQLError, parse, validate, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { HttpServer } from '../platform/http.js';
import { formatGraphqlError, refusalError } from './graphql-errors.js';
import { loadGraphqlSchema } from './graphql-schema.js';
import { createLoaders } from './loaders.js';
import { measureQuery, QUERY_COST_MAX, QUERY_DEPTH_MAX } from './query-limits.js';
import type { GraphqlServices } from './resolvers.js';

/** A query text beyond this is refused before parsing; so is one of more tokens (parsing is linear in them). */
const QUERY_LENGTH_MAX = 20_000;
const QUERY_TOKENS_MAX = 5_000;
const VALIDATION_ERRORS_MAX = 20;

const GraphqlRequest = Type.Object(
  {
    query: Type.String({ minLength: 1, maxLength: QUERY_LENGTH_MAX }),
    variables: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    operationName: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
    extensions: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  },
  { additionalProperties: false },
);

/**
 * POST /graphql: the read API (docs/graphql.md). Same bearer auth as REST (admin token or a
 * customer key); a request is parsed, validated and measured (depth, cost) before anything runs,
 * and refused with 400 and GraphQL errors when it fails; otherwise it runs and answers 200, with
 * the errors of fields that failed next to the data of those that did not. Not in /openapi.json:
 * schema.graphql describes it. GET /graphql serves GraphiQL in dev mode (`tollgate dev`) only.
 */
export function registerGraphqlRoutes(app: HttpServer, services: GraphqlServices, options: { graphiql: boolean }) {
  const schema = loadGraphqlSchema();
  app.post('/graphql', { config: { auth: 'any' }, schema: { hide: true, body: GraphqlRequest } }, async (req, reply) => {
    const { query, operationName } = req.body;
    const variables = req.body.variables ?? {};
    const prepared = prepare(schema, query, operationName, variables);
    if ('refused' in prepared) return reply.status(400).send({ errors: prepared.refused.map((e) => (e instanceof GraphQLError ? formatGraphqlError(e, req.log) : e)) });
    const result = await execute({
      schema,
      document: prepared.document,
      variableValues: variables,
      operationName,
      contextValue: { principal: req.principal!, loaders: createLoaders(services), services },
    });
    // No data at all: the variables or the operation name were refused before anything ran.
    const beforeRun = result.data === undefined;
    const errors = result.errors?.map((e) => formatGraphqlError(e, req.log, beforeRun));
    return reply.status(beforeRun ? 400 : 200).send({ ...(errors ? { errors } : {}), ...(result.data !== undefined ? { data: result.data } : {}) });
  });
  if (options.graphiql) app.get('/graphql', { schema: { hide: true } }, async (_req, reply: FastifyReply) => reply.type('text/html; charset=utf-8').send(GRAPHIQL_PAGE));
}

function prepare(schema: GraphQLSchema, query: string, operationName: string | null | undefined, variables: Record<string, unknown>): { document: DocumentNode } | { refused: Array<GraphQLError | GraphQLFormattedError> } {
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: QUERY_TOKENS_MAX });
  } catch (error) {
    if (error instanceof GraphQLError) return { refused: [error] };
    throw error;
  }
  const invalid = validate(schema, document, undefined, { maxErrors: VALIDATION_ERRORS_MAX });
  if (invalid.length > 0) return { refused: [...invalid] };
  const { depth, cost } = measureQuery(schema, document, operationName, variables);
  if (depth > QUERY_DEPTH_MAX) return { refused: [refusalError('query_too_deep', `The query nests fields ${depth} levels deep; at most ${QUERY_DEPTH_MAX}`)] };
  if (cost > QUERY_COST_MAX) {
    return { refused: [refusalError('query_too_costly', `The query may read ${cost} objects (lists counted at their limit); at most ${QUERY_COST_MAX}: ask for smaller pages or fewer nested lists`)] };
  }
  return { document };
}

/** GraphiQL from the unpkg CDN; dev mode only. */
const GRAPHIQL_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Tollgate GraphiQL</title>
  <meta name="robots" content="noindex">
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css">
</head>
<body style="margin: 0">
  <div id="graphiql" style="height: 100vh"></div>
  <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
    const headers = JSON.stringify({ Authorization: 'Bearer <the admin token or an API key>' }, null, 2);
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultHeaders: headers, defaultQuery: '{\\n  me { id name balance { available held } }\\n}\\n' }),
    );
  </script>
</body>
</html>
`;
