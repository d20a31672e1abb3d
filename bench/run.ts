// npm run bench [-- --quick] [-- --engine=postgres|pglite] [-- --scenarios=holds,ingest,usage] [-- --profile] [-- --seconds=N] [-- --events=N] [-- --customers=N]
// --scenarios: only these scenario groups run (default: all of them).
// --profile: the server runs with --cpu-prof (written to bench/profiles/); unless --scenarios
// says otherwise, only the authorize/settle scenarios run.
// The server is built first (tsc -p tsconfig.build.json into dist/) and runs as it ships, `node
// dist/cli.js serve`; --tsx runs src/cli.ts under tsx instead (no build; about 90 MB more RSS).
// Runs every scenario on PostgreSQL (a fresh database) and on PGlite (a fresh data directory),
// with the baselines in the same run; prints a table and writes bench/results/<timestamp>.json.
// See README "Performance" for what each line measures.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/main.js';
import { loadConfig } from '../src/platform/config.js';
import { openDb, type Db } from '../src/platform/db.js';
import { migrate } from '../src/platform/migrate.js';
import { copyEvents, naiveLedger, setBasedLedger } from './baselines.js';
import type { Job, JobResult, Unit } from './load-generator.js';
import { databaseUrl, pgAdminUrl, withAdmin } from './postgres-admin.js';
import { ADMIN_TOKEN, backgroundDone, freePort, pinning, shippedNodeOptions, startLoadGenerator, startServer, tollgateEnv, type Server } from './processes.js';
import { printTable, type EngineResult, type RunResult, type Scenario } from './report.js';
import { ingestCustomers, seedCustomers, seedStoredEvents, type Seeded } from './seed.js';
import { round } from './stats.js';
import { watchCpu, type CpuUse } from './cpu.js';

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
  ? { warmupMs: 300, firstWarmupMs: 800, durationMs: 1_000, customers: 1_000, storedEvents: { postgres: 100_000, pglite: 20_000 }, copyRows: 20_000, dbBaselineMs: 800 }
  : { warmupMs: 2_000, firstWarmupMs: 2_000, durationMs: 10_000, customers: 10_000, storedEvents: { postgres: 10_000_000, pglite: 1_000_000 }, copyRows: 200_000, dbBaselineMs: 10_000 };
// --seconds=N measures each scenario for N seconds; --events=N stores N events on both engines;
// --customers=N seeds N customers (a quick run's 1,000 leave tables small enough that PostgreSQL
// plans differently than at the full run's 10,000).
if (option('seconds')) plan.durationMs = Number(option('seconds')) * 1000;
if (option('customers')) plan.customers = Number(option('customers'));
if (option('events')) plan.storedEvents = { postgres: Number(option('events')), pglite: Number(option('events')) };
const IN_FLIGHT = 64;
const INGEST_IN_FLIGHT = { 100: 8, 1000: 4 } as const;
const DB_IN_FLIGHT = 10; // the server's connection pool size
const DAYS_STORED = 30;

function log(line: string) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

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
  const warm = setTimeout(() => (stopCpu = watchCpu({ server: server.pid, generator: generator.pid }, postgres && postgresIsLocal)), warmupMs);
  const result: JobResult = await generator.run({ url: server.url, token: ADMIN_TOKEN, unit, load: loadShape, warmupMs, durationMs: plan.durationMs });
  clearTimeout(warm);
  const scenario = { ...result, rssMb: stopRss(), cpu: (stopCpu as (() => CpuUse) | null)?.() ?? null, load: loadShape };
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

interface EngineTarget {
  engine: 'postgres' | 'pglite';
  databaseUrl?: string;
  dataDir?: string;
  /** The database already open (and migrated), when it was opened ahead of its turn. */
  opened?: Promise<Db>;
  /** Awaited after seeding, before the first measurement: work the run overlaps with seeding. */
  beforeMeasuring?: Promise<unknown>;
}

const root = join(import.meta.dirname, '..');
const nodeOptions = shippedNodeOptions(root);

