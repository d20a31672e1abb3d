import type { Clock } from '../platform/clock.js';
import type { DashboardConfig } from '../platform/config.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError } from '../platform/errors.js';
import type { CookieSession } from '../platform/cookie-auth.js';
import type { Principal } from '../platform/http.js';
import { newId } from '../platform/ids.js';
import {
  csrfTokenOf, hashToken, isLive, looksLikePortalToken, looksLikeSessionSecret, needsTouch, newPortalToken, newSessionSecret,
  portalRefusal, type SessionKind,
} from './session-rules.js';
import * as store from './session-store.js';

export interface PortalSession {
  id: string;
  object: 'portal_session';
  customer_id: string;
  url: string;
  expires_at: string;
  created_at: string;
}

/** A session just signed in: its cookie secret (set once, never shown again) and what the browser is told. */
export interface SignedIn {
  secret: string;
  session: CookieSession;
}

export interface DashboardDeps {
  db: Db;
  clock: Clock;
  settings: DashboardConfig;
  /** A customer that exists (404 otherwise), inside the caller's transaction. */
  requireCustomer: (id: string, tx: Queryable) => Promise<unknown>;
  /** The same check as a bearer token: the admin token gives { kind: 'admin' }. */
  authenticate: (token: string) => Promise<Principal | null>;
}

/** Ended sessions and links are kept this long (for an operator looking into a sign-in), then deleted. */
const RETENTION_MS = 86_400_000;

/**
 * Browser sign-in (docs/dashboard.md): one-time portal links for customers, admin-token sign-in
 * for the operator, and the sessions both turn into, held as an HttpOnly cookie.
 */
export class DashboardService {
  constructor(private readonly deps: DashboardDeps) {}

  /** A one-time link into the customer portal; the token travels in the URL fragment only. */
  async createPortalSession(tx: Queryable, customerId: string, expiresInMinutes: number, origin: string): Promise<PortalSession> {
    await this.deps.requireCustomer(customerId, tx);
    const now = this.deps.clock.now();
    const token = newPortalToken();
    const row = { id: newId('ps', now.getTime()), customer_id: customerId, token_hash: hashToken(token), expires_at: new Date(now.getTime() + expiresInMinutes * 60_000), created_at: now };
    await store.insertPortalSession(tx, row);
    return { id: row.id, object: 'portal_session', customer_id: customerId, url: `${origin}/app/portal#${token}`, expires_at: row.expires_at.toISOString(), created_at: now.toISOString() };
  }

  /** Redeems a portal link (once) into a customer session; refusals are AppErrors. */
  async redeemPortalToken(token: string): Promise<SignedIn> {
    if (!looksLikePortalToken(token)) throw new AppError('unauthorized', 'The portal link is not valid');
    const tokenHash = hashToken(token);
    const signedIn = await this.deps.db.transaction(async (tx) => {
      const now = this.deps.clock.now();
      const link = await store.claimPortalSession(tx, tokenHash, now);
      if (!link) return null;
      return this.startSession(tx, 'customer', link.customer_id, link.id, now);
    });
    if (signedIn) return signedIn;
    const link = await store.findPortalSessionByHash(this.deps.db, tokenHash);
    const refusal = portalRefusal(link && { expiresAt: link.expires_at, usedAt: link.used_at }, this.deps.clock.now());
    if (refusal === 'used') throw new AppError('portal_link_used', 'This portal link was already used; ask for a new one');
    if (refusal === 'expired') throw new AppError('portal_link_expired', 'This portal link has expired; ask for a new one');
    throw new AppError('unauthorized', 'The portal link is not valid');
  }

  /** Signs the operator in with the admin token. */
  async signInOperator(adminToken: string): Promise<SignedIn> {
    const principal = await this.deps.authenticate(adminToken);
    if (principal?.kind !== 'admin') throw new AppError('unauthorized', 'The admin token is not valid');
    return this.deps.db.transaction((tx) => this.startSession(tx, 'operator', null, null, this.deps.clock.now()));
  }

  /** The live session a cookie secret names, its idle end slid forward; null when there is none. */
  async authenticate(secret: string): Promise<CookieSession | null> {
    if (!looksLikeSessionSecret(secret)) return null;
    const row = await store.findDashboardSessionByHash(this.deps.db, hashToken(secret));
    const now = this.deps.clock.now();
    if (!row) return null;
    const times = { expiresAt: row.expires_at, lastSeenAt: row.last_seen_at, revokedAt: row.revoked_at };
    if (!isLive(times, now, this.deps.settings.idleMs)) return null;
    // A write per session about once a minute, not per request: the idle end is that coarse.
    if (needsTouch(row.last_seen_at, now)) await store.touchDashboardSession(this.deps.db, row.id, now);
    return cookieSession(row, secret);
  }

  async signOut(sessionId: string): Promise<void> {
    await store.revokeDashboardSession(this.deps.db, sessionId, this.deps.clock.now());
  }

  /** Ends the session a cookie secret names, if any: a browser that signs in again keeps one session, not two. */
  async signOutSecret(secret: string): Promise<void> {
    if (looksLikeSessionSecret(secret)) await store.revokeDashboardSessionByHash(this.deps.db, hashToken(secret), this.deps.clock.now());
  }

  /** Deletes sessions and links that ended over a day ago (run with the hourly purge). */
  async purge(): Promise<number> {
    const before = new Date(this.deps.clock.now().getTime() - RETENTION_MS);
    return store.purgeEnded(this.deps.db, before, new Date(before.getTime() - this.deps.settings.idleMs));
  }

  /** The longest a session of this kind lives: the cookie's Max-Age. */
  lifetimeMs(kind: SessionKind): number {
    return kind === 'customer' ? this.deps.settings.customerSessionMs : this.deps.settings.operatorSessionMs;
  }

  private async startSession(tx: Queryable, kind: SessionKind, customerId: string | null, portalSessionId: string | null, now: Date): Promise<SignedIn> {
    const secret = newSessionSecret();
    const row = {
      id: newId('dss', now.getTime()), kind, customer_id: customerId, portal_session_id: portalSessionId, secret_hash: hashToken(secret),
      expires_at: new Date(now.getTime() + this.lifetimeMs(kind)), last_seen_at: now, created_at: now,
    };
    await store.insertDashboardSession(tx, row);
    return { secret, session: cookieSession({ ...row, revoked_at: null }, secret) };
  }
}

function cookieSession(row: store.DashboardSessionRow, secret: string): CookieSession {
  const principal: Principal = row.kind === 'operator' ? { kind: 'admin' } : { kind: 'customer', customerId: row.customer_id!, apiKeyId: null };
  return { id: row.id, principal, csrfToken: csrfTokenOf(secret), expiresAt: row.expires_at };
}
