import { randomBytes } from 'node:crypto';

export type IdPrefix = 'cus' | 'key' | 'met' | 'prd' | 'pri' | 'grt' | 'res' | 'trf' | 'acc' | 'evt' | 'pay' | 'inv' | 'brn' | 'cn' | 'msg' | 'whe' | 'whd' | 'pms' | 'ps' | 'dss';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

let lastMs = 0;
let lastRandom = 0n;

/**
 * Prefixed, time-ordered ids (ULID layout: 48-bit ms time + 80 random bits), so sorting by id
 * is sorting by creation and a list cursor is simply the last id seen. Within one millisecond
 * the random part increments, keeping ids from one process strictly increasing.
 */
export function newId(prefix: IdPrefix, nowMs: number = Date.now()): string {
  let random: bigint;
  if (nowMs <= lastMs) {
    random = lastRandom + 1n;
    nowMs = lastMs;
  } else {
    random = BigInt('0x' + randomBytes(10).toString('hex')) >> 1n; // leave room to increment
  }
  lastMs = nowMs;
  lastRandom = random;
  return `${prefix}_${encode(BigInt(nowMs), 10)}${encode(random, 16)}`;
}

function encode(value: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

const ID_PATTERN = /^[a-z]{2,3}_[0-9a-z]{26}$/; // cn_ (credit notes) has two letters

export function looksLikeId(value: string, prefix: IdPrefix): boolean {
  return value.startsWith(prefix + '_') && ID_PATTERN.test(value);
}
