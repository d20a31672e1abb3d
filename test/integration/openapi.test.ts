import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../support/harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

describe('OpenAPI document and reference page', () => {
  it('serves a valid OpenAPI 3.1 document generated from the route schemas', async () => {
    const doc = await server.api.get('/openapi.json', { token: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    await SwaggerParser.validate(structuredClone(doc.body));
    const paths = Object.keys(doc.body.paths);
    for (const path of ['/v1/customers', '/v1/customers/{id}/api_keys', '/v1/prices', '/v1/pricing', '/v1/authorize', '/v1/reservations/{id}/settle', '/v1/me/balance']) {
      expect(paths).toContain(path);
    }
    const authorize = doc.body.paths['/v1/authorize'].post;
    expect(authorize.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['api_key', 'product', 'estimate']));
    expect(Object.keys(authorize.responses)).toEqual(expect.arrayContaining(['200', '4XX']));
  });

  it('serves a reference page at /docs', async () => {
    const page = await fetch(`${server.url}/docs/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/swagger/i);
  });

  it('answers /healthz and /readyz without a token', async () => {
    expect((await server.api.get('/healthz', { token: null })).body).toEqual({ status: 'ok' });
    expect((await server.api.get('/readyz', { token: null })).body).toEqual({ status: 'ready' });
  });
});
