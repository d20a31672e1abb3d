// npm run bench [-- --quick] [-- --engine=postgres|pglite] [-- --scenarios=holds,ingest,usage] [-- --profile] [-- --seconds=N] [-- --events=N] [-- --customers=N] [-- --in-flight=N]
// --scenarios: only these scenario groups run (default: all of them).
// --profile: the server runs with --cpu-prof (written to bench/profiles/); unless --scenarios
// says otherwise, only the authorize/settle scenarios run.
// The server is built first (tsc -p tsconfig.build.json into dist/) and runs as it ships, `node
// dist/cli.js serve`; --tsx runs src/cli.ts under tsx instead (no build; about 90 MB more RSS).
// Runs every scenario on PostgreSQL (a fresh database) and on PGlite (a fresh data directory),
// with the baselines in the same run; prints a table and writes bench/results/<timestamp>.json.
// See README "Performance" for what each line measures.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../src/platform/db.js';
import type { Job, JobResult, Unit } from './load-generator.js';
import { startPglitePreparation, type PglitePreparation } from './pglite-preparation.js';
import { databaseUrl, pgAdminUrl, withAdmin } from './postgres-admin.js';
import { DAYS_STORED, DB_IN_FLIGHT, log, measureBaselines, secondsSince, seedDatabase, type Baselines, type Engine, type Seeding } from './prepare.js';
import { ADMIN_TOKEN, LIGHT_LOAD_HOLDS_PER_S, backgroundDone, freePort, pinning, shippedRuntime, startLoadGenerator, startServer, tollgateEnv, type Server } from './processes.js';
import { printTable, printTargets, type EngineResult, type RunResult, type Scenario } from './report.js';
import { ingestCustomers, type Seeded } from './seed.js';
import { watchCpu, type CpuUse } from './cpu.js';
import { watchServer, type ServerWindow } from './gc.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const underTsx = args.includes('--tsx');
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const scenarios = new Set((option('scenarios') ?? (profile ? 'holds' : 'holds,ingest,usage')).split(','));
const only = option('engine');
/** PostgreSQL on this machine: its processes' CPU is measured with the server's. */
const postgresIsLocal = ['127.0.0.1', 'localhost', '[::1]', ''].includes(new URL(pgAdminUrl).hostname);

/** Quick: a smoke run of every scenario in under a minute; full: the figures for the README. */
const plan = quick
  ? { warmupMs: 200, firstWarmupMs: 800, durationMs: 600, customers: 500, otherModels: 100, storedEvents: { postgres: 50_000, pglite: 20_000 }, copyRows: 20_000, dbBaselineMs: 800 }
  : { warmupMs: 2_000, firstWarmupMs: 2_000, durationMs: 10_000, customers: 10_000, otherModels: 300, storedEvents: { postgres: 10_000_000, pglite: 1_000_000 }, copyRows: 200_000, dbBaselineMs: 10_000 };
// --seconds=N measures each scenario for N seconds; --events=N stores N events on both engines;
// --customers=N seeds N customers (a quick run's 500 leave tables small enough that PostgreSQL
// plans differently than at the full run's 10,000).
if (option('seconds')) plan.durationMs = Number(option('seconds')) * 1000;
if (option('customers')) plan.customers = Number(option('customers'));
if (option('events')) plan.storedEvents = { postgres: Number(option('events')), pglite: Number(option('events')) };
// --in-flight=N: the chains (and hello-world requests) in flight, 64 unless told; how the figures
// change with more clients at once (docs/performance.md).
const IN_FLIGHT = Number(option('in-flight') ?? 64);
if (!Number.isInteger(IN_FLIGHT) || IN_FLIGHT < 1) throw new Error(`--in-flight must be a positive integer, not ${option('in-flight')}`);
const INGEST_IN_FLIGHT = { 100: 8, 1000: 4 } as const;

const warmedUp = new WeakSet<Server>();

/** A scenario on the server under test. */
type Run = (unit: Unit, loadShape: Job['load']) => Promise<Scenario>;

