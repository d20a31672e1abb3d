// PGlite's database for a run, prepared on a worker thread (bench/pglite-worker.ts) step by step:
// created and migrated at once, seeded when `seed()` is first called, its baselines measured and
// the database closed (so the server may open it) by `baselines()`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Reply, Step } from './pglite-worker.js';
import type { Baselines, PreparePlan, Seeding } from './prepare.js';

export interface PglitePreparation {
  dataDir: string;
  /** Settles once the database is created and migrated. */
  opened: Promise<void>;
  /** Seeds the database; every call returns the one seeding. */
  seed(): Promise<Seeding>;
  /** Measures the database's baselines, then closes it. */
  baselines(): Promise<Baselines>;
  /** Stops the thread and removes the data directory. */
  remove(): Promise<void>;
}

export function startPglitePreparation(plan: PreparePlan): PglitePreparation {
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-pglite-'));
  const entry = new URL('./pglite-worker.ts', import.meta.url).href;
  // A worker thread does not inherit the bench's tsx loader (--import tsx): its entry registers it.
  const worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`, {
    eval: true,
    workerData: { dataDir, plan },
  });
  const waiting = new Map<string, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  const failAll = (error: Error) => {
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  };
  worker.on('message', (message: Reply) => {
    if ('log' in message) return process.stderr.write(message.log);
    if ('error' in message) return failAll(new Error(`PGlite's preparation failed: ${message.error}`));
    waiting.get(message.step)?.resolve(message.value);
    waiting.delete(message.step);
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`PGlite's preparation thread exited (${code})`)));
  const reply = <T>(step: 'opened' | Step): Promise<T> => {
    const promise = new Promise<T>((resolve, reject) => waiting.set(step, { resolve, reject }));
    promise.catch(() => {}); // awaited when its step's turn comes; a failure is reported there
    return promise;
  };
  const ask = <T>(step: Step): Promise<T> => {
    const answer = reply<T>(step);
    worker.postMessage(step);
    return answer;
  };
  const opened = reply<void>('opened');
  let seeding: Promise<Seeding> | undefined;
  return {
    dataDir,
    opened,
    seed: () => {
      if (!seeding) {
        seeding = opened.then(() => ask<Seeding>('seed'));
        seeding.catch(() => {}); // PostgreSQL's seeding may fail first; a failure is reported when awaited
      }
      return seeding;
    },
    baselines: async () => {
      await (seeding ?? Promise.reject(new Error('PGlite is measured after it is seeded')));
      return ask<Baselines>('baselines');
    },
    remove: async () => {
      await worker.terminate();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
