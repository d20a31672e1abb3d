import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventResult } from '../../src/metering/model.js';
import { ClientConfigError, resolveClientConfig } from '../../src/cli/client-config.js';
import { csvField, csvRow } from '../../src/cli/csv.js';
import { BatchRefused, CliFatal, EventsApi, type EventsPage } from '../../src/cli/events-api.js';
import { CSV_COLUMNS, eventCsvRow, exportEvents } from '../../src/cli/events-export.js';
import { emptyCounts, formatSummary, importExitCode, importLines, type ImportDeps } from '../../src/cli/events-import.js';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, fetchWithRetry, NetworkError, retryAfterMs, type FetchLike, type HttpDeps } from '../../src/cli/fetch-with-retry.js';
import { exportedItemToCloudEvent, parseImportLine, parseMapPairs } from '../../src/cli/import-line.js';
import { fileSink } from '../../src/cli/output-sink.js';
import { ProgressBar, renderProgress } from '../../src/cli/progress-bar.js';
import { parseCsv } from '../support/csv.js';

/** The pure parts of `tollgate events export|import`; test/cli/events-cli.test.ts runs them against a real Tollgate. */

const temporary: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
};
afterAll(() => temporary.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const item = (over: Record<string, unknown> = {}) => ({
  id: 'evt_01',
  source: 'gateway/eu-1',
  event_id: 'job-1',
  type: 'usage',
  time: '2026-11-21T10:00:00.000Z',
  received_at: '2026-11-21T10:00:01.000Z',
  customer_id: 'cus_a',
  product_id: 'prd_a',
  product: 'fal-ai/flux/dev',
  api_key_id: null,
  currency: 'USD',
  quantities: { megapixels: '1.048576' },
  metadata: {},
  status: 'charged',
  amount: '0.0262144',
  charged: '0.0262144',
  uncollected: '0.00',
  ...over,
});

describe('CSV', () => {
  it('quotes only fields with a comma, quote, CR or LF, doubling quotes; CRLF line ends; null is empty', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField('')).toBe('');
    expect(csvField(null)).toBe('');
    expect(csvRow(['a', null, 'b,c'])).toBe('a,,"b,c"\r\n');
  });

  it('writes an event in the documented columns, quantities and metadata as JSON, and parses back to the same values', () => {
    const hostile = item({ api_key_id: 'key_1', metadata: { note: 'a, "quoted"\nline', emoji: 'é✓' }, source: '=cmd|,x' });
    const rows = parseCsv(csvRow([...CSV_COLUMNS]) + eventCsvRow(hostile) + eventCsvRow(item({ amount: null, status: 'unpriced' })));
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(3);
    const back = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, rows[1]![i]]));
    expect(back).toMatchObject({ source: '=cmd|,x', api_key_id: 'key_1', amount: '0.0262144', uncollected: '0.00' });
    expect(JSON.parse(back.metadata!)).toEqual(hostile.metadata);
    expect(JSON.parse(back.quantities!)).toEqual({ megapixels: '1.048576' });
    expect(rows[2]![CSV_COLUMNS.indexOf('amount')]).toBe('');
    expect(rows[2]![CSV_COLUMNS.indexOf('api_key_id')]).toBe('');
  });
});

