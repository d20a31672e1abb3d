import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AccountsService } from './accounts/accounts-service.js';
import { registerAccountRoutes } from './accounts/routes.js';
import { BillingScheduler } from './billing/billing-scheduler.js';
import { InvoiceService } from './billing/invoice-service.js';
import { registerBillingRoutes } from './billing/routes.js';
import { periodUsage } from './metering/period-usage.js';
import { createSecretBox } from './platform/secret-box.js';
import { registerEventRoutes } from './metering/events-routes.js';
import { IngestService } from './metering/ingest-service.js';
import { NatsSink } from './metering/nats-sink.js';
import { registerUsageRoutes } from './metering/usage-routes.js';
import { UsageService } from './metering/usage-service.js';
import { CatalogService } from './catalog/catalog-service.js';
import { registerCatalogRoutes } from './catalog/routes.js';
import { GatewayService } from './gateway/gateway-service.js';
import { registerGatewayRoutes } from './gateway/routes.js';
import { CreditService } from './ledger/credit-service.js';
import { ExpirySweeper } from './ledger/expiry-sweeper.js';
import { LedgerService } from './ledger/ledger-service.js';
import { registerLedgerRoutes } from './ledger/routes.js';
import { systemClock, type Clock } from './platform/clock.js';
import type { Config } from './platform/config.js';
import { openConfiguredDb, type Db } from './platform/db.js';
import { createHttpServer, useAuthLimits, type HttpServer } from './platform/http.js';
import { openRateLimits } from './rate-limits/open-rate-limits.js';
import { IDEMPOTENCY_RETENTION_HOURS, purgeIdempotencyRecords } from './platform/idempotency.js';
import { migrate, migrationsComplete } from './platform/migrate.js';
import { registerHealthRoutes } from './platform/health.js';
import { AutoTopUpService } from './payments/auto-top-up-service.js';
import { InvoiceCollector } from './payments/invoice-collector.js';
import { registerLedgerMetrics } from './ledger/ledger-metrics.js';
import { registerWebhookMetrics } from './webhooks/webhook-metrics.js';
import { countedEventSink, ingestBatchObserver } from './metering/ingest-metrics.js';
import { Metrics, registerDbMetrics } from './observability/metrics.js';
import { registerMetricsRoutes } from './observability/metrics-routes.js';
import { PaymentsService } from './payments/payments-service.js';
import { registerPaymentRoutes } from './payments/routes.js';
import { StripeProvider } from './payments/stripe-provider.js';
import { AlertsService } from './alerts/alerts-service.js';
import { registerAlertRoutes } from './alerts/routes.js';
import { ledgerEvents } from './ledger/ledger-events.js';
import { EventBus } from './outbox/event-bus.js';
import { emit } from './outbox/outbox.js';
import { openApiWebhooks, registerOutboxRoutes } from './outbox/routes.js';
import { registerGraphqlRoutes } from './graphql/graphql-routes.js';
import { registerWebhookRoutes } from './webhooks/routes.js';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { WebhooksService } from './webhooks/webhooks-service.js';
import { DashboardService } from './dashboard/dashboard-service.js';
import { registerDashboardRoutes } from './dashboard/routes.js';
import { DEFAULT_APP_DIR, registerAppRoutes } from './dashboard/app-static.js';
import { SESSION_COOKIE } from './dashboard/session-rules.js';

export interface App {
  http: HttpServer;
  db: Db;
  metrics: Metrics;
  services: {
    accounts: AccountsService; catalog: CatalogService; ledger: LedgerService; credit: CreditService; gateway: GatewayService; sweeper: ExpirySweeper;
    ingest: IngestService; invoices: InvoiceService; billingScheduler: BillingScheduler; payments: PaymentsService; autoTopUp: AutoTopUpService;
    invoiceCollector: InvoiceCollector; webhooks: WebhooksService; webhookDispatcher: WebhookDispatcher; alerts: AlertsService;
    dashboard: DashboardService;
  };
  /** Stops accepting, finishes in-flight batches, closes the database. */
  close(): Promise<void>;
}

export interface AppOptions {
  clock?: Clock;
  /** An already open database (tests share one); otherwise opened from config. */
  db?: Db;
  /** Run background jobs (hold and grant expiry, billing, outbox delivery) in this process. */
  backgroundJobs?: boolean;
  /** Where log lines go (default stdout). */
  logStream?: NodeJS.WritableStream;
  /** Serve GraphiQL at GET /graphql (`tollgate dev` only). */
  graphiql?: boolean;
  /** How often the outbox dispatcher looks for new events and due deliveries (default 250 ms). */
  outboxIntervalMs?: number;
  /** The built browser app served at /app (default the package's dist/app). */
  appDir?: string;
}

const OUTBOX_INTERVAL_MS = 250;

