import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { isHttps, publicOrigin, refuseCrossOrigin, sessionCookieSecret, writeSessionCookie, type CookieSession } from '../platform/cookie-auth.js';
import { sendStored, withAuthenticationLimit, type HttpServer } from '../platform/http.js';
import { idempotencyOf, runIdempotent, sealedSecretReplies } from '../platform/idempotency.js';
import { IdempotencyHeader, IdParam, responses } from '../platform/schemas.js';
import type { SecretBox } from '../platform/secret-box.js';
import type { DashboardService, SignedIn } from './dashboard-service.js';
import { DashboardSession, PORTAL_LINK_MINUTES_DEFAULT, PortalSession, PortalSessionCreate, SessionCreate, SignInIdempotencyHeader } from './schemas.js';
import { SESSION_COOKIE } from './session-rules.js';

export function registerDashboardRoutes(app: HttpServer, db: Db, dashboard: DashboardService, box: SecretBox, publicUrl: URL | undefined) {
  // The link is shown once, and again only to a replay of the same creation; stored sealed.
  const linkReplies = sealedSecretReplies(box, 'This portal link can no longer be replayed (the admin token changed); create a new one', 'url');
  app.post('/v1/customers/:id/portal_sessions', {
    schema: { tags: ['dashboard'], summary: 'Create a one-time link into the customer portal', headers: IdempotencyHeader, params: IdParam('cus'), body: PortalSessionCreate, response: responses(PortalSession, 201) },
  }, async (req, reply) => {
    const minutes = req.body.expires_in_minutes ?? PORTAL_LINK_MINUTES_DEFAULT;
    const origin = publicOrigin(req, publicUrl);
    return sendStored(reply, await runIdempotent(db, idempotencyOf(req), async (tx) => ({ status: 201, body: await dashboard.createPortalSession(tx, req.params.id, minutes, origin) }), linkReplies));
  });

  const tags = ['dashboard sessions'];
  app.post('/v1/dashboard/sessions', {
    config: { auth: 'none' },
    schema: { tags, summary: 'Sign a browser in (portal link token or admin token); sets the session cookie', security: [], headers: SignInIdempotencyHeader, body: SessionCreate, response: responses(DashboardSession, 201) },
  }, async (req, reply) => {
    refuseCrossOrigin(req, publicUrl);
    const { portal_token: portalToken, admin_token: adminToken } = req.body;
    const signedIn = await withAuthenticationLimit(app, req, reply, () =>
      portalToken !== undefined ? dashboard.redeemPortalToken(portalToken) : dashboard.signInOperator(adminToken!),
    );
    const previous = sessionCookieSecret(req, SESSION_COOKIE);
    if (previous) await dashboard.signOutSecret(previous);
    // The browser drops the cookie at the session's absolute end; the server checks both ends anyway.
    writeSessionCookie(reply, SESSION_COOKIE, signedIn.secret, lifetimeSeconds(dashboard, signedIn), isHttps(req, publicUrl));
    return reply.status(201).send(present(signedIn.session));
  });
  app.get('/v1/dashboard/session', {
    config: { auth: 'session' },
    schema: { tags, summary: 'The session the cookie holds, with its CSRF token', security: [{ session: [] }], response: responses(DashboardSession) },
  }, async (req) => present(req.session!));
  app.delete('/v1/dashboard/session', {
    config: { auth: 'session' },
    schema: { tags, summary: 'Sign out: ends the session and clears the cookie (needs X-CSRF-Token)', security: [{ session: [] }], response: { 204: Type.Null(), ...errorsOnly } },
  }, async (req, reply) => signOut(req, reply, dashboard, publicUrl));
}

const { '4xx': clientErrors, '5xx': serverErrors } = responses(Type.Null());
const errorsOnly = { '4xx': clientErrors, '5xx': serverErrors };

function lifetimeSeconds(dashboard: DashboardService, signedIn: SignedIn): number {
  return Math.floor(dashboard.lifetimeMs(signedIn.session.principal.kind === 'admin' ? 'operator' : 'customer') / 1000);
}

async function signOut(req: FastifyRequest, reply: FastifyReply, dashboard: DashboardService, publicUrl: URL | undefined) {
  await dashboard.signOut(req.session!.id);
  writeSessionCookie(reply, SESSION_COOKIE, '', 0, isHttps(req, publicUrl));
  return reply.status(204).send();
}

function present(session: CookieSession) {
  const customer = session.principal.kind === 'customer' ? session.principal.customerId : null;
  return { object: 'dashboard_session' as const, kind: customer ? 'customer' as const : 'operator' as const, customer_id: customer, csrf_token: session.csrfToken, expires_at: session.expiresAt.toISOString() };
}
