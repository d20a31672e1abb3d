import { randomUUID } from 'node:crypto';
import { fastifyCookie } from '@fastify/cookie';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isUnavailableDbError } from './db.js';
import { AppError, InvariantError, unavailable, type ErrorCode, type FieldError } from './errors.js';
import type { LogLevel } from './config.js';
import secureJson from 'secure-json-parse';
import { LOG_REDACT_PATHS } from '../observability/log-redaction.js';
import { traceLogFields } from '../observability/tracing.js';
import { authenticateCookie, type CookieSession, type CookieSessions } from './cookie-auth.js';

/** Who is calling. A customer signed in through the portal (a cookie session) has no API key: apiKeyId null. */
export type Principal = { kind: 'admin' } | { kind: 'customer'; customerId: string; apiKeyId: string | null };
/**
 * Who may call a route: set per route as `config: { auth }`; /v1 routes default to admin.
 * 'session': a dashboard session cookie only (the session routes themselves).
 */
export type AuthRequirement = 'none' | 'admin' | 'customer' | 'any' | 'session';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set when the principal came from a session cookie. */
    session: CookieSession | null;
  }
  interface FastifyContextConfig {
    auth?: AuthRequirement;
  }
}

export type HttpServer = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;

/** Rate limits around bearer authentication (src/rate-limits); each may throw a 429 or 503 AppError. */
export interface AuthLimits {
  /** Before a bearer token is checked: refuses an address that failed too often, without a round trip. */
  beforeAuthentication(request: FastifyRequest): void;
  /** A bearer token was not valid: counts it against the client address. */
  authenticationFailed(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** A principal was authenticated: its own limit (customer API keys). */
  authenticated(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void>;
}

const authLimitsOf = new WeakMap<HttpServer, AuthLimits>();

/**
 * Connections the kernel keeps waiting for accept (listen's backlog; the kernel caps it at
 * net.core.somaxconn). Node's default of 511 overflowed when 1,200 clients connected at once: the
 * kernel dropped 1,550 handshakes (TcpExtListenOverflows), each retried a second later, and one
 * client saw ECONNRESET (test/support/harness.ts met it first). A gateway fleet reconnecting after
 * a deploy or a proxy restart does the same.
 */
export const LISTEN_BACKLOG = 4096;

/** Puts rate limits around authentication (set once the limits exist: they use the server's metrics). */
export function useAuthLimits(app: HttpServer, limits: AuthLimits) {
  authLimitsOf.set(app, limits);
}

export interface HttpOptions {
  logLevel: LogLevel;
  bodyLimitBytes?: number;
  /** Turns a bearer token into a principal, or null when it is not valid. */
  authenticate: (token: string) => Promise<Principal | null>;
  /** Session cookies as a credential (the dashboard); unset: bearer tokens only. */
  sessions?: CookieSessions;
  /** Where JSON log lines go (default stdout); tests capture them. */
  logStream?: NodeJS.WritableStream;
  /** Proxy hops whose X-Forwarded-For is trusted for the client address (request.ip); 0: none. */
  trustProxyHops?: number;
}

/** A client's x-request-id is kept when it is this sane; otherwise Tollgate makes one. */
const REQUEST_ID = /^[A-Za-z0-9._:\/+=@-]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** Bodies are validated strictly (no coercion, unknown fields refused); query strings and params coerce. */
function validatorCompilers() {
  const strict = addFormats(new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false }));
  const coercing = addFormats(new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema);
}

