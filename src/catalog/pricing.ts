import { add, cmp, ceilDiv, fromBigInt, isNegative, isZero, min, mul, sub, ZERO, type Decimal } from '../platform/decimal.js';

/** Price schemes, with the Stripe/Lago semantics. */
export type PriceScheme = 'per_unit' | 'graduated' | 'volume' | 'package';

/** A tier covers quantities in (previous upTo, upTo]; the last tier has upTo null (no bound). */
export interface PriceTier {
  upTo: Decimal | null;
  unitAmount: Decimal;
  flatAmount: Decimal;
}

export interface PriceTerms {
  scheme: PriceScheme;
  unitAmount: Decimal | null;
  tiers: PriceTier[] | null;
  packageSize: Decimal | null;
}

export const MAX_TIERS = 50;

function required<T>(value: T | null, field: string): T {
  if (value === null) throw new Error(`invalid price terms: ${field} is missing`);
  return value;
}

/** Exact cost of `quantity` (>= 0) under valid terms; no rounding. */
export function rateQuantity(terms: PriceTerms, quantity: Decimal): Decimal {
  if (isNegative(quantity)) throw new RangeError('quantity must not be negative');
  switch (terms.scheme) {
    case 'per_unit':
      return mul(quantity, required(terms.unitAmount, 'unitAmount'));
    case 'package': {
      // Any started package is paid in full; ceil(0) = 0 so nothing used costs nothing.
      const packages = ceilDiv(quantity, required(terms.packageSize, 'packageSize'));
      return mul(fromBigInt(packages), required(terms.unitAmount, 'unitAmount'));
    }
    case 'graduated':
      return rateGraduated(required(terms.tiers, 'tiers'), quantity);
    case 'volume':
      return rateVolume(required(terms.tiers, 'tiers'), quantity);
  }
}

/** Each tier prices the part of the quantity inside it, plus its flat amount once it is entered. */
function rateGraduated(tiers: PriceTier[], quantity: Decimal): Decimal {
  let total = ZERO;
  let floor = ZERO;
  for (const tier of tiers) {
    if (cmp(quantity, floor) <= 0) return total;
    const top = tier.upTo === null ? quantity : min(quantity, tier.upTo);
    total = add(total, add(mul(sub(top, floor), tier.unitAmount), tier.flatAmount));
    if (tier.upTo === null) return total;
    floor = tier.upTo;
  }
  if (cmp(quantity, floor) > 0) throw new Error('invalid price terms: quantity is above the last tier');
  return total;
}

/** The one tier containing the whole quantity prices all of it. */
function rateVolume(tiers: PriceTier[], quantity: Decimal): Decimal {
  if (isZero(quantity)) return ZERO;
  const tier = tiers.find((t) => t.upTo === null || cmp(quantity, t.upTo) <= 0);
  if (!tier) throw new Error('invalid price terms: quantity is above the last tier');
  return add(mul(quantity, tier.unitAmount), tier.flatAmount);
}

/** Problems with the terms, named by API field (snake_case); empty when the terms are valid. */
export function validatePriceTerms(terms: PriceTerms): string[] {
  const problems: string[] = [];
  const nonNegative = (d: Decimal | null, field: string): void => {
    if (d === null) problems.push(`${field} is required for ${terms.scheme} pricing`);
    else if (isNegative(d)) problems.push(`${field} must not be negative`);
  };
  const absent = (value: unknown, field: string): void => {
    if (value !== null) problems.push(`${field} is not allowed with ${terms.scheme} pricing`);
  };

  switch (terms.scheme) {
    case 'per_unit':
      nonNegative(terms.unitAmount, 'unit_amount');
      absent(terms.tiers, 'tiers');
      absent(terms.packageSize, 'package_size');
      break;
    case 'package':
      nonNegative(terms.unitAmount, 'unit_amount');
      if (terms.packageSize === null) problems.push('package_size is required for package pricing');
      else if (cmp(terms.packageSize, ZERO) <= 0) problems.push('package_size must be greater than 0');
      absent(terms.tiers, 'tiers');
      break;
    case 'graduated':
    case 'volume':
      absent(terms.unitAmount, 'unit_amount');
      absent(terms.packageSize, 'package_size');
      validateTiers(terms.tiers, problems);
      break;
    default:
      problems.push(`scheme must be one of per_unit, graduated, volume, package`);
  }
  return problems;
}

function validateTiers(tiers: PriceTier[] | null, problems: string[]): void {
  if (tiers === null || tiers.length === 0 || tiers.length > MAX_TIERS) {
    problems.push(`tiers must have between 1 and ${MAX_TIERS} entries`);
    return;
  }
  let floor = ZERO; // bounds start above 0: a tier ending at 0 could never price anything
  tiers.forEach((tier, i) => {
    const last = i === tiers.length - 1;
    if (tier.upTo === null) {
      if (!last) problems.push(`tiers[${i}].up_to may only be null on the last tier`);
    } else {
      if (last) problems.push(`tiers[${i}].up_to must be null on the last tier`);
      if (cmp(tier.upTo, floor) <= 0) {
        problems.push(`tiers[${i}].up_to must be greater than ${i === 0 ? '0' : 'the previous up_to'}`);
      }
      floor = tier.upTo;
    }
    if (isNegative(tier.unitAmount)) problems.push(`tiers[${i}].unit_amount must not be negative`);
    if (isNegative(tier.flatAmount)) problems.push(`tiers[${i}].flat_amount must not be negative`);
  });
}
