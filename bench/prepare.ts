// A database's turn before its server starts: seeding it (unmeasured) and measuring its own limits
// (the baselines). The same code runs in the bench's thread for PostgreSQL and in a worker thread
// for PGlite (bench/pglite-worker.ts), so that PGlite's seeding overlaps PostgreSQL's.
import { isMainThread, parentPort } from 'node:worker_threads';
import { buildApp } from '../src/main.js';
import { loadConfig } from '../src/platform/config.js';
import type { Db } from '../src/platform/db.js';
import { copyEvents, naiveLedger, setBasedLedger } from './baselines.js';
import { ADMIN_TOKEN } from './processes.js';
import type { EngineResult } from './report.js';
import { seedCustomers, seedStoredEvents, type Seeded } from './seed.js';
import { round } from './stats.js';

export type Engine = EngineResult['engine'];

/** What a run's size settings say to the preparation. */
export interface PreparePlan {
  customers: number;
  /** Models in the catalog besides the one the scenarios call (bench/seed.ts). */
  otherModels: number;
  storedEvents: Record<Engine, number>;
  copyRows: number;
  dbBaselineMs: number;
}

export interface Seeding {
  seeded: Seeded;
  /** The hour the stored events end at. */
  storedUntil: Date;
  stored: number;
  seedCustomersS: number;
  seedEventsS: number;
}

export type Baselines = EngineResult['baselines'];

/** The server's connection pool size, and so the naive ledger's connections. */
export const DB_IN_FLIGHT = 10;
export const DAYS_STORED = 30;

/** A progress line on stderr; a worker thread's goes through its port, in order with its replies. */
export function log(line: string) {
  const stamped = `[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`;
  if (isMainThread) process.stderr.write(stamped);
  else parentPort!.postMessage({ log: stamped });
}

/** Seconds since `since` (a performance.now() reading), to a tenth. */
export const secondsSince = (since: number) => round((performance.now() - since) / 1000, 1);

/** Customers (through the services the API calls, in process) and stored usage events. */
export async function seedDatabase(db: Db, engine: Engine, plan: PreparePlan): Promise<Seeding> {
  const app = await buildApp({ ...loadConfig({ LOG_LEVEL: 'warn' }), adminToken: ADMIN_TOKEN }, { db, backgroundJobs: false });
  try {
    let started = performance.now();
    const seeded = await seedCustomers(app, ADMIN_TOKEN, plan.customers, plan.otherModels);
    const seedCustomersS = secondsSince(started);
    log(`${engine}: ${plan.customers} customers seeded in ${seedCustomersS} s`);
    const stored = plan.storedEvents[engine];
    started = performance.now();
    const storedUntil = await seedStoredEvents(db, seeded, stored, DAYS_STORED);
    const seedEventsS = secondsSince(started);
    log(`${engine}:   ${stored} stored events seeded in ${seedEventsS} s`);
    return { seeded, storedUntil, stored, seedCustomersS, seedEventsS };
  } finally {
    await app.close();
  }
}

/** The database's own limits, on the seeded database (its tables dropped after). */
export async function measureBaselines(db: Db, engine: Engine, databaseUrl: string | undefined, seeded: Seeded, plan: PreparePlan): Promise<Baselines> {
  log(`${engine}: baseline: naive ledger`);
  const naive = await naiveLedger(db, DB_IN_FLIGHT, plan.dbBaselineMs);
  log(`${engine}: baseline: set-based, 100 transfers per statement`);
  const setBased = await setBasedLedger(db, engine === 'postgres' ? 2 : 1, plan.dbBaselineMs);
  let copy: number | null = null;
  if (databaseUrl) {
    log(`${engine}: baseline: COPY`);
    copy = await copyEvents(db, databaseUrl, plan.copyRows, seeded.customers, seeded.productId);
  }
  await db.exec('DROP TABLE IF EXISTS bench_transfers; DROP TABLE IF EXISTS bench_accounts; DROP TABLE IF EXISTS bench_events;');
  return { naiveTransfersPerS: naive, setBasedTransfersPerS: setBased, copyEventsPerS: copy };
}
