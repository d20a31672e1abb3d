import { createHmac, randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/**
 * Webhook delivery rules, no I/O: the retry schedule, which endpoint gets which event, Standard
 * Webhooks signatures and which addresses a webhook may never reach.
 */

/**
 * Delay before each retry, after attempt 1, 2, ...: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
 * (8 attempts over about 27.6 hours), each with +-20% jitter so a recovering receiver is not hit
 * by every queued delivery in the same second.
 */
export const RETRY_DELAYS_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
export const ATTEMPTS_MAX = RETRY_DELAYS_MS.length + 1;
const JITTER = 0.2;

/** When to try again after `attemptsMade` failed attempts (null: give up); `random` in [0, 1). */
export function retryDelayMs(attemptsMade: number, random: number): number | null {
  const base = RETRY_DELAYS_MS[attemptsMade - 1];
  if (base === undefined) return null;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random));
}

/** An endpoint failing without a single success for this long is disabled when a delivery gives up. */
export const DISABLE_AFTER_FAILING_MS = 24 * 3_600_000;

export function shouldDisable(failingSince: Date | null, now: Date): boolean {
  return failingSince !== null && now.getTime() - failingSince.getTime() >= DISABLE_AFTER_FAILING_MS;
}

/** After a secret rotation the previous secret keeps signing (both signatures sent) this long. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000;

export interface EndpointTarget {
  customerId: string | null;
  eventTypes: string[];
  enabled: boolean;
}

/** The operator's endpoints get every customer's events; a customer's endpoint only its own. */
export function endpointWants(endpoint: EndpointTarget, event: { type: string; customerId: string | null }): boolean {
  if (!endpoint.enabled) return false;
  if (endpoint.customerId !== null && endpoint.customerId !== event.customerId) return false;
  return endpoint.eventTypes.length === 0 || endpoint.eventTypes.includes(event.type);
}

/** `whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the key the secret encodes. */
export function signature(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The headers of one delivery; every secret in force signs (space-separated), for rotations. */
export function signedHeaders(secrets: string[], messageId: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Tollgate-Webhooks/1',
    'webhook-id': messageId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => signature(s, messageId, timestampSeconds, body)).join(' '),
  };
}

/** Loopback, private, link-local, shared (CGNAT), unspecified, multicast and reserved ranges. */
const FORBIDDEN = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) FORBIDDEN.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) FORBIDDEN.addSubnet(net, bits, 'ipv6');

/** True for an address a webhook must not reach (unless TOLLGATE_WEBHOOKS_ALLOW_PRIVATE). */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 4) return FORBIDDEN.check(bare, 'ipv4');
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return FORBIDDEN.check(mapped[1]!, 'ipv4');
  return FORBIDDEN.check(bare, 'ipv6');
}
