import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, GraphQLScalarType, isObjectType, type GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.js';

/** The checked-in SDL (schema-first): the file is the contract; test/integration/graphql.schema.test.ts keeps code and file in step. */
export const SCHEMA_FILE = fileURLToPath(new URL('../../schema.graphql', import.meta.url));

/** JSON values (metadata, estimates) pass through as they are; they are output only. */
const JSON_SCALAR = new GraphQLScalarType({ name: 'JSON', serialize: (value) => value });

/** The executable schema: the SDL with the resolvers attached; a resolver for a field the SDL lacks is a bug. */
export function loadGraphqlSchema(sdl: string = readFileSync(SCHEMA_FILE, 'utf8')): GraphQLSchema {
  const schema = buildSchema(sdl);
  Object.assign(schema.getType('JSON')!, { serialize: JSON_SCALAR.serialize, parseValue: JSON_SCALAR.parseValue, parseLiteral: JSON_SCALAR.parseLiteral });
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!isObjectType(type)) throw new Error(`resolvers for ${typeName}, which schema.graphql does not declare as a type`);
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const field = type.getFields()[fieldName];
      if (!field) throw new Error(`a resolver for ${typeName}.${fieldName}, which schema.graphql does not declare`);
      field.resolve = resolve;
    }
  }
  return schema;
}
