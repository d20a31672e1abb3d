import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { AppError, InvariantError, type ErrorCode, type FieldError } from './errors.js';
import type { LogLevel } from './config.js';
import secureJson from 'secure-json-parse';

export type Principal = { kind: 'admin' } | { kind: 'customer'; customerId: string; apiKeyId: string };
/** Who may call a route: set per route as `config: { auth }`; /v1 routes default to admin. */
export type AuthRequirement = 'none' | 'admin' | 'customer' | 'any';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    auth?: AuthRequirement;
  }
}

export type HttpServer = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;

export interface HttpOptions {
  logLevel: LogLevel;
  bodyLimitBytes?: number;
  /** Turns a bearer token into a principal, or null when it is not valid. */
  authenticate: (token: string) => Promise<Principal | null>;
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
      redact: ['req.headers.authorization', 'req.headers.cookie', 'body.api_key', 'body.secret'],
    },
    bodyLimit: options.bodyLimitBytes ?? 1_048_576,
    logController: new LogController({ disableRequestLogging: options.logLevel !== 'debug' && options.logLevel !== 'trace' }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompilers());
  // An empty body on a JSON POST (e.g. release) means "no parameters", not a syntax error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch {
      done(new AppError('invalid_json', 'The request body is not valid JSON'), undefined);
    }
  });
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => authorizeRequest(request, options.authenticate));
  app.setErrorHandler((error, request, reply) => sendError(error as FastifyError, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new AppError('not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );
  return app;
}

async function authorizeRequest(request: FastifyRequest, authenticate: HttpOptions['authenticate']) {
  const requirement = request.routeOptions.config?.auth ?? (request.url.startsWith('/v1/') ? 'admin' : 'none');
  if (requirement === 'none') return;
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) throw new AppError('unauthorized', 'Send Authorization: Bearer <admin token or API key>');
  const principal = await authenticate(match[1]);
  if (!principal) throw new AppError('unauthorized', 'The bearer token is not valid');
  request.principal = principal;
  if (requirement === 'admin' && principal.kind !== 'admin') {
    throw new AppError('forbidden', 'This route needs the admin token; customer keys use /v1/me/...');
  }
  if (requirement === 'customer' && principal.kind !== 'customer') {
    throw new AppError('forbidden', 'This route is for a customer API key; the admin token uses /v1/customers/{id}/...');
  }
}

export function problemBody(error: AppError) {
  return {
    ...(error.extra ?? {}),
    type: `urn:tollgate:error:${error.code}`,
    title: titleOf(error.code),
    status: error.status,
    detail: error.detail,
    code: error.code,
    ...(error.errors ? { errors: error.errors } : {}),
  };
}

export function sendProblem(reply: FastifyReply, error: AppError) {
  return reply.status(error.status).type('application/problem+json').send(problemBody(error));
}

function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const known = toAppError(error);
  if (known) return sendProblem(reply, known);
  if (error instanceof InvariantError) request.log.error({ err: error }, 'invariant broken');
  else request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, new AppError('internal_error', 'Internal error; it has been logged'));
}

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
  }
  if (error instanceof SyntaxError) return new AppError('invalid_json', 'The request body is not valid JSON');
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
export function sendStored(reply: FastifyReply, stored: { status: number; body: unknown; replayed?: boolean }) {
  if (stored.replayed) reply.header('idempotent-replayed', 'true');
  return reply.status(stored.status).send(stored.body);
}
