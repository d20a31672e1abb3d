import type { TestProject } from 'vitest/node';
import { randomBytes } from 'node:crypto';
import { openDb } from '../../src/platform/db.js';
import { migrate } from '../../src/platform/migrate.js';
import { databaseUrl, testEngine, withAdmin } from './test-db.js';

/**
 * For the PostgreSQL run: one migrated template database per run; each test file clones it
 * (CREATE DATABASE ... TEMPLATE is fast) and every database of the run is dropped at the end.
 */
export default async function setup(project: TestProject) {
  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`;
  project.provide('runId', runId);
  if (testEngine !== 'postgres') return;
  const template = `tollgate_tpl_${runId}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${template}`));
  const db = await openDb({ databaseUrl: databaseUrl(template), poolSize: 1 });
  await migrate(db);
  await db.close();
  project.provide('pgTemplate', template);
  return async () => {
    await withAdmin(async (c) => {
      const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`tollgate_%${runId}%`]);
      for (const { datname } of rows) await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
    pgTemplate: string;
  }
}
