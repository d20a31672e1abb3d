import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from './errors.js';
import type { Principal } from './http.js';

/**
 * A dashboard session cookie as a credential (docs/dashboard.md): the HTTP layer's side of it.
 * What a session is and how it is stored belongs to src/dashboard; here are the cookie, the CSRF
 * rule and the same-origin rule, which every route shares.
 */

/** A browser session held as an HttpOnly cookie (src/dashboard): a credential like a bearer token. */
export interface CookieSession {
  id: string;
  principal: Principal;
  /** Unsafe requests made with the cookie must echo it in X-CSRF-Token. */
  csrfToken: string;
  /** The absolute end; the idle end slides with use. */
  expiresAt: Date;
}

/** How the HTTP layer turns a session cookie into a principal. */
export interface CookieSessions {
  cookieName: string;
  /** The live session a cookie's secret names, or null. */
  authenticate(secret: string): Promise<CookieSession | null>;
  /** TOLLGATE_PUBLIC_URL: the origin browsers use; unset: the request's own. */
  publicUrl: URL | undefined;
}

/** Methods that change something: with a cookie, they need the session's CSRF token and a same-origin Origin. */
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * A session cookie as the credential. An unknown or ended session is not counted against the
 * failed-authentication limit: its secret has 256 random bits (nothing to guess), and a browser
 * whose session just ended sends it on several requests at once.
 */
export async function authenticateCookie(request: FastifyRequest, reply: FastifyReply, sessions: CookieSessions | undefined): Promise<Principal> {
  const secret = sessions ? sessionCookieSecret(request, sessions.cookieName) : undefined;
  if (!sessions || !secret) throw new AppError('unauthorized', 'Send Authorization: Bearer <admin token or API key>, or sign in to the dashboard');
  const session = await sessions.authenticate(secret);
  if (!session) {
    writeSessionCookie(reply, sessions.cookieName, '', 0, isHttps(request, sessions.publicUrl));
    throw new AppError('unauthorized', 'The session has ended (signed out, expired or idle too long); sign in again');
  }
  if (UNSAFE_METHODS.has(request.method)) {
    refuseCrossOrigin(request, sessions.publicUrl);
    const sent = request.headers['x-csrf-token'];
    if (typeof sent !== 'string' || !sameText(sent, session.csrfToken)) {
      throw new AppError('csrf_failed', "Send the session's csrf_token in the X-CSRF-Token header with every POST, PUT, PATCH and DELETE");
    }
  }
  request.session = session;
  return session.principal;
}

/** The session cookie's value, when the request carries one. */
export function sessionCookieSecret(request: FastifyRequest, cookieName: string): string | undefined {
  return typeof request.headers.cookie === 'string' ? request.server.parseCookie(request.headers.cookie)[cookieName] || undefined : undefined;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The origin browsers use for Tollgate (scheme://host[:port]): the configured public URL, else the request's. */
export function publicOrigin(request: FastifyRequest, publicUrl: URL | undefined): string {
  return publicUrl ? publicUrl.origin : `${request.protocol}://${request.host}`;
}

/** Whether browsers reach Tollgate over https (the session cookie is then Secure). */
export function isHttps(request: FastifyRequest, publicUrl: URL | undefined): boolean {
  return publicOrigin(request, publicUrl).startsWith('https:');
}

/** A browser's Origin header, when sent, must be Tollgate's own: another site cannot act with the cookie. */
export function refuseCrossOrigin(request: FastifyRequest, publicUrl: URL | undefined) {
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== publicOrigin(request, publicUrl)) {
    throw new AppError('csrf_failed', `Requests with the session cookie must come from ${publicOrigin(request, publicUrl)}, not ${String(origin).slice(0, 200)}`);
  }
}

/**
 * Sets (or, with maxAgeSeconds 0, clears) the session cookie: HttpOnly (no script reads it),
 * SameSite=Strict (no other site's request carries it), Secure when browsers reach Tollgate over https.
 */
export function writeSessionCookie(reply: FastifyReply, name: string, value: string, maxAgeSeconds: number, secure: boolean) {
  reply.header('set-cookie', reply.server.serializeCookie(name, value, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: maxAgeSeconds, secure }));
}

