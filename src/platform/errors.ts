/** Every stable error code the API can answer with, and its HTTP status: one table. */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_api_key: 401,
  forbidden: 403,
  csrf_failed: 403,
  not_found: 404,
  product_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_key_reused: 409,
  idempotency_key_in_use: 409,
  portal_link_expired: 410,
  portal_link_used: 410,
  reservation_not_pending: 409,
  payment_method_required: 409,
  query_too_deep: 400,
  query_too_costly: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  no_price: 422,
  insufficient_funds: 402,
  spend_limit_exceeded: 402,
  invalid_signature: 400,
  payments_not_configured: 503,
  dashboard_not_built: 503,
  concurrency_limit_exceeded: 429,
  rate_limited: 429,
  service_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface FieldError {
  path: string;
  message: string;
}

/** An expected outcome with a stable code; mapped to problem+json in one place (http.ts). */
export class AppError extends Error {
  readonly status: number;
  /** Sent as the Retry-After header (seconds): when a dependency is down (503). */
  retryAfterSeconds?: number;
  /** More response headers (the RateLimit-* headers of a 429). */
  headers?: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail);
    this.status = ERROR_STATUS[code];
  }
}

/** Result of an operation whose refusals are values, not exceptions (the hot path). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; detail: string; extra?: Record<string, unknown> };

export function refusal(code: ErrorCode, detail: string, extra?: Record<string, unknown>): Outcome<never> {
  return { ok: false, code, detail, extra };
}

/** A dependency (the event bus) is down: 503 with Retry-After; the client retries, nothing was recorded twice. */
export function unavailable(detail: string, retryAfterSeconds: number): AppError {
  const error = new AppError('service_unavailable', detail);
  error.retryAfterSeconds = retryAfterSeconds;
  return error;
}

export function notFound(what: string, id: string): AppError {
  return new AppError('not_found', `No ${what} with id ${id}`);
}

/** A broken invariant: a bug. Fails the request loudly (500, logged), never continues quietly. */
export class InvariantError extends Error {}

export function assertInvariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
