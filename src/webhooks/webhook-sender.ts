import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AppError } from '../platform/errors.js';
import { isPrivateAddress } from './webhook-rules.js';

/** Most of a response body read (the rest is dropped unread) and most kept in the delivery log. */
export const RESPONSE_READ_MAX_BYTES = 64 * 1024;
export const RESPONSE_EXCERPT_MAX_CHARS = 1_000;

export interface SendResult {
  statusCode: number | null;
  latencyMs: number;
  excerpt: string | null;
  error: string | null;
}

export interface SenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

/**
 * Where a webhook may not point: a URL that is not http(s), carries credentials, or whose host
 * is (or resolves to) a private, loopback or link-local address. Checked when an endpoint is saved
 * and again, on the address actually connected to, at every delivery (DNS can change in between).
 */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<void> {
  const refuse = (message: string) => new AppError('invalid_request', `url ${message}`, [{ path: 'url', message }]);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('must be an http:// or https:// URL');
  if (url.username || url.password) throw refuse('must not carry credentials');
  if (allowPrivate) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : await resolveAll(host).catch(() => []);
  // A name that does not resolve yet is accepted: each delivery checks the address it connects to.
  if (addresses.some(isPrivateAddress) || host === 'localhost' || host.endsWith('.localhost')) {
    throw refuse('resolves to a private, loopback or link-local address (set TOLLGATE_WEBHOOKS_ALLOW_PRIVATE=true to allow)');
  }
}

function resolveAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list.map((a) => a.address)))));
}

/** A DNS lookup that refuses private answers, so the check applies to the address connected to. */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return (callback as (e: Error | null, a: LookupAddress[]) => void)(err, []);
    const list = addresses as LookupAddress[];
    const refused = list.find((a) => isPrivateAddress(a.address));
    if (refused) return (callback as (e: Error | null, a: LookupAddress[]) => void)(new Error(`refused: ${hostname} resolves to ${refused.address}, a private address`), []);
    if (options.all) return (callback as (e: Error | null, a: LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

/**
 * POSTs one signed webhook: at most `timeoutMs` in all (connect, send, response), the response
 * body read up to RESPONSE_READ_MAX_BYTES. Never throws: a failure is a result without status.
 */
export async function sendWebhook(urlText: string, headers: Record<string, string>, body: string, options: SenderOptions): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'latencyMs'>): SendResult => ({ ...r, latencyMs: Math.round(performance.now() - started) });
  try {
    const url = new URL(urlText);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!options.allowPrivate && isIP(host) && isPrivateAddress(host)) return done({ statusCode: null, excerpt: null, error: `refused: ${host} is a private address` });
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(options.timeoutMs),
        lookup: options.allowPrivate ? undefined : guardedLookup,
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end(body);
    });
    const text = await readCapped(response);
    return done({ statusCode: response.statusCode ?? null, excerpt: text.slice(0, RESPONSE_EXCERPT_MAX_CHARS), error: null });
  } catch (error) {
    const e = error as Error;
    return done({ statusCode: null, excerpt: null, error: e.name === 'AbortError' || e.name === 'TimeoutError' ? `timed out after ${options.timeoutMs} ms` : e.message.slice(0, 300) });
  }
}

async function readCapped(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    chunks.push(buffer.subarray(0, RESPONSE_READ_MAX_BYTES - size));
    size += buffer.length;
    if (size >= RESPONSE_READ_MAX_BYTES) {
      response.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
