#!/usr/bin/env node
// The whole suite, as `npm test` runs it:
//   0. the type checks (tsc --noEmit over src, test and scripts; then over the dashboard in app/);
//   1. unit and integration tests on the embedded database (PGlite), no services needed;
//   2. the integration tests again on the PostgreSQL at TOLLGATE_TEST_PG_URL
//      (default postgres://postgres@127.0.0.1:5432/postgres), one fresh database per test file.
// With CI=true the PostgreSQL run is required: a missing server fails the run loudly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const pgUrl = process.env.TOLLGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ci = process.env.CI === 'true' || process.env.CI === '1';
const extraArgs = process.argv.slice(2);
const reportDir = mkdtempSync(join(tmpdir(), 'tollgate-test-'));

function vitest(engine, paths) {
  const report = join(reportDir, `${engine}.json`);
  console.log(`\n=== Tollgate tests on ${engine} ===\n`);
  const result = spawnSync('npx', ['vitest', 'run', ...paths, ...extraArgs, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    stdio: 'inherit',
    env: { ...process.env, TOLLGATE_TEST_DB: engine },
  });
  let counts = { passed: 0, failed: 0, skipped: 0 };
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    counts = { passed: json.numPassedTests, failed: json.numFailedTests, skipped: json.numPendingTests + (json.numTodoTests ?? 0) };
  } catch {
    counts.failed = Math.max(1, counts.failed);
  }
  return { ok: result.status === 0, ...counts };
}

async function postgresReachable() {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    console.error(`PostgreSQL at ${pgUrl} is not reachable: ${error.message}`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

console.log('=== Type check ===');
const typechecks = ['tsconfig.json', 'app/tsconfig.json'].map((project) => spawnSync('npx', ['tsc', '-p', project, '--noEmit'], { stdio: 'inherit' }).status === 0);
const typecheckOk = typechecks.every(Boolean);
const runs = [{ ok: typecheckOk, passed: 0, failed: typechecks.filter((ok) => !ok).length, skipped: 0 }, vitest('pglite', [])];
if (await postgresReachable()) {
  runs.push(vitest('postgres', ['test/integration']));
} else if (ci) {
  console.error('\nCI=true: the PostgreSQL run is required and the server is missing. Failing.');
  runs.push({ ok: false, passed: 0, failed: 1, skipped: 0 });
} else {
  console.warn('\nPostgreSQL run skipped: no server (it is required in CI).');
}

const total = runs.reduce((t, r) => ({ passed: t.passed + r.passed, failed: t.failed + r.failed, skipped: t.skipped + r.skipped }), { passed: 0, failed: 0, skipped: 0 });
const ok = runs.every((r) => r.ok) && total.failed === 0;
console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
rmSync(reportDir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
