import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/platform/db.js';
import { authorize, balanceOf, createCustomer, seedCatalog } from '../support/fixtures.js';
import { startServer, type Api } from '../support/harness.js';
import { PowerLossDisk } from '../support/power-loss-disk.js';
import { testEngine } from '../support/test-db.js';

/**
 * DESIGN.md invariant 4, "a 2xx means the effect is committed durably", on the embedded database:
 * what the API acknowledged is still there when only what PGlite fsynced reached the disk
 * (src/platform/pglite-durable-fs.ts; PostgreSQL syncs its own files).
 */
describe.skipIf(testEngine !== 'pglite')('the embedded database (PGlite) through a power loss', () => {
  // Made in beforeAll, not here: a skipped suite's hooks do not run, and its directory would be left behind.
  let root: string;
  beforeAll(() => void (root = mkdtempSync(join(tmpdir(), 'tollgate-power-loss-'))));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const serverOn = (db: Db) => startServer({ database: { db, url: undefined, drop: () => db.close() } });

  interface Acknowledged {
    customerId: string;
    available: string;
    reservation: string;
    events: number;
  }

  /** A customer with credit, a settled hold and 20 usage events, each answered 2xx. */
  async function customerWithUsage(api: Api, name: string): Promise<Acknowledged> {
    const c = await createCustomer(api, { credit: '10.00' });
    const auth = await authorize(api, c.apiKey, { megapixels: 4 });
    expect(auth.status).toBe(200);
    const reservation = auth.body.reservation.id as string;
    expect((await api.post(`/v1/reservations/${reservation}/settle`, { usage: { megapixels: '2' } })).status).toBe(200);
    const events = Array.from({ length: 20 }, (_, i) => ({
      specversion: '1.0', id: `${name}-${i}`, source: 'power-loss-test', type: 'usage', time: new Date().toISOString(),
      subject: c.customerId, data: { product: 'fal-ai/flux/dev', megapixels: '1' },
    }));
    const ingested = await api.post('/v1/events', events);
    expect(ingested.status).toBe(200);
    expect(ingested.body.data.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    const { available } = await balanceOf(api, c.customerId);
    expect(available).toBe('9.45'); // 10.00 - 2 megapixels settled - 20 ingested, at 0.025
    return { customerId: c.customerId, available, reservation, events: events.length };
  }

  /** Opens what the disk kept, the running database never closed, and finds every acknowledged write. */
  async function expectSurvived(disk: PowerLossDisk, acknowledged: Acknowledged[]) {
    const survivor = await openDb({ dataDir: disk.dir });
    const server = await serverOn(survivor);
    try {
      for (const { customerId, available, reservation, events } of acknowledged) {
        expect(await balanceOf(server.api, customerId)).toMatchObject({ available, held: '0.00' });
        expect((await server.api.get(`/v1/reservations/${reservation}`)).body).toMatchObject({ status: 'settled', charged: '0.05' });
        const usage = await server.api.get(`/v1/events?customer=${customerId}&limit=100`);
        expect(usage.body.data.filter((e: { source: string }) => e.source === 'power-loss-test')).toHaveLength(events);
      }
    } finally {
      await server.close();
      await survivor.close();
    }
  }

  it('keeps every acknowledged write, through a checkpoint and a new WAL segment', async () => {
    const dataDir = join(root, 'closed');
    const first = await openDb({ dataDir });
    const setup = await serverOn(first);
    await seedCatalog(setup.api);
    await setup.close();
    await first.close();

    // From here on, the disk holds what was fsynced, nothing more.
    const disk = new PowerLossDisk(dataDir, join(root, 'closed-disk'));
    const db = await openDb({ dataDir, pgliteSyncFile: disk.sync });
    try {
      const server = await serverOn(db);
      const acknowledged: Acknowledged[] = [];
      try {
        for (let round = 0; round < 4; round++) {
          acknowledged.push(await customerWithUsage(server.api, `closed-${round}`));
          // A checkpoint: its data files must be on the disk before the WAL it replaces goes.
          if (round === 1) await db.exec('CHECKPOINT');
          // A new WAL segment: the file and its directory entry must be on the disk before a commit in it.
          if (round === 2) await db.query('SELECT pg_switch_wal()');
        }
      } finally {
        await server.close();
      }
      await expectSurvived(disk, acknowledged);
    } finally {
      await db.close();
    }
  });

  it('keeps a data directory it has just created, and what was written to it', async () => {
    const dataDir = join(root, 'new');
    mkdirSync(dataDir);
    const disk = new PowerLossDisk(dataDir, join(root, 'new-disk'));
    const db = await openDb({ dataDir, pgliteSyncFile: disk.sync });
    try {
      const server = await serverOn(db);
      let acknowledged: Acknowledged;
      try {
        await seedCatalog(server.api);
        acknowledged = await customerWithUsage(server.api, 'new');
      } finally {
        await server.close();
      }
      await expectSurvived(disk, [acknowledged]);
    } finally {
      await db.close();
    }
  });
});
