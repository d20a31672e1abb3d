// npm run bench:compare -- --base=<git ref> [--engine=postgres|pglite] [--scenarios=holds,hot,ingest]
//                          [--rounds=3] [--seconds=8] [--customers=10000] [--in-flight=64]
//                          [--light-rate=50] [--half-rate=500]
// The same scenarios on two builds of Tollgate, this working tree and `--base`, run in alternation
// (base, this tree, base, this tree, ...) so that both see the machine in the same state: on a
// shared virtual machine the same build's figures drift by half within minutes (the load
// generator's own CPU per hold, whose code does not change, moved from 0.22 to 0.44 ms in one
// session), so figures from two separate `npm run bench` runs do not compare. Each build seeds a
// template once with its own code and migrations; every run starts from a fresh copy of it (a
// PostgreSQL database or a PGlite directory), so no run inherits another's rows or plans.
// Prints each run and the medians, and writes bench/results/compare-<timestamp>.json.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchCpu } from './cpu.js';
import type { Job, Unit } from './load-generator.js';
import { databaseUrl, withAdmin } from './postgres-admin.js';
import { ADMIN_TOKEN, LIGHT_LOAD_HOLDS_PER_S, backgroundDone, freePort, shippedRuntime, startLoadGenerator, startServer, tollgateEnv, type ShippedRuntime } from './processes.js';
import { ingestCustomers } from './seed.js';
import { round } from './stats.js';

const args = process.argv.slice(2);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const baseRef = option('base');
if (!baseRef) throw new Error('--base=<git ref> is required: the build to compare this working tree with');
const engine = (option('engine') ?? 'postgres') as 'postgres' | 'pglite';
const scenarios = (option('scenarios') ?? 'holds,hot,ingest').split(',') as ScenarioName[];
const rounds = Number(option('rounds') ?? 3);
const seconds = Number(option('seconds') ?? 8);
const customers = Number(option('customers') ?? 10_000);
/** Authorize -> settle chains in flight. */
const inFlight = Number(option('in-flight') ?? 64);
/** Holds started per second by the open-loop scenarios: `light` (a platform's quiet hours) and `half`. */
const lightRate = Number(option('light-rate') ?? LIGHT_LOAD_HOLDS_PER_S);
const halfRate = Number(option('half-rate') ?? 500);
const WARMUP_MS = 3_000;
const root = join(import.meta.dirname, '..');

type ScenarioName = 'holds' | 'hot' | 'ingest' | 'light' | 'half';
/** Holds started per second by a scenario at a fixed arrival rate (what it measures is latency, not how many per second); null: closed loop. */
const openRateOf = (name: ScenarioName) => (name === 'light' ? lightRate : name === 'half' ? halfRate : null);
interface Side {
  name: 'base' | 'this tree';
  dir: string;
  /** How its server runs: its own Dockerfile's heap flags and allocator. */
  runtime: ShippedRuntime;
  template: string;
  seeded: { customers: Array<{ id: string; keyId: string; key: string }> };
}

