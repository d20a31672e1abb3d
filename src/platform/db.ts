import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Config } from './config.js';
import { durableDataDir, type SyncFile } from './pglite-durable-fs.js';
import { PglitePreparedStatements } from './pglite-prepared.js';

/** Anything that runs SQL: the database itself or an open transaction. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Statement {
  sql: string;
  params?: unknown[];
}

/**
 * An open transaction. For the hot paths, where a transaction's round trips are how long it holds
 * its row locks, statements can travel together: on PostgreSQL, BEGIN rides with the first call and
 * COMMIT with commitWith, so lock-and-read then write-and-commit is two round trips.
 */
export interface Tx extends Queryable {
  /** Runs the statements in order, each with its own snapshot, and answers each one's rows. */
  queryEach(statements: Statement[]): Promise<Record<string, unknown>[][]>;
  /** Runs the statements and commits: the transaction's last call. */
  commitWith(statements: Statement[]): Promise<void>;
}

/** Tx.queryEach where `q` is a transaction that has it; otherwise the statements run one by one. */
export async function queryEach(q: Queryable, statements: Statement[]): Promise<Record<string, unknown>[][]> {
  if ('queryEach' in q && typeof q.queryEach === 'function') return (q as Tx).queryEach(statements);
  const rows: Record<string, unknown>[][] = [];
  for (const { sql, params } of statements) rows.push(await q.query(sql, params));
  return rows;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
  /** PostgreSQL's connection pool right now (PGlite is one in-process connection: none). */
  poolUse?(): { max: number; total: number; idle: number; waiting: number };
}

export interface DbOptions {
  databaseUrl?: string;
  /** Directory for the embedded database; undefined means in memory. */
  dataDir?: string;
  /** The embedded database's buffer cache (PGLITE_SHARED_BUFFERS_MB by default). */
  pgliteSharedBuffersMb?: number;
  /** How the embedded database's files reach the disk (fsyncSync; tests watch the calls). */
  pgliteSyncFile?: SyncFile;
  poolSize?: number;
  /** When connections make their hot statements' plans again (REPLAN_AFTER_MS), by the clock `nowMs` (tests). */
  replanAfterMs?: readonly number[];
  nowMs?: () => number;
}

const INT8_OID = 20;

/** The database the configuration names: PostgreSQL at DATABASE_URL, else PGlite in the data directory. */
export function openConfiguredDb(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'pgliteSharedBuffersMb'>): Promise<Db> {
  if (config.databaseUrl) return openDb({ databaseUrl: config.databaseUrl });
  return openDb({ dataDir: config.dataDir, pgliteSharedBuffersMb: config.pgliteSharedBuffersMb });
}

/** bigint columns come back as strings on both engines; stores convert them with BigInt(). */
export async function openDb(options: DbOptions): Promise<Db> {
  const replan = { after: options.replanAfterMs ?? REPLAN_AFTER_MS, nowMs: options.nowMs ?? Date.now };
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 10, replan);
  return openPglite(options.dataDir, options.pgliteSharedBuffersMb ?? PGLITE_SHARED_BUFFERS_MB, replan, options.pgliteSyncFile);
}

/**
 * PGlite's buffer cache lives in its WebAssembly memory, written through when it starts, and that
 * memory never shrinks: PostgreSQL's default of 128 MB made an idle server 255 MB of RSS and a
 * loaded one 410-475. Its pages are backed by the operating system's file cache anyway (PGlite
 * reads and writes the data directory's files): 32 MB takes about 110 MB off the server's RSS for
 * the same authorize/settle rate, and about a tenth of the ingest rate into a store of a million
 * events (docs/performance.md, "PGlite's buffer cache").
 */
const PGLITE_SHARED_BUFFERS_MB = 32;

