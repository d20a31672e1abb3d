// Rewrites schema.graphql in the canonical form graphql-js prints (the form the schema test wants).
import { readFileSync, writeFileSync } from 'node:fs';
import { buildSchema, printSchema } from 'graphql';

const file = new URL('../schema.graphql', import.meta.url);
writeFileSync(file, printSchema(buildSchema(readFileSync(file, 'utf8'))) + '\n');
