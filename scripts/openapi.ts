// Writes the OpenAPI document of buildApp to openapi.json and the dashboard's API types to
// app/src/api/schema.d.ts (openapi-typescript 6). Run `npm run openapi` after changing a route
// schema; test/unit/openapi-files.test.ts fails while either checked-in file is stale.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import openapiTS, { type OpenAPI3 } from 'openapi-typescript';
import { buildApp } from '../src/main.js';
import { generateAdminToken, loadConfig } from '../src/platform/config.js';
import { openDb } from '../src/platform/db.js';

export const OPENAPI_FILE = new URL('../openapi.json', import.meta.url);
export const SCHEMA_TYPES_FILE = new URL('../app/src/api/schema.d.ts', import.meta.url);

/** The document the code serves at /openapi.json, and the TypeScript types generated from it. */
export async function openApiFiles(): Promise<{ json: string; types: string }> {
  // An in-memory database and no background jobs: only the routes and their schemas matter here.
  const config = { ...loadConfig({ LOG_LEVEL: 'silent' }), adminToken: generateAdminToken() };
  const db = await openDb({});
  const app = await buildApp(config, { db, backgroundJobs: false });
  try {
    const document = app.http.swagger() as unknown as OpenAPI3;
    const json = JSON.stringify(document, null, 2) + '\n';
    const types = await openapiTS(structuredClone(document), { silent: true, alphabetize: true });
    return { json, types };
  } finally {
    await app.close();
    await db.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { json, types } = await openApiFiles();
  writeFileSync(OPENAPI_FILE, json);
  writeFileSync(SCHEMA_TYPES_FILE, types);
  console.log('wrote openapi.json and app/src/api/schema.d.ts');
}