function log(line: string) {
  process.stderr.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function run(cmd: string, argv: string[], cwd: string) {
  const done = spawnSync(cmd, argv, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (done.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed in ${cwd}`);
}

/** Seeds a template with the side's own code: its migrations, services and bench/seed.ts. */
async function seed(dir: string, template: string): Promise<Side['seeded']> {
  const { buildApp } = await import(join(dir, 'src/main.ts'));
  const { loadConfig } = await import(join(dir, 'src/platform/config.ts'));
  const { openDb } = await import(join(dir, 'src/platform/db.ts'));
  const { seedCustomers } = await import(join(dir, 'bench/seed.ts'));
  if (engine === 'postgres') await withAdmin((c) => c.query(`CREATE DATABASE ${template}`));
  const db = await openDb(engine === 'postgres' ? { databaseUrl: databaseUrl(template), poolSize: 10 } : { dataDir: template });
  const app = await buildApp({ ...loadConfig({ LOG_LEVEL: 'warn' }), adminToken: ADMIN_TOKEN }, { db, backgroundJobs: false });
  try {
    const seeded = await seedCustomers(app, ADMIN_TOKEN, customers);
    // The seeding's outbox events count as sent: a server would otherwise dispatch them during a run.
    await db.exec('UPDATE outbox_events SET dispatched_at = now(), published_at = now()');
    await db.exec(engine === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE');
    return seeded;
  } finally {
    await app.close();
    await db.close();
  }
}

/** A fresh copy of the side's template for one run; returns the server's environment and a cleanup. */
async function freshCopy(side: Side, stamp: string): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  if (engine === 'pglite') {
    const dir = join(tmpdir(), `tollgate-compare-run-${stamp}`);
    cpSync(side.template, dir, { recursive: true });
    return { env: { TOLLGATE_DATA_DIR: dir }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `tollgate_compare_run_${stamp}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${side.template} STRATEGY = file_copy`));
  return { env: { DATABASE_URL: databaseUrl(name) }, drop: () => withAdmin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))) };
}

function unitOf(name: ScenarioName, side: Side): { unit: Unit; load: Job['load'] } {
  const keys = side.seeded.customers.map((c) => c.key);
  if (name === 'ingest') return { unit: { kind: 'ingest', batchSize: 1000, customers: ingestCustomers(side.seeded) }, load: { mode: 'closed', inFlight: 4 } };
  const ratePerS = openRateOf(name);
  if (ratePerS !== null) return { unit: { kind: 'holds', keys }, load: { mode: 'open', ratePerS } };
  return { unit: { kind: 'holds', keys: name === 'hot' ? [keys[0]!] : keys }, load: { mode: 'closed', inFlight } };
}

interface Measured {
  perS: number;
  p50: number;
  p99: number;
  /** CPU ms per unit (hold, or 1,000 events): server, PostgreSQL, load generator. */
  cpu: { server: number | null; postgres: number | null; generator: number | null };
  errors: number;
  /** The server's peak RSS over the run, MB. */
  rssMb: number;
}

async function measure(side: Side, name: ScenarioName, stamp: string, generator: ReturnType<typeof startLoadGenerator>): Promise<Measured> {
  const copy = await freshCopy(side, stamp);
  const port = await freePort();
  const server = await startServer(join(side.dir, 'dist', 'cli.js'), ['serve'], tollgateEnv(copy.env, port, side.runtime), port, '/readyz');
  try {
    await backgroundDone(server, 120_000);
    const { unit, load } = unitOf(name, side);
    let stopCpu: ReturnType<typeof watchCpu> | null = null;
    const stopRss = server.watchRss();
    const warm = setTimeout(() => (stopCpu = watchCpu({ server: server.pid, generator: generator.pid }, engine === 'postgres')), WARMUP_MS);
    const result = await generator.run({ url: server.url, token: ADMIN_TOKEN, unit, load, warmupMs: WARMUP_MS, durationMs: seconds * 1000 });
    clearTimeout(warm);
    const rssMb = stopRss();
    const cores = (stopCpu as ReturnType<typeof watchCpu> | null)?.() ?? { server: null, postgres: null, generator: null };
    const perS = name === 'ingest' ? result.itemsPerS : result.unitsPerS;
    const scale = name === 'ingest' ? 1_000_000 : 1000;
    const per = (c: number | null) => (c === null || perS === 0 ? null : round((c * scale) / perS, 3));
    return { perS, p50: result.latencyMs.p50, p99: result.latencyMs.p99, cpu: { server: per(cores.server), postgres: per(cores.postgres), generator: per(cores.generator) }, errors: result.errors, rssMb };
  } finally {
    await server.stop();
    await copy.drop();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const stamp = Date.now();
const workDir = mkdtempSync(join(tmpdir(), 'tollgate-compare-'));
const baseDir = join(workDir, 'base');
const sides: Side[] = [];
const generator = startLoadGenerator();
try {
  log(`building this tree and ${baseRef} (a worktree in ${baseDir})`);
  run('npx', ['tsc', '-p', 'tsconfig.build.json'], root);
  run('git', ['worktree', 'add', '--detach', baseDir, baseRef], root);
  symlinkSync(join(root, 'node_modules'), join(baseDir, 'node_modules'));
  run('npx', ['tsc', '-p', 'tsconfig.build.json'], baseDir);
  for (const [name, dir] of [['base', baseDir], ['this tree', root]] as const) {
    const template = engine === 'postgres' ? `tollgate_compare_${name === 'base' ? 'base' : 'head'}_${stamp}` : join(workDir, `template-${name === 'base' ? 'base' : 'head'}`);
    const runtime = shippedRuntime(dir);
    log(`seeding ${customers} customers with ${name}'s code (${engine}); its server: ${runtime.description || 'no image settings'}`);
    sides.push({ name, dir, runtime, template, seeded: await seed(dir, template) });
  }
  const runs: Array<{ round: number; scenario: ScenarioName; side: Side['name'] } & Measured> = [];
  for (let r = 1; r <= rounds; r++) {
    for (const scenario of scenarios) {
      for (const side of sides) {
        const m = await measure(side, scenario, `${stamp}_${r}_${scenario}_${side.name === 'base' ? 'b' : 'h'}`, generator);
        runs.push({ round: r, scenario, side: side.name, ...m });
        log(`round ${r} ${scenario.padEnd(6)} ${side.name.padEnd(9)} ${round(m.perS, 0)}/s  p50 ${m.p50} ms  p99 ${m.p99} ms  CPU server/PostgreSQL/generator ${m.cpu.server}/${m.cpu.postgres}/${m.cpu.generator}  RSS ${m.rssMb} MB${m.errors ? `  ${m.errors} errors` : ''}`);
      }
    }
  }
  const lines = [`${engine}, ${customers} customers, ${rounds} rounds of ${seconds} s, alternated; base ${baseRef}`, '', '| scenario | base, per s (each run) | this tree, per s (each run) | median ratio | CPU per unit, base -> this tree (server / PostgreSQL / generator, medians) | server RSS peak MB, base -> this tree (medians) |', '|---|---|---|---|---|---|'];
  const latency = ['', '| scenario | base, p50 / p99 ms (each run) | this tree, p50 / p99 ms (each run) | medians, base -> this tree |', '|---|---|---|---|'];
  for (const scenario of scenarios) {
    const of = (side: Side['name']) => runs.filter((x) => x.scenario === scenario && x.side === side);
    const [b, h] = [of('base'), of('this tree')];
    const cpu = (xs: Measured[]) => (['server', 'postgres', 'generator'] as const).map((k) => { const v = xs.map((x) => x.cpu[k]).filter((c): c is number => c !== null); return v.length ? median(v).toFixed(2) : '-'; }).join(' / ');
    const pair = (xs: Measured[]) => xs.map((x) => `${x.p50} / ${x.p99}`).join(', ');
    const medians = (xs: Measured[]) => `${round(median(xs.map((x) => x.p50)), 2)} / ${round(median(xs.map((x) => x.p99)), 2)}`;
    const ratePerS = openRateOf(scenario);
    latency.push(`| ${scenario}${ratePerS === null ? '' : ` (${ratePerS} holds/s)`} | ${pair(b)} | ${pair(h)} | ${medians(b)} -> ${medians(h)} |`);
    if (ratePerS !== null) continue;
    const unit = scenario === 'ingest' ? 'events, CPU ms per 1,000' : 'holds, CPU ms per hold';
    lines.push(`| ${scenario} (${unit}) | ${b.map((x) => round(x.perS, 0)).join(', ')} | ${h.map((x) => round(x.perS, 0)).join(', ')} | ${(median(h.map((x) => x.perS)) / median(b.map((x) => x.perS))).toFixed(2)}x | ${cpu(b)} -> ${cpu(h)} | ${median(b.map((x) => x.rssMb))} -> ${median(h.map((x) => x.rssMb))} |`);
  }
  const closedLoop = scenarios.some((name) => openRateOf(name) === null);
  process.stdout.write([...(closedLoop ? lines : lines.slice(0, 1)), ...latency].join('\n') + '\n');
  const out = join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `compare-${new Date(stamp).toISOString().replace(/[:.]/g, '-')}.json`);
  const servers = Object.fromEntries(sides.map((side) => [side.name, side.runtime.description]));
  writeFileSync(file, JSON.stringify({ base: baseRef, engine, customers, rounds, seconds, inFlight, lightRate, halfRate, servers, runs }, null, 2) + '\n');
  process.stdout.write(`\nWritten: ${file}\n`);
} finally {
  await generator.stop();
  for (const side of sides) {
    if (engine === 'postgres') await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${side.template} WITH (FORCE)`)).catch(() => {});
  }
  spawnSync('git', ['worktree', 'remove', '--force', baseDir], { cwd: root });
  rmSync(workDir, { recursive: true, force: true });
}
