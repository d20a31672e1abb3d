import { Type } from 'typebox';
import { StringEnum, Timestamp } from '../platform/schemas.js';
import { TOKEN_LENGTH_MAX } from './session-rules.js';

export const PORTAL_LINK_MINUTES_MAX = 60;
export const PORTAL_LINK_MINUTES_DEFAULT = 15;

export const PortalSessionCreate = Type.Object(
  {
    expires_in_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: PORTAL_LINK_MINUTES_MAX, default: PORTAL_LINK_MINUTES_DEFAULT, description: 'How long the link can be opened' })),
  },
  { additionalProperties: false },
);

export const PortalSession = Type.Object({
  id: Type.String({ description: 'ps_...' }),
  object: Type.Literal('portal_session'),
  customer_id: Type.String(),
  url: Type.String({ description: 'Open once, before expires_at: <public URL>/app/portal#<token>. The token is in the fragment, which browsers never send to a server.' }),
  expires_at: Timestamp,
  created_at: Timestamp,
});

const Token = Type.String({ minLength: 1, maxLength: TOKEN_LENGTH_MAX });

/** One object with exactly one field (rather than a union): its refusals name the field. */
export const SessionCreate = Type.Object(
  {
    portal_token: Type.Optional({ ...Token, description: "A customer's sign-in: the token from a portal link's URL fragment" }),
    admin_token: Type.Optional({ ...Token, description: "The operator's sign-in" }),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'Exactly one of portal_token and admin_token' },
);

export const SignInIdempotencyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Accepted like on every POST, but a sign-in is not replayed: each starts a new session' })),
});

export const DashboardSession = Type.Object({
  object: Type.Literal('dashboard_session'),
  kind: StringEnum(['customer', 'operator'] as const),
  customer_id: Type.Union([Type.String(), Type.Null()]),
  csrf_token: Type.String({ description: 'Send as X-CSRF-Token with every POST, PUT, PATCH and DELETE made with the session cookie' }),
  expires_at: Timestamp,
});
