// Starting the processes a run needs, pinned to a core with taskset where the machine has it,
// and watching the server's resident memory while a scenario runs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import type { Job, JobResult } from './load-generator.js';

const TSX = ['--import', 'tsx'];
const hasTaskset = spawnSync('taskset', ['--version']).status === 0;
/** The server gets core 0 and the load generator core 1 (PostgreSQL floats: there are only two). */
export const SERVER_CORE = 0;
export const LOAD_CORE = Math.min(1, cpus().length - 1);
export const pinning = hasTaskset && cpus().length > 1 ? `server on core ${SERVER_CORE}, load generator on core ${LOAD_CORE}` : 'not pinned';

function pinned(core: number, args: string[]): [string, string[]] {
  return hasTaskset && cpus().length > 1 ? ['taskset', ['-c', String(core), ...args]] : [args[0]!, args.slice(1)];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Samples VmRSS every 100 ms until the returned function is called; it returns the peak in MB. */
  watchRss(): () => number;
}

/** The admin token every benchmarked server is started with. */
export const ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** A platform's quiet hours: holds started per second for the light-load latency (open loop), in `npm run bench` and `bench:compare`'s `light`. */
export const LIGHT_LOAD_HOLDS_PER_S = 50;

/**
 * The environment of a benchmarked `tollgate serve`: its database (DATABASE_URL or
 * TOLLGATE_DATA_DIR), port and the image's runtime settings (`shippedRuntime`), warnings only, and
 * no rate limits: the bench measures the ledger and ingest, not the rate limiter (one hot key
 * would be refused at 100/s).
 */
export function tollgateEnv(database: Record<string, string>, port: number, runtime: ShippedRuntime): Record<string, string> {
  return {
    ...database,
    ...runtime.env,
    TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    TOLLGATE_PORT: String(port),
    LOG_LEVEL: 'warn',
    TOLLGATE_RATE_LIMIT_PER_KEY: '0',
    TOLLGATE_RATE_LIMIT_FAILED_AUTH: '0',
  };
}

/** How the image runs the server's process, as far as memory goes: its heap flags and its allocator. */
export interface ShippedRuntime {
  /** NODE_OPTIONS, LD_PRELOAD and MALLOC_CONF, each empty where the image sets none (or its library is not on this machine). */
  env: Record<string, string>;
  /** For the table's header: the flags, and which allocator the server runs on. */
  description: string;
}

/**
 * The Dockerfile's `ENV NODE_OPTIONS="..."` and `ENV LD_PRELOAD=... MALLOC_CONF=...`, so a
 * benchmarked server runs with the heap settings and the malloc it ships with. The image preloads a
 * library from its own path; here the same library is looked up where this machine's packages put
 * it (Debian's libjemalloc2), and where it is missing the server runs on glibc's malloc and the
 * header says so.
 */
export function shippedRuntime(root: string): ShippedRuntime {
  let dockerfile: string;
  try {
    dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  } catch {
    return { env: { NODE_OPTIONS: '', LD_PRELOAD: '', MALLOC_CONF: '' }, description: '' };
  }
  const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile)?.[1] ?? '';
  const env = { NODE_OPTIONS: nodeOptions, LD_PRELOAD: '', MALLOC_CONF: '' };
  const parts = nodeOptions ? [`NODE_OPTIONS=${nodeOptions}`] : [];
  const preload = /^ENV\s+LD_PRELOAD=(\S+)/m.exec(dockerfile)?.[1];
  if (preload) {
    const library = basename(preload);
    const here = hostLibrary(library);
    const conf = /\bMALLOC_CONF=(\S+)/.exec(dockerfile)?.[1] ?? '';
    if (here) Object.assign(env, { LD_PRELOAD: here, MALLOC_CONF: conf });
    parts.push(here ? `${library} preloaded${conf ? ` with MALLOC_CONF=${conf}` : ''}, as in the image` : `glibc malloc (the image preloads ${library}; not found on this machine)`);
  }
  return { env, description: parts.join(', ') };
}

/** A shared library as this machine's packages install it: the architecture's multiarch directory first (Debian). */
export function hostLibrary(name: string): string | null {
  const multiarch = ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' } as Record<string, string>)[process.arch];
  const dirs = [...(multiarch ? [`/usr/lib/${multiarch}`] : []), '/usr/local/lib', '/usr/lib', '/usr/lib64'];
  return dirs.map((dir) => join(dir, name)).find((path) => existsSync(path)) ?? null;
}

/** A node process (`nodeArgs` before the script; a .ts script runs under tsx) that is up once `url` + `readyPath` answers. */
export async function startServer(script: string, args: string[], env: NodeJS.ProcessEnv, port: number, readyPath: string, nodeArgs: string[] = []): Promise<Server> {
  const [cmd, argv] = pinned(SERVER_CORE, ['node', ...nodeArgs, ...(script.endsWith('.ts') ? TSX : []), script, ...args]);
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited ${child.exitCode}: ${stderr}`);
    const ok = await fetch(url + readyPath, { method: readyPath === '/hello' ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body: readyPath === '/hello' ? '{}' : undefined })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${script} did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, pid: child.pid!, stop: () => stopChild(child), watchRss: () => watchRss(rssPid(child)) };
}

/**
 * Waits until the server's background queues are empty (the outbox events of the seeding, 3 per
 * customer, which its dispatcher works through after start-up), so that work is not measured.
 * Returns how long that took, in ms.
 */
export async function backgroundDone(server: Server, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const depths = [...metrics.matchAll(/^tollgate_job_queue_depth\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
    if (depths.every((depth) => depth === 0)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`the server's background queues did not empty in ${timeoutMs / 1000} s: ${depths.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** With taskset, the node process is taskset's (exec'd) self: same pid. */
const rssPid = (child: ChildProcess) => child.pid!;

function watchRss(pid: number): () => number {
  let peakKb = 0;
  const sample = () => {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) peakKb = Math.max(peakKb, Number(match[1]));
    } catch {
      // not Linux, or the process is gone: no figure
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return () => {
    clearInterval(timer);
    sample();
    return Math.round(peakKb / 1024);
  };
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export interface LoadGenerator {
  pid: number;
  run(job: Job): Promise<JobResult>;
  stop(): Promise<void>;
}

/** One load generator process on its own core for the whole run (no start-up cost per job). */
export function startLoadGenerator(): LoadGenerator {
  const [cmd, argv] = pinned(LOAD_CORE, ['node', ...TSX, join(import.meta.dirname, 'load-generator.ts')]);
  // taskset execs node in place: the IPC channel's descriptor and environment carry over.
  const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    pid: child.pid!,
    run: (job) =>
      new Promise((resolve, reject) => {
        const exited = (code: number | null) => reject(new Error(`load generator exited ${code}`));
        child.once('exit', exited);
        child.once('message', (reply: { result?: JobResult; error?: string }) => {
          child.off('exit', exited);
          if (reply.result) resolve(reply.result);
          else reject(new Error(`load generator: ${reply.error}`));
        });
        child.send(job);
      }),
    stop: () => stopChild(child),
  };
}
