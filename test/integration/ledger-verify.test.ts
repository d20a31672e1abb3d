import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger, type LedgerFinding } from '../../src/ledger/ledger-verify.js';
import type { Queryable } from '../../src/platform/db.js';
import { startServer, type TestServer } from '../support/harness.js';
import { authorize, createCustomer, seedCatalog, type Fixture } from '../support/fixtures.js';

/** What `tollgate ledger verify` finds: nothing in books the ledger wrote, each kind of damage when there is some. */
let server: TestServer;
let c: Fixture;
let captureId: string;
let expiringGrantId: string;

beforeAll(async () => {
  server = await startServer();
  await seedCatalog(server.api);
  c = await createCustomer(server.api, { credit: '10.00' });
  const a = await authorize(server.api, c.apiKey, { megapixels: 4 });
  expect((await server.api.post(`/v1/reservations/${a.body.reservation.id}/settle`, { usage: { megapixels: 2 } })).status).toBe(200);
  const transactions = (await server.api.get(`/v1/customers/${c.customerId}/transactions`)).body.data as Array<{ id: string; kind: string }>;
  captureId = transactions.find((t) => t.kind === 'capture')!.id;
  const grant = await server.api.post(`/v1/customers/${c.customerId}/credit_grants`, { amount: '1.00', category: 'promotional', expires_at: '2099-01-01T00:00:00.000Z' });
  expect(grant.status).toBe(201);
  expiringGrantId = grant.body.id;
});
afterAll(() => server?.close());

const ROLLED_BACK = new Error('rolled back');

/** What the verifier finds after `damage`, which is then rolled back. */
async function findingsAfter(damage: (tx: Queryable) => Promise<unknown>): Promise<LedgerFinding[]> {
  let findings: LedgerFinding[] = [];
  await server.database.db
    .transaction(async (tx) => {
      await damage(tx);
      findings = await verifyLedger(tx);
      throw ROLLED_BACK;
    })
    .catch((error) => {
      if (error !== ROLLED_BACK) throw error;
    });
  return findings;
}

describe('verifyLedger', () => {
  it('finds nothing in the books the ledger wrote', async () => {
    expect(await verifyLedger(server.database.db)).toEqual([]);
  });

  it("finds an account whose totals are not its transfers' sum, and the currency out of balance", async () => {
    const findings = await findingsAfter((tx) => tx.query('UPDATE ledger_accounts SET debits_posted = debits_posted + 1 WHERE customer_id = $1', [c.customerId]));
    expect(findings).toEqual([
      { check: 'balanced', detail: expect.stringMatching(/^USD: posted debits \d+ and credits \d+/) },
      { check: 'totals', detail: expect.stringMatching(/^account acc_\S+ keeps debits \d+ .* its transfers add up to/) },
    ]);
  });

  it('finds a transfer naming an account that does not exist', async () => {
    const findings = await findingsAfter((tx) => tx.query(`UPDATE ledger_transfers SET credit_account_id = 'acc_missing' WHERE id = $1`, [captureId]));
    expect(findings).toContainEqual({ check: 'references', detail: `transfer ${captureId} names account acc_missing, which does not exist` });
  });

  it('finds a capture that resolves no pending hold of its reservation', async () => {
    const findings = await findingsAfter((tx) => tx.query(`UPDATE ledger_transfers SET pending_id = id WHERE id = $1`, [captureId]));
    expect(findings).toEqual([{ check: 'references', detail: expect.stringMatching(new RegExp(`^transfer ${captureId} resolves ${captureId}, which is not a pending hold of reservation res_`)) }]);
  });

  it("finds a grant with an expiry and a remainder that the expiry sweep's list lacks, or lists at another time", async () => {
    expect(await findingsAfter((tx) => tx.query('DELETE FROM credit_grant_expiries WHERE grant_id = $1', [expiringGrantId]))).toEqual([
      { check: 'expiries', detail: `grant ${expiringGrantId} has a remainder and an expiry but is not on the expiry sweep's list` },
    ]);
    const moved = await findingsAfter((tx) => tx.query(`UPDATE credit_grant_expiries SET expires_at = expires_at + interval '1 day' WHERE grant_id = $1`, [expiringGrantId]));
    expect(moved).toEqual([{ check: 'expiries', detail: expect.stringMatching(new RegExp(`^grant ${expiringGrantId} has a remainder and an expiry but is listed to expire at 2099-01-02`)) }]);
  });
});
