import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineResult, RunResult, Scenario } from '../../bench/report.js';
import { printTable, printTargets } from '../../bench/report.js';
import { cpuBound, targetRows } from '../../bench/targets.js';

const root = join(import.meta.dirname, '..', '..');

function scenario(over: Partial<Scenario> = {}): Scenario {
  return {
    unitsPerS: 0,
    itemsPerS: 0,
    requestsPerS: 0,
    latencyMs: { count: 100, p50: 1, p99: 2, p999: 3, max: 3 },
    byRequest: {},
    errors: 0,
    firstErrors: [],
    rssMb: 100,
    cpu: null,
    gc: null,
    load: { mode: 'closed', inFlight: 64 },
    ...over,
  } as Scenario;
}

function engine(over: Partial<EngineResult> = {}): EngineResult {
  return {
    engine: 'postgres',
    version: '15',
    customers: 10,
    storedEvents: 0,
    seedCustomersS: 0,
    seedEventsS: 0,
    baselines: { naiveTransfersPerS: 1_000, setBasedTransfersPerS: 10_000, copyEventsPerS: 90_000 },
    ...over,
  };
}

function run(engines: EngineResult[], over: Partial<RunResult> = {}): RunResult {
  return {
    startedAt: '2026-12-07T00:00:00.000Z',
    seconds: 300,
    mode: 'full',
    machine: { cores: 2, cpu: 'test' },
    inFlight: 64,
    plan: {},
    hello: scenario({ requestsPerS: 10_000 }),
    engines,
    ...over,
  };
}

const cellOf = (rows: string[][], name: string, column = 2) => rows.find((row) => row[0] === name)?.[column];

describe('bench: issue 6 targets against a run', () => {
  it('says met at the goal and missed just short of it', () => {
    const holds = (holdsPerS: number, p99: number) => ({
      full: scenario({ unitsPerS: holdsPerS, requestsPerS: 2 * holdsPerS }),
      half: scenario({ latencyMs: { count: 100, p50: 1, p99, p999: p99, max: p99 } }),
      hot: scenario({ unitsPerS: 3_000 }),
    });
    const rows = targetRows(run([engine({ holds: holds(6_000, 9.99) }), engine({ engine: 'pglite', holds: holds(5_999, 10) })]));
    expect(cellOf(rows, 'Authorize -> settle, holds/s settled')).toBe('6,000 (met)');
    expect(cellOf(rows, 'Authorize -> settle, holds/s settled', 3)).toBe('5,999 (missed)');
    // 12,000 requests/s against a 10,000-request ceiling.
    expect(cellOf(rows, '  requests/s, share of the HTTP ceiling')).toBe('120% (met)');
    expect(cellOf(rows, '  vs the naive ledger')).toBe('6.00x (met)');
    expect(cellOf(rows, '  latency p99 at half load, ms')).toBe('9.99 (met)');
    expect(cellOf(rows, '  latency p99 at half load, ms', 3)).toBe('10 (missed)');
    expect(cellOf(rows, 'One hot customer, holds/s settled')).toBe('3,000 (met)');
  });

  it('leaves out targets the run did not measure, and the CPU line without CPU figures', () => {
    const rows = targetRows(run([engine({ ingest: { ingest100: scenario(), ingest1000: scenario({ itemsPerS: 8_600, rssMb: 301 }) } })]));
    expect(rows.map((row) => row[0])).toEqual(['Ingest, events/s committed (batches of 1,000)', 'Server RSS peak, MB, any scenario']);
    expect(cellOf(rows, 'Ingest, events/s committed (batches of 1,000)')).toBe('8,600 (missed)');
    expect(cellOf(rows, 'Server RSS peak, MB, any scenario')).toBe('301 (missed)');
  });

  it('puts what a unit cost all processes in CPU, and what the cores allow at that cost, under a throughput target', () => {
    // 1,000 holds/s keeping 1.2 cores busy: 1.2 ms per hold, so two cores allow 1,667 holds/s; 60% of them were busy.
    const full = scenario({ unitsPerS: 1_000, requestsPerS: 2_000, cpu: { server: 0.5, postgres: 0.5, generator: 0.2 } });
    expect(cpuBound(full, 1_000, 2)).toEqual({ cpuSecondsPerUnit: expect.closeTo(0.0012, 9), unitsPerS: expect.closeTo(1_666.67, 1), share: expect.closeTo(0.6, 9) });
    const rows = targetRows(run([engine({ holds: { full, half: scenario(), hot: scenario() } })]));
    const names = rows.map((row) => row[0]);
    const cpuRow = names.indexOf('  CPU ms per hold (all processes) -> most/s 2 cores allow');
    expect(cpuRow).toBe(names.indexOf('Authorize -> settle, holds/s settled') + 1);
    expect(rows[cpuRow]![2]).toBe('1.20 -> 1,667 (60% reached)');
    // PGlite has no PostgreSQL process: its CPU is the server's and the generator's.
    expect(cpuBound(scenario({ cpu: { server: 0.9, postgres: null, generator: 0.1 } }), 500, 2)).toMatchObject({ unitsPerS: 1_000, share: 0.5 });
    expect(cpuBound(scenario(), 500, 2)).toBeNull();
  });

  it('judges the run time by the mode: a full run under ten minutes, a quick one under one', () => {
    expect(printTargets(run([], { seconds: 599 }))).toContain('full run: 599 s (goal < 600: met)');
    expect(printTargets(run([], { seconds: 61, mode: 'quick' }))).toContain('quick run: 61 s (goal < 60: missed)');
  });
});

describe('README "Performance"', () => {
  // The tables are pasted from `npx tsx bench/print.ts <the run's JSON>`; a figure or verdict edited by hand, or a table left from another run, fails here.
  it('shows the tables of the run it cites, as that run printed them', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Performance'), readme.indexOf('\n## ', readme.indexOf('## Performance') + 1));
    const cited = section.match(/bench\/results\/([0-9TZ-]+)\.json/)?.[0];
    expect(cited).toBeDefined();
    const result = JSON.parse(readFileSync(join(root, cited!), 'utf8')) as RunResult;
    const tableLines = [...printTable(result).split('\n').filter((l) => l.startsWith('|')), ...printTargets(result).split('\n').filter((l) => l.startsWith('|'))];
    expect(tableLines.length).toBeGreaterThan(20);
    for (const line of tableLines) expect(section).toContain(line);
    expect(section).toContain(printTargets(result).trim().split('\n').at(-1)!);
  });
});