describe('an import line', () => {
  const cloudEvent = { specversion: '1.0', id: 'job-1', source: 'gw', type: 'usage', subject: 'demo-acme', data: { product: 'gpu/h100', gpu_seconds: '3' } };

  it('is sent as written when it is a CloudEvent; blank lines are skipped', () => {
    expect(parseImportLine(JSON.stringify(cloudEvent))).toEqual({ kind: 'event', event: cloudEvent });
    expect(parseImportLine('   ')).toEqual({ kind: 'blank' });
  });

  it('is rejected as invalid_json when it is not JSON, and as invalid_event when it is not one object', () => {
    expect(parseImportLine('{"id": ')).toMatchObject({ kind: 'rejected', code: 'invalid_json' });
    expect(parseImportLine('[{"id": "x"}]')).toMatchObject({ kind: 'rejected', code: 'invalid_event' });
    expect(parseImportLine('null')).toMatchObject({ kind: 'rejected', code: 'invalid_event' });
    expect(parseImportLine('"text"')).toMatchObject({ kind: 'rejected', code: 'invalid_event' });
  });

  it('is converted back to its CloudEvent when it is an exported event item', () => {
    expect(exportedItemToCloudEvent(item({ api_key_id: 'key_1', metadata: { job: '7f' }, quantities: { input_tokens: '10', output_tokens: '5' } }))).toEqual({
      specversion: '1.0',
      id: 'job-1',
      source: 'gateway/eu-1',
      type: 'usage',
      time: '2026-11-21T10:00:00.000Z',
      subject: 'cus_a',
      data: { product: 'fal-ai/flux/dev', api_key_id: 'key_1', input_tokens: '10', output_tokens: '5', metadata: { job: '7f' } },
    });
    // No key and empty metadata: the CloudEvent has neither.
    expect(parseImportLine(JSON.stringify(item()))).toEqual({
      kind: 'event',
      event: { specversion: '1.0', id: 'job-1', source: 'gateway/eu-1', type: 'usage', time: '2026-11-21T10:00:00.000Z', subject: 'cus_a', data: { product: 'fal-ai/flux/dev', megapixels: '1.048576' } },
    });
  });

  it('has its customer and API key renamed by the maps, and its key dropped by an empty mapping', () => {
    const maps = { customers: parseMapPairs(['cus_a=demo-acme'], '--map-customer'), apiKeys: parseMapPairs(['key_1=key_2', 'key_3='], '--map-api-key') };
    const line = (over: Record<string, unknown>) => parseImportLine(JSON.stringify(item(over)), maps) as unknown as { event: { subject: string; data: Record<string, unknown> } };
    expect(line({ api_key_id: 'key_1' }).event).toMatchObject({ subject: 'demo-acme', data: { api_key_id: 'key_2' } });
    expect(line({ api_key_id: 'key_3' }).event.data).not.toHaveProperty('api_key_id');
    expect(line({ customer_id: 'cus_other', api_key_id: 'key_9' }).event).toMatchObject({ subject: 'cus_other', data: { api_key_id: 'key_9' } });
    expect(() => parseMapPairs(['no-equals'], '--map-customer')).toThrow(/FROM=TO/);
  });
});

/** A server stand-in for importLines: accepts events once per id, rejects ids starting with "bad". */
function fakeServer(options: { refuse?: (events: string[]) => BatchRefused | null } = {}) {
  const seen = new Set<string>();
  const batches: number[] = [];
  const rejected: [number, string][] = [];
  const deps: ImportDeps = {
    post: async (events) => {
      const refusal = options.refuse?.(events);
      if (refusal) throw refusal;
      batches.push(events.length);
      return events.map((json): EventResult => {
        const { id, source } = JSON.parse(json) as { id: string; source: string };
        if (id.startsWith('bad')) return { id, source, status: 'rejected', code: 'product_not_found', message: 'no such product' };
        if (seen.has(id)) return { id, source, status: 'duplicate', event: 'evt_x' };
        seen.add(id);
        return { id, source, status: 'accepted', event: 'evt_x' };
      });
    },
    onRejected: (line, code) => rejected.push([line, code]),
    onProgress: () => undefined,
  };
  return { deps, batches, rejected };
}

async function* linesOf(lines: string[]) {
  yield* lines;
}

const eventLine = (id: string, extra = '') => JSON.stringify({ specversion: '1.0', id, source: 'gw', type: 'usage', subject: 'demo-acme', data: { product: 'gpu/h100', gpu_seconds: '1', note: extra } });

