import { randomBytes } from 'node:crypto';

export type IdPrefix = 'cus' | 'key' | 'met' | 'prd' | 'pri' | 'grt' | 'res' | 'trf' | 'acc' | 'evt' | 'pay' | 'inv' | 'brn' | 'cn' | 'msg' | 'whe' | 'whd' | 'pms' | 'ps' | 'dss';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

let lastMs = 0;
/** The last id's 80 random bits as two 40-bit halves (numbers: exact below 2^53, cheaper than bigint). */
let lastHigh = 0;
let lastLow = 0;
const HALF = 2 ** 40;

/**
 * Prefixed, time-ordered ids (ULID layout: 48-bit ms time + 80 random bits), so sorting by id
 * is sorting by creation and a list cursor is simply the last id seen. Within one millisecond
 * the random part increments, keeping ids from one process strictly increasing.
 */
export function newId(prefix: IdPrefix, nowMs: number = Date.now()): string {
  if (nowMs <= lastMs) {
    nowMs = lastMs;
    lastLow += 1;
    if (lastLow === HALF) {
      lastLow = 0;
      lastHigh += 1;
    }
  } else {
    // 80 random bits shifted right by one, leaving room to increment.
    const bytes = randomBytes(10);
    const high = bytes.readUIntBE(0, 5);
    lastHigh = Math.floor(high / 2);
    lastLow = (high % 2) * 2 ** 39 + Math.floor(bytes.readUIntBE(5, 5) / 2);
  }
  lastMs = nowMs;
  return `${prefix}_${encode(nowMs, 10)}${encode(lastHigh, 8)}${encode(lastLow, 8)}`;
}

/** The low 5 x `length` bits of `value` (a whole number below 2^53) in Crockford base32. */
function encode(value: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

const ID_PATTERN = /^[a-z]{2,3}_[0-9a-z]{26}$/; // cn_ (credit notes) has two letters

export function looksLikeId(value: string, prefix: IdPrefix): boolean {
  return value.startsWith(prefix + '_') && ID_PATTERN.test(value);
}