/** The one place that wires modules together. */
export async function buildApp(config: Config & { adminToken: string }, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const db = options.db ?? (await openConfiguredDb(config));
  await migrate(db);

  const accounts = new AccountsService(db, clock, config.adminToken, config.rateLimits.perKeyPerSecond);
  const dashboard = new DashboardService({
    db,
    clock,
    settings: config.dashboard,
    requireCustomer: (id, tx) => accounts.getCustomer(id, tx),
    authenticate: (token) => accounts.authenticate(token),
  });
  const http = createHttpServer({
    logLevel: config.logLevel,
    logStream: options.logStream,
    authenticate: (token) => accounts.authenticate(token),
    sessions: { cookieName: SESSION_COOKIE, authenticate: (secret) => dashboard.authenticate(secret), publicUrl: config.dashboard.publicUrl },
    trustProxyHops: config.trustProxyHops,
  });
  const metrics = new Metrics(http.log);
  const rateLimits = await openRateLimits(config.rateLimits, { clock, log: http.log, metrics, keyRateLimits: (id) => accounts.keyRateLimits(id) });
  useAuthLimits(http, rateLimits.auth);
  const catalog = new CatalogService(db, clock, async (id, tx) => (await accounts.getCustomer(id, tx).catch(() => null))?.currency ?? null);
  let gateway: GatewayService | null = null;
  const ledger = new LedgerService({
    db,
    clock,
    log: http.log,
    keyLimitsSql: accounts.keyLimitsSql,
    rate: (reservation, usage) => gateway!.rate(reservation, usage),
    batchWaitMs: config.batchWaitMs,
    batchSizeMax: config.batchSizeMax,
    observeBatch: metrics.batchObserver('ledger'),
  });
  gateway = new GatewayService(db, clock, accounts, catalog, ledger, (apiKeyId) => rateLimits.checkKey(apiKeyId));
  const credit = new CreditService(db, clock, ledger);
  const sweeper = new ExpirySweeper(db, clock, ledger, http.log, config.sweepIntervalMs);
  const ingest = new IngestService(db, clock, accounts, catalog, ledger, http.log, {
    maxAgeMs: config.eventMaxAgeMs,
    maxFutureMs: config.eventMaxFutureMs,
    batchWaitMs: config.batchWaitMs,
    batchSizeMax: config.batchSizeMax,
    observeBatch: ingestBatchObserver(metrics, clock),
  });
  const invoices = new InvoiceService(db, clock, {
    customer: (id) => accounts.getCustomer(id),
    postpaidCustomerIds: () => postpaidCustomerIds(accounts),
    periodPricing: (q) => catalog.periodPricing(q),
    periodUsage: (customerId, from, to, reader = db) => periodUsage(reader, customerId, from, to),
    lockAccount: (tx, customerId) => ledger.lockAccount(tx, customerId),
    post: (tx, ops) => ledger.applyInTransaction(tx, ops),
  });
  const payments = new PaymentsService(db, clock, accounts, ledger, http.log, config.stripe ? new StripeProvider(config.stripe) : null, config.stripe?.webhookSecret !== undefined, {
    pay: (tx, invoiceId, payment) => invoices.recordPayment(tx, invoiceId, payment),
    paymentFailed: (tx, invoiceId, reason) => invoices.paymentFailed(tx, invoiceId, reason),
  });
  const autoTopUp = new AutoTopUpService(db, clock, accounts, credit, payments, http.log, config.paymentsSweepMs);
  const invoiceCollector = new InvoiceCollector(db, clock, invoices, payments, http.log, config.paymentsSweepMs);
  invoices.onFinalized((invoiceId) => invoiceCollector.notify(invoiceId));
  ledger.onSettled((tx, settled, now) => ingest.recordSettled(tx, settled, now));
  ledger.onCommitted((customerIds) => autoTopUp.notify(customerIds), autoTopUp.watchedInBatch);
  const alerts = new AlertsService(db, clock, ledger, async (id) => (await accounts.getCustomer(id)).currency);
  // A batch's events and alerts are written in its own transaction, with the batch's last statement.
  ledger.onWritten(async (written, writes) => emit(writes, [...ledgerEvents(written), ...(await alerts.record(writes, written))], written.now), alerts.batchReads);
  const webhooks = new WebhooksService(db, clock, createSecretBox(config.adminToken, 'webhook-secrets'), config.webhooksAllowPrivate, async (tx, id) =>
    (await accounts.getCustomer(id, tx).catch(() => null)) !== null,
  );
  const outboxIntervalMs = options.outboxIntervalMs ?? OUTBOX_INTERVAL_MS;
  const webhookDispatcher = new WebhookDispatcher({ db, clock, webhooks, log: http.log, timeoutMs: config.webhooksTimeoutMs, allowPrivate: config.webhooksAllowPrivate, intervalMs: outboxIntervalMs, observe: registerWebhookMetrics(metrics, db, clock) });
  const eventBus = config.natsUrl ? new EventBus({ natsUrl: config.natsUrl, ...config.eventBus, db, clock, log: http.log, intervalMs: outboxIntervalMs }) : null;
  // NATS mode: POST /v1/events publishes to JetStream and `tollgate worker` writes; settles still record here.
  const natsSink = config.natsUrl ? new NatsSink({ natsUrl: config.natsUrl, stream: config.eventsStream, db, clock, ingest, log: http.log }) : null;

  await registerOpenApi(http);
  registerHealthRoutes(http, { live: () => true, ready: () => migrationsComplete(db) });
  registerMetricsRoutes(http, metrics, config.metricsToken);
  registerDbMetrics(metrics, db);
  registerLedgerMetrics(metrics, db, clock, () => ledger.queued);
  registerAccountRoutes(http, db, accounts, createSecretBox(config.adminToken, 'idempotent-replies'));
  registerCatalogRoutes(http, db, catalog);
  registerLedgerRoutes(http, credit);
  registerGatewayRoutes(http, gateway);
  registerEventRoutes(http, db, countedEventSink(natsSink ?? ingest, metrics), catalog);
  const usage = new UsageService(db, catalog);
  registerUsageRoutes(http, usage);
  registerPaymentRoutes(http, db, payments, autoTopUp);
  registerBillingRoutes(http, db, invoices, config.operatorName);
  registerOutboxRoutes(http);
  registerWebhookRoutes(http, db, webhooks, createSecretBox(config.adminToken, 'idempotent-replies'));
  registerAlertRoutes(http, alerts);
  registerDashboardRoutes(http, db, dashboard, createSecretBox(config.adminToken, 'idempotent-replies'), config.dashboard.publicUrl);
  await registerAppRoutes(http, options.appDir ?? DEFAULT_APP_DIR);
  registerGraphqlRoutes(http, { accounts, credit, invoices, usage, payments, catalog, webhooks, gateway }, { graphiql: options.graphiql ?? false });
  const billingScheduler = new BillingScheduler({ db, clock, invoices, log: http.log });
  await http.ready();

  const purge = setInterval(() => {
    purgeIdempotencyRecords(db, new Date(clock.now().getTime() - IDEMPOTENCY_RETENTION_HOURS * 3_600_000)).catch((err) => http.log.error({ err }, 'idempotency purge failed'));
    dashboard.purge().catch((err) => http.log.error({ err }, 'dashboard session purge failed'));
  }, 3_600_000);
  purge.unref();
  if (options.backgroundJobs ?? true) {
    accounts.warmKeyCache().catch((err) => http.log.warn({ err }, 'the key cache was not warmed up; keys are looked up on first use'));
    sweeper.start();
    billingScheduler.start();
    autoTopUp.start();
    invoiceCollector.start();
    webhookDispatcher.start();
    eventBus?.start();
  }

  let closing: Promise<void> | null = null;
  return {
    http,
    db,
    metrics,
    services: { accounts, catalog, ledger, credit, gateway, sweeper, ingest, invoices, billingScheduler, payments, autoTopUp, invoiceCollector, webhooks, webhookDispatcher, alerts, dashboard },
    close: () =>
      (closing ??= (async () => {
        clearInterval(purge);
        await sweeper.stop();
        await billingScheduler.stop();
        await webhookDispatcher.stop();
        await eventBus?.stop();
        await http.close();
        await natsSink?.close();
        await ingest.drain();
        await ledger.drain();
        await autoTopUp.stop();
        await invoiceCollector.stop();
        await rateLimits.close();
        if (!options.db) await db.close();
      })()),
  };
}

/** Every postpaid customer, in id order, read through the accounts service a page at a time. */
async function postpaidCustomerIds(accounts: AccountsService): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await accounts.listCustomers({ limit: 100, cursor });
    ids.push(...page.data.filter((c) => c.billing_mode === 'postpaid').map((c) => c.id));
    if (!page.has_more || !page.next_cursor) return ids.sort();
    cursor = page.next_cursor;
  }
}

async function registerOpenApi(http: HttpServer) {
  await http.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tollgate API',
        version: '1',
        description: 'Commerce backend for AI API platforms: customers, API keys, catalog and prices, a double-entry credit ledger with holds, and the authorize/settle hot path. Errors are RFC 9457 problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'The admin token, or a customer API key for /v1/me/...' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'A dashboard session (docs/dashboard.md); unsafe methods also need X-CSRF-Token. Used only without an Authorization header.' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
      // OpenAPI 3.1: what Tollgate sends to webhook endpoints, one entry per event type.
      webhooks: openApiWebhooks(),
    },
  });
  await http.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  http.get('/openapi.json', { schema: { hide: true } }, async () => http.swagger());
}