describe('importLines', () => {
  it('sends batches of 1,000 in file order and counts accepted, duplicate and rejected lines with their line numbers', async () => {
    const lines = Array.from({ length: 2_500 }, (_, i) => eventLine(`job-${i}`));
    lines.splice(10, 0, '{not json');
    lines.splice(20, 0, '');
    lines.splice(30, 0, eventLine('bad-1'));
    const server = fakeServer();
    const counts = await importLines(linesOf(lines), server.deps, emptyCounts());
    expect(server.batches).toEqual([1000, 1000, 501]);
    expect(counts).toEqual({ lines: 2_502, accepted: 2_500, duplicate: 0, rejected: 2 });
    expect(server.rejected).toEqual([[11, 'invalid_json'], [31, 'product_not_found']]);
    expect(formatSummary(counts)).toBe('imported 2502: 2500 accepted, 0 duplicate, 2 rejected');
    expect(importExitCode(counts)).toBe(2);

    const again = await importLines(linesOf(lines), server.deps, emptyCounts());
    expect(again).toEqual({ lines: 2_502, accepted: 0, duplicate: 2_500, rejected: 2 });
    expect(importExitCode({ lines: 1, accepted: 1, duplicate: 0, rejected: 0 })).toBe(0);
  });

  it('reports outcomes in line order, and holds a bounded number of lines rejected on reading', async () => {
    const server = fakeServer();
    const lines = [eventLine('bad-1'), '{oops', eventLine('job-1'), ...Array.from({ length: 9 }, () => 'nope'), eventLine('bad-2')];
    const counts = await importLines(linesOf(lines), server.deps, emptyCounts(), { limits: { eventsMax: 2, bytesMax: 1_000_000 } });
    expect(counts).toEqual({ lines: 13, accepted: 1, duplicate: 0, rejected: 12 });
    expect(server.rejected.map(([line]) => line)).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    // A batch holds at most 2 x eventsMax lines: the file went out in more than one request.
    expect(server.batches).toEqual([2, 1]);
  });

  it('keeps each request under the byte limit, and rejects alone an event that could never fit', async () => {
    const server = fakeServer();
    const big = 'x'.repeat(400);
    const lines = [...Array.from({ length: 10 }, (_, i) => eventLine(`job-${i}`, big)), eventLine('huge', 'y'.repeat(5_000))];
    const counts = await importLines(linesOf(lines), server.deps, emptyCounts(), { limits: { eventsMax: 1_000, bytesMax: 2_000 } });
    expect(server.batches.every((n) => n <= 3)).toBe(true);
    expect(server.batches.reduce((a, b) => a + b, 0)).toBe(10);
    expect(counts).toMatchObject({ accepted: 10, rejected: 1 });
    expect(server.rejected).toEqual([[11, 'payload_too_large']]);
  });

  it('splits a batch the server refuses as a whole until the refused event stands alone', async () => {
    const server = fakeServer({ refuse: (events) => (events.some((e) => e.includes('poison')) ? new BatchRefused(400, 'invalid_request', 'NUL character') : null) });
    const lines = Array.from({ length: 100 }, (_, i) => eventLine(`job-${i}`, i === 57 ? 'poison' : ''));
    const counts = await importLines(linesOf(lines), server.deps, emptyCounts());
    expect(counts).toEqual({ lines: 100, accepted: 99, duplicate: 0, rejected: 1 });
    expect(server.rejected).toEqual([[58, 'invalid_request']]);
  });

  it('stops on a fatal error with the counts reached so far, and skips a byte order mark', async () => {
    const server = fakeServer();
    let calls = 0;
    const deps = { ...server.deps, post: async (events: string[]) => (++calls === 2 ? Promise.reject(new CliFatal('HTTP 401')) : server.deps.post(events)) };
    const counts = emptyCounts();
    const lines = Array.from({ length: 1_500 }, (_, i) => eventLine(`job-${i}`));
    lines[0] = `\uFEFF${lines[0]}`;
    await expect(importLines(linesOf(lines), deps, counts)).rejects.toThrow('HTTP 401');
    expect(counts).toMatchObject({ accepted: 1_000, rejected: 0 });
  });
});

/** An injected fetch that answers from a script, and a sleep that only records. */
function scripted(script: (Response | Error)[]) {
  const sleeps: number[] = [];
  const calls: RequestInit[] = [];
  const fetch: FetchLike = async (_url, init) => {
    calls.push(init);
    const next = script.shift();
    if (next === undefined) throw new Error('script exhausted');
    if (next instanceof Error) throw next;
    return next;
  };
  const deps: HttpDeps = { fetch, sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, now: () => new Date('2026-11-21T10:00:00Z') };
  return { deps, sleeps, calls };
}

/** What undici throws when the connection fails: a TypeError whose cause has a system error code. */
const connectionRefused = () => new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8787'), { code: 'ECONNREFUSED' }) });

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