async function openPostgres(connectionString: string, max: number, replan: ReplanSchedule): Promise<Db> {
  const pool = new pg.Pool({
    connectionString,
    max,
    // An unreachable server fails requests (503, retry) instead of holding them forever.
    connectionTimeoutMillis: 5_000,
    // Connections stay open when idle (pg-pool closes them after 10 s by default): after a quiet
    // spell a burst would otherwise wait for new backends, and plan their first second of batches
    // anew (REPLAN_AFTER_MS). A lost one is dropped and replaced on next use.
    idleTimeoutMillis: 0,
    // Transactions send their hot statements together (PostgresTx); other queries go one at a time anyway.
    pipeline: true,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => value : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // Tollgate's queries are short: compiling one with LLVM (PostgreSQL's default once a plan's cost
  // passes jit_above_cost) took 60-90 ms in each parallel worker, and made a day's usage report
  // over 10,000 customers 455 ms instead of 280 (docs/performance.md).
  pool.on('connect', (client) => void client.query('SET jit = off').catch(() => {}));
  return {
    kind: 'postgres',
    query: async (sql, params) => (await pool.query(sql, params as unknown[])).rows as never,
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // The pool listens for errors on idle connections only. One lost while checked out between
      // two round trips (the server computing a batch) emits an error nobody awaits, which would
      // crash the process: noted here, the transaction's next query fails, and the connection is
      // discarded instead of going back to the pool.
      let lost: Error | undefined;
      const onError = (error: Error) => void (lost ??= error);
      client.on('error', onError);
      const tx = new PostgresTx(client, replan);
      try {
        const result = await fn(tx);
        await tx.end();
        return result;
      } catch (error) {
        if (tx.open && !lost) await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    close: () => pool.end(),
    poolUse: () => ({ max, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
  };
}

async function openPglite(dataDir: string | undefined, sharedBuffersMb: number, replan: ReplanSchedule, syncFile?: SyncFile): Promise<Db> {
  // On disk, a commit is answered once its WAL is (durableDataDir); in memory there is no disk.
  const disk = dataDir ? durableDataDir(dataDir, syncFile) : null;
  const db = await PGlite.create({
    fs: disk?.fs,
    parsers: { [INT8_OID]: (value: string) => value },
    startParams: [...(disk?.startParams ?? PGlite.defaultStartParams), '-c', `shared_buffers=${sharedBuffersMb}MB`],
  });
  disk?.opened();
  const prepared = new PglitePreparedStatements(db);
  /** The plans of PGlite's one connection. */
  const connection = {};
  return {
    kind: 'pglite',
    query: async (sql, params) => (await db.query(sql, params)).rows as never,
    async exec(sql) {
      await db.exec(sql);
    },
    transaction: (fn) =>
      db.transaction((tx) => {
        const one: Queryable = { query: async (sql, params) => (await tx.query(sql, params)).rows as never };
        let generation: number | null = null;
        // One in-process connection: no round trips to save, so the hot statements simply run in
        // turn, each from the plan its name keeps, as on PostgreSQL (PostgresTx).
        const hot = async (statements: Statement[]) => {
          if (generation === null) {
            const { plans, renewed } = currentPlans(connection, replan);
            if (renewed) {
              await tx.exec('DEALLOCATE ALL');
              prepared.forgetAll();
            }
            await tx.exec(planningFor(plans.generation));
            generation = plans.generation;
          }
          const rows: Rows[] = [];
          for (const { sql, params } of statements) {
            const name = nameOf(sql, generation);
            rows.push(name ? await prepared.run(name, sql, params ?? []) : await one.query(sql, params));
          }
          return rows;
        };
        return fn({ ...one, queryEach: hot, commitWith: async (statements) => void (await hot(statements)) });
      }),
    close: () => db.close(),
  };
}

type Rows = Record<string, unknown>[];

/**
 * How the hot paths' statements are planned, set for the rest of a transaction before its first
 * queryEach or commitWith. Those statements are named prepared statements (below), and a generic
 * plan saves planning each batch's statements anew: for a batch of 30 customers' locks and reads,
 * 2.8 ms instead of 5.0 (pgbench, docs/performance.md). A generic plan is made once per connection
 * and kept, so it must not depend on how large the tables were when it was made: a table nearly
 * empty at start-up would be scanned whole, then kept scanned whole as it grows (measured before:
 * a million rows a second read by sequential scans of reservations). Every hot statement looks rows
 * up by key, so scans and joins that read a table whole are ruled out while they are planned.
 */
const HOT_PATH_PLANNING = [
  'SET LOCAL enable_seqscan = off',
  // Plain index scans mark the entries of dead row versions they meet, so the next ones skip them
  // (a settled hold's entry stays in the open-holds index until a vacuum); bitmap scans never do.
  'SET LOCAL enable_bitmapscan = off',
  // An index-only scan of an index that merely contains the key column (customer_id, id) would read
  // that index whole; without it, an index is only scanned through a condition on it.
  'SET LOCAL enable_indexonlyscan = off',
  // A merge join wants both sides in key order: a table's side would be its whole primary key.
  // Hash joins stay: every table a hot statement joins has a condition of its own on its key
  // (UPDATE ... FROM unnest() AND id = ANY(...)), so a hash join reads it by key too, and joins a
  // usage batch's 600 customers to their values in one pass, where a nested loop would compare
  // every pair (it doubled PostgreSQL's CPU per ingested event).
  'SET LOCAL enable_mergejoin = off',
].join('; ');

/**
 * Ids of the hot paths' statements, by text, the same on every connection. Their texts are fixed
 * in the code (values travel as parameters), so the set is small; past the cap, a text goes
 * unnamed, planned each time, rather than filling every connection's memory.
 */
const statementIds = new Map<string, number>();
const NAMED_STATEMENTS_MAX = 500;

/**
 * When a connection's kept plans are made again, in ms after it made the current ones: soon after
 * it opens, then less and less often. A plan made while a table was nearly empty (a new deployment,
 * a fresh benchmark database: its statistics say empty) can be a poor one that its settings do
 * not rule out, such as a customer's whole history scanned through one index instead of a few rows
 * fetched by another; made again once the tables hold rows, it is planned from their real size.
 */
const REPLAN_AFTER_MS: readonly number[] = [1_000, 4_000, 16_000, 64_000, 256_000, 1_024_000, 3_600_000];

interface ReplanSchedule {
  after: readonly number[];
  nowMs: () => number;
}

/** Which plans a connection keeps: the statements it prepared are named with the generation. */
interface ConnectionPlans {
  generation: number;
  since: number;
}

/** By connection: a PostgreSQL pool's client, or PGlite's one. */
const plansOf = new WeakMap<object, ConnectionPlans>();

/** The connection's plans, moved to a new generation when theirs is due: then true, and the old ones must be deallocated. */
function currentPlans(client: object, { after, nowMs }: ReplanSchedule): { plans: ConnectionPlans; renewed: boolean } {
  const now = nowMs();
  const plans = plansOf.get(client);
  if (!plans) {
    const fresh = { generation: 0, since: now };
    plansOf.set(client, fresh);
    return { plans: fresh, renewed: false };
  }
  if (now - plans.since < after[Math.min(plans.generation, after.length - 1)]!) return { plans, renewed: false };
  plans.generation += 1;
  plans.since = now;
  return { plans, renewed: true };
}

/**
 * A transaction's planning settings for its hot statements. A connection's first generation plans
 * each statement for its values, every time: its tables may be empty yet (statistics saying so make
 * every index look as cheap as another), and a plan kept from then would be kept as they fill.
 * Later generations keep one plan.
 */
function planningFor(generation: number): string {
  return `SET LOCAL plan_cache_mode = ${generation === 0 ? 'force_custom_plan' : 'force_generic_plan'}; ${HOT_PATH_PLANNING}`;
}

function nameOf(sql: string, generation: number): string | undefined {
  let id = statementIds.get(sql);
  if (id === undefined && statementIds.size < NAMED_STATEMENTS_MAX) statementIds.set(sql, (id = statementIds.size + 1));
  return id === undefined ? undefined : `tollgate_${id}_${generation}`;
}

/**
 * queryEach and commitWith pipeline their statements: sent together without waiting for each
 * reply (the driver's pipeline mode), as named prepared statements with their values as
 * parameters, BEGIN and the planning settings ahead of the first, COMMIT behind the last. One
 * round trip each; PostgreSQL runs them in order, each with its own snapshot, and after a failure
 * every later statement of the transaction fails too, so nothing of it commits. A connection
 * parses each statement once per plan generation (REPLAN_AFTER_MS) and keeps its plan until then.
 */
class PostgresTx implements Tx {
  private begun = false;
  private ended = false;
  /** The plan generation of this transaction's hot statements, set by its first queryEach or commitWith. */
  private generation: number | null = null;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly replan: ReplanSchedule,
  ) {}

  /** Begun and neither committed nor known to be ended: a failure must roll it back. */
  get open(): boolean {
    return this.begun && !this.ended;
  }

  async query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    if (!this.begun) {
      await this.client.query('BEGIN');
      this.begun = true;
    }
    return (await this.client.query(sql, params as unknown[])).rows as T[];
  }

  async queryEach(statements: Statement[]): Promise<Rows[]> {
    return this.send(statements, false);
  }

  async commitWith(statements: Statement[]): Promise<void> {
    await this.send(statements, true);
    this.ended = true;
  }

  /** Commits, unless commitWith did or nothing was begun. */
  async end(): Promise<void> {
    if (!this.open) return;
    await this.client.query('COMMIT');
    this.ended = true;
  }

  private async send(statements: Statement[], commit: boolean): Promise<Rows[]> {
    const sent: Array<Promise<pg.QueryResult | pg.QueryResult[]>> = [];
    // The driver writes each query as it is submitted; corked, they leave in one write.
    const socket = this.client.connection.stream;
    socket.cork();
    try {
      if (this.generation === null) {
        // A transaction's statements all run plans of one generation, chosen when its first are sent.
        const { plans, renewed } = currentPlans(this.client, this.replan);
        if (renewed) sent.push(this.client.query('DEALLOCATE ALL'));
        const planning = planningFor(plans.generation);
        sent.push(this.client.query(this.begun ? planning : `BEGIN; ${planning}`));
        this.begun = true;
        this.generation = plans.generation;
      }
      for (const { sql, params } of statements) sent.push(this.client.query({ name: nameOf(sql, this.generation), text: sql, values: params ?? [] }));
      if (commit) sent.push(this.client.query('COMMIT'));
    } finally {
      socket.uncork();
    }
    const first = sent.length - statements.length - (commit ? 1 : 0);
    const replies = await Promise.allSettled(sent);
    // The first failure is the cause; the statements after it fail only because it did.
    const failed = replies.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    return replies.slice(first, first + statements.length).map((r) => ((r as PromiseFulfilledResult<pg.QueryResult>).value.rows as Rows));
  }
}

const RETRYABLE = new Set(['40001', '40P01']);
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '53300']);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i;

/** The database is down or unreachable (not a bug): callers answer 503 and clients retry. */
export function isUnavailableDbError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: string; message?: string };
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  if (error instanceof AggregateError) return error.errors.some(isUnavailableDbError);
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message);
}

/** Serialization failures and deadlocks are safe to retry: the transaction left nothing behind. */
export function isRetryableDbError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && RETRYABLE.has((error as { code?: string }).code ?? '');
}
