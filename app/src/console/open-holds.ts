import type { paths } from '../api/schema';

type Transaction = paths['/v1/customers/{id}/transactions']['get']['responses'][200]['content']['application/json']['data'][number];

/** Holds among `entries` that no capture or release has resolved yet (those name the hold in pending_id). */
export function openHolds(entries: Transaction[]): Transaction[] {
  const resolved = new Set(entries.flatMap((t) => (t.pending_id ? [t.pending_id] : [])));
  return entries.filter((t) => t.kind === 'hold' && t.pending && !resolved.has(t.id));
}
