import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Db, Queryable } from './db.js';
import { AppError } from './errors.js';
import type { Principal } from './http.js';
import type { SecretBox } from './secret-box.js';

/** What a request asked for, reduced to what idempotency compares. */
export interface IdempotencyRequest {
  principal: string;
  key: string;
  requestHash: string;
}

export interface StoredReply {
  status: number;
  body: unknown;
}

const KEY_LENGTH_MAX = 255;
export const IDEMPOTENCY_RETENTION_HOURS = 48;

/** Reads the Idempotency-Key header of a request; undefined when the client sent none. */
export function idempotencyOf(request: FastifyRequest): IdempotencyRequest | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key.length === 0 || key.length > KEY_LENGTH_MAX) {
    throw new AppError('invalid_request', `Idempotency-Key must be 1 to ${KEY_LENGTH_MAX} characters`);
  }
  const principal = idempotencyPrincipal(request.principal);
  const requestHash = createHash('sha256')
    .update(`${request.method} ${request.url}\n${canonicalJson(request.body ?? {})}`)
    .digest('base64url');
  return { principal, key, requestHash };
}

/**
 * Whose keys these are: an API key's own, the customer's for a portal session (no key), and one
 * shared space for the admin token and operator sessions (the same authority).
 */
function idempotencyPrincipal(principal: Principal | null): string {
  if (principal?.kind !== 'customer') return 'admin';
  return principal.apiKeyId ?? principal.customerId;
}

/** JSON with object keys sorted: the same request with its fields in another order is the same request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Same key and same request: the stored reply; same key and another request: 409. */
export function replayOrRefuse(request: IdempotencyRequest, stored: { request_hash: string; status_code: number; response_body: unknown }): StoredReply {
  if (stored.request_hash !== request.requestHash) {
    throw new AppError('idempotency_key_reused', `Idempotency-Key "${request.key}" was already used with a different request`);
  }
  return { status: stored.status_code, body: stored.response_body };
}

/** A stored reply as the idempotency table keeps it. */
export type StoredRecord = { principal: string; key: string; request_hash: string; status_code: number; response_body: unknown };

/** The stored records of the (principal, key) pairs in two text-array parameters (SQL, for callers that fold it into a larger statement). */
export function idempotencyRecordsSql(principalsParam: string, keysParam: string): string {
  return `SELECT principal, key, request_hash, status_code, response_body FROM idempotency_keys
     WHERE (principal, key) IN (SELECT * FROM unnest(${principalsParam}::text[], ${keysParam}::text[]))`;
}

/**
 * Locks the (principal, key) pairs in two text-array parameters (SQL, one row per distinct lock),
 * in one order, so batches never wait on each other in a cycle; taken before the records are read,
 * a duplicate in a concurrent batch waits for the first to commit and then replays it, instead of
 * applying its effect a second time. (Text parameters cannot carry recordKey's NUL separator: the
 * lock is on the two parts.)
 */
export function idempotencyLocksSql(principalsParam: string, keysParam: string): string {
  return `SELECT pg_advisory_xact_lock(p, k) FROM (
       SELECT DISTINCT hashtext(principal) AS p, hashtext(key) AS k FROM unnest(${principalsParam}::text[], ${keysParam}::text[]) AS r(principal, key)
     ) locks ORDER BY p, k`;
}

export async function loadIdempotencyRecords(tx: Queryable, requests: IdempotencyRequest[]) {
  if (requests.length === 0) return new Map<string, StoredRecord>();
  const rows = await tx.query<StoredRecord>(idempotencyRecordsSql('$1', '$2'), [requests.map((r) => r.principal), requests.map((r) => r.key)]);
  return new Map(rows.map((r) => [recordKey(r.principal, r.key), r]));
}

/**
 * A refusal found before a request reaches its transaction (its key revoked, a time now past)
 * does not hide an earlier success: when the same request already succeeded, its reply replays.
 */
export async function replayOrThrow(db: Queryable, request: IdempotencyRequest | undefined, refusal: unknown): Promise<StoredReply & { replayed: true }> {
  if (request && refusal instanceof AppError) {
    const stored = (await loadIdempotencyRecords(db, [request])).get(recordKey(request.principal, request.key));
    if (stored) return { ...replayOrRefuse(request, stored), replayed: true };
  }
  throw refusal;
}

export function recordKey(principal: string, key: string): string {
  return `${principal}\u0000${key}`;
}

export async function saveIdempotencyRecords(tx: Queryable, records: Array<IdempotencyRequest & StoredReply>) {
  if (records.length === 0) return;
  await tx.query(
    `INSERT INTO idempotency_keys (principal, key, request_hash, status_code, response_body)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[])`,
    [
      records.map((r) => r.principal),
      records.map((r) => r.key),
      records.map((r) => r.requestHash),
      records.map((r) => r.status),
      records.map((r) => JSON.stringify(r.body)),
    ],
  );
}

