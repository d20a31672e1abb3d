import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_PREFIX = 'tg_';
const DISPLAY_PREFIX_LENGTH = 10;

export interface NewSecret {
  secret: string;
  hash: string;
  displayPrefix: string;
}

/** 240 random bits: a fast hash is enough at rest, since such a secret cannot be guessed. */
export function generateSecret(): NewSecret {
  const secret = SECRET_PREFIX + randomBytes(30).toString('base64url');
  return { secret, hash: hashSecret(secret), displayPrefix: secret.slice(0, DISPLAY_PREFIX_LENGTH) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function looksLikeKeySecret(token: string): boolean {
  return token.startsWith(SECRET_PREFIX) && token.length <= 128;
}

/** Compares two tokens in time independent of where they differ. */
export function tokensEqual(a: string, b: string): boolean {
  return tokenMatcher(b)(a);
}

/** tokensEqual against one known token, hashed once (the admin token, checked on every request). */
export function tokenMatcher(known: string): (token: string) => boolean {
  const knownHash = createHash('sha256').update(known).digest();
  return (token) => timingSafeEqual(createHash('sha256').update(token).digest(), knownHash);
}
