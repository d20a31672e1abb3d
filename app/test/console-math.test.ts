import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromUnits, toUnits } from '../src/format';
import type { Price } from '../src/console/console-queries';
import { describeTerms, versionStates } from '../src/console/price-versions';
import { lastMonths, monthStarts, sumQuantities, totalsByModelAndMeter } from '../src/console/revenue-math';
import type { UsageRow } from '../src/portal/usage-math';

const price = (id: string, effective_at: string, extra: Partial<Price> = {}): Price => ({
  id,
  product_id: 'prd_1',
  product: 'fal-ai/flux/dev',
  meter_id: 'met_1',
  meter: 'megapixels',
  currency: 'USD',
  customer_id: null,
  scheme: 'per_unit',
  unit_amount: '0.025',
  tiers: null,
  package_size: null,
  effective_at,
  created_at: effective_at,
  ...extra,
});

const row = (product: string | null, currency: string, charged: string, count = 1, meter = 'images', sum: string | null = '1'): UsageRow => ({
  window_start: '2026-11-01T00:00:00.000Z',
  product,
  meter,
  api_key_id: null,
  currency,
  sum,
  count,
  max: sum,
  unique_count: sum === null ? 3 : null,
  charged,
});

describe('price versions', () => {
  it('per meter, currency and customer: the latest effective version is in force, later ones scheduled, earlier superseded', () => {
    const now = new Date('2026-11-22T00:00:00Z');
    const states = versionStates(
      [
        price('pri_future', '2026-12-01T00:00:00Z'),
        price('pri_now', '2026-11-01T00:00:00Z'),
        price('pri_old', '2020-01-01T00:00:00Z'),
        price('pri_override', '2021-01-01T00:00:00Z', { customer_id: 'cus_1' }),
        price('pri_eur', '2019-01-01T00:00:00Z', { currency: 'EUR' }),
        price('pri_tokens', '2019-01-01T00:00:00Z', { meter: 'tokens' }),
      ],
      now,
    );
    expect(Object.fromEntries(states)).toEqual({
      pri_future: 'scheduled',
      pri_now: 'in force',
      pri_old: 'superseded',
      pri_override: 'in force',
      pri_eur: 'in force',
      pri_tokens: 'in force',
    });
  });

  it('describes terms from the exact decimal strings', () => {
    expect(describeTerms(price('p', '2020-01-01T00:00:00Z', { unit_amount: '0.0000006' }))).toBe('0.0000006 per unit');
    expect(describeTerms(price('p', '2020-01-01T00:00:00Z', { scheme: 'package', unit_amount: '2', package_size: '1000' }))).toBe('2 per 1000 units');
    const tiers = [
      { up_to: '3600', unit_amount: '0.001', flat_amount: '0' },
      { up_to: null, unit_amount: '0.0005', flat_amount: '1.5' },
    ];
    expect(describeTerms(price('p', '2020-01-01T00:00:00Z', { scheme: 'graduated', unit_amount: null, tiers }))).toBe('up to 3600: 0.001; above: 0.0005 + 1.5');
  });
});

describe('revenue by model', () => {
  it('sums each model and meter per currency exactly, largest revenue first', () => {
    const totals = totalsByModelAndMeter([
      row('a', 'USD', '0.1', 2, 'images', '2'),
      row('a', 'USD', '0.2', 3, 'images', '3.000000000001'),
      row('a', 'USD', '0.05', 1, 'steps', '10'),
      row('b', 'USD', '1'),
      row('a', 'EUR', '5'),
      row(null, 'USD', '0', 4, 'users', null),
    ]);
    expect(totals).toEqual([
      { model: 'a', meter: 'images', currency: 'EUR', events: 1, quantity: '1', charged: '5' },
      { model: 'b', meter: 'images', currency: 'USD', events: 1, quantity: '1', charged: '1' },
      { model: 'a', meter: 'images', currency: 'USD', events: 5, quantity: '5.000000000001', charged: '0.3' },
      { model: 'a', meter: 'steps', currency: 'USD', events: 1, quantity: '10', charged: '0.05' },
      { model: 'other', meter: 'users', currency: 'USD', events: 4, quantity: null, charged: '0' },
    ]);
  });

  it('adds quantities and charges without losing a digit', () => {
    expect(sumQuantities([])).toBe('0');
    expect(sumQuantities(['0.000000000001', '0.000000000009'])).toBe('0.00000000001');
    expect(sumQuantities(['1.5', '2', '0.25'])).toBe('3.75');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.bigInt({ min: 0n, max: 10n ** 15n })), { maxLength: 50 }), (parts) => {
        const totals = totalsByModelAndMeter(parts.map(([model, units]) => row(model, 'USD', fromUnits(units), 1, 'images', fromUnits(units))));
        const sum = totals.reduce((s, t) => s + toUnits(t.charged), 0n);
        expect(sum).toBe(parts.reduce((s, [, units]) => s + units, 0n));
        expect(totals.reduce((s, t) => s + toUnits(t.quantity!), 0n)).toBe(sum);
      }),
    );
  });

  it('ranges over whole UTC months, this one included', () => {
    const range = lastMonths(12, new Date('2026-11-22T13:45:00Z'));
    expect(range).toEqual({ from: '2025-12-01T00:00:00.000Z', to: '2026-11-22T14:00:00.000Z' });
    const months = monthStarts(range.from, range.to);
    expect(months).toHaveLength(12);
    expect(months[0]).toBe('2025-12-01T00:00:00.000Z');
    expect(months[11]).toBe('2026-11-01T00:00:00.000Z');
  });
});
