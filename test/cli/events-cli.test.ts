import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_COLUMNS } from '../../src/cli/events-export.js';
import { parseCsv } from '../support/csv.js';
import { apiClient, type Api } from '../support/harness.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';

/**
 * `tollgate events import|export` as an operator runs them, against two `tollgate dev` processes:
 * a file of 2,500 events (and some bad lines) goes into the first, is exported from it as NDJSON
 * and CSV, and moves to the second through its export.
 */

interface Dev {
  dir: string;
  url: string;
  admin: string;
  api: Api;
  customerId: string;
  keyId: string;
}

/** Directories the tests made, removed at the end. */
const temporary: string[] = [];

const field = (text: string, label: string) => new RegExp(`${label}\\s+(\\S+)`).exec(text)?.[1] ?? '';

async function startDev(): Promise<Dev> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-events-'));
  temporary.push(dir);
  const port = await freePort();
  const run = tollgate(['dev'], { TOLLGATE_DATA_DIR: join(dir, 'data'), TOLLGATE_PORT: String(port) });
  const text = await run.waitFor(/Demo API key\s+\S+/, 45_000);
  const url = field(text, 'URL');
  const admin = field(text, 'Admin token');
  const api = apiClient(url, admin);
  const customerId = field(text, 'Demo customer');
  const keys = await api.get(`/v1/customers/${customerId}/api_keys`);
  return { dir, url, admin, api, customerId, keyId: keys.body.data[0].id };
}

