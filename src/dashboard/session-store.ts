import type { Queryable } from '../platform/db.js';
import type { SessionKind } from './session-rules.js';

export interface PortalSessionRow {
  id: string;
  customer_id: string;
  token_hash: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: Date;
}

export interface DashboardSessionRow {
  id: string;
  kind: SessionKind;
  customer_id: string | null;
  portal_session_id: string | null;
  secret_hash: string;
  expires_at: Date;
  last_seen_at: Date;
  revoked_at: Date | null;
  created_at: Date;
}

export async function insertPortalSession(tx: Queryable, row: Omit<PortalSessionRow, 'used_at'>): Promise<void> {
  await tx.query(
    'INSERT INTO portal_sessions (id, customer_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)',
    [row.id, row.customer_id, row.token_hash, row.expires_at, row.created_at],
  );
}

/**
 * Marks an unused, unexpired link used and returns it; null when it is not (any more). One
 * statement: of two concurrent redeems, the second waits for the first's row lock, then finds
 * used_at set and matches nothing.
 */
export async function claimPortalSession(tx: Queryable, tokenHash: string, now: Date): Promise<PortalSessionRow | null> {
  const [row] = await tx.query<PortalSessionRow>(
    `UPDATE portal_sessions SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING *`,
    [tokenHash, now],
  );
  return row ?? null;
}

export async function findPortalSessionByHash(db: Queryable, tokenHash: string): Promise<PortalSessionRow | null> {
  const [row] = await db.query<PortalSessionRow>('SELECT * FROM portal_sessions WHERE token_hash = $1', [tokenHash]);
  return row ?? null;
}

export async function insertDashboardSession(tx: Queryable, row: Omit<DashboardSessionRow, 'revoked_at'>): Promise<void> {
  await tx.query(
    `INSERT INTO dashboard_sessions (id, kind, customer_id, portal_session_id, secret_hash, expires_at, last_seen_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [row.id, row.kind, row.customer_id, row.portal_session_id, row.secret_hash, row.expires_at, row.last_seen_at, row.created_at],
  );
}

export async function findDashboardSessionByHash(db: Queryable, secretHash: string): Promise<DashboardSessionRow | null> {
  const [row] = await db.query<DashboardSessionRow>('SELECT * FROM dashboard_sessions WHERE secret_hash = $1', [secretHash]);
  return row ?? null;
}

/** Slides the idle end; never moves last_seen_at back (two instances touching at once). */
export async function touchDashboardSession(db: Queryable, id: string, now: Date): Promise<void> {
  await db.query('UPDATE dashboard_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2 AND revoked_at IS NULL', [id, now]);
}

export async function revokeDashboardSession(db: Queryable, id: string, now: Date): Promise<void> {
  await db.query('UPDATE dashboard_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, now]);
}

export async function revokeDashboardSessionByHash(db: Queryable, secretHash: string, now: Date): Promise<void> {
  await db.query('UPDATE dashboard_sessions SET revoked_at = $2 WHERE secret_hash = $1 AND revoked_at IS NULL', [secretHash, now]);
}

/** Deletes sessions and portal links that ended before `before` (idle: last seen before `lastSeenBefore`). */
export async function purgeEnded(db: Queryable, before: Date, lastSeenBefore: Date): Promise<number> {
  const sessions = await db.query(
    'DELETE FROM dashboard_sessions WHERE expires_at < $1 OR last_seen_at < $2 OR revoked_at < $1 RETURNING 1',
    [before, lastSeenBefore],
  );
  // A link still referenced by a session stays until that session goes.
  const links = await db.query(
    `DELETE FROM portal_sessions p WHERE p.expires_at < $1
       AND NOT EXISTS (SELECT 1 FROM dashboard_sessions s WHERE s.portal_session_id = p.id) RETURNING 1`,
    [before],
  );
  return sessions.length + links.length;
}
