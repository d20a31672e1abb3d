import type { Clock } from '../platform/clock.js';
import type { Db, Queryable } from '../platform/db.js';
import { AppError, notFound } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { pagesPerParent, toPage, type Page } from '../platform/lists.js';
import { toIso } from '../platform/schemas.js';
import type { SecretBox } from '../platform/secret-box.js';
import { eventsBetween } from '../outbox/outbox.js';
import { endpointWants, newWebhookSecret, SECRET_OVERLAP_MS } from './webhook-rules.js';
import { checkWebhookUrl } from './webhook-sender.js';
import * as store from './webhook-store.js';
import type { Owner } from './webhook-store.js';
import type { WebhookDelivery, WebhookEndpoint, WebhookEndpointCreate, WebhookEndpointUpdate } from './schemas.js';

const REPLAY_EVENTS_MAX = 1_000;

/** Webhook endpoints, their secrets and delivery logs, for the operator (owner null) or one customer. */
export class WebhooksService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly allowPrivate: boolean,
    private readonly customerExists: (tx: Queryable, id: string) => Promise<boolean>,
  ) {}

  async create(tx: Queryable, owner: Owner, input: WebhookEndpointCreate): Promise<WebhookEndpoint & { secret: string }> {
    await checkWebhookUrl(input.url, this.allowPrivate);
    const customerId = owner?.customerId ?? input.customer ?? null;
    if (customerId && !owner && !(await this.customerExists(tx, customerId))) throw notFound('customer', customerId);
    const now = this.clock.now();
    const secret = newWebhookSecret();
    const row: store.EndpointRow = {
      id: newId('whe', now.getTime()),
      customer_id: customerId,
      url: input.url,
      event_types: input.event_types ?? [],
      description: input.description ?? null,
      enabled: input.enabled ?? true,
      disabled_reason: null,
      secret_sealed: this.box.seal(secret),
      previous_secret_sealed: null,
      previous_secret_expires_at: null,
      failing_since: null,
      created_at: now,
      updated_at: now,
    };
    await store.insertEndpoint(tx, row);
    return { ...presentEndpoint(row), secret };
  }

  async list(owner: Owner, filter: { limit: number; cursor?: string; customer?: string; failing?: boolean }): Promise<Page<WebhookEndpoint>> {
    return toPage((await store.listEndpoints(this.db, owner, filter)).map(presentEndpoint), filter.limit);
  }

  async get(id: string, owner: Owner): Promise<WebhookEndpoint> {
    return presentEndpoint(await this.find(this.db, id, owner));
  }

  async update(tx: Queryable, id: string, owner: Owner, patch: WebhookEndpointUpdate): Promise<WebhookEndpoint> {
    const row = await this.find(tx, id, owner, true);
    if (patch.url !== undefined) await checkWebhookUrl(patch.url, this.allowPrivate);
    const enabling = patch.enabled === true && !row.enabled;
    const next: store.EndpointRow = {
      ...row,
      url: patch.url ?? row.url,
      event_types: patch.event_types ?? row.event_types,
      description: patch.description !== undefined ? patch.description : row.description,
      enabled: patch.enabled ?? row.enabled,
      // Enabled again by hand: a fresh start (its pending deliveries resume).
      disabled_reason: enabling ? null : row.disabled_reason,
      failing_since: enabling ? null : row.failing_since,
      updated_at: this.clock.now(),
    };
    await store.updateEndpoint(tx, next);
    return presentEndpoint(next);
  }

  async remove(tx: Queryable, id: string, owner: Owner): Promise<WebhookEndpoint> {
    const row = await this.find(tx, id, owner, true);
    await store.deleteEndpoint(tx, id);
    return presentEndpoint(row);
  }

  /** A new secret; the previous one keeps signing for SECRET_OVERLAP_MS (both signatures are sent). */
  async rotateSecret(tx: Queryable, id: string, owner: Owner): Promise<WebhookEndpoint & { secret: string }> {
    const row = await this.find(tx, id, owner, true);
    const now = this.clock.now();
    const secret = newWebhookSecret();
    const next = {
      ...row,
      secret_sealed: this.box.seal(secret),
      previous_secret_sealed: row.secret_sealed,
      previous_secret_expires_at: new Date(now.getTime() + SECRET_OVERLAP_MS),
      updated_at: now,
    };
    await store.updateEndpoint(tx, next);
    return { ...presentEndpoint(next), secret };
  }

  /** The secrets that sign a delivery now: the current one, and the previous during its overlap. */
  signingSecrets(row: store.EndpointRow, now: Date): string[] {
    const secrets = [this.open(row.secret_sealed)];
    if (row.previous_secret_sealed && row.previous_secret_expires_at && new Date(row.previous_secret_expires_at) > now) {
      secrets.push(this.open(row.previous_secret_sealed));
    }
    return secrets;
  }

  async deliveries(endpointId: string, owner: Owner, limit: number, cursor?: string): Promise<Page<WebhookDelivery>> {
    await this.find(this.db, endpointId, owner);
    const rows = await store.listDeliveries(this.db, endpointId, limit, cursor);
    const attempts = await store.attemptsOf(this.db, rows.map((r) => r.id));
    return toPage(rows.map((r) => presentDelivery(r, attempts.filter((a) => a.delivery_id === r.id))), limit);
  }

  /** A page of the endpoints of each of several customers, in one query (the GraphQL API's batched read): customer id -> page. */
  async listOf(customerIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<WebhookEndpoint>>> {
    return pagesPerParent(customerIds, await store.listEndpointsOf(this.db, customerIds, limit, cursor), (r) => r.customer_id!, presentEndpoint, limit);
  }

  /** A page of deliveries of each of several endpoints the caller may already see, in two queries: endpoint id -> page. */
  async deliveriesOf(endpointIds: string[], limit: number, cursor?: string): Promise<Map<string, Page<WebhookDelivery>>> {
    const rows = await store.listDeliveriesOf(this.db, endpointIds, limit, cursor);
    const attempts = await store.attemptsOf(this.db, rows.map((r) => r.id));
    return pagesPerParent(endpointIds, rows, (r) => r.endpoint_id, (r) => presentDelivery(r, attempts.filter((a) => a.delivery_id === r.id)), limit);
  }

  /** Puts one delivery back to pending, due now; it keeps its webhook-id (the event id). */
  async replayDelivery(tx: Queryable, id: string, owner: Owner): Promise<WebhookDelivery> {
    const delivery = await store.findDelivery(tx, id, owner);
    if (!delivery) throw notFound('webhook delivery', id);
    await store.upsertDeliveries(tx, [delivery], this.clock.now(), true);
    return presentDelivery((await store.findDelivery(tx, id, owner))!, await store.attemptsOf(tx, [id]));
  }

  /** Delivers again (or for the first time) every event of [from, to) the endpoint wants. */
  async replayRange(tx: Queryable, endpointId: string, owner: Owner, range: { from: string; to: string }) {
    const from = new Date(range.from);
    const to = new Date(range.to);
    if (from >= to) throw new AppError('invalid_request', 'to must be after from', [{ path: 'to', message: 'must be after from' }]);
    const endpoint = await this.find(tx, endpointId, owner);
    const events = await eventsBetween(tx, from, to, endpoint.customer_id, REPLAY_EVENTS_MAX + 1);
    const batch = events.slice(0, REPLAY_EVENTS_MAX);
    const target = { customerId: endpoint.customer_id, eventTypes: endpoint.event_types, enabled: true };
    const now = this.clock.now();
    const wanted = batch.filter((e) => endpointWants(target, e)).map((e) => ({ id: newId('whd', now.getTime()), endpoint_id: endpointId, event_id: e.id }));
    const replayed = await store.upsertDeliveries(tx, wanted, now, true);
    const more = events[REPLAY_EVENTS_MAX];
    return { replayed, next_from: more ? more.createdAt.toISOString() : null };
  }

  private async find(db: Queryable, id: string, owner: Owner, forUpdate = false): Promise<store.EndpointRow> {
    const row = await store.findEndpoint(db, id, owner, forUpdate);
    if (!row) throw notFound('webhook endpoint', id);
    return row;
  }

  private open(sealed: string): string {
    const secret = this.box.open(sealed);
    if (secret === null) throw new Error('a webhook secret cannot be decrypted: the admin token changed; rotate the endpoint secret');
    return secret;
  }
}

