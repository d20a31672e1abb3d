import { expect } from 'vitest';
import { ledgerTotals } from '../../src/ledger/ledger-queries.js';
import type { Queryable } from '../../src/platform/db.js';

/** DESIGN.md invariant 1: per currency, all debits equal all credits, posted and pending. */
export async function expectDoubleEntry(db: Queryable): Promise<void> {
  const totals = await ledgerTotals(db);
  expect(totals.length).toBeGreaterThan(0);
  for (const t of totals) {
    expect(t.debits_posted, `posted debits = credits in ${t.currency}`).toBe(t.credits_posted);
    expect(t.debits_pending, `pending debits = credits in ${t.currency}`).toBe(t.credits_pending);
  }
}
