// Issue 6's performance targets, checked against a run's results: the table `npm run bench` prints
// under its figures and the README's "Against the targets" shows, so the verdicts always come from
// the run they cite.
import type { EngineResult, RunResult, Scenario } from './report.js';
import { cpuTimeIn } from './stats.js';

/** What a target's unit costs in CPU: the scenario its value (units per second) was measured in, and how to print the cost. */
interface CpuCost {
  unit: string;
  scale: number;
  scenario: (e: EngineResult) => Scenario | undefined;
}

/** A target: what it measures, its goal as written, and whether a value meets it. */
interface Target {
  name: string;
  goal: string;
  /** null: the run did not measure it (a scenario group left out, or no /proc for CPU). */
  value: (e: EngineResult, r: RunResult) => number | null;
  met: (value: number) => boolean;
  format: (value: number) => string;
  /** Throughput targets: under them, what a unit cost in CPU and so what the cores allow. */
  cost?: CpuCost;
}

const count = (v: number) => Math.round(v).toLocaleString('en-US');
const times = (v: number) => `${v.toFixed(2)}x`;
const percent = (v: number) => `${Math.round(v * 100)}%`;

export const TARGETS: Target[] = [
  {
    name: 'Authorize -> settle, holds/s settled',
    goal: '>= 6,000',
    value: (e) => e.holds?.full.unitsPerS ?? null,
    met: (v) => v >= 6_000,
    format: count,
    cost: { unit: 'ms per hold', scale: 1_000, scenario: (e) => e.holds?.full },
  },
  {
    name: '  requests/s, share of the HTTP ceiling',
    goal: '>= 60%',
    value: (e, r) => (e.holds && r.hello.requestsPerS > 0 ? e.holds.full.requestsPerS / r.hello.requestsPerS : null),
    met: (v) => v >= 0.6,
    format: percent,
  },
  {
    name: '  vs the naive ledger',
    goal: '>= 1.5x',
    value: (e) => (e.holds && e.baselines.naiveTransfersPerS > 0 ? e.holds.full.unitsPerS / e.baselines.naiveTransfersPerS : null),
    met: (v) => v >= 1.5,
    format: times,
  },
  {
    name: '  latency p99 at half load, ms',
    goal: '< 10',
    value: (e) => e.holds?.half.latencyMs.p99 ?? null,
    met: (v) => v < 10,
    format: (v) => String(v),
  },
  {
    name: 'One hot customer, holds/s settled',
    goal: '>= 3,000',
    value: (e) => e.holds?.hot.unitsPerS ?? null,
    met: (v) => v >= 3_000,
    format: count,
  },
  {
    name: 'Ingest, events/s committed (batches of 1,000)',
    goal: '>= 100,000',
    value: (e) => e.ingest?.ingest1000.itemsPerS ?? null,
    met: (v) => v >= 100_000,
    format: count,
    cost: { unit: 'µs per event', scale: 1_000_000, scenario: (e) => e.ingest?.ingest1000 },
  },
  {
    name: 'Server RSS peak, MB, any scenario',
    goal: '<= 300',
    value: (e) => {
      const peaks = scenariosOf(e).map((s) => s.rssMb);
      return peaks.length > 0 ? Math.max(...peaks) : null;
    },
    met: (v) => v <= 300,
    format: count,
  },
];

function scenariosOf(e: EngineResult): Scenario[] {
  return [e.holds?.full, e.holds?.half, e.holds?.light, e.holds?.hot, e.ingest?.ingest100, e.ingest?.ingest1000, e.usage?.customerMonth, e.usage?.allCustomersDay].filter(
    (s): s is Scenario => s !== undefined,
  );
}

/**
 * What the machine's cores allow a scenario: the CPU one unit (a hold, an event) cost all the
 * processes measured, and so the most units per second the cores could give at that cost. `share`
 * is how much of that the run reached (the cores it kept busy).
 */
export function cpuBound(s: Scenario, perS: number, cores: number): { cpuSecondsPerUnit: number; unitsPerS: number; share: number } | null {
  if (!s.cpu || perS <= 0) return null;
  const busy = (s.cpu.server ?? 0) + (s.cpu.postgres ?? 0) + (s.cpu.generator ?? 0);
  if (busy <= 0) return null;
  return { cpuSecondsPerUnit: busy / perS, unitsPerS: (cores * perS) / busy, share: busy / cores };
}

type Row = [string, ...string[]];

/**
 * One row per target the run measured (a column per engine: the value, met or missed); under the
 * throughput targets, what a unit cost all processes in CPU and so the most the machine's cores allow.
 */
export function targetRows(r: RunResult): Row[] {
  const cores = Number(r.machine.cores) || 1;
  return TARGETS.filter((t) => r.engines.some((e) => t.value(e, r) !== null)).flatMap((t): Row[] => {
    const verdict: Row = [t.name, t.goal, ...r.engines.map((e) => {
      const v = t.value(e, r);
      return v === null ? '-' : `${t.format(v)} (${t.met(v) ? 'met' : 'missed'})`;
    })];
    const cost = t.cost;
    if (!cost) return [verdict];
    const cells = r.engines.map((e) => {
      const scenario = cost.scenario(e);
      const perS = t.value(e, r);
      const b = scenario && perS !== null && cpuBound(scenario, perS, cores);
      return b ? `${cpuTimeIn(b.cpuSecondsPerUnit, cost.scale)} -> ${count(b.unitsPerS)} (${percent(b.share)} reached)` : '-';
    });
    return cells.every((c) => c === '-') ? [verdict] : [verdict, [`  CPU ${cost.unit} (all processes) -> most/s ${cores} cores allow`, '', ...cells]];
  });
}

/** The run's own time against its goal: a full run under ten minutes, a quick one under one. */
export function runTimeVerdict(r: RunResult): string {
  const goal = r.mode === 'full' ? 600 : 60;
  return `${r.mode} run: ${r.seconds} s (goal < ${goal}: ${r.seconds < goal ? 'met' : 'missed'})`;
}