async function tollgate(target: EngineTarget, port: number): Promise<Server> {
  const env = tollgateEnv(target.databaseUrl ? { DATABASE_URL: target.databaseUrl } : { TOLLGATE_DATA_DIR: target.dataDir! }, port, nodeOptions);
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
  log('  one hot customer');
  const hot = await run({ kind: 'holds', keys: [keys[0]!] }, { mode: 'closed', inFlight: IN_FLIGHT });
  return { full, half, hot };
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

async function dbBaselines(db: Db, target: EngineTarget, seeded: Seeded): Promise<EngineResult['baselines']> {
  log('  baseline: naive ledger');
  const naive = await naiveLedger(db, DB_IN_FLIGHT, plan.dbBaselineMs);
  log('  baseline: set-based, 100 transfers per statement');
  const setBased = await setBasedLedger(db, target.engine === 'postgres' ? 2 : 1, plan.dbBaselineMs);
  log('  baseline: COPY');
  const copy = target.databaseUrl ? await copyEvents(db, target.databaseUrl, plan.copyRows, seeded.customers, seeded.productId) : null;
  await db.exec('DROP TABLE IF EXISTS bench_transfers; DROP TABLE IF EXISTS bench_accounts; DROP TABLE IF EXISTS bench_events;');
  return { naiveTransfersPerS: naive, setBasedTransfersPerS: setBased, copyEventsPerS: copy };
}

/** Seeds and measures the database's own limits in this process, before the server starts. */
async function prepareDatabase(target: EngineTarget) {
  const db = await (target.opened ?? openDb({ databaseUrl: target.databaseUrl, dataDir: target.dataDir, poolSize: DB_IN_FLIGHT }));
  const app = await buildApp({ ...loadConfig({ LOG_LEVEL: 'warn' }), adminToken: ADMIN_TOKEN }, { db, backgroundJobs: false });
  try {
    let started = performance.now();
    const seeded = await seedCustomers(app, ADMIN_TOKEN, plan.customers);
    const seedCustomersS = round((performance.now() - started) / 1000, 1);
    log(`${target.engine}: ${plan.customers} customers seeded in ${seedCustomersS} s`);
    const stored = plan.storedEvents[target.engine];
    started = performance.now();
    const storedUntil = await seedStoredEvents(db, seeded, stored, DAYS_STORED);
    const seedEventsS = round((performance.now() - started) / 1000, 1);
    log(`  ${stored} stored events seeded in ${seedEventsS} s`);
    await target.beforeMeasuring;
    const baselines = await dbBaselines(db, target, seeded);
    return { seeded, storedUntil, stored, seedCustomersS, seedEventsS, baselines };
  } finally {
    await app.close();
    await db.close();
  }
}

async function runEngine(target: EngineTarget): Promise<EngineResult> {
  const { seeded, storedUntil, stored, seedCustomersS, seedEventsS, baselines } = await prepareDatabase(target);
  log('  starting Tollgate');
  const server = await tollgate(target, await freePort());
  try {
    log(`  background queues empty after ${((await backgroundDone(server, 300_000)) / 1000).toFixed(1)} s`);
    const result: EngineResult = { engine: target.engine, customers: plan.customers, storedEvents: stored, seedCustomersS, seedEventsS, baselines };
    const run: Run = (unit, shape) => load(server, unit, shape, target.engine === 'postgres');
    if (scenarios.has('holds')) result.holds = await holds(run, seeded);
    if (scenarios.has('ingest')) result.ingest = await ingest(run, seeded);
    if (scenarios.has('usage')) result.usage = await usageQueries(run, seeded, storedUntil);
    return result;
  } finally {
    await server.stop();
  }
}

async function onPostgres(beforeMeasuring?: Promise<unknown>): Promise<EngineResult> {
  const name = `tollgate_bench_${Date.now()}`;
  return withAdmin(async (admin) => {
    const version = (await admin.query('SHOW server_version')).rows[0].server_version as string;
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      return { ...(await runEngine({ engine: 'postgres', databaseUrl: databaseUrl(name), beforeMeasuring })), version };
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
}

/**
 * A fresh PGlite database: created and migrated (seconds of this process's CPU) while PostgreSQL's
 * database seeds, when both engines run, not while anything is measured.
 */
function newPglite(): EngineTarget & { engine: 'pglite'; dataDir: string; opened: Promise<Db> } {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-pglite-'));
  const opened = openDb({ dataDir }).then(async (db) => {
    await migrate(db);
    return db;
  });
  opened.catch(() => {}); // awaited by its engine's turn; a failure is reported there
  return { engine: 'pglite', dataDir, opened };
}

async function onPglite(target = newPglite()): Promise<EngineResult> {
  try {
    return await runEngine(target);
  } finally {
    rmSync(target.dataDir, { recursive: true, force: true });
  }
}

const startedAt = new Date();
const server = `${underTsx ? 'src/cli.ts under tsx' : 'dist/cli.js'}${nodeOptions ? `, NODE_OPTIONS=${nodeOptions}` : ''}`;
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), freeMemoryGb: Math.round(freemem() / 2 ** 30), node: process.version, pinning: `${pinning}; server ${server}` };
log(`${quick ? 'quick' : 'full'} run on ${machine.cores} x ${machine.cpu}, ${pinning}`);
if (!underTsx) {
  log('building the server (tsc -p tsconfig.build.json)');
  // Incremental, its build info inside dist/ (gone with it): an unchanged tree builds in 1.5 s, not 7.
  const built = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', 'dist/.bench.tsbuildinfo'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the server did not build; fix it or run with --tsx');
}
const generator = startLoadGenerator();
log('hello-world ceiling');
const hello = await helloCeiling();
const engines: EngineResult[] = [];
const pglite = only !== 'postgres' ? newPglite() : null;
if (only !== 'pglite') engines.push(await onPostgres(pglite?.opened));
if (pglite) engines.push(await onPglite(pglite));
await generator.stop();
const result: RunResult = { startedAt: startedAt.toISOString(), seconds: Math.round((Date.now() - startedAt.getTime()) / 1000), mode: quick ? 'quick' : 'full', machine, inFlight: IN_FLIGHT, plan, hello, engines };
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(printTable(result));
process.stdout.write(`\nWritten: ${file}\n`);
