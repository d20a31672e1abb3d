/**
 * HTTP requests from the CLI to a running Tollgate, retried where a retry is safe and useful:
 * network errors, timeouts, 408, 429 and 5xx. Event ingestion is safe to repeat (the server keeps
 * each (source, id) once), and so are the list reads.
 */

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  attemptsMax: number;
  baseDelayMs: number;
  delayMaxMs: number;
  /** A server asking for more than this in Retry-After is waited for this long, then retried. */
  retryAfterMaxMs: number;
  /** Per attempt: a request that takes longer is aborted and counts as a network error. */
  timeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attemptsMax: 8,
  baseDelayMs: 250,
  delayMaxMs: 30_000,
  retryAfterMaxMs: 120_000,
  timeoutMs: 120_000,
};

export interface RetryInfo {
  /** The attempt that failed (1-based) and the number allowed. */
  attempt: number;
  attemptsMax: number;
  delayMs: number;
  reason: string;
}

export interface HttpDeps {
  fetch: FetchLike;
  sleep: (ms: number) => Promise<void>;
  /** In [0, 1): spreads the backoff of many clients (tests pass a fixed one). */
  random: () => number;
  now: () => Date;
  onRetry?: (info: RetryInfo) => void;
}

export const defaultHttpDeps = (onRetry?: (info: RetryInfo) => void): HttpDeps => ({
  fetch: (url, init) => fetch(url, init),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
  now: () => new Date(),
  onRetry,
});

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Exponential backoff with "equal jitter": half of base * 2^(attempt-1) (capped), plus up to as much again. */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.delayMaxMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: Date): number | null {
  if (header === null || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now.getTime());
}

/** How long to wait before the next attempt: the server's Retry-After when it gave one, else the backoff. */
export function retryDelayMs(attempt: number, retryAfter: number | null, policy: RetryPolicy, random: () => number): number {
  return retryAfter !== null ? Math.min(retryAfter, policy.retryAfterMaxMs) : backoffDelayMs(attempt, policy, random);
}

/**
 * The response of the first attempt that is not worth retrying, or of the last attempt. Throws the
 * last network error when no attempt got a response.
 */
export async function fetchWithRetry(url: string, init: RequestInit, deps: HttpDeps, policy: RetryPolicy = DEFAULT_RETRY_POLICY): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= policy.attemptsMax;
    let reason: string;
    let retryAfter: number | null = null;
    try {
      const response = await deps.fetch(url, { ...init, signal: AbortSignal.timeout(policy.timeoutMs) });
      if (!isRetryableStatus(response.status) || last) return response;
      reason = `HTTP ${response.status}`;
      retryAfter = retryAfterMs(response.headers.get('retry-after'), deps.now());
      await response.body?.cancel().catch(() => undefined);
    } catch (error) {
      if (!isTransient(error)) throw new NetworkError(`${init.method ?? 'GET'} ${url} failed: ${describeError(error)}`);
      if (last) throw new NetworkError(`${init.method ?? 'GET'} ${url} failed after ${attempt} attempts: ${describeError(error)}`);
      reason = describeError(error);
    }
    const delayMs = retryDelayMs(attempt, retryAfter, policy, deps.random);
    deps.onRetry?.({ attempt, attemptsMax: policy.attemptsMax, delayMs, reason });
    await deps.sleep(delayMs);
  }
}

/** The request could not be made, or no attempt got a reply. */
export class NetworkError extends Error {}

/**
 * A timeout, or a failure of the connection (it carries a system or undici error code: refused,
 * reset, DNS...). Anything else (a bad port, an invalid header) fails the same way every time.
 */
function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError') return true;
  const cause = (error as { cause?: unknown }).cause;
  return typeof (cause as NodeJS.ErrnoException | undefined)?.code === 'string';
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? `: ${(cause as NodeJS.ErrnoException).code ?? cause.message}` : '';
  return error.name === 'TimeoutError' ? 'timed out' : `${error.message}${detail}`;
}

/** A non-2xx reply in words, from its problem+json body when it has one. */
export async function describeFailure(response: Response): Promise<{ code: string; message: string }> {
  const text = await response.text().catch(() => '');
  try {
    const problem = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown; errors?: unknown };
    const code = typeof problem.code === 'string' ? problem.code : `http_${response.status}`;
    const message = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : text.slice(0, 500);
    const where = Array.isArray(problem.errors) ? problem.errors.map((e: { path?: unknown; message?: unknown }) => `${e?.path}: ${e?.message}`).join('; ') : '';
    return { code, message: where ? `${message} (${where})` : message };
  } catch {
    return { code: `http_${response.status}`, message: text.slice(0, 500) || response.statusText };
  }
}