export function presentEndpoint(r: store.EndpointRow): WebhookEndpoint {
  return {
    id: r.id,
    customer_id: r.customer_id,
    url: r.url,
    event_types: r.event_types,
    description: r.description,
    enabled: r.enabled,
    disabled_reason: r.disabled_reason,
    failing_since: toIso(r.failing_since ? new Date(r.failing_since) : null),
    previous_secret_expires_at: toIso(r.previous_secret_expires_at ? new Date(r.previous_secret_expires_at) : null),
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

function presentDelivery(r: store.DeliveryRow & { event_type: string }, attempts: store.AttemptRow[]): WebhookDelivery {
  const iso = (d: Date | null) => toIso(d ? new Date(d) : null);
  return {
    id: r.id,
    endpoint_id: r.endpoint_id,
    event_id: r.event_id,
    event_type: r.event_type,
    status: r.status,
    attempts: r.attempts,
    next_attempt_at: r.status === 'pending' ? iso(r.next_attempt_at) : null,
    last_attempt_at: iso(r.last_attempt_at),
    last_status_code: r.last_status_code,
    created_at: new Date(r.created_at).toISOString(),
    log: attempts.map((a) => ({
      attempt: a.attempt,
      attempted_at: new Date(a.attempted_at).toISOString(),
      status_code: a.status_code,
      latency_ms: a.latency_ms,
      response_excerpt: a.response_excerpt,
      error: a.error,
    })),
  };
}
