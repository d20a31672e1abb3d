import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../support/harness.js';

// The browser app at /app (docs/dashboard.md), served from a stand-in build directory: files as
// they are, index.html for client-side routes, its own security headers, 503 when not built.

let server: TestServer;
let appDir: string;
const INDEX = '<!doctype html><html><head><script type="module" src="/app/assets/index-B2x9Qc.js"></script></head><body><div id="root"></div></body></html>';
const SCRIPT = 'console.log("dashboard")';

beforeAll(async () => {
  appDir = mkdtempSync(join(tmpdir(), 'tollgate-app-'));
  mkdirSync(join(appDir, 'assets'));
  writeFileSync(join(appDir, 'index.html'), INDEX);
  writeFileSync(join(appDir, 'assets', 'index-B2x9Qc.js'), SCRIPT);
  writeFileSync(join(appDir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  server = await startServer({ appDir });
});
afterAll(async () => {
  await server?.close();
  rmSync(appDir, { recursive: true, force: true });
});

const get = (path: string) => fetch(server.url + path, { redirect: 'manual' });

function expectAppHeaders(r: Response) {
  const csp = r.headers.get('content-security-policy')!;
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).toContain("frame-ancestors 'none'");
  expect(r.headers.get('referrer-policy')).toBe('no-referrer');
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
}

describe('the dashboard at /app', () => {
  it('GET / redirects to /app/', async () => {
    const r = await get('/');
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/app/');
  });

  it('serves index.html at /app and /app/, not cached, with the security headers', async () => {
    for (const path of ['/app', '/app/']) {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expectAppHeaders(r);
      expect(await r.text()).toBe(INDEX);
    }
  });

  it('falls back to index.html for client-side routes (no file extension)', async () => {
    for (const path of ['/app/portal', '/app/portal/usage', '/app/console/customers/cus_01m80drwa912shmc3dhdqk6bfg']) {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(INDEX);
    }
  });

  it('serves hashed assets cached for good, other files as they are, and 404 for a missing file', async () => {
    const script = await get('/app/assets/index-B2x9Qc.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expectAppHeaders(script);
    expect(await script.text()).toBe(SCRIPT);
    expect((await get('/app/favicon.svg')).headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    const missing = await get('/app/assets/gone-123.js');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('sends the build\'s pre-compressed copy to a browser that accepts it (brotli first, then gzip), the file itself otherwise', async () => {
    const path = join(appDir, 'assets', 'index-B2x9Qc.js');
    writeFileSync(`${path}.br`, brotliCompressSync(SCRIPT));
    writeFileSync(`${path}.gz`, gzipSync(SCRIPT));
    try {
      const fetchRaw = (encoding?: string) => request(`${server.url}/app/assets/index-B2x9Qc.js`, { headers: encoding ? { 'accept-encoding': encoding } : {} });
      const br = await fetchRaw('gzip, deflate, br');
      expect(br.headers['content-encoding']).toBe('br');
      expect(br.headers['content-type']).toMatch(/javascript/);
      expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(brotliDecompressSync(Buffer.from(await br.body.arrayBuffer())).toString()).toBe(SCRIPT);
      const gz = await fetchRaw('gzip');
      expect(gz.headers['content-encoding']).toBe('gzip');
      await gz.body.dump();
      const plain = await fetchRaw();
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(await plain.body.text()).toBe(SCRIPT);
    } finally {
      rmSync(`${path}.br`);
      rmSync(`${path}.gz`);
    }
  });

  it('never serves a file outside the build directory', async () => {
    for (const path of ['/app/../package.json', '/app/%2e%2e/package.json', '/app/assets/..%2f..%2fpackage.json']) {
      const r = await get(path);
      const text = await r.text();
      // Refused (4xx) or read as a client-side route: never the file itself.
      expect(r.status === 200 ? text : r.status, path).toSatisfy((v) => v === INDEX || (typeof v === 'number' && v >= 400 && v < 500));
      expect(text).not.toContain('"name": "tollgate"');
    }
  });

  it('leaves the headers of /docs (Swagger UI) alone', async () => {
    const r = await fetch(`${server.url}/docs`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy') ?? '').not.toContain("frame-ancestors 'none'");
  });

  it('answers 503 dashboard_not_built when there is no build', async () => {
    rmSync(join(appDir, 'index.html'));
    const r = await get('/app/portal');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = await r.json();
    expect(body).toMatchObject({ code: 'dashboard_not_built', status: 503 });
    expect(body.detail).toContain('npm run build');
    writeFileSync(join(appDir, 'index.html'), INDEX);
    expect((await get('/app/')).status).toBe(200);
  });
});
