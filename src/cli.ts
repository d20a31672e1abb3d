#!/usr/bin/env node
// First: with OTEL_EXPORTER_OTLP_ENDPOINT set, tracing must run before http and pg are loaded.
import './observability/start-tracing.js';
import { resolve } from 'node:path';
import { devSecretsPath, readDevSecrets, writeDevSecrets } from './cli/dev-secrets.js';
import { runEventsCommand } from './cli/events-command.js';
import { systemClock } from './platform/clock.js';
import { ConfigError, generateAdminToken, loadConfig, type Config } from './platform/config.js';
import { openConfiguredDb } from './platform/db.js';
import { LISTEN_BACKLOG } from './platform/http.js';
import { migrate } from './platform/migrate.js';
import { verifyLedger } from './ledger/ledger-verify.js';
import { buildApp, type App, type AppOptions } from './main.js';
import { EventWorker } from './metering/nats-worker.js';
import { registerWorkerMetrics } from './metering/ingest-metrics.js';
import { seedDemo } from './demo/seed.js';
import { runBilling } from './billing/billing-run.js';
import { ProgressBar } from './cli/progress-bar.js';
import { stopTracing } from './observability/tracing.js';

const USAGE = `Usage: tollgate <command>

Commands:
  dev       Start on the embedded database with a demo catalog, customer and API key
  serve     Production start (needs TOLLGATE_ADMIN_TOKEN; DATABASE_URL for PostgreSQL)
  migrate   Apply pending database migrations and exit
  worker    Write usage events from NATS JetStream to the database (needs NATS_URL and DATABASE_URL)
  events    export|import usage events from/to a running Tollgate ("tollgate events --help")
  billing   run --period YYYY-MM: draft the period's invoice for every postpaid customer (safe to re-run)
  ledger    verify: check that the ledger's books agree with themselves (exit 1 if not)
`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 1 : 0;
  }
  const config = loadConfig();
  switch (command) {
    case 'dev':
      return dev(config);
    case 'serve':
      return serve(config);
    case 'migrate':
      return migrateOnly(config);
    case 'worker':
      return worker(config);
    case 'billing':
      return billing(config, argv.slice(1));
    case 'ledger':
      return ledger(config, argv.slice(1));
    case 'events':
      return runEventsCommand(argv.slice(1), { env: process.env, dataDir: config.dataDir, stdout: process.stdout, stderr: process.stderr });
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${USAGE}`);
      return 1;
  }
}

async function dev(config: Config): Promise<number> {
  const secretsFile = devSecretsPath(config.dataDir);
  const saved = readDevSecrets(secretsFile);
  const adminToken = config.adminToken ?? saved.adminToken ?? generateAdminToken();
  const app = await start({ ...config, adminToken }, { graphiql: true });
  const seed = await seedDemo(app);
  const demoKey = seed.apiKey ?? saved.demoKey ?? '(created by an earlier run; its secret was not saved)';
  writeDevSecrets(secretsFile, { adminToken: config.adminToken ? undefined : adminToken, demoKey });
  const url = `http://${config.host}:${config.port}`;
  process.stdout.write(`
Tollgate is running (dev mode, ${config.databaseUrl ? 'PostgreSQL' : `embedded database in ${resolve(config.dataDir)}`})

  URL            ${url}
  Dashboard      ${url}/app/ (sign in with the admin token; a customer's portal link comes from the customer's page)
  API reference  ${url}/docs
  GraphiQL       ${url}/graphql
  Admin token    ${adminToken}
  Demo customer  ${seed.customerId}${seed.created ? ' (created now, with 25.00 USD of credit)' : ''}
  Demo API key   ${demoKey}

Try:  curl -s ${url}/v1/pricing -H "Authorization: Bearer ${adminToken}"
`);
  return waitForShutdown(app);
}

async function serve(config: Config): Promise<number> {
  if (!config.adminToken) {
    process.stderr.write('tollgate serve needs TOLLGATE_ADMIN_TOKEN (at least 16 characters); refusing to start without it.\n');
    return 1;
  }
  const app = await start({ ...config, adminToken: config.adminToken });
  return waitForShutdown(app);
}

async function migrateOnly(config: Config): Promise<number> {
  const db = await openConfiguredDb(config);
  try {
    const report = await migrate(db);
    process.stdout.write(report.applied.length > 0 ? `Applied: ${report.applied.join(', ')}\n` : 'Nothing to apply; the database is up to date.\n');
    return 0;
  } finally {
    await db.close();
  }
}

/**
 * For processes that answer no API requests (the worker, billing runs): events are written in
 * process, and rate limits stay in memory (nothing to limit; no wait for Redis at start).
 */
function withoutApiTraffic(config: Config): Config & { adminToken: string } {
  return { ...config, natsUrl: undefined, rateLimits: { ...config.rateLimits, redis: undefined }, adminToken: config.adminToken ?? generateAdminToken() };
}

