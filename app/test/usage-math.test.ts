import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMoney, fromUnits, toUnits } from '../src/format';
import { burnRatePerDay, dayStarts, lastDays, lastHours, runwayDays, stackByDay, totalCharged, usageCsv, type UsageRow } from '../src/portal/usage-math';

const row = (window_start: string, product: string, charged: string): UsageRow => ({
  window_start,
  product,
  meter: 'images',
  api_key_id: null,
  currency: 'USD',
  sum: '1',
  count: 1,
  max: '1',
  unique_count: null,
  charged,
});

describe('dashboard money arithmetic', () => {
  it('reads and writes decimal strings exactly (BigInt units of 10^-9)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }), (units) => {
        expect(toUnits(fromUnits(units))).toBe(units);
      }),
    );
    expect(toUnits('0.1') + toUnits('0.2')).toBe(toUnits('0.3'));
    expect(fromUnits(toUnits('12.500000000'))).toBe('12.5');
    expect(() => toUnits('1e3')).toThrow();
  });

  it('formats money from the string with Intl, keeping small amounts visible', () => {
    // The digits only: separators and the symbol's place depend on the machine's locale.
    const digits = (text: string) => text.replace(/\D/g, '');
    expect(digits(formatMoney('1234.5', 'USD'))).toBe('123450');
    expect(digits(formatMoney('0.0035', 'USD'))).toBe('00035');
    // Beyond a double's precision: formatted from the string, not a float.
    expect(digits(formatMoney('90071992547409.93', 'USD'))).toBe('9007199254740993');
  });
});

describe('usage for the portal', () => {
  const now = new Date('2026-03-10T15:20:00Z');

  it('asks for whole UTC hours: the last N calendar days and the last N×24 hours', () => {
    expect(lastDays(30, now)).toEqual({ from: '2026-02-09T00:00:00.000Z', to: '2026-03-10T16:00:00.000Z' });
    expect(lastHours(7, now)).toEqual({ from: '2026-03-03T16:00:00.000Z', to: '2026-03-10T16:00:00.000Z' });
    expect(dayStarts('2026-03-08T00:00:00.000Z', '2026-03-10T16:00:00.000Z')).toEqual(['2026-03-08T00:00:00.000Z', '2026-03-09T00:00:00.000Z', '2026-03-10T00:00:00.000Z']);
  });

  it('burn rate and runway are exact: total / days, available / burn in whole days', () => {
    const rows = [row('2026-03-09T00:00:00.000Z', 'a', '0.000000001'), row('2026-03-10T00:00:00.000Z', 'b', '6.999999999')];
    expect(totalCharged(rows)).toBe('7');
    expect(burnRatePerDay(rows, 7)).toBe('1');
    expect(runwayDays('10.5', '1')).toBe(10n);
    expect(runwayDays('-3', '1')).toBe(0n);
    expect(runwayDays('10', '0')).toBeNull();
  });

  it('stacks charges per day and series, with zero for quiet days', () => {
    const days = ['2026-03-09T00:00:00.000Z', '2026-03-10T00:00:00.000Z'];
    const series = stackByDay([row('2026-03-10T00:00:00.000Z', 'flux', '1.25'), row('2026-03-10T00:00:00.000Z', 'flux', '0.75'), row('2026-03-10T00:00:00.000Z', 'sdxl', '3')], days, (r) => r.product!);
    expect(series.keys).toEqual(['flux', 'sdxl']);
    expect(series.points).toEqual([
      { day: days[0], flux: 0, sdxl: 0 },
      { day: days[1], flux: 2, sdxl: 3 },
    ]);
  });

  it('exports the rows as CSV with quoting', () => {
    const csv = usageCsv([{ ...row('2026-03-10T00:00:00.000Z', 'a,b', '1.5'), meter: 'say "hi"' }]);
    expect(csv).toBe('window_start,product,meter,api_key_id,currency,count,sum,max,unique_count,charged\r\n2026-03-10T00:00:00.000Z,"a,b","say ""hi""",,USD,1,1,1,,1.5\r\n');
  });
});