/**
 * Runs a POST's effect and stores its successful reply in the same transaction, so a retry with
 * the same key replays it and a crash leaves either both or neither. Refusals (4xx) are not
 * stored: fixing the cause and retrying with the same key is allowed.
 */
export async function runIdempotent(
  db: Db,
  request: IdempotencyRequest | undefined,
  effect: (tx: Queryable) => Promise<StoredReply>,
  storage: ReplyStorage = AS_IS,
): Promise<StoredReply & { replayed: boolean }> {
  return db.transaction(async (tx) => {
    if (request) {
      await tx.query(idempotencyLocksSql('$1', '$2'), [[request.principal], [request.key]]);
      const stored = (await loadIdempotencyRecords(tx, [request])).get(recordKey(request.principal, request.key));
      if (stored) {
        const replay = replayOrRefuse(request, stored);
        return { status: replay.status, body: storage.fromStored(replay.body), replayed: true };
      }
    }
    const reply = await effect(tx);
    if (request && reply.status < 300) await saveIdempotencyRecords(tx, [{ ...request, status: reply.status, body: storage.toStored(reply.body) }]);
    return { ...reply, replayed: false };
  });
}

/** How a reply body is kept for replay: as is, or with some fields sealed (see secret-box.ts). */
export interface ReplyStorage {
  toStored(body: unknown): unknown;
  fromStored(body: unknown): unknown;
}

const AS_IS: ReplyStorage = { toStored: (body) => body, fromStored: (body) => body };

/**
 * For a reply carrying a secret shown once (an API key, a webhook signing secret, a portal link's
 * `url`): the stored reply keeps that field (default `secret`) encrypted, never in the clear, and a replay decrypts it.
 */
export function sealedSecretReplies(box: SecretBox, whenUnreadable: string, field = 'secret'): ReplyStorage {
  return {
    toStored: (body) => ({ ...(body as object), [field]: box.seal((body as Record<string, string>)[field]!) }),
    fromStored: (body) => {
      const secret = box.open((body as Record<string, string>)[field]!);
      if (secret === null) throw new AppError('conflict', whenUnreadable);
      return { ...(body as object), [field]: secret };
    },
  };
}

/** A key reserved by a request still in flight (see replayOrRun); taken over if left this long. */
const IN_FLIGHT_TAKEOVER_MS = 60_000;
const IN_FLIGHT_WAIT_MS = 30_000;
const IN_FLIGHT = 0;

/**
 * For an effect that commits in its own transactions and is idempotent by itself (usage events,
 * by source and id): with an Idempotency-Key, a retry gets the very reply of the first call. The
 * key is reserved before the effect runs; a concurrent request with the same key waits for the
 * first to finish and replays it (409 `idempotency_key_in_use` if that takes over 30 s). A
 * reservation left by a crashed process is taken over after a minute: running again is harmless.
 */
export async function replayOrRun(
  db: Db,
  request: IdempotencyRequest | undefined,
  run: () => Promise<StoredReply>,
): Promise<StoredReply & { replayed: boolean }> {
  if (!request) return { ...(await run()), replayed: false };
  const params = [request.principal, request.key];
  for (const started = Date.now(); ; await sleep(25)) {
    const [reserved] = await db.query(
      `INSERT INTO idempotency_keys (principal, key, request_hash, status_code, response_body) VALUES ($1, $2, $3, ${IN_FLIGHT}, 'null')
       ON CONFLICT (principal, key) DO UPDATE SET request_hash = excluded.request_hash, created_at = now()
         WHERE idempotency_keys.status_code = ${IN_FLIGHT} AND idempotency_keys.created_at < now() - make_interval(secs => $4)
       RETURNING 1 AS reserved`,
      [...params, request.requestHash, IN_FLIGHT_TAKEOVER_MS / 1000],
    );
    if (reserved) break;
    const stored = (await loadIdempotencyRecords(db, [request])).get(recordKey(request.principal, request.key));
    if (stored && stored.status_code !== IN_FLIGHT) return { ...replayOrRefuse(request, stored), replayed: true };
    if (Date.now() - started > IN_FLIGHT_WAIT_MS) {
      throw new AppError('idempotency_key_in_use', `A request with Idempotency-Key "${request.key}" is still in progress; retry shortly`);
    }
  }
  let reply: StoredReply;
  try {
    reply = await run();
  } catch (error) {
    await db.query(`DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status_code = ${IN_FLIGHT}`, params);
    throw error;
  }
  if (reply.status < 300) {
    await db.query('UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE principal = $1 AND key = $2', [...params, reply.status, JSON.stringify(reply.body)]);
  } else {
    await db.query(`DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status_code = ${IN_FLIGHT}`, params);
  }
  return { ...reply, replayed: false };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function purgeIdempotencyRecords(db: Db, before: Date): Promise<number> {
  const rows = await db.query('DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING 1', [before]);
  return rows.length;
}
