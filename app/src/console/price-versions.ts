import type { Price } from './console-queries';

export type VersionState = 'in force' | 'scheduled' | 'superseded';

/**
 * Where each price version stands at `now`: per meter, currency and customer (an override is its
 * own line of versions), the latest version that has taken effect is in force, later ones are
 * scheduled and earlier ones superseded (they still price events dated before their successor).
 */
export function versionStates(prices: Price[], now: Date): Map<string, VersionState> {
  const lines = new Map<string, Price[]>();
  for (const price of prices) {
    const line = `${price.meter}|${price.currency}|${price.customer_id ?? ''}`;
    lines.set(line, [...(lines.get(line) ?? []), price]);
  }
  const states = new Map<string, VersionState>();
  for (const versions of lines.values()) {
    let inForceSeen = false;
    const newestFirst = [...versions].sort((a, b) => Date.parse(b.effective_at) - Date.parse(a.effective_at) || b.id.localeCompare(a.id));
    for (const price of newestFirst) {
      if (Date.parse(price.effective_at) > now.getTime()) states.set(price.id, 'scheduled');
      else if (!inForceSeen) {
        states.set(price.id, 'in force');
        inForceSeen = true;
      } else states.set(price.id, 'superseded');
    }
  }
  return states;
}

/** The terms of a version in a few words: "0.025 per unit", "3 tiers", "2.00 per 1000". */
export function describeTerms(price: Price): string {
  switch (price.scheme) {
    case 'per_unit':
      return `${price.unit_amount} per unit`;
    case 'package':
      return `${price.unit_amount} per ${price.package_size} units`;
    default:
      return (price.tiers ?? []).map((t) => `${t.up_to === null ? 'above' : `up to ${t.up_to}`}: ${t.unit_amount}${t.flat_amount !== '0' ? ` + ${t.flat_amount}` : ''}`).join('; ');
  }
}
