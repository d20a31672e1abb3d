import { randomBytes } from 'node:crypto';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  port: number;
  adminToken: string | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
  logLevel: LogLevel;
  /** How long the hot path gathers requests before committing them together. */
  batchWaitMs: number;
  batchSizeMax: number;
  /** How often overdue holds and grants are swept. */
  sweepIntervalMs: number;
}

export class ConfigError extends Error {}

const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The only place that reads process.env; everything else receives a Config. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const port = integer(env.TOLLGATE_PORT, 8787, 0, 65535, 'TOLLGATE_PORT', problems);
  const logLevel = (env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const adminToken = env.TOLLGATE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) problems.push('TOLLGATE_ADMIN_TOKEN must be at least 16 characters');
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const config: Config = {
    host: env.TOLLGATE_HOST || '127.0.0.1',
    port,
    adminToken,
    databaseUrl,
    dataDir: env.TOLLGATE_DATA_DIR || './.tollgate/data',
    logLevel,
    batchWaitMs: integer(env.TOLLGATE_BATCH_WAIT_MS, 1, 0, 100, 'TOLLGATE_BATCH_WAIT_MS', problems),
    batchSizeMax: integer(env.TOLLGATE_BATCH_SIZE_MAX, 512, 1, 10_000, 'TOLLGATE_BATCH_SIZE_MAX', problems),
    sweepIntervalMs: integer(env.TOLLGATE_SWEEP_INTERVAL_MS, 1000, 50, 3_600_000, 'TOLLGATE_SWEEP_INTERVAL_MS', problems),
  };
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}

export function generateAdminToken(): string {
  return `tga_${randomBytes(24).toString('base64url')}`;
}

function integer(raw: string | undefined, fallback: number, min: number, max: number, name: string, problems: string[]) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return value;
}