/** Several workers may run at once, on any machines: they share one durable JetStream consumer. */
async function worker(config: Config): Promise<number> {
  if (!config.natsUrl || !config.databaseUrl) {
    process.stderr.write('tollgate worker needs NATS_URL and DATABASE_URL (PostgreSQL, shared with the API processes).\n');
    return 1;
  }
  // The worker writes through the embedded path: the app is built without NATS and never listens.
  const app = await buildApp(withoutApiTraffic(config), { backgroundJobs: false });
  // For probes and Prometheus (an orchestrator's service sends API traffic to `serve` only).
  if (config.workerPort !== undefined) await app.http.listen({ host: config.host, port: config.workerPort, backlog: LISTEN_BACKLOG });
  const events = new EventWorker({
    natsUrl: config.natsUrl,
    stream: config.eventsStream,
    ackWaitMs: config.workerAckWaitMs,
    ingest: app.services.ingest,
    refreshCatalog: () => app.services.catalog.invalidate(),
    log: app.http.log,
  });
  registerWorkerMetrics(app.metrics, () => events.backlog());
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      app.http.log.info({ signal }, 'worker stopping after the batch in hand');
      events.stop();
    });
  }
  try {
    await events.run();
  } finally {
    await app.close();
  }
  return 0;
}

const LEDGER_USAGE = 'Usage: tollgate ledger verify\n';

/**
 * Checks the books (src/ledger/ledger-verify.ts), reading every transfer: on PostgreSQL beside
 * running servers, on the embedded database with the server stopped (one process at a time).
 */
async function ledger(config: Config, args: string[]): Promise<number> {
  if (args[0] !== 'verify' || args.length > 1) {
    process.stderr.write(LEDGER_USAGE);
    return args[0] === '--help' ? 0 : 1;
  }
  const db = await openConfiguredDb(config);
  try {
    const findings = await verifyLedger(db);
    if (findings.length === 0) {
      process.stdout.write('The ledger agrees with itself: debits equal credits in every currency, every account\'s totals are its transfers\' sum, every transfer names accounts and holds that exist, and every grant with an expiry and a remainder is on the expiry sweep\'s list.\n');
      return 0;
    }
    process.stdout.write(`The ledger does not agree with itself:\n${findings.map((f) => `  ${f.check}: ${f.detail}`).join('\n')}\n`);
    return 1;
  } finally {
    await db.close();
  }
}

const BILLING_USAGE = 'Usage: tollgate billing run --period YYYY-MM\n';

/**
 * Drafts invoices on the database directly (like migrate), with a progress bar on a terminal. Each
 * customer's invoice commits on its own, so an interrupted run is resumed by running it again.
 */
async function billing(config: Config, args: string[]): Promise<number> {
  const at = args.indexOf('--period');
  const period = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith('--period='))?.slice('--period='.length);
  if (args[0] !== 'run' || !period || !/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) {
    process.stderr.write(BILLING_USAGE);
    return args[0] === '--help' ? 0 : 1;
  }
  const app = await buildApp(withoutApiTraffic(config), { backgroundJobs: false });
  let bar = null as ProgressBar | null;
  try {
    const report = await runBilling(
      { db: app.db, clock: systemClock, invoices: app.services.invoices, customers: () => app.services.invoices.postpaidCustomerIds() },
      period,
      (done, total, created) => (bar ??= new ProgressBar(process.stderr, total, Date.now, 100, 'invoices created')).update(done, created),
    );
    bar?.clear();
    process.stdout.write(`Billing run ${report.runId} for ${period}: ${report.customers} postpaid customers, ${report.created} invoices created, ${report.existing} already invoiced, ${report.skipped} with a period not yet ended (or before they existed).\n`);
    return 0;
  } catch (error) {
    bar?.clear();
    process.stderr.write(`Billing run for ${period} stopped: ${(error as Error).message}\nInvoices made so far are kept; run it again to resume.\n`);
    return 1;
  } finally {
    await app.close();
  }
}

async function start(config: Config & { adminToken: string }, options: AppOptions = {}): Promise<App> {
  if (config.natsUrl && !config.databaseUrl) {
    throw new ConfigError('NATS_URL needs DATABASE_URL: the API processes and `tollgate worker` share one PostgreSQL database.');
  }
  const app = await buildApp(config, options);
  await app.http.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
  return app;
}

/** SIGTERM/SIGINT: stop accepting, finish in-flight batches, close the database, exit 0. */
function waitForShutdown(app: App): Promise<number> {
  return new Promise((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      // A second signal while shutting down (an impatient supervisor, a repeated Ctrl-C) must not
      // cut the shutdown short: in-flight batches still commit.
      if (stopping) return app.http.log.warn({ signal }, 'already shutting down');
      stopping = true;
      app.http.log.info({ signal }, 'shutting down');
      app.close().then(
        () => resolveExit(0),
        (err) => {
          app.http.log.error({ err }, 'shutdown failed');
          resolveExit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  // Buffered spans are sent before exiting.
  async (code) => process.exit(await stopTracing().then(() => code, () => code)),
  (error) => {
    process.stderr.write(error instanceof ConfigError ? `${error.message}\n` : `${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
