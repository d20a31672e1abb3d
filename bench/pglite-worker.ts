// PGlite's preparation on a thread of its own (started by bench/pglite-preparation.ts): its
// initdb and migrations run while the server builds, its seeding while PostgreSQL's seeds, each
// step when the bench asks for it, so that nothing runs beside what the bench measures.
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../src/platform/db.js';
import { migrate } from '../src/platform/migrate.js';
import type { PreparePlan, Seeding } from './prepare.js';

// Loaded when first asked for: the whole server's modules, a few seconds under tsx, which would
// otherwise delay the database's creation and run beside the hello-world ceiling.
const prepare = () => import('./prepare.js');

export type Step = 'seed' | 'baselines';
export type Reply = { step: 'opened' | Step; value?: unknown } | { error: string } | { log: string };

const { dataDir, plan } = workerData as { dataDir: string; plan: PreparePlan };
const port = parentPort!;
const reply = (message: Reply) => port.postMessage(message);

try {
  const db = await openDb({ dataDir });
  await migrate(db);
  reply({ step: 'opened' });
  let seeding: Seeding | undefined;
  const steps: Record<Step, () => Promise<unknown>> = {
    seed: async () => (seeding = await (await prepare()).seedDatabase(db, 'pglite', plan)),
    baselines: async () => {
      try {
        return await (await prepare()).measureBaselines(db, 'pglite', undefined, seeding!.seeded, plan);
      } finally {
        await db.close();
      }
    },
  };
  port.on('message', (step: Step) => {
    steps[step]().then(
      (value) => {
        reply({ step, value });
        if (step === 'baselines') port.close(); // the database is closed: the thread's work is done
      },
      (error: Error) => reply({ error: error.stack ?? String(error) }),
    );
  });
} catch (error) {
  reply({ error: (error as Error).stack ?? String(error) });
}
