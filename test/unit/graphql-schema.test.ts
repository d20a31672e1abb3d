import { readFileSync } from 'node:fs';
import { isNonNullType, isObjectType, printSchema, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { ApiKey, Customer } from '../../src/accounts/schemas.js';
import { Invoice, InvoiceLine } from '../../src/billing/schemas.js';
import { Meter, Price, Product } from '../../src/catalog/schemas.js';
import { Reservation } from '../../src/gateway/schemas.js';
import { loadGraphqlSchema, SCHEMA_FILE } from '../../src/graphql/graphql-schema.js';
import { resolvers } from '../../src/graphql/resolvers.js';
import { Balance, CreditGrant, Transaction } from '../../src/ledger/schemas.js';
import { UsageRow } from '../../src/metering/usage-schemas.js';
import { Payment } from '../../src/payments/schemas.js';
import { ListOf } from '../../src/platform/lists.js';
import { Type } from 'typebox';
import { WebhookDelivery, WebhookEndpoint } from '../../src/webhooks/schemas.js';

/**
 * schema.graphql is the contract (schema-first) and the code must agree with it: the executable
 * schema prints back to the file exactly, every field with arguments has a resolver, and every
 * field left to the default resolver is a field of the REST body the service returns, nullable
 * where that body's field may be null.
 */

type JsonSchema = { type?: string; anyOf?: JsonSchema[]; properties?: Record<string, JsonSchema>; required?: string[]; items?: JsonSchema };

/** The object variant of a schema that may also be null. */
const objectOf = (s: JsonSchema): JsonSchema => s.anyOf?.find((v) => v.type === 'object' || v.type === 'array') ?? s;
const itemsOf = (s: JsonSchema): JsonSchema => objectOf(objectOf(s).items!);

const bodies = { Customer, ApiKey, Invoice, InvoiceLine, Meter, Price, Product, Reservation, Balance, CreditGrant, Transaction, UsageRow, Payment, WebhookEndpoint, WebhookDelivery } as unknown as Record<string, JsonSchema>;
const restBodies: Record<string, JsonSchema> = {
  ...bodies,
  BalanceGrant: itemsOf(bodies.Balance.properties!.grants),
  SpendLimit: objectOf(bodies.ApiKey.properties!.spend_limit),
  PriceTier: itemsOf(bodies.Price.properties!.tiers),
};
const LIST = ListOf(Type.Object({})) as JsonSchema;

const schema = loadGraphqlSchema();
const objectTypes = Object.values(schema.getTypeMap()).filter((t): t is GraphQLObjectType => isObjectType(t) && !t.name.startsWith('__'));

describe('schema.graphql and the code', () => {
  it('prints back to the checked-in file exactly (printSchema of the executable schema)', () => {
    expect(printSchema(schema) + '\n').toBe(readFileSync(SCHEMA_FILE, 'utf8'));
  });

  it('resolves every Query field and every field that takes arguments (none is silently ignored)', () => {
    const missing = objectTypes.flatMap((type) =>
      Object.values(type.getFields())
        .filter((f) => (type.name === 'Query' || f.args.length > 0) && !resolvers[type.name]?.[f.name])
        .map((f) => `${type.name}.${f.name}`),
    );
    expect(missing).toEqual([]);
  });

  it('leaves to the default resolver only fields of the REST bodies, non-null only where REST never sends null', () => {
    const problems: string[] = [];
    for (const type of objectTypes.filter((t) => t.name !== 'Query')) {
      const rest = type.name.endsWith('List') ? LIST : restBodies[type.name];
      if (!rest) {
        problems.push(`${type.name}: no REST body to compare with`);
        continue;
      }
      for (const field of Object.values(type.getFields())) {
        if (resolvers[type.name]?.[field.name]) continue;
        const property = rest.properties?.[field.name];
        if (!property) problems.push(`${type.name}.${field.name}: not in the REST body`);
        else if (isNonNullType(field.type) && (property.anyOf?.some((v) => v.type === 'null') || !rest.required?.includes(field.name))) {
          problems.push(`${type.name}.${field.name}: non-null, but REST may send null or leave it out`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('refuses a resolver for a field the file does not declare', () => {
    const sdl = readFileSync(SCHEMA_FILE, 'utf8').replace(/\n  balance: Balance!\n/, '\n');
    expect(() => loadGraphqlSchema(sdl)).toThrow(/Customer\.balance/);
  });
});
