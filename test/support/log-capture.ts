import { Writable } from 'node:stream';

/**
 * Every test server's log lines, kept in memory, and every secret the tests created or sent
 * (API key secrets from responses, bearer tokens, api_key fields): when a server closes, the
 * harness fails if any of them appears in any line (DESIGN.md: secrets are redacted everywhere).
 */
const secrets = new Set<string>();

/** Shorter strings are not secrets Tollgate issues, and would match by chance. */
const SECRET_LENGTH_MIN = 16;

export function recordSecret(value: unknown): void {
  if (typeof value === 'string' && value.length >= SECRET_LENGTH_MIN) secrets.add(value);
}

/** Fields that always carry a secret: key and signing secrets, a dashboard session's CSRF token. */
const SECRET_KEYS = new Set(['secret', 'csrf_token']);
/**
 * Fields whose value is a secret when it looks like one Tollgate issued (`api_key` is a key's
 * secret in authorize; the sign-in tokens): bad-input tests send arbitrary text in them, which
 * also appears in other requests' URLs and is no secret.
 */
const ISSUED_SECRETS: Record<string, string> = { api_key: 'tg_', portal_token: 'pst_', admin_token: 'tga_' };

/** Records the values of fields named like secrets anywhere in a request or response body. */
export function recordSecretsIn(body: unknown, depth = 0): void {
  if (body === null || typeof body !== 'object' || depth > 8) return;
  for (const [key, value] of Object.entries(body)) {
    const prefix = ISSUED_SECRETS[key];
    if (SECRET_KEYS.has(key) || (prefix !== undefined && typeof value === 'string' && value.startsWith(prefix))) recordSecret(value);
    // A portal link carries its token in the URL fragment.
    else if (key === 'url' && typeof value === 'string' && value.includes('#pst_')) recordSecret(value.slice(value.indexOf('#') + 1));
    else recordSecretsIn(value, depth + 1);
  }
}

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly echo = false) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void) {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop()!;
    this.lines.push(...parts);
    if (this.echo) process.stdout.write(chunk);
    done();
  }

  /** Lines that contain a recorded secret, with the secret (shortened) that leaked. */
  leaks(): Array<{ secret: string; line: string }> {
    const found: Array<{ secret: string; line: string }> = [];
    for (const line of this.partial ? [...this.lines, this.partial] : this.lines) {
      for (const secret of secrets) if (line.includes(secret)) found.push({ secret: `${secret.slice(0, 6)}…`, line });
    }
    return found;
  }

  parsed(): Array<Record<string, any>> {
    return this.lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  }
}