/** Runs the CLI to the end; `env` chooses the instance (TOLLGATE_URL, TOLLGATE_DATA_DIR for its saved token). */
async function cli(args: string[], env: Record<string, string> = {}) {
  const run = tollgate(args, env);
  const code = await run.closed;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

const PRODUCTS = [
  { product: 'fal-ai/flux/dev', quantities: (i: number) => ({ megapixels: ((1 + (i % 20)) / 100).toFixed(2) }) },
  { product: 'fal-ai/kling-video/v2/master', quantities: (i: number) => ({ video_seconds: ((1 + (i % 5)) / 1000).toFixed(3) }) },
  { product: 'meta-llama/llama-3.1-70b-instruct', quantities: (i: number) => ({ input_tokens: String(100 + (i % 900)), output_tokens: 50 + (i % 400) }) },
  { product: 'gpu/h100', quantities: (i: number) => ({ gpu_seconds: 1 + (i % 10) }) },
];
const EVENTS = 2_500;
const START = Date.now() - 60_000;
/** Event i happened 30 s before event i - 1: all within the last day, about 4.30 USD in all (the demo credit is 25.00). */
const timeOf = (i: number) => new Date(START - i * 30_000).toISOString();

function goodEvent(i: number, keyId: string) {
  const { product, quantities } = PRODUCTS[i % PRODUCTS.length]!;
  const metadata = i % 7 === 0 ? { job: `j${i}`, note: i % 49 === 0 ? 'a, "quoted"\nnote é✓' : 'plain' } : undefined;
  return {
    specversion: '1.0',
    id: `job-${i}`,
    source: i % 2 === 0 ? 'gateway/eu-1' : 'gateway/us-2',
    type: 'usage',
    time: timeOf(i),
    subject: 'demo-acme',
    data: { product, ...(i % 10 === 0 ? { api_key_id: keyId } : {}), ...quantities(i), ...(metadata ? { metadata } : {}) },
  };
}

/** Bad lines, each with the code it must be rejected with; invalid_request is a whole-request refusal the CLI narrows down. */
function badLines(): [string, string][] {
  const event = (id: string, over: Record<string, unknown>, data: Record<string, unknown> = { product: 'gpu/h100', gpu_seconds: '1' }) =>
    JSON.stringify({ specversion: '1.0', id, source: 'gateway/eu-1', type: 'usage', time: timeOf(0), subject: 'demo-acme', data, ...over });
  return [
    ['{"specversion": "1.0", "id": ', 'invalid_json'],
    ['not json at all', 'invalid_json'],
    ['{"a": }', 'invalid_json'],
    [event('bad-product', {}, { product: 'no/such-model', gpu_seconds: '1' }), 'product_not_found'],
    [event('bad-customer', { subject: 'nobody' }), 'customer_not_found'],
    [event('bad-type', { type: 'other' }), 'invalid_event'],
    [event('bad-meter', {}, { product: 'fal-ai/flux/dev', frames: '3' }), 'unknown_meter'],
    [event('bad-old', { time: new Date(Date.now() - 40 * 86_400_000).toISOString() }), 'too_old'],
    [event('bad-nul\u0000', {}), 'invalid_request'],
  ];
}

afterAll(() => {
  killChildren();
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate events import and export', () => {
  let a: Dev;
  let b: Dev;
  let work: string;
  let expectedRejects: string[];
  let exported: Record<string, any>[];
  const envA = () => ({ TOLLGATE_URL: a.url, TOLLGATE_DATA_DIR: join(a.dir, 'data') });
  const keyOf = (e: Record<string, any>) => `${e.source}\n${e.event_id}`;

  beforeAll(async () => {
    [a, b] = await Promise.all([startDev(), startDev()]);
    work = mkdtempSync(join(tmpdir(), 'tollgate-events-files-'));
    temporary.push(work);
    const lines = Array.from({ length: EVENTS }, (_, i) => JSON.stringify(goodEvent(i, a.keyId)));
    // Bad lines around the batch boundaries (1,000 events a request), and a blank line that is not counted.
    const positions = [0, 999, 1001, 1500, 2001, 2300, 2400, 2450, EVENTS];
    const bad = badLines();
    for (let k = bad.length - 1; k >= 0; k--) lines.splice(positions[k]!, 0, bad[k]![0]);
    lines.splice(1200, 0, '');
    expectedRejects = bad.map(([text, code]) => `line ${lines.indexOf(text) + 1}: ${code}:`);
    writeFileSync(join(work, 'events.ndjson'), `${lines.join('\n')}\n`);
  }, 60_000);

  /** The rejected lines reported, in the order reported (line order). */
  const rejectLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('line ')).map((l) => /^line \d+: \w+:/.exec(l)![0]);

  it('imports a file: every event accepted once, bad lines rejected with their line numbers, exit code 2', async () => {
    const run = await cli(['events', 'import', join(work, 'events.ndjson')], envA());
    expect(run.stdout).toBe('imported 2509: 2500 accepted, 0 duplicate, 9 rejected\n');
    expect(rejectLines(run.stderr)).toEqual(expectedRejects);
    expect(run.code).toBe(2);
    const balance = await a.api.get(`/v1/customers/${a.customerId}/balance`);
    expect(balance.status).toBe(200);
  });

  it('is safe to run again: the same events are duplicates, the same lines rejected', async () => {
    const run = await cli(['events', 'import', join(work, 'events.ndjson')], envA());
    expect(run.stdout).toBe('imported 2509: 0 accepted, 2500 duplicate, 9 rejected\n');
    expect(rejectLines(run.stderr)).toEqual(expectedRejects);
    expect(run.code).toBe(2);
  });

  it('exports NDJSON: exactly the API items, newest first, the imported events and no others', async () => {
    const file = join(work, 'export.ndjson');
    const run = await cli(['events', 'export', '--output', file], envA());
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    exported = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(exported).toHaveLength(EVENTS);
    expect(new Set(exported.map(keyOf))).toEqual(new Set(Array.from({ length: EVENTS }, (_, i) => keyOf({ source: i % 2 === 0 ? 'gateway/eu-1' : 'gateway/us-2', event_id: `job-${i}` }))));
    const firstPage = await a.api.get('/v1/events?limit=100');
    expect(exported.slice(0, 100)).toEqual(firstPage.body.data);
    expect(exported.every((e) => e.status === 'charged' && e.charged === e.amount && e.customer_id === a.customerId)).toBe(true);
    const withKey = exported.filter((e) => e.api_key_id !== null);
    expect(withKey).toHaveLength(EVENTS / 10);
    expect(withKey.every((e) => e.api_key_id === a.keyId)).toBe(true);
  });

  it('exports CSV to stdout with a header row, parsing back to the same values', async () => {
    const run = await cli(['events', 'export', '--format', 'csv'], envA());
    expect(run.code).toBe(0);
    const [header, ...rows] = parseCsv(run.stdout);
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(EVENTS);
    const asCsv = (e: Record<string, unknown>) => CSV_COLUMNS.map((c) => (e[c] === null ? '' : typeof e[c] === 'object' ? JSON.stringify(e[c]) : String(e[c])));
    expect(rows).toEqual(exported.map(asCsv));
    const quoted = rows.find((r) => r[0] === exported.find((e) => e.event_id === 'job-49')!.id)!;
    expect(JSON.parse(quoted[CSV_COLUMNS.indexOf('metadata')]!)).toEqual({ job: 'j49', note: 'a, "quoted"\nnote é✓' });
  });

  it('passes the filters through to the API', async () => {
    // Events 1,001 to 1,999 by time ([from, to) on the event time), of the GPU product only.
    const args = ['events', 'export', '--product', 'gpu/h100', '--status', 'charged', '--from', timeOf(1999), '--to', timeOf(1000)];
    const run = await cli(args, envA());
    expect(run.code).toBe(0);
    const ids = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).event_id);
    const expected = Array.from({ length: 999 }, (_, k) => 1001 + k).filter((i) => i % 4 === 3).map((i) => `job-${i}`);
    expect(ids.sort()).toEqual(expected.sort());
  });

  it('moves the events to another Tollgate through the export: same events, same amounts', async () => {
    const args = ['events', 'import', '--url', b.url, '--token', b.admin, '--map-customer', `${a.customerId}=demo-acme`, '--map-api-key', `${a.keyId}=${b.keyId}`, join(work, 'export.ndjson')];
    const run = await cli(args);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('imported 2500: 2500 accepted, 0 duplicate, 0 rejected\n');
    expect(run.code).toBe(0);

    const back = await cli(['events', 'export', '--url', b.url, '--token', b.admin]);
    expect(back.code).toBe(0);
    const moved = new Map(back.stdout.trimEnd().split('\n').map((l) => JSON.parse(l)).map((e) => [keyOf(e), e]));
    expect(moved.size).toBe(EVENTS);
    const comparable = (e: Record<string, any>, dev: Dev) => {
      const { id: _id, received_at: _received, product_id: _product, customer_id, api_key_id, ...rest } = e;
      return { ...rest, customer: customer_id === dev.customerId, key: api_key_id === null ? null : api_key_id === dev.keyId };
    };
    for (const original of exported) expect(comparable(moved.get(keyOf(original))!, b)).toEqual(comparable(original, a));
  });
});
