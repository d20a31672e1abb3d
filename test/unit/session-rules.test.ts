import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csrfTokenOf, hashToken, isLive, looksLikePortalToken, looksLikeSessionSecret, needsTouch, newPortalToken, newSessionSecret, portalRefusal } from '../../src/dashboard/session-rules.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
const IDLE_MS = 60 * 60_000;

describe('session rules', () => {
  it('a session is live before its absolute end, within the idle timeout, and not signed out', () => {
    const session = { expiresAt: at(8 * 3_600_000), lastSeenAt: at(0), revokedAt: null };
    expect(isLive(session, at(IDLE_MS - 1), IDLE_MS)).toBe(true);
    expect(isLive(session, at(IDLE_MS), IDLE_MS)).toBe(false);
    expect(isLive({ ...session, lastSeenAt: at(8 * 3_600_000 - 1) }, at(8 * 3_600_000), IDLE_MS)).toBe(false);
    expect(isLive({ ...session, revokedAt: at(1) }, at(2), IDLE_MS)).toBe(false);
  });

  it('is never live after either end (property)', () => {
    fc.assert(
      fc.property(fc.nat(100_000_000), fc.nat(100_000_000), fc.nat(200_000_000), (expiresMs, lastSeenMs, nowMs) => {
        const live = isLive({ expiresAt: at(expiresMs), lastSeenAt: at(lastSeenMs), revokedAt: null }, at(nowMs), IDLE_MS);
        expect(live).toBe(nowMs < expiresMs && nowMs < lastSeenMs + IDLE_MS);
      }),
    );
  });

  it('writes the last-seen time once a minute at most', () => {
    expect(needsTouch(at(0), at(59_999))).toBe(false);
    expect(needsTouch(at(0), at(60_000))).toBe(true);
  });

  it('tells why a portal link cannot be redeemed: unknown, used (before expired), expired', () => {
    expect(portalRefusal(null, at(0))).toBe('unknown');
    expect(portalRefusal({ expiresAt: at(10), usedAt: at(5) }, at(20))).toBe('used');
    expect(portalRefusal({ expiresAt: at(10), usedAt: null }, at(10))).toBe('expired');
    expect(portalRefusal({ expiresAt: at(10), usedAt: null }, at(9))).toBeNull();
  });

  it('makes 256-bit prefixed secrets, hashed for storage, with a CSRF token that is not the secret', () => {
    const token = newPortalToken();
    const secret = newSessionSecret();
    expect(token).toMatch(/^pst_[A-Za-z0-9_-]{43}$/);
    expect(secret).toMatch(/^tgs_[A-Za-z0-9_-]{43}$/);
    expect(looksLikePortalToken(token) && looksLikeSessionSecret(secret)).toBe(true);
    expect(looksLikePortalToken(secret) || looksLikeSessionSecret(token)).toBe(false);
    expect(newSessionSecret()).not.toBe(secret);
    expect(hashToken(secret)).toMatch(/^[0-9a-f]{64}$/);
    expect(csrfTokenOf(secret)).toBe(csrfTokenOf(secret));
    expect(csrfTokenOf(secret)).not.toBe(csrfTokenOf(newSessionSecret()));
    expect(csrfTokenOf(secret)).not.toContain(secret.slice(4, 20));
  });
});