describe('retries', () => {
  it('back off exponentially with jitter, capped', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, delayMaxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs(n, policy, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs(n, policy, () => 0.999999))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('read Retry-After as seconds or an HTTP date', () => {
    const now = new Date('2026-11-21T10:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs('Sat, 21 Nov 2026 10:00:07 GMT', now)).toBe(7_000);
    expect(retryAfterMs('Sat, 21 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(null, now)).toBeNull();
    expect(retryAfterMs('soon', now)).toBeNull();
  });

  it('retry network errors, 5xx and 429, honouring Retry-After, until a reply is final', async () => {
    const { deps, sleeps, calls } = scripted([
      connectionRefused(),
      json(503, { code: 'service_unavailable' }, { 'retry-after': '2' }),
      json(429, {}, { 'retry-after': '100000' }),
      json(502, {}),
      json(200, { ok: true }),
    ]);
    const response = await fetchWithRetry('http://x/v1/events', { method: 'POST', body: '[]' }, deps, { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100 });
    expect(response.status).toBe(200);
    expect(calls).toHaveLength(5);
    expect(calls.every((c) => c.body === '[]' && c.signal instanceof AbortSignal)).toBe(true);
    // Backoff for the network error (attempt 1), the server's 2 s, the 120 s cap, backoff for attempt 4.
    expect(sleeps).toEqual([75, 2_000, 120_000, 600]);
  });

  it('do not retry a refusal or a request that cannot be made, return the last reply when attempts run out, and throw after only network errors', async () => {
    const refused = scripted([json(400, { code: 'invalid_request' })]);
    expect((await fetchWithRetry('http://x', {}, refused.deps)).status).toBe(400);
    expect(refused.sleeps).toEqual([]);

    const policy = { ...DEFAULT_RETRY_POLICY, attemptsMax: 3 };
    const down = scripted([json(503, {}), json(503, {}), json(503, { last: true })]);
    const last = await fetchWithRetry('http://x', {}, down.deps, policy);
    expect(await last.json()).toEqual({ last: true });
    expect(down.sleeps).toHaveLength(2);

    const unreachable = scripted([connectionRefused(), connectionRefused(), connectionRefused()]);
    await expect(fetchWithRetry('http://x', {}, unreachable.deps, policy)).rejects.toThrow(/failed after 3 attempts: fetch failed: ECONNREFUSED/);
    expect(unreachable.sleeps).toHaveLength(2);

    const badPort = scripted([new TypeError('fetch failed', { cause: new TypeError('bad port') })]);
    await expect(fetchWithRetry('http://x', {}, badPort.deps, policy)).rejects.toThrow(NetworkError);
    expect(badPort.sleeps).toEqual([]);

    const timeout = scripted([new DOMException('The operation was aborted due to timeout', 'TimeoutError'), json(200, {})]);
    expect((await fetchWithRetry('http://x', {}, timeout.deps, policy)).status).toBe(200);
  });
});

describe('EventsApi', () => {
  const config = { baseUrl: 'http://tollgate', adminToken: 'tga_secret' };

  it('posts a JSON array with the admin token and returns one result per event', async () => {
    const { deps, calls } = scripted([json(200, { data: [{ id: 'a', source: 's', status: 'accepted', event: 'evt_1' }] })]);
    const results = await new EventsApi(config, deps).post(['{"id":"a"}']);
    expect(results).toEqual([{ id: 'a', source: 's', status: 'accepted', event: 'evt_1' }]);
    expect(calls[0]).toMatchObject({ method: 'POST', body: '[{"id":"a"}]', headers: { authorization: 'Bearer tga_secret', 'content-type': 'application/json' } });
  });

  it('tells a refusal of the batch (400, 413) from a fatal reply (401, 404, a wrong number of results)', async () => {
    const api = (r: Response) => new EventsApi(config, scripted([r]).deps);
    await expect(api(json(413, { code: 'payload_too_large', detail: 'too big' })).post(['{}'])).rejects.toMatchObject({ status: 413, code: 'payload_too_large' });
    await expect(api(json(400, { code: 'invalid_request', detail: 'bad' })).post(['{}'])).rejects.toBeInstanceOf(BatchRefused);
    await expect(api(json(401, { code: 'unauthorized', detail: 'no' })).post(['{}'])).rejects.toThrow(/401 unauthorized/);
    await expect(api(new Response('Not Found', { status: 404 })).post(['{}'])).rejects.toBeInstanceOf(CliFatal);
    await expect(api(json(200, { data: [] })).post(['{}'])).rejects.toThrow(/expected 1 results/);
  });
});

describe('exportEvents', () => {
  it('pages with limit=100, the filters and the cursor until has_more is false, writing each page as it comes', async () => {
    const queries: string[] = [];
    const pages: EventsPage[] = [
      { data: [item({ id: 'evt_3' }), item({ id: 'evt_2' })], has_more: true, next_cursor: 'c1' },
      { data: [item({ id: 'evt_1' })], has_more: false, next_cursor: null },
    ];
    const chunks: string[] = [];
    const written = await exportEvents(async (q) => (queries.push(q.toString()), pages.shift()!), { customer: 'cus_a', status: 'charged', from: '2026-11-01T00:00:00Z' }, 'ndjson', async (c) => void chunks.push(c));
    expect(written).toBe(3);
    expect(queries).toEqual(['limit=100&customer=cus_a&status=charged&from=2026-11-01T00%3A00%3A00Z', 'limit=100&customer=cus_a&status=charged&from=2026-11-01T00%3A00%3A00Z&cursor=c1']);
    expect(chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l).id)).toEqual(['evt_3', 'evt_2', 'evt_1']);
  });

  it('writes a CSV header even with no events, and stops on a cursor that does not move', async () => {
    const chunks: string[] = [];
    await exportEvents(async () => ({ data: [], has_more: false, next_cursor: null }), {}, 'csv', async (c) => void chunks.push(c));
    expect(chunks.join('')).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
    const stuck = async () => ({ data: [item()], has_more: true, next_cursor: 'same' });
    await expect(exportEvents(stuck, {}, 'ndjson', async () => undefined)).rejects.toThrow(/next_cursor/);
  });
});

describe('client configuration', () => {
  const dir = tempDir('tollgate-client-');
  const dataDir = join(dir, 'data');

  it('takes flags first, then the environment, then the token tollgate dev saved', () => {
    expect(() => resolveClientConfig({ env: {}, dataDir })).toThrow(ClientConfigError);
    writeFileSync(join(dir, 'dev-secrets.json'), JSON.stringify({ adminToken: 'tga_saved', demoKey: 'tg_x' }));
    expect(resolveClientConfig({ env: {}, dataDir })).toEqual({ baseUrl: 'http://127.0.0.1:8787', adminToken: 'tga_saved' });
    expect(resolveClientConfig({ env: { TOLLGATE_URL: 'http://h:1/', TOLLGATE_ADMIN_TOKEN: 'tga_env' }, dataDir })).toEqual({ baseUrl: 'http://h:1', adminToken: 'tga_env' });
    expect(resolveClientConfig({ url: 'https://t.example/prefix/', token: 'tga_flag', env: { TOLLGATE_URL: 'http://h:1', TOLLGATE_ADMIN_TOKEN: 'tga_env' }, dataDir })).toEqual({
      baseUrl: 'https://t.example/prefix',
      adminToken: 'tga_flag',
    });
    expect(() => resolveClientConfig({ url: 'ftp://x', env: {}, dataDir })).toThrow(/http/);
    expect(() => resolveClientConfig({ url: 'not a url', env: {}, dataDir })).toThrow(/Not a URL/);
  });
});

describe('progress', () => {
  it('renders bytes done as a bar and a percentage, within the terminal width', () => {
    expect(renderProgress(50, 200, 1234, 80)).toBe(`[${'#'.repeat(8)}${'-'.repeat(22)}]  25% 1,234 lines`);
    expect(renderProgress(300, 200, 5, 80)).toContain('100%');
    expect(renderProgress(1, 2, 5, 10)).toHaveLength(9);
  });

  it('draws only on a terminal, at most every redraw interval, and clears itself before a message', () => {
    const out: string[] = [];
    let now = 0;
    const bar = new ProgressBar({ write: (t: string) => out.push(t), isTTY: true, columns: 80 }, 100, () => now);
    bar.update(10, 1);
    bar.update(20, 2);
    now = 150;
    bar.update(30, 3);
    expect(out.filter((t) => t.includes('lines'))).toHaveLength(2);
    bar.log('line 3: invalid_json: oops');
    expect(out.slice(-3)).toEqual(['\r\x1b[K', 'line 3: invalid_json: oops\n', expect.stringContaining(' 30% 3 lines')]);

    const piped: string[] = [];
    const quiet = new ProgressBar({ write: (t: string) => piped.push(t) }, 100);
    quiet.update(50, 5);
    quiet.log('message');
    quiet.clear();
    expect(piped).toEqual(['message\n']);
  });
});

describe('an output file', () => {
  it('appears only once complete, and not at all when the export fails', async () => {
    const dir = tempDir('tollgate-sink-');
    const done = fileSink(join(dir, 'events.ndjson'));
    await done.write('{"a":1}\n');
    expect(existsSync(join(dir, 'events.ndjson'))).toBe(false);
    await done.write('{"a":2}\n');
    await done.commit();
    expect(readFileSync(join(dir, 'events.ndjson'), 'utf8')).toBe('{"a":1}\n{"a":2}\n');

    const failed = fileSink(join(dir, 'failed.csv'));
    await failed.write('id\r\n');
    await failed.abort();
    expect(readdirSync(dir)).toEqual(['events.ndjson']);
  });
});