/** `postgres`: the scenario runs on the local PostgreSQL, whose CPU is measured too. */
async function load(server: Server, unit: Unit, loadShape: Job['load'], postgres = false): Promise<Scenario> {
  const stopRss = server.watchRss();
  // The generator measures after its warm-up; so does the CPU window.
  let stopCpu: (() => CpuUse) | null = null;
  // A server's first scenario also warms up its JIT (compiling on other threads, counted as its CPU).
  const warmupMs = warmedUp.has(server) ? plan.warmupMs : plan.firstWarmupMs;
  warmedUp.add(server);
  let stopWatch: Promise<(() => Promise<ServerWindow | null>) | null> = Promise.resolve(null);
  const warm = setTimeout(() => {
    stopCpu = watchCpu({ server: server.pid, generator: generator.pid }, postgres && postgresIsLocal);
    stopWatch = watchServer(server.url);
  }, warmupMs);
  const result: JobResult = await generator.run({ url: server.url, token: ADMIN_TOKEN, unit, load: loadShape, warmupMs, durationMs: plan.durationMs });
  clearTimeout(warm);
  const cpu = (stopCpu as (() => CpuUse) | null)?.() ?? null;
  const seen = (await (await stopWatch)?.()) ?? null;
  const scenario = { ...result, rssMb: stopRss(), cpu, gc: seen?.gc ?? null, inside: seen?.inside ?? null, load: loadShape };
  if (result.errors > 0) log(`  ${result.errors} errors, e.g. ${result.firstErrors[0]}`);
  return scenario;
}

async function helloCeiling(): Promise<Scenario> {
  const port = await freePort();
  const server = await startServer(join(import.meta.dirname, 'hello-server.ts'), [String(port)], {}, port, '/hello');
  try {
    return await load(server, { kind: 'hello' }, { mode: 'closed', inFlight: IN_FLIGHT });
  } finally {
    await server.stop();
  }
}

const root = join(import.meta.dirname, '..');
const runtime = shippedRuntime(root);

/** `database`: DATABASE_URL or TOLLGATE_DATA_DIR. */
async function tollgate(database: Record<string, string>, port: number): Promise<Server> {
  const env = tollgateEnv(database, port, runtime);
  const dir = join(import.meta.dirname, 'profiles');
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  return startServer(underTsx ? join(root, 'src', 'cli.ts') : join(root, 'dist', 'cli.js'), ['serve'], env, port, '/readyz', nodeArgs);
}

async function holds(run: Run, seeded: Seeded): Promise<EngineResult['holds']> {
  const keys = seeded.customers.map((c) => c.key);
  log('  authorize -> settle, full load');
  const full = await run({ kind: 'holds', keys }, { mode: 'closed', inFlight: IN_FLIGHT });
  log(`    ${full.unitsPerS} holds/s; half load`);
  const half = await run({ kind: 'holds', keys }, { mode: 'open', ratePerS: Math.max(1, Math.round(full.unitsPerS / 2)) });
  log(`  light load, ${LIGHT_LOAD_HOLDS_PER_S} holds/s`);
  const light = await run({ kind: 'holds', keys }, { mode: 'open', ratePerS: LIGHT_LOAD_HOLDS_PER_S });
  log('  one hot customer');
  const hot = await run({ kind: 'holds', keys: [keys[0]!] }, { mode: 'closed', inFlight: IN_FLIGHT });
  return { full, half, light, hot };
}

async function ingest(run: Run, seeded: Seeded): Promise<EngineResult['ingest']> {
  const customers = ingestCustomers(seeded);
  log('  ingest, batches of 100');
  const ingest100 = await run({ kind: 'ingest', batchSize: 100, customers }, { mode: 'closed', inFlight: INGEST_IN_FLIGHT[100] });
  log('  ingest, batches of 1,000');
  const ingest1000 = await run({ kind: 'ingest', batchSize: 1000, customers }, { mode: 'closed', inFlight: INGEST_IN_FLIGHT[1000] });
  return { ingest100, ingest1000 };
}

async function usageQueries(run: Run, seeded: Seeded, end: Date): Promise<EngineResult['usage']> {
  const to = end.toISOString();
  const monthFrom = new Date(end.getTime() - DAYS_STORED * 86_400_000).toISOString();
  const dayFrom = new Date(end.getTime() - 86_400_000).toISOString();
  const oneCustomer = seeded.customers.slice(0, 100).map((c) => `/v1/usage?customer=${c.id}&from=${monthFrom}&to=${to}&window=day`);
  const everyone = [`/v1/usage?from=${dayFrom}&to=${to}&window=hour`];
  log('  usage: one customer, 30 days by day');
  const customerMonth = await run({ kind: 'usage', paths: oneCustomer }, { mode: 'closed', inFlight: 4 });
  log('  usage: every customer, one day by hour');
  const allCustomersDay = await run({ kind: 'usage', paths: everyone }, { mode: 'closed', inFlight: 1 });
  return { customerMonth, allCustomersDay };
}

/** A database seeded and measured, ready for its server. */
type Prepared = Seeding & { baselines: Baselines };

