// The shape of bench/results/<timestamp>.json and the table printed at the end of a run.
import type { Job, JobResult } from './load-generator.js';
import { cpuTimeIn, type Percentiles } from './stats.js';
import type { CpuUse } from './cpu.js';
import { loopLateMaxMs, type SavedGcUse } from './gc.js';
import type { InsideServer } from './inside-server.js';
import { runTimeVerdict, targetRows } from './targets.js';

/**
 * cpu: the cores each process kept busy while the scenario was measured (null without /proc);
 * gc: the server's collection pauses and event-loop delay then (null where it has no /metrics);
 * inside: its own time over the hot path's requests and commits then (since 2026-12-08).
 */
export type Scenario = JobResult & { rssMb: number; cpu: CpuUse | null; gc: SavedGcUse | null; inside?: InsideServer | null; load: Job['load'] };

export interface EngineResult {
  engine: 'postgres' | 'pglite';
  version?: string;
  customers: number;
  storedEvents: number;
  seedCustomersS: number;
  seedEventsS: number;
  /** Each group is absent when --scenarios (or --profile, holds alone) left it out. */
  /** light: since 2026-12-07 (absent from earlier results). */
  holds?: { full: Scenario; half: Scenario; light?: Scenario; hot: Scenario };
  ingest?: { ingest100: Scenario; ingest1000: Scenario };
  usage?: { customerMonth: Scenario; allCustomersDay: Scenario };
  baselines: { naiveTransfersPerS: number; setBasedTransfersPerS: number; copyEventsPerS: number | null };
}

export interface RunResult {
  startedAt: string;
  seconds: number;
  mode: 'quick' | 'full';
  machine: Record<string, string | number>;
  inFlight: number;
  plan: unknown;
  hello: Scenario;
  engines: EngineResult[];
}

const n = (v: number) => Math.round(v).toLocaleString('en-US');
const ms = (p: Percentiles) => `${p.p50} / ${p.p99} / ${p.p999}`;
const ratio = (a: number, b: number | null) => (b ? `${(a / b).toFixed(2)}x` : 'n/a');
const pauses = (s: Scenario) =>
  s.gc ? `${s.gc.pauseMsPerS.toFixed(0)} / ${s.gc.longPausesPer10s.toFixed(1)} / ${s.gc.fullPer10s.toFixed(1)} / ${loopLateMaxMs(s.gc).toFixed(0)}` : '-';
/** p99 ms and the share over 10 ms, of the server's hot-path answers and of its ledger commits. */
const inside = (s: Scenario) => {
  const i = s.inside;
  if (!i) return '-';
  const of = (p99: number | null, over: number | null) => (p99 === null || over === null ? '-' : `${p99.toFixed(1)} (${(100 * over).toFixed(1)}%)`);
  return `${of(i.requestP99Ms, i.requestsOver10ms)} / ${of(i.commitP99Ms, i.commitsOver10ms)}`;
};
const errors = (s: Scenario) => (s.errors > 0 ? ` (${s.errors} errors)` : '');
/** CPU time per unit (a hold, an event, a request) of the server / PostgreSQL / load generator, in `scale` (1000: ms). */
const cpuPer = (s: Scenario, perS: number, scale: number) => {
  if (!s.cpu || perS <= 0) return '-';
  const of = (cores: number | null) => (cores === null ? '-' : cpuTimeIn(cores / perS, scale));
  return [s.cpu.server, s.cpu.postgres, s.cpu.generator].map(of).join(' / ');
};

