// The load generator: its own process (pinned to its own core by bench/run.ts), so the server's
// CPU is the server's alone. It reads a job from the JSON file named on the command line, runs it
// and prints one JSON result line. Units (a hello POST, an authorize -> settle chain, an events
// batch, a usage query) run either closed loop (a fixed number in flight: the throughput ceiling)
// or open loop (started at a fixed rate whatever the replies do: latency at a given load).
// One generator process serves a whole run: jobs arrive and results leave over the IPC channel.
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { Samples, round, type Percentiles } from './stats.js';

export type Unit =
  | { kind: 'hello' }
  | { kind: 'holds'; keys: string[] }
  /** Each event for a random customer, sent with its API key's id (usage attributed to the key, as the seeded events are). */
  | { kind: 'ingest'; batchSize: number; customers: Array<{ id: string; keyId: string }> }
  | { kind: 'usage'; paths: string[] };

export interface Job {
  url: string;
  token: string;
  unit: Unit;
  /** closed: `inFlight` units at all times; open: `ratePerS` units started per second. */
  load: { mode: 'closed'; inFlight: number } | { mode: 'open'; ratePerS: number };
  warmupMs: number;
  durationMs: number;
}

export interface JobResult {
  /** Units completed in the measured window, per second (holds settled, batches, queries). */
  unitsPerS: number;
  /** Items per second: events accepted for ingest; equal to unitsPerS otherwise. */
  itemsPerS: number;
  requestsPerS: number;
  latencyMs: Percentiles;
  /** Per request kind (authorize, settle, ...). */
  byRequest: Record<string, Percentiles>;
  errors: number;
  firstErrors: string[];
}

const OPEN_LOOP_IN_FLIGHT_MAX = 4096;

class Recorder {
  measuring = false;
  units = 0;
  items = 0;
  requests = 0;
  errors = 0;
  firstErrors: string[] = [];
  all = new Samples();
  byRequest = new Map<string, Samples>();

  request(name: string, ms: number) {
    if (!this.measuring) return;
    this.requests++;
    this.all.add(ms);
    let s = this.byRequest.get(name);
    if (!s) this.byRequest.set(name, (s = new Samples()));
    s.add(ms);
  }

  error(text: string) {
    if (!this.measuring) return;
    this.errors++;
    if (this.firstErrors.length < 5) this.firstErrors.push(text.slice(0, 300));
  }
}

function client(job: Job, connections: number) {
  const pool = new Pool(job.url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const headers = { authorization: `Bearer ${job.token}`, 'content-type': 'application/json' };
  /** One timed request; null (and an error counted) unless it answered `expect`. */
  return {
    pool,
    async call(rec: Recorder, name: string, method: 'GET' | 'POST', path: string, body: unknown, expect: number): Promise<any> {
      const started = performance.now();
      const res = await pool.request({
        method,
        path,
        headers: method === 'POST' ? { ...headers, 'idempotency-key': randomBytes(12).toString('base64url') } : headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      rec.request(name, performance.now() - started);
      if (res.statusCode !== expect) {
        rec.error(`${name} ${res.statusCode} ${text}`);
        return null;
      }
      return JSON.parse(text);
    },
  };
}

type Client = ReturnType<typeof client>;

let eventSeq = 0;
const runTag = randomBytes(4).toString('hex');
const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;

/** One unit of work; resolves to the items it completed (0 on a refusal). */
function unitOf(unit: Unit, http: Client, rec: Recorder): () => Promise<number> {
  switch (unit.kind) {
    case 'hello':
      return async () => ((await http.call(rec, 'hello', 'POST', '/hello', { hello: 'world', n: 1 }, 200)) ? 1 : 0);
    case 'holds':
      return async () => {
        const auth = await http.call(rec, 'authorize', 'POST', '/v1/authorize', { api_key: pick(unit.keys), product: 'fal-ai/flux/dev', estimate: { megapixels: '2' } }, 200);
        if (!auth) return 0;
        const settled = await http.call(rec, 'settle', 'POST', `/v1/reservations/${auth.reservation.id}/settle`, { usage: { megapixels: '1.5' } }, 200);
        return settled ? 1 : 0;
      };
    case 'ingest':
      return async () => {
        const time = new Date().toISOString();
        const batch = Array.from({ length: unit.batchSize }, () => {
          const customer = pick(unit.customers);
          return {
            specversion: '1.0', id: `${runTag}-${++eventSeq}`, source: 'bench', type: 'usage', time, subject: customer.id,
            data: { product: 'fal-ai/flux/dev', api_key_id: customer.keyId, megapixels: '1.5' },
          };
        });
        const reply = await http.call(rec, `batch of ${unit.batchSize}`, 'POST', '/v1/events', batch, 200);
        const accepted = reply ? (reply.data as Array<{ status: string }>).filter((r) => r.status === 'accepted').length : 0;
        if (reply && accepted !== unit.batchSize) rec.error(`batch: ${unit.batchSize - accepted} not accepted: ${JSON.stringify(reply.data.find((r: { status: string }) => r.status !== 'accepted'))}`);
        return accepted;
      };
    case 'usage':
      return async () => ((await http.call(rec, 'usage', 'GET', pick(unit.paths), undefined, 200)) ? 1 : 0);
  }
}

async function runJob(job: Job): Promise<JobResult> {
  const rec = new Recorder();
  const connections = job.load.mode === 'closed' ? job.load.inFlight : 256;
  const http = client(job, connections);
  const unit = unitOf(job.unit, http, rec);
  const counted = async () => {
    const items = await unit().catch((err: Error) => (rec.error(`${err.name}: ${err.message}`), 0));
    if (rec.measuring && items > 0) {
      rec.units++;
      rec.items += items;
    }
  };
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const end = measureFrom + job.durationMs;
  const timer = setTimeout(() => (rec.measuring = true), job.warmupMs);
  const stopAt = setTimeout(() => (rec.measuring = false), job.warmupMs + job.durationMs);
  if (job.load.mode === 'closed') {
    await Promise.all(Array.from({ length: job.load.inFlight }, async () => {
      while (performance.now() < end) await counted();
    }));
  } else {
    await openLoop(job.load.ratePerS, end, counted);
  }
  clearTimeout(timer);
  clearTimeout(stopAt);
  await http.pool.close();
  const seconds = job.durationMs / 1000;
  const byRequest = Object.fromEntries([...rec.byRequest].map(([name, s]) => [name, s.percentiles()]));
  return {
    unitsPerS: round(rec.units / seconds, 1),
    itemsPerS: round(rec.items / seconds, 1),
    requestsPerS: round(rec.requests / seconds, 1),
    latencyMs: rec.all.percentiles(),
    byRequest,
    errors: rec.errors,
    firstErrors: rec.firstErrors,
  };
}

/** Starts units on schedule (catching up after a late timer), never waiting for replies. */
async function openLoop(ratePerS: number, end: number, run: () => Promise<void>) {
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  let started = 0;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * ratePerS);
    while (started < due && inFlight.size < OPEN_LOOP_IN_FLIGHT_MAX) {
      started++;
      const p = run().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
}

process.on('message', (job: Job) => {
  runJob(job).then(
    (result) => process.send!({ result }),
    (err: Error) => process.send!({ error: err.stack ?? String(err) }),
  );
});
