import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';

/** The problem+json body every refusal carries (RFC 9457 with a stable `code`), from the OpenAPI document. */
export type Problem = paths['/v1/me']['get']['responses']['4XX']['content']['application/json'];

/** A refused or failed request: what the UI shows, with the server's stable code to branch on. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problem: Problem | null,
  ) {
    super(message);
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

let csrfToken: string | null = null;

/** The session's CSRF token, sent as X-CSRF-Token on every unsafe request (see session.ts). */
export function setCsrfToken(token: string | null) {
  csrfToken = token;
}

const sessionHeaders: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method)) {
      if (csrfToken) request.headers.set('x-csrf-token', csrfToken);
      // One key per user action: a retried POST (flaky network) cannot charge or create twice.
      if (request.method === 'POST' && !request.headers.has('idempotency-key')) request.headers.set('idempotency-key', crypto.randomUUID());
    }
    return request;
  },
};

/** The typed REST client: the session cookie is the credential, never a token in the browser. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(sessionHeaders);

/** The body of a successful reply, or an ApiError carrying the problem+json the server sent. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const problem = isProblem(error) ? error : null;
  throw new ApiError(response.status, problem?.code ?? 'http_error', problem?.detail ?? `The server answered ${response.status} ${response.statusText}`, problem);
}

function isProblem(body: unknown): body is Problem {
  return typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string';
}
