import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Db, Queryable } from './db.js';
import { columns } from './columns.js';
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
  // Appended to one string: an ingest body's thousand events made arrays and joined strings per
  // object, a sixth of everything the server allocated under ingest.
  let out = '';
  const write = (v: unknown): void => {
    if (Array.isArray(v)) {
      out += '[';
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out += ',';
        if (v[i] !== undefined) write(v[i]); // as Array.join wrote it: hashes stored before must not change
      }
      out += ']';
    } else if (v !== null && typeof v === 'object') {
      const keys = sortedInPlace(Object.keys(v));
      out += '{';
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) out += ',';
        out += JSON.stringify(keys[i]) + ':';
        write((v as Record<string, unknown>)[keys[i]!]);
      }
      out += '}';
    } else {
      out += JSON.stringify(v);
    }
  };
  write(value);
  return out;
}

/** An object's few keys sorted where they are (Array.prototype.sort copies them to a work array first). */
function sortedInPlace(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
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
  // One lookup by the whole key per pair (OFFSET 0 keeps it a lookup per row, not a join a plan
  // could make by principal alone: every key a principal ever used).
  return `SELECT k.principal, k.key, k.request_hash, k.status_code, k.response_body
     FROM unnest(${principalsParam}::text[], ${keysParam}::text[]) AS r(principal, key)
     CROSS JOIN LATERAL (SELECT * FROM idempotency_keys i WHERE i.principal = r.principal AND i.key = r.key OFFSET 0) k`;
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
    columns(records, [(r) => r.principal, (r) => r.key, (r) => r.requestHash, (r) => r.status, (r) => JSON.stringify(r.body)]),
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
/** SQL: the row `alias` is a reservation left in flight longer than the takeover delay (parameter `secondsParam`), which another request may take over. */
const staleInFlightSql = (alias: string, secondsParam: string) =>
  `${alias}.status_code = ${IN_FLIGHT} AND ${alias}.created_at < now() - make_interval(secs => ${secondsParam})`;

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
         WHERE ${staleInFlightSql('idempotency_keys', '$4')}
       RETURNING 1 AS reserved`,
      [...params, request.requestHash, IN_FLIGHT_TAKEOVER_MS / 1000],
    );
    if (reserved) break;
    const stored = (await loadIdempotencyRecords(db, [request])).get(recordKey(request.principal, request.key));
    if (stored && stored.status_code !== IN_FLIGHT) return { ...replayOrRefuse(request, stored), replayed: true };
    if (Date.now() - started > IN_FLIGHT_WAIT_MS) {
      throw keyInUse(request);
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

/**
 * status_code of a key claimed by an open transaction (claimIdempotencyKeys): never committed, since
 * the transaction replaces it with its reply before COMMIT (saveClaimedReplies checks).
 */
const CLAIMED = -1;

/** What another request with a key left: its reply replayed, a refusal (another request, or still in flight). */
export type StoredOutcome = { reply: StoredReply } | { refusal: AppError };

/**
 * For a group commit that runs several requests' effects in one transaction (usage events):
 * claims their keys inside it, in one statement, instead of replayOrRun's two commits of its own
 * per request. A key nobody holds is inserted as claimed; a key already stored gives its reply (or
 * a 409 for another request with it); a key a concurrent transaction claimed makes this statement
 * wait for its commit and then gives that reply, so a concurrent duplicate request replays the
 * first. A reservation left in flight by replayOrRun is taken over after the same minute; one still
 * fresh is refused as in use. A crash or rollback leaves nothing: the claim goes with the
 * transaction. The advisory locks are the ones runIdempotent and the ledger's batches take, so those
 * wait for this transaction rather than fail on its uncommitted row. `requests` must have distinct keys.
 * Returns, by recordKey, null for a key now claimed, else the record another request left.
 */
export async function claimIdempotencyKeys(tx: Queryable, requests: IdempotencyRequest[]): Promise<Map<string, StoredRecord | null>> {
  if (requests.length === 0) return new Map();
  const stale = staleInFlightSql('k', '$4');
  const rows = await tx.query<StoredRecord>(
    `WITH locks AS (${idempotencyLocksSql('$1', '$2')})
     INSERT INTO idempotency_keys AS k (principal, key, request_hash, status_code, response_body)
     SELECT principal, key, request_hash, ${CLAIMED}, 'null' FROM unnest($1::text[], $2::text[], $3::text[]) AS r(principal, key, request_hash)
     WHERE (SELECT count(*) FROM locks) >= 0
     ORDER BY principal, key
     ON CONFLICT (principal, key) DO UPDATE SET
       status_code = CASE WHEN ${stale} THEN ${CLAIMED} ELSE k.status_code END,
       request_hash = CASE WHEN ${stale} THEN excluded.request_hash ELSE k.request_hash END,
       created_at = CASE WHEN ${stale} THEN now() ELSE k.created_at END
     RETURNING principal, key, request_hash, status_code, response_body`,
    [requests.map((r) => r.principal), requests.map((r) => r.key), requests.map((r) => r.requestHash), IN_FLIGHT_TAKEOVER_MS / 1000],
  );
  const found = new Map(rows.map((r) => [recordKey(r.principal, r.key), r]));
  return new Map(requests.map((request): [string, StoredRecord | null] => {
    const row = found.get(recordKey(request.principal, request.key));
    if (!row) throw new Error(`idempotency claim returned no row for key "${request.key}"`);
    return [recordKey(request.principal, request.key), row.status_code === CLAIMED ? null : row];
  }));
}

/** What a request gets for a key another request holds: its reply replayed, a 409 when this is another request, or "in use" while it is still in flight. */
export function storedOutcome(request: IdempotencyRequest, stored: { request_hash: string; status_code: number; response_body: unknown }): StoredOutcome {
  if (stored.status_code === IN_FLIGHT) return { refusal: keyInUse(request) };
  try {
    return { reply: replayOrRefuse(request, stored) };
  } catch (error) {
    if (error instanceof AppError) return { refusal: error };
    throw error;
  }
}

/** Stores the replies of keys claimed by claimIdempotencyKeys in the same transaction; every claimed key must get one. */
export async function saveClaimedReplies(tx: Queryable, replies: Array<IdempotencyRequest & StoredReply>): Promise<void> {
  if (replies.length === 0) return;
  const saved = await tx.query(
    `UPDATE idempotency_keys k SET status_code = r.status_code, response_body = r.response_body
     FROM unnest($1::text[], $2::text[], $3::int[], $4::jsonb[]) AS r(principal, key, status_code, response_body)
     WHERE k.principal = r.principal AND k.key = r.key AND k.principal = ANY($1::text[]) AND k.key = ANY($2::text[])
       AND k.status_code = ${CLAIMED}
     RETURNING 1`,
    [replies.map((r) => r.principal), replies.map((r) => r.key), replies.map((r) => r.status), replies.map((r) => JSON.stringify(r.body))],
  );
  // A claim left unanswered would commit a key that neither replays nor can be used again.
  if (saved.length !== replies.length) throw new Error(`stored ${saved.length} of ${replies.length} claimed idempotency replies`);
}

const keyInUse = (request: IdempotencyRequest) =>
  new AppError('idempotency_key_in_use', `A request with Idempotency-Key "${request.key}" is still in progress; retry shortly`);

export async function purgeIdempotencyRecords(db: Db, before: Date): Promise<number> {
  const rows = await db.query('DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING 1', [before]);
  return rows.length;
}