/** One row per measure, one column per engine. */
function rows(r: RunResult): Array<[string, ...string[]]> {
  const col = (f: (e: EngineResult) => string): string[] => r.engines.map(f);
  const hello = r.hello.requestsPerS;
  return [
    ['Hello-world Fastify JSON POST, requests/s (the HTTP ceiling)', ...col(() => n(hello))],
    ['  CPU ms per request: server / - / load generator', ...col(() => cpuPer(r.hello, hello, 1000))],
    // --scenarios (and --profile) may leave groups out.
    ...(r.engines.every((e) => e.holds) ? [
      [`Authorize -> settle, holds/s settled (${r.inFlight} in flight)`, ...col((e) => n(e.holds!.full.unitsPerS) + errors(e.holds!.full))],
      ['  requests/s, and share of the HTTP ceiling', ...col((e) => `${n(e.holds!.full.requestsPerS)} (${((100 * e.holds!.full.requestsPerS) / hello).toFixed(0)}%)`)],
      ['  latency p50 / p99 / p999 ms, full load', ...col((e) => ms(e.holds!.full.latencyMs))],
      ['  latency p50 / p99 / p999 ms, half load (open loop)', ...col((e) => `${ms(e.holds!.half.latencyMs)} at ${n(e.holds!.half.unitsPerS)} holds/s${errors(e.holds!.half)}`)],
      ['  half load: server GC ms/s / 10ms+ / full per 10 s / lag ms', ...col((e) => pauses(e.holds!.half))],
      ['  half load inside the server, p99 ms (share > 10 ms): answer / commit', ...col((e) => inside(e.holds!.half))],
      ['  latency p50 / p99 / p999 ms, light load (open loop)', ...col((e) => { const light = e.holds!.light; return light ? `${ms(light.latencyMs)} at ${n(light.unitsPerS)} holds/s${errors(light)}` : '-'; })],
      ['  vs naive ledger (holds/s / transfers/s)', ...col((e) => ratio(e.holds!.full.unitsPerS, e.baselines.naiveTransfersPerS))],
      ['  CPU ms per hold: server / PostgreSQL / load generator', ...col((e) => cpuPer(e.holds!.full, e.holds!.full.unitsPerS, 1000))],
      ['One hot customer, holds/s settled', ...col((e) => n(e.holds!.hot.unitsPerS) + errors(e.holds!.hot))],
    ] satisfies Array<[string, ...string[]]> : []),
    ...(r.engines.every((e) => e.ingest) ? [
      ['Ingest, batches of 100: events/s committed', ...col((e) => n(e.ingest!.ingest100.itemsPerS) + errors(e.ingest!.ingest100))],
      ['Ingest, batches of 1,000: events/s committed', ...col((e) => n(e.ingest!.ingest1000.itemsPerS) + errors(e.ingest!.ingest1000))],
      ['  vs COPY of the same rows', ...col((e) => ratio(e.ingest!.ingest1000.itemsPerS, e.baselines.copyEventsPerS))],
      ['  CPU µs per event: server / PostgreSQL / load generator', ...col((e) => cpuPer(e.ingest!.ingest1000, e.ingest!.ingest1000.itemsPerS, 1_000_000))],
    ] satisfies Array<[string, ...string[]]> : []),
    ...(r.engines.every((e) => e.usage) ? [
      ['Usage query, 1 customer, 30 days by day: p50 / p99 ms', ...col((e) => `${e.usage!.customerMonth.latencyMs.p50} / ${e.usage!.customerMonth.latencyMs.p99}`)],
      ['Usage query, all customers, 1 day by hour: p50 / p99 ms', ...col((e) => `${e.usage!.allCustomersDay.latencyMs.p50} / ${e.usage!.allCustomersDay.latencyMs.p99}`)],
      ['  stored events (rollup rows are built from them)', ...col((e) => n(e.storedEvents))],
    ] satisfies Array<[string, ...string[]]> : []),
    ['Server RSS peak MB: holds / hot / ingest / usage', ...col((e) => [e.holds?.full, e.holds?.hot, e.ingest?.ingest1000, e.usage?.allCustomersDay].map((s) => s?.rssMb ?? '-').join(' / '))],
    ['Baseline: naive ledger, transfers/s (1 tx per transfer)', ...col((e) => n(e.baselines.naiveTransfersPerS))],
    ['Baseline: set-based SQL, transfers/s (100 per statement)', ...col((e) => n(e.baselines.setBasedTransfersPerS))],
    ['Baseline: COPY of the event rows, events/s', ...col((e) => (e.baselines.copyEventsPerS === null ? 'n/a' : n(e.baselines.copyEventsPerS)))],
  ];
}

function markdown(all: Array<[string, ...string[]]>): string[] {
  const widths = all[0]!.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(all[0]!), rule, ...all.slice(1).map(line)];
}

const engineName = (e: EngineResult) => (e.engine === 'postgres' ? `PostgreSQL ${e.version ?? ''}`.trim() : 'PGlite');

export function printTable(r: RunResult): string {
  const header: [string, ...string[]] = ['', ...r.engines.map(engineName)];
  return [`\n${r.mode} run, ${r.seconds} s, ${r.machine.cores} x ${r.machine.cpu}, ${r.machine.pinning}`, ...markdown([header, ...rows(r)])].join('\n') + '\n';
}

/** Issue 6's targets against this run: met or missed, and what the cores allow at the CPU a unit cost. */
export function printTargets(r: RunResult): string {
  const header: [string, ...string[]] = ['Target (issue 6, set for PostgreSQL)', 'goal', ...r.engines.map(engineName)];
  return [...markdown([header, ...targetRows(r)]), '', runTimeVerdict(r)].join('\n') + '\n';
}
