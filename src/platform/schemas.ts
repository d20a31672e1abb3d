import { Type } from 'typebox';
import { CURRENCY_CODES, LEDGER_SCALE } from './money.js';

/** Schema pieces shared by every module's routes (and so by the OpenAPI document). */

export const Money = Type.String({
  pattern: `^\\d{1,15}(\\.\\d{1,${LEDGER_SCALE}})?$`,
  description: `A non-negative amount as a decimal string, at most ${LEDGER_SCALE} fractional digits`,
  examples: ['25.00'],
});
export const SignedMoney = Type.String({ pattern: '^-?\\d+(\\.\\d+)?$', description: 'An amount as a decimal string' });
export const Currency = Type.Unsafe<string>({ type: 'string', enum: CURRENCY_CODES, description: 'ISO 4217 currency code' });
export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 time, UTC' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.Unknown(), {
  maxProperties: 50,
  description: 'Free-form key/value data, at most 50 keys',
});
export const IdParam = (prefix: string) =>
  Type.Object({ id: Type.String({ pattern: `^${prefix}_[0-9a-z]{26}$`, description: `A ${prefix}_ id` }) });

/** Quantity per meter key, e.g. {"megapixels": "1.048576"} or {"tokens": 1500}. */
export const Quantities = Type.Record(
  Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
  Type.Union([Type.String({ pattern: '^\\d{1,15}(\\.\\d{1,12})?$' }), Type.Number({ minimum: 0, maximum: 1e15 })]),
  { minProperties: 0, maxProperties: 20, additionalProperties: false },
);

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details with a stable machine code' },
);

export function toIso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}

/** Response schemas for a route: its success body and the problem+json body of every refusal. */
export function responses<T>(ok: T, status = 200) {
  return { [status]: ok, '4xx': Problem, '5xx': Problem } as { [status: number]: T; '4xx': typeof Problem; '5xx': typeof Problem };
}

export const IdempotencyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Replays the first reply of a retried request' })),
});

/** A string that is one of a fixed set (a JSON Schema enum, typed as the union of its values). */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** The body of an action that takes no parameters: none, or `{}` (noBodyIsEmpty); unknown fields are refused. */
export const NoParameters = Type.Object({}, { additionalProperties: false });
