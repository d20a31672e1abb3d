import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metricNames } from '../support/prometheus.js';
import { startServer, type TestServer } from '../support/harness.js';
import { Metrics } from '../../src/observability/metrics.js';
import { registerWorkerMetrics } from '../../src/metering/ingest-metrics.js';

// Keeps the alerts and the dashboard honest: every metric they name is one Tollgate exposes.

/** Named by alerts for modules not built yet; each must be added to /metrics by its module. */
const PENDING_METRICS = new Set<string>();

const alerts = parse(readFileSync('deploy/prometheus/alerts.yml', 'utf8'));
const rules: Array<{ alert: string; expr: string; labels: Record<string, string>; annotations: Record<string, string> }> = alerts.groups.flatMap((g: any) => g.rules);
const dashboard = JSON.parse(readFileSync('deploy/grafana/tollgate.json', 'utf8'));
const dashboardExprs: string[] = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr));
const operations = readFileSync('docs/operations.md', 'utf8');

/** Metric names in a PromQL expression (not functions, labels, or label values). */
function metricsIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  return [...withoutStrings.matchAll(/\b(tollgate_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

function balanced(expr: string): boolean {
  let depth = 0;
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '')) {
    if ('({['.includes(c)) depth++;
    if (')}]'.includes(c) && --depth < 0) return false;
  }
  return depth === 0;
}

let server: TestServer;
let exposed: Set<string>;

beforeAll(async () => {
  server = await startServer();
  // `tollgate worker` adds its own metrics to the same registry code: registered here the same way.
  const worker = new Metrics(server.app.http.log);
  registerWorkerMetrics(worker, async () => ({ pending: 0, ackPending: 0 }));
  exposed = new Set([...metricNames((await server.api.get('/metrics')).body), ...metricNames(await worker.registry.metrics())]);
});
afterAll(() => server?.close());

/** A family name for a sample name: histograms expose _bucket, _sum and _count samples. */
const family = (name: string) => (exposed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));

describe('deploy/prometheus/alerts.yml', () => {
  it('covers the invariant, errors, p99, ingest lag, the expired-hold backlog and webhook failures', () => {
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining([
      'TollgateLedgerImbalance', 'TollgateHighErrorRate', 'TollgateHotPathSlow', 'TollgateIngestLag', 'TollgateExpiredHoldBacklog', 'TollgateWebhookFailures',
    ]));
  });

  it('names only metrics Tollgate exposes (or a module will), in balanced expressions, each with a severity and a runbook section', () => {
    for (const rule of rules) {
      expect(balanced(rule.expr), rule.alert).toBe(true);
      expect(['page', 'ticket']).toContain(rule.labels.severity);
      const named = metricsIn(rule.expr);
      expect(named.length, rule.alert).toBeGreaterThan(0);
      for (const name of named) expect(exposed.has(family(name)) || PENDING_METRICS.has(name), `${rule.alert}: ${name}`).toBe(true);
      const anchor = rule.annotations.runbook.split('#')[1]!;
      expect(anchor).toBe(`runbook-${rule.alert.toLowerCase()}`);
      expect(operations).toContain(`### Runbook: ${rule.alert}\n`);
    }
  });

  it('the pending metrics are really not there yet (remove them from the list once they are)', () => {
    for (const name of PENDING_METRICS) expect(exposed.has(name)).toBe(false);
  });
});

