import type { EventResult } from '../metering/model.js';
import type { ClientConfig } from './client-config.js';
import { DEFAULT_RETRY_POLICY, describeFailure, fetchWithRetry, type HttpDeps, type RetryPolicy } from './fetch-with-retry.js';

/** The two event endpoints as the CLI calls them: POST /v1/events and GET /v1/events. */

/** The whole request was refused for its content (400, 413, 422): a smaller batch may pass. */
export class BatchRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Anything else that stops the command: wrong token, no such endpoint, an unreadable reply. */
export class CliFatal extends Error {}

const CONTENT_REFUSALS = new Set([400, 413, 422]);
const RESULT_STATUSES = new Set(['accepted', 'duplicate', 'rejected']);

export interface EventsPage {
  data: Record<string, unknown>[];
  has_more: boolean;
  next_cursor: string | null;
}

export class EventsApi {
  constructor(
    private readonly config: ClientConfig,
    private readonly deps: HttpDeps,
    private readonly policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  ) {}

  /**
   * Sends serialized events as one JSON array; one result per event, in order. No Idempotency-Key:
   * (source, id) already makes a resend harmless, and the server need not store large replies. The
   * price: a batch retried after a lost reply reports the events the first attempt took as duplicates.
   */
  async post(events: string[]): Promise<EventResult[]> {
    const response = await fetchWithRetry(
      `${this.config.baseUrl}/v1/events`,
      {
        method: 'POST',
        headers: { ...this.headers(), 'content-type': 'application/json' },
        body: `[${events.join(',')}]`,
      },
      this.deps,
      this.policy,
    );
    if (!response.ok) {
      const failure = await describeFailure(response);
      if (CONTENT_REFUSALS.has(response.status)) throw new BatchRefused(response.status, failure.code, failure.message);
      throw new CliFatal(`POST /v1/events: HTTP ${response.status} ${failure.code}: ${failure.message}`);
    }
    const body = (await response.json().catch(() => null)) as { data?: unknown } | null;
    const results = body?.data;
    if (!Array.isArray(results) || results.length !== events.length || !results.every((r) => RESULT_STATUSES.has(r?.status))) {
      throw new CliFatal(`POST /v1/events: expected ${events.length} results in "data", got ${JSON.stringify(body).slice(0, 200)}`);
    }
    return results as EventResult[];
  }

  /** One page of GET /v1/events. */
  async page(query: URLSearchParams): Promise<EventsPage> {
    const url = `${this.config.baseUrl}/v1/events?${query}`;
    const response = await fetchWithRetry(url, { method: 'GET', headers: this.headers() }, this.deps, this.policy);
    if (!response.ok) {
      const failure = await describeFailure(response);
      throw new CliFatal(`GET /v1/events: HTTP ${response.status} ${failure.code}: ${failure.message}`);
    }
    const body = (await response.json().catch(() => null)) as EventsPage | null;
    if (!body || !Array.isArray(body.data) || typeof body.has_more !== 'boolean') {
      throw new CliFatal(`GET /v1/events: not a list reply: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body;
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.config.adminToken}`, accept: 'application/json' };
  }
}
