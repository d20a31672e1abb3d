import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPENAPI_FILE, openApiFiles, SCHEMA_TYPES_FILE } from '../../scripts/openapi.js';

/**
 * The dashboard's API client is typed from openapi.json through app/src/api/schema.d.ts: both are
 * checked in, and both must be what the code produces now (run `npm run openapi` after changing a
 * route schema), or the browser app would be typed against an API that no longer exists.
 */
describe('openapi.json and the dashboard API types', () => {
  it('are what the routes produce now (npm run openapi rewrites them)', async () => {
    const { json, types } = await openApiFiles();
    expect(readFileSync(OPENAPI_FILE, 'utf8') === json, 'openapi.json is stale: run npm run openapi').toBe(true);
    expect(readFileSync(SCHEMA_TYPES_FILE, 'utf8') === types, 'app/src/api/schema.d.ts is stale: run npm run openapi').toBe(true);
  });

  it('type the routes the portal calls', () => {
    const types = readFileSync(SCHEMA_TYPES_FILE, 'utf8');
    for (const path of ['/v1/me/balance', '/v1/me/usage', '/v1/me/api_keys', '/v1/me/invoices/{id}/pdf', '/v1/me/webhook_endpoints']) {
      expect(types).toContain(`"${path}": {`);
    }
  });
});