describe('deploy/grafana/tollgate.json', () => {
  it('is a Grafana dashboard whose panels query only metrics Tollgate exposes', () => {
    expect(dashboard).toMatchObject({ uid: 'tollgate', title: 'Tollgate', schemaVersion: expect.any(Number) });
    expect(new Set(dashboard.panels.map((p: any) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    for (const expr of dashboardExprs) {
      expect(balanced(expr), expr).toBe(true);
      for (const name of metricsIn(expr)) expect(exposed.has(family(name)), `${name} in ${expr}`).toBe(true);
    }
    // The dashboard shows the invariant and every family of the hot path.
    const shown = new Set(dashboardExprs.flatMap(metricsIn).map(family));
    for (const name of ['tollgate_ledger_imbalance', 'tollgate_http_requests_total', 'tollgate_http_request_duration_seconds', 'tollgate_batch_size', 'tollgate_batch_commit_seconds', 'tollgate_holds_open', 'tollgate_holds_overdue', 'tollgate_ingest_events_total', 'tollgate_ingest_lag_seconds', 'tollgate_db_pool_connections', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(shown.has(name), name).toBe(true);
    }
  });
});

describe('deploy/compose.yml', () => {
  const compose = parse(readFileSync('deploy/compose.yml', 'utf8'), { merge: true });
  const services = compose.services;

  it('runs api, worker, postgres, nats (JetStream), redis, prometheus and grafana, migrating first, health-gated', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'grafana', 'migrate', 'nats', 'postgres', 'prometheus', 'redis', 'worker']);
    expect(services.nats.command).toContain('--jetstream');
    expect(services.migrate.command).toEqual(['migrate']);
    expect(services.migrate.depends_on.postgres.condition).toBe('service_healthy');
    for (const name of ['api', 'worker']) {
      expect(services[name].depends_on.migrate.condition, name).toBe('service_completed_successfully');
      expect(services[name].depends_on.nats.condition, name).toBe('service_healthy');
      expect(services[name].environment.DATABASE_URL, name).toMatch(/^postgres:\/\/.*@postgres:5432\//);
    }
    expect(services.worker.command).toEqual(['worker']);
    expect(services.worker.environment.TOLLGATE_WORKER_PORT).toBe('8787');
    for (const name of ['postgres', 'nats', 'redis']) expect(services[name].healthcheck.test, name).toBeDefined();
  });

  it('mounts files that exist: the Prometheus config scraping api and worker, the alerts, Grafana provisioning and the dashboard', () => {
    for (const name of ['prometheus', 'grafana']) {
      for (const volume of services[name].volumes.filter((v: string) => v.startsWith('./'))) {
        const path = join('deploy', volume.split(':')[0]);
        expect(existsSync(path), path).toBe(true);
      }
    }
    const prometheus = parse(readFileSync('deploy/prometheus/prometheus.yml', 'utf8'));
    const targets = prometheus.scrape_configs.flatMap((c: any) => c.static_configs.flatMap((s: any) => s.targets));
    expect(targets.sort()).toEqual(['api:8787', 'worker:8787']);
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const provisioned = readdirSync('deploy/grafana/provisioning/dashboards').map((f) => parse(readFileSync(join('deploy/grafana/provisioning/dashboards', f), 'utf8')));
    expect(provisioned[0].providers[0].options.path).toBe('/var/lib/grafana/dashboards');
  });
});

describe('Dockerfile and CI', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');

  it('builds in stages, ships production dependencies only, runs as non-root with a healthcheck, entrypoint tollgate serve', () => {
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["tollgate"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["serve"\]$/m);
    const ignore = readFileSync('.dockerignore', 'utf8');
    expect(ignore).toMatch(/^\*$/m); // everything out, then only what the build reads
  });

  it('imports in src only packages the image installs (dependencies, not devDependencies)', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const installed = new Set(Object.keys(pkg.dependencies));
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
    const missing: string[] = [];
    const checked = new Set<string>();
    for (const file of files('src').filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(file, 'utf8');
      const specs = [
        ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gm),
        ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
        ...text.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1]!);
      for (const spec of specs) {
        if (spec.startsWith('node:') || spec.startsWith('.')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        checked.add(name);
        if (!installed.has(name)) missing.push(`${file}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    expect([...checked]).toEqual(expect.arrayContaining(['fastify', 'pg', '@electric-sql/pglite', '@opentelemetry/sdk-node', 'prom-client']));
  });

  it('CI runs what .ci/run runs, with PostgreSQL and NATS JetStream, and builds the image', () => {
    const ci = parse(readFileSync('.github/workflows/ci.yml', 'utf8'));
    const steps = Object.values(ci.jobs).flatMap((job: any) => job.steps.map((s: any) => `${s.run ?? ''} ${s.uses ?? ''}`));
    const ciRun = readFileSync('.ci/run', 'utf8');
    expect(ciRun).toMatch(/npm ci --no-audit --no-fund\nnpm test/);
    expect(steps).toEqual(expect.arrayContaining(['npm ci --no-audit --no-fund ', 'npm test ']));
    expect(steps.join('\n')).toMatch(/--jetstream/);
    expect(steps.join('\n')).toMatch(/docker\/build-push-action/);
    expect(ci.jobs.test.services.postgres.image).toMatch(/^postgres:1[5-9]/);
    expect(ci.jobs.test.env.CI).toBe('true');
  });
});
