import { expect } from 'vitest';
import { ledgerTotals } from '../../src/ledger/ledger-queries.js';
import { verifyLedger } from '../../src/ledger/ledger-verify.js';
import type { Queryable } from '../../src/platform/db.js';

/**
 * DESIGN.md invariant 1: per currency, all debits equal all credits, posted and pending; and the
 * ledger's books agree with themselves: account totals are what their transfers add up to, and
 * every transfer names accounts and holds that exist (verifyLedger, `tollgate ledger verify`).
 */
export async function expectDoubleEntry(db: Queryable): Promise<void> {
  expect((await ledgerTotals(db)).length).toBeGreaterThan(0);
  expect(await verifyLedger(db), 'what `tollgate ledger verify` finds').toEqual([]);
}
