import { createHash, createHmac, randomBytes } from 'node:crypto';

/** The cookie a browser holds; its value is a session secret (tgs_...). */
export const SESSION_COOKIE = 'tollgate_session';

const PORTAL_TOKEN_PREFIX = 'pst_';
const SESSION_SECRET_PREFIX = 'tgs_';
/** 256 random bits: a fast hash is enough at rest, since such a secret cannot be guessed. */
const SECRET_BYTES = 32;
/** Longer input is not a token Tollgate issued: refused before hashing. */
export const TOKEN_LENGTH_MAX = 128;

/** The last-seen time is written when it is at least this old: about once a minute per session, not per request. */
export const TOUCH_INTERVAL_MS = 60_000;

export type SessionKind = 'customer' | 'operator';

export function newPortalToken(): string {
  return PORTAL_TOKEN_PREFIX + randomBytes(SECRET_BYTES).toString('base64url');
}

export function newSessionSecret(): string {
  return SESSION_SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64url');
}

export function looksLikePortalToken(token: string): boolean {
  return token.startsWith(PORTAL_TOKEN_PREFIX) && token.length <= TOKEN_LENGTH_MAX;
}

export function looksLikeSessionSecret(secret: string): boolean {
  return secret.startsWith(SESSION_SECRET_PREFIX) && secret.length <= TOKEN_LENGTH_MAX;
}

/** How a portal token or session secret is stored and looked up. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The CSRF token of a session, derived from its secret: nothing more to store, the same on every
 * instance, and it reveals nothing about the secret (the cookie stays HttpOnly).
 */
export function csrfTokenOf(sessionSecret: string): string {
  return createHmac('sha256', sessionSecret).update('tollgate-csrf').digest('base64url');
}

export interface SessionTimes {
  expiresAt: Date;
  lastSeenAt: Date;
  revokedAt: Date | null;
}

/** Live: not signed out, before its absolute end, and used within the idle timeout. */
export function isLive(session: SessionTimes, now: Date, idleMs: number): boolean {
  return session.revokedAt === null && now < session.expiresAt && now.getTime() < session.lastSeenAt.getTime() + idleMs;
}

export function needsTouch(lastSeenAt: Date, now: Date): boolean {
  return now.getTime() - lastSeenAt.getTime() >= TOUCH_INTERVAL_MS;
}

export type PortalRefusal = 'unknown' | 'expired' | 'used';

/** Why a portal link that could not be redeemed was refused (null: it can be redeemed). */
export function portalRefusal(link: { expiresAt: Date; usedAt: Date | null } | null, now: Date): PortalRefusal | null {
  if (!link) return 'unknown';
  if (link.usedAt !== null) return 'used';
  if (now >= link.expiresAt) return 'expired';
  return null;
}