export function createHttpServer(options: HttpOptions): HttpServer {
  const app = Fastify({
    logger: {
      level: options.logLevel,
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
      // Trace and span ids on every line written inside a traced request or batch.
      mixin: traceLogFields,
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    genReqId: requestIdOf,
    childLoggerFactory: (logger, bindings, childOptions) => new RequestLogger(logger, bindings, childOptions) as unknown as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes ?? 1_048_576,
    // Long enough for the longest external_id (200 characters), percent-encoded.
    routerOptions: { maxParamLength: 2_400 },
    // Bad percent-encoding and overlong path parameters are refused as problem+json too.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: options.logLevel !== 'debug' && options.logLevel !== 'trace' }),
    return503OnClosing: true,
    // The nth hop from the socket is the client: what Fastify's numeric trustProxy does, typed.
    trustProxy: options.trustProxyHops ? (_address: string, hop: number) => hop < options.trustProxyHops! : false,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompilers());
  // Only JSON bodies (a text/plain body is 415, not a string); an empty body on a JSON POST
  // (e.g. release) means "no parameters", not a syntax error.
  app.removeAllContentTypeParsers();
  // CloudEvents' structured and batched modes are JSON too (POST /v1/events).
  app.addContentTypeParser(['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'], { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch {
      done(new AppError('invalid_json', 'The request body is not valid JSON'), undefined);
    }
  });
  // Only its parser and serializer (app.parseCookie, app.serializeCookie): the session cookie is
  // read in the authorization hook below and written by the dashboard routes, one header each.
  app.register(fastifyCookie, { hook: false });
  app.decorateRequest('principal', null);
  app.decorateRequest('session', null);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    nameTraceSpan(request);
  });
  app.addHook('onRequest', async (request, reply) => authorizeRequest(request, reply, options, authLimitsOf.get(app)));
  app.addHook('preValidation', async (request) => refuseUnstorableInput(request));
  app.setErrorHandler((error, request, reply) => sendError(error as FastifyError, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new AppError('not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );
  return app;
}

type LogLevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>;
/** pino's, which Fastify's logger type leaves out. */
const levelEnabled = (logger: FastifyBaseLogger, level: string) => (logger as FastifyBaseLogger & { isLevelEnabled(level: string): boolean }).isLevelEnabled(level);

/**
 * A request's logger, made when the request first logs something at an enabled level; most
 * requests never do. Making a pino child runs the redaction over its bindings (the request id),
 * which cost 3% of the server's CPU on the hot path when every request made one.
 */
class RequestLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get logger(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  private write(level: LogLevelName, args: unknown[]): void {
    if (this.made || levelEnabled(this.parent, level)) (this.logger[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]) { this.write('fatal', args); }
  error(...args: unknown[]) { this.write('error', args); }
  warn(...args: unknown[]) { this.write('warn', args); }
  info(...args: unknown[]) { this.write('info', args); }
  debug(...args: unknown[]) { this.write('debug', args); }
  trace(...args: unknown[]) { this.write('trace', args); }
  silent() {}

  isLevelEnabled(level: string): boolean {
    return levelEnabled(this.made ?? this.parent, level);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}

/** The HTTP server span (when tracing) is named by the route template, not the raw URL. */
function nameTraceSpan(request: FastifyRequest) {
  const span = trace.getActiveSpan();
  const route = request.routeOptions.url;
  if (!span || !route) return;
  span.setAttribute('http.route', route);
  span.updateName(`${request.method} ${route}`);
}

async function authorizeRequest(request: FastifyRequest, reply: FastifyReply, options: HttpOptions, limits: AuthLimits | undefined) {
  const requirement = request.routeOptions.config?.auth ?? (request.url.startsWith('/v1/') ? 'admin' : 'none');
  if (requirement === 'none') return;
  // The Authorization header, when sent, always wins over a cookie (except on the session routes).
  const principal = request.headers.authorization === undefined || requirement === 'session'
    ? await authenticateCookie(request, reply, options.sessions)
    : await authenticateBearer(request, reply, options.authenticate, limits);
  request.principal = principal;
  await limits?.authenticated(request, reply, principal);
  if (requirement === 'admin' && principal.kind !== 'admin') {
    throw new AppError('forbidden', 'This route needs the admin token; customer keys use /v1/me/...');
  }
  if (requirement === 'customer' && principal.kind !== 'customer') {
    throw new AppError('forbidden', 'This route is for a customer API key; the admin token uses /v1/customers/{id}/...');
  }
}

async function authenticateBearer(request: FastifyRequest, reply: FastifyReply, authenticate: HttpOptions['authenticate'], limits: AuthLimits | undefined): Promise<Principal> {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) throw new AppError('unauthorized', 'Send Authorization: Bearer <admin token or API key>');
  limits?.beforeAuthentication(request);
  const principal = await authenticate(match[1]);
  if (!principal) {
    await limits?.authenticationFailed(request, reply);
    throw new AppError('unauthorized', 'The bearer token is not valid');
  }
  return principal;
}

/**
 * For a route that checks a credential of its own (dashboard sign-in): the same failed-authentication
 * limit as a bearer token. A refusal other than bad input counts as a failure.
 */
export async function withAuthenticationLimit<T>(app: HttpServer, request: FastifyRequest, reply: FastifyReply, check: () => Promise<T>): Promise<T> {
  const limits = authLimitsOf.get(app);
  limits?.beforeAuthentication(request);
  try {
    return await check();
  } catch (error) {
    if (error instanceof AppError && error.status < 500 && error.code !== 'invalid_request') await limits?.authenticationFailed(request, reply);
    throw error;
  }
}

/** NUL characters and unpaired UTF-16 surrogates: PostgreSQL text and jsonb cannot hold them. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Deeper JSON (in metadata) would overflow the stack of JSON.stringify or of PostgreSQL's jsonb parser. */
const NESTING_MAX = 64;

/**
 * Refuses, as bad input before it reaches SQL, such characters anywhere in the path, query or body
 * (keys included), and bodies nested more than NESTING_MAX levels deep.
 */
function refuseUnstorableInput(request: FastifyRequest) {
  const errors: FieldError[] = [];
  // The keys down to the value visited; no object per value, since every request's body passes here.
  const path: Array<string | number> = [];
  const pathOf = (root: string) => path.join('.') || root;
  const visit = (value: unknown, root: string, depth: number): void => {
    if (errors.length >= 20) return;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) errors.push({ path: pathOf(root), message: 'must not contain NUL characters or unpaired surrogates' });
    } else if (value !== null && typeof value === 'object') {
      // Deeper than this is refused unvisited, so the recursion stays shallow.
      if (depth >= NESTING_MAX) return void errors.push({ path: pathOf(root), message: `must not be nested more than ${NESTING_MAX} levels deep` });
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          visit(value[i], root, depth + 1);
          path.pop();
        }
        return;
      }
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        path.push(key);
        if (UNSTORABLE.test(key)) errors.push({ path: pathOf(root), message: 'keys must not contain NUL characters or unpaired surrogates' });
        visit((value as Record<string, unknown>)[key], root, depth + 1);
        path.pop();
      }
    }
  };
  visit(request.params, 'params', 0);
  visit(request.query, 'querystring', 0);
  visit(request.body, 'body', 0);
  if (errors.length > 0) throw new AppError('invalid_request', 'The request has NUL characters, unpaired surrogates or values nested too deeply', errors);
}