async function runEngine(engine: Engine, database: Record<string, string>, prepared: Prepared): Promise<EngineResult> {
  const { seeded, storedUntil, stored, seedCustomersS, seedEventsS, baselines } = prepared;
  log(`${engine}: starting Tollgate`);
  const server = await tollgate(database, await freePort());
  try {
    log(`  background queues empty after ${((await backgroundDone(server, 300_000)) / 1000).toFixed(1)} s`);
    const result: EngineResult = { engine, customers: plan.customers, storedEvents: stored, seedCustomersS, seedEventsS, baselines };
    const run: Run = (unit, shape) => load(server, unit, shape, engine === 'postgres');
    if (scenarios.has('holds')) result.holds = await holds(run, seeded);
    if (scenarios.has('ingest')) result.ingest = await ingest(run, seeded);
    if (scenarios.has('usage')) result.usage = await usageQueries(run, seeded, storedUntil);
    return result;
  } finally {
    await server.stop();
  }
}

/**
 * Seeds PostgreSQL's database and measures its baselines in this process, before its server starts.
 * PGlite's seeding (on its own thread) runs beside PostgreSQL's and ends before anything is measured.
 */
async function preparePostgres(url: string, pglite: PglitePreparation | null): Promise<Prepared> {
  const db = await openDb({ databaseUrl: url, poolSize: DB_IN_FLIGHT });
  try {
    const pgliteSeeded = pglite?.seed();
    const seeding = await seedDatabase(db, 'postgres', plan);
    await pgliteSeeded;
    return { ...seeding, baselines: await measureBaselines(db, 'postgres', url, seeding.seeded, plan) };
  } finally {
    await db.close();
  }
}

async function onPostgres(pglite: PglitePreparation | null): Promise<EngineResult> {
  const name = `tollgate_bench_${Date.now()}`;
  return withAdmin(async (admin) => {
    const version = (await admin.query('SHOW server_version')).rows[0].server_version as string;
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const url = databaseUrl(name);
      const prepared = await preparePostgres(url, pglite);
      return { ...(await runEngine('postgres', { DATABASE_URL: url }, prepared)), version };
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
}

/** PGlite's turn: its data directory is removed with its thread at the end of the run. */
async function onPglite(pglite: PglitePreparation): Promise<EngineResult> {
  const prepared = { ...(await pglite.seed()), baselines: await pglite.baselines() };
  return runEngine('pglite', { TOLLGATE_DATA_DIR: pglite.dataDir }, prepared);
}

/** The server as it ships (tsc into dist/), built while PGlite's database is created. */
async function buildServer() {
  log('building the server (tsc -p tsconfig.build.json)');
  // Incremental, its build info inside dist/ (gone with it): an unchanged tree builds in 2-3 s, not 10.
  const tsc = spawn('npx', ['tsc', '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', 'dist/.bench.tsbuildinfo'], { cwd: root, stdio: 'inherit' });
  const status = await new Promise((resolve) => tsc.on('exit', resolve));
  if (status !== 0) throw new Error('the server did not build; fix it or run with --tsx');
  log(`  built after ${secondsSince(started)} s`);
}

const startedAt = new Date();
const started = performance.now();
const server = `${underTsx ? 'src/cli.ts under tsx' : 'dist/cli.js'}${runtime.description ? `, ${runtime.description}` : ''}`;
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), freeMemoryGb: Math.round(freemem() / 2 ** 30), node: process.version, pinning: `${pinning}; server ${server}` };
log(`${quick ? 'quick' : 'full'} run on ${machine.cores} x ${machine.cpu}, ${pinning}`);
// PGlite's initdb and migrations (seconds of CPU, on a thread of their own) and the load
// generator's start run while the server builds.
const pglite = only !== 'postgres' ? startPglitePreparation(plan) : null;
const generator = startLoadGenerator();
let hello: Scenario;
const engines: EngineResult[] = [];
try {
  if (!underTsx) await buildServer();
  if (pglite) {
    await pglite.opened; // nothing runs beside the hello-world ceiling
    log(`pglite: created and migrated after ${secondsSince(started)} s`);
  }
  log('hello-world ceiling');
  hello = await helloCeiling();
  if (only !== 'pglite') engines.push(await onPostgres(pglite));
  if (pglite) engines.push(await onPglite(pglite));
} finally {
  await generator.stop();
  await pglite?.remove();
}
const result: RunResult = { startedAt: startedAt.toISOString(), seconds: Math.round((Date.now() - startedAt.getTime()) / 1000), mode: quick ? 'quick' : 'full', machine, inFlight: IN_FLIGHT, plan, hello, engines };
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`${printTable(result)}\n${printTargets(result)}`);
process.stdout.write(`\nWritten: ${file}\n`);
