import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { FastifyRequest } from 'fastify';
import { idempotencyOf } from '../../src/platform/idempotency.js';

/** How request hashes were computed when the first keys were stored: a stored key's retry must hash the same. */
function referenceCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${referenceCanonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

const requestWith = (body: unknown) =>
  ({ headers: { 'idempotency-key': 'key-1' }, principal: null, method: 'POST', url: '/v1/events', body }) as unknown as FastifyRequest;

describe('the request hash of an Idempotency-Key', () => {
  it('is the hash of the canonical JSON it always was, for any JSON body', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const expected = createHash('sha256').update(`POST /v1/events\n${referenceCanonical(body ?? {})}`).digest('base64url');
        expect(idempotencyOf(requestWith(body))!.requestHash).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('does not depend on the order of object keys', () => {
    const a = idempotencyOf(requestWith([{ id: '1', data: { b: 1, a: [2, { y: null, x: 'é' }] } }]))!;
    const b = idempotencyOf(requestWith([{ data: { a: [2, { x: 'é', y: null }], b: 1 }, id: '1' }]))!;
    expect(a.requestHash).toBe(b.requestHash);
  });
});
