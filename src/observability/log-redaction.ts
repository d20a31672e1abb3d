/**
 * Log fields replaced by "[redacted]" wherever they appear in a log line: credentials in request
 * headers (a logged request, or an HTTP client's error carrying its request), request bodies
 * logged with an error (authorize carries the customer's API key in `api_key`), a configuration
 * logged whole (admin token, Stripe keys, webhook secrets, metrics token), a new key's
 * `secret`, and the dashboard's sign-in secrets (a portal link's token, the session cookie in
 * `cookie` and `set-cookie`, the CSRF token in a body or the `x-csrf-token` header). Paths are pino's (fast-redact): `*` is one level of any key. Tollgate logs no request
 * headers or bodies on its own; these paths keep it that way when someone adds such a line.
 */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'set-cookie',
  'x-csrf-token',
  'csrf_token',
  'portal_token',
  'stripe-signature',
  'webhook-signature',
  'api_key',
  'secret',
  'token',
  'adminToken',
  'admin_token',
  'metricsToken',
  'secretKey',
  'secret_key',
  'webhookSecret',
  'webhook_secret',
  'password',
];

const HEADER_CONTAINERS = ['req.headers', 'request.headers', 'headers', 'err.headers', 'err.request.headers', 'err.config.headers', 'err.raw.headers', 'err.requestHeaders'];
const OBJECT_CONTAINERS = ['body', 'req.body', 'request.body', 'config', 'config.stripe', 'stripe', 'err', 'err.raw', 'event', 'data'];

const quoted = (field: string) => (/^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`);

export const LOG_REDACT_PATHS: string[] = [
  ...SECRET_FIELDS.map((field) => quoted(field).replace(/^\./, '')),
  ...[...HEADER_CONTAINERS, ...OBJECT_CONTAINERS].flatMap((container) => SECRET_FIELDS.map((field) => container + quoted(field))),
  // One more level down, whatever it is called (e.g. { input: { api_key } }).
  ...SECRET_FIELDS.map((field) => `*${quoted(field)}`),
];