export function problemBody(error: AppError, requestId?: string) {
  return {
    ...(error.extra ?? {}),
    type: `urn:tollgate:error:${error.code}`,
    title: titleOf(error.code),
    status: error.status,
    detail: error.detail,
    code: error.code,
    ...(error.errors ? { errors: error.errors } : {}),
    ...(requestId ? { request_id: requestId } : {}),
  };
}

export function sendProblem(reply: FastifyReply, error: AppError) {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  if (error.headers) reply.headers(error.headers);
  // Errors raised before the onRequest hooks (a malformed URL) still carry the request id.
  reply.header('x-request-id', reply.request.id);
  return reply.status(error.status).type('application/problem+json').send(problemBody(error, reply.request.id));
}

function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const known = toAppError(error);
  if (known) return sendProblem(reply, known);
  if (error instanceof InvariantError) request.log.error({ err: error }, 'invariant broken');
  else request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, new AppError('internal_error', 'Internal error; it has been logged'));
}

const DATABASE_RETRY_AFTER_SECONDS = 2;

function toAppError(error: FastifyError): AppError | null {
  if (error instanceof AppError) return error;
  if (error.validation) {
    const errors: FieldError[] = error.validation.map((v) => ({
      path: fieldPath(error.validationContext ?? 'body', v.instancePath, v.params as Record<string, unknown>),
      message: v.message ?? 'is invalid',
    }));
    return new AppError('invalid_request', `The request ${error.validationContext ?? 'body'} is invalid`, errors);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'The request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as application/json');
    case 'FST_ERR_BAD_URL':
      return new AppError('invalid_request', 'The URL is not validly percent-encoded');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError('invalid_request', 'A path parameter is too long');
  }
  if (error instanceof SyntaxError) return new AppError('invalid_json', 'The request body is not valid JSON');
  if (isUnavailableDbError(error)) return unavailable('The database is unavailable; retry shortly', DATABASE_RETRY_AFTER_SECONDS);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new AppError('invalid_request', error.message);
  return null;
}

function fieldPath(part: string, instancePath: string, params: Record<string, unknown>): string {
  const base = instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = (params.missingProperty ?? params.additionalProperty) as string | undefined;
  const path = [base, extra].filter(Boolean).join('.');
  return path === '' ? part : path;
}

function titleOf(code: ErrorCode): string {
  return code.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** Sends a reply produced by runIdempotent, marking replays. */
export function sendStored(reply: FastifyReply, stored: { status: number; body: unknown; replayed?: boolean; headers?: Record<string, string> }) {
  if (stored.replayed) reply.header('idempotent-replayed', 'true');
  if (stored.headers) reply.headers(stored.headers);
  return reply.status(stored.status).send(stored.body);
}

/** preValidation for a POST that takes no parameters: no body is validated as {} (unknown fields still refused). */
export const noBodyIsEmpty = async (req: { body: unknown }) => {
  if (req.body === undefined) req.body = {};
};
